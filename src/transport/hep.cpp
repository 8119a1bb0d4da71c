#include "transport/hep.hpp"

#include <sys/socket.h>

#include "sip/framer.hpp"

namespace esg::transport {

namespace asio = boost::asio;
using asio::ip::udp;

namespace {

void put16(std::string& out, uint16_t v) {
  out += char(v >> 8);
  out += char(v & 0xFF);
}

void put32(std::string& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8)
    out += char((v >> s) & 0xFF);
}

// A chunk: vendor 0 (generic), its type, its length (header included), the value.
void chunk(std::string& out, uint16_t type, std::string_view value) {
  put16(out, 0);
  put16(out, type);
  put16(out, uint16_t(6 + value.size()));
  out.append(value);
}

std::string u8(uint8_t v) {
  return std::string(1, char(v));
}
std::string u16(uint16_t v) {
  std::string s;
  put16(s, v);
  return s;
}
std::string u32(uint32_t v) {
  std::string s;
  put32(s, v);
  return s;
}

}  // namespace

std::string encode_hep(const HepPacket& p, uint32_t agent_id, const std::string& password) {
  std::string body;
  const bool v6 = p.src.is_v6();
  chunk(body, 0x0001, u8(v6 ? 10 : 2));     // IP family
  chunk(body, 0x0002, u8(p.tcp ? 6 : 17));  // IP protocol
  if (v6) {
    const auto s = p.src.to_v6().to_bytes(),
               d = p.dst.is_v6() ? p.dst.to_v6().to_bytes()
                                 : asio::ip::address_v6::v4_mapped(p.dst.to_v4()).to_bytes();
    chunk(body, 0x0005, std::string_view(reinterpret_cast<const char*>(s.data()), s.size()));
    chunk(body, 0x0006, std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
  } else {
    const auto s = p.src.to_v4().to_bytes();
    const auto d =
        p.dst.is_v4() ? p.dst.to_v4().to_bytes() : asio::ip::address_v4::any().to_bytes();
    chunk(body, 0x0003, std::string_view(reinterpret_cast<const char*>(s.data()), s.size()));
    chunk(body, 0x0004, std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
  }
  chunk(body, 0x0007, u16(p.src_port));
  chunk(body, 0x0008, u16(p.dst_port));
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(p.time.time_since_epoch()).count();
  chunk(body, 0x0009, u32(uint32_t(us / 1000000)));
  chunk(body, 0x000a, u32(uint32_t(us % 1000000)));
  chunk(body, 0x000b, u8(1));  // SIP
  chunk(body, 0x000c, u32(agent_id));
  if (!password.empty()) chunk(body, 0x000e, password);
  chunk(body, 0x000f, p.payload);
  if (!p.call_id.empty()) chunk(body, 0x0011, p.call_id);
  std::string out = "HEP3";
  put16(out, uint16_t(6 + body.size()));
  return out + body;
}

Result<udp::endpoint, std::string> HepExporter::parse_address(const std::string& a) {
  const size_t colon = a.rfind(':');
  if (colon == std::string::npos) return unexpected(std::string("must be IP:port"));
  std::string host = a.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  const auto addr = asio::ip::make_address(host, ec);
  if (ec) return unexpected("'" + host + "' is not an IP address");
  int port = 0;
  try {
    port = std::stoi(a.substr(colon + 1));
  } catch (const std::exception&) {
    port = 0;
  }
  if (port < 1 || port > 65535) return unexpected(std::string("the port must be 1 to 65535"));
  return udp::endpoint(addr, uint16_t(port));
}

HepExporter::HepExporter(HepOptions options, udp::endpoint collector, std::vector<Local> locals)
    : options_(std::move(options)), sock_(io_), collector_(collector), locals_(std::move(locals)) {
  boost::system::error_code ec;
  sock_.open(collector_.protocol(), ec);
  if (!ec) sock_.non_blocking(true, ec);
}

HepExporter::~HepExporter() = default;

void HepExporter::send(const PacketRecord& r, const Peer& peer) {
  if (r.banned) return;  // dropped by policy: not a packet esg handled
  HepPacket p;
  p.tcp = peer.proto != Proto::Udp;
  p.time = r.time;
  p.payload = r.packet;
  p.call_id = std::string(sip::scan_ids(r.packet).call_id);
  // Our end: the listener that received or sent it (UDP), else the first of its protocol.
  Local local;
  if (peer.proto == Proto::Udp && peer.listener < locals_.size()) {
    local = locals_[peer.listener];
  } else {
    for (const auto& l : locals_) {
      if (l.proto == peer.proto) {
        local = l;
        break;
      }
    }
  }
  if (r.direction == Direction::Recv) {
    p.src = peer.addr, p.src_port = peer.port;
    p.dst = local.addr, p.dst_port = local.port;
  } else {
    p.src = local.addr, p.src_port = local.port;
    p.dst = peer.addr, p.dst_port = peer.port;
  }
  if (p.dst.is_unspecified() && !p.src.is_unspecified() && p.src.is_v4() != p.dst.is_v4())
    p.dst = p.src.is_v4() ? asio::ip::address(asio::ip::address_v4::any())
                          : asio::ip::address(asio::ip::address_v6::any());
  const std::string d = encode_hep(p, options_.id, options_.password);
  // sendto(2) itself: workers send concurrently, and a full buffer drops rather than waits.
  const ssize_t n = ::sendto(sock_.native_handle(), d.data(), d.size(), MSG_DONTWAIT,
                             collector_.data(), socklen_t(collector_.size()));
  if (n < 0)
    ++dropped_;
  else
    ++sent_;
}

}  // namespace esg::transport
