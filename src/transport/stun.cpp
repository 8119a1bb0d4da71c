#include "transport/stun.hpp"

#include <random>

namespace esg::transport {

namespace asio = boost::asio;
using asio::ip::udp;

namespace {

constexpr uint32_t kMagicCookie = 0x2112A442;
constexpr uint16_t kBindingRequest = 0x0001, kBindingSuccess = 0x0101;
constexpr uint16_t kMappedAddress = 0x0001, kXorMappedAddress = 0x0020;

uint16_t u16(const uint8_t* p) {
  return uint16_t(p[0] << 8 | p[1]);
}
uint32_t u32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}

}  // namespace

std::string stun_binding_request(const StunTxid& txid) {
  std::string m(20, '\0');
  m[0] = char(kBindingRequest >> 8);
  m[1] = char(kBindingRequest & 0xFF);
  // Length 0: no attributes.
  for (int i = 0; i < 4; ++i)
    m[size_t(4 + i)] = char(kMagicCookie >> (24 - 8 * i));
  for (size_t i = 0; i < 12; ++i)
    m[8 + i] = char(txid[i]);
  return m;
}

std::optional<udp::endpoint> stun_mapped_address(std::string_view response, const StunTxid& txid) {
  const auto* b = reinterpret_cast<const uint8_t*>(response.data());
  if (response.size() < 20 || u16(b) != kBindingSuccess || u32(b + 4) != kMagicCookie)
    return std::nullopt;
  for (size_t i = 0; i < 12; ++i) {
    if (b[8 + i] != txid[i]) return std::nullopt;
  }
  const size_t length = u16(b + 2);
  if (20 + length > response.size()) return std::nullopt;
  std::optional<udp::endpoint> plain;
  for (size_t at = 20; at + 4 <= 20 + length;) {
    const uint16_t type = u16(b + at), len = u16(b + at + 2);
    const uint8_t* v = b + at + 4;
    if (at + 4 + len > 20 + length) break;
    if ((type == kXorMappedAddress || type == kMappedAddress) && len >= 8) {
      const bool x = type == kXorMappedAddress;
      const uint8_t family = v[1];
      uint16_t port = u16(v + 2);
      if (x) port ^= uint16_t(kMagicCookie >> 16);
      std::optional<udp::endpoint> e;
      if (family == 0x01) {
        uint32_t a = u32(v + 4);
        if (x) a ^= kMagicCookie;
        e = udp::endpoint(asio::ip::address_v4(a), port);
      } else if (family == 0x02 && len >= 20) {
        asio::ip::address_v6::bytes_type a;
        for (size_t i = 0; i < 16; ++i) {
          // XOR with the magic cookie and then the transaction id (RFC 5389 §15.2).
          const uint8_t key = i < 4 ? uint8_t(kMagicCookie >> (24 - 8 * i)) : txid[i - 4];
          a[i] = x ? uint8_t(v[4 + i] ^ key) : v[4 + i];
        }
        e = udp::endpoint(asio::ip::address_v6(a), port);
      }
      if (e && x) return e;  // XOR-MAPPED-ADDRESS wins over a plain one
      if (e) plain = e;
    }
    at += 4 + ((len + 3) & ~size_t(3));
  }
  return plain;
}

StunClient::StunClient(asio::io_context& io, Options options,
                       std::function<void(const std::string&)> found)
    : io_(io),
      options_(std::move(options)),
      found_(std::move(found)),
      socket_(io),
      resolver_(io),
      timer_(io) {}

StunClient::~StunClient() {
  stop();
}

void StunClient::start() {
  asio::post(io_, [this] { query(); });
}

void StunClient::stop() {
  stopped_ = true;
  boost::system::error_code ec;
  timer_.cancel();
  resolver_.cancel();
  socket_.close(ec);
}

void StunClient::query() {
  if (stopped_) return;
  std::string host = options_.server, port = "3478";
  if (const size_t colon = host.rfind(':'); colon != std::string::npos &&
                                            host.find(']') == std::string::npos &&
                                            host.find(':') == colon) {
    port = host.substr(colon + 1);
    host.resize(colon);
  } else if (host.size() > 2 && host.front() == '[') {
    const size_t close = host.find(']');
    if (close + 2 < host.size() && host[close + 1] == ':') port = host.substr(close + 2);
    host = host.substr(1, close - 1);
  }
  resolver_.async_resolve(udp::v4(), host, port, [this](auto ec, auto results) {
    if (stopped_) return;
    if (ec || results.empty()) {
      fail("cannot resolve " + options_.server + (ec ? ": " + ec.message() : ""));
      return;
    }
    server_ = *results.begin();
    boost::system::error_code e;
    if (!socket_.is_open()) {
      socket_.open(server_.protocol(), e);
      if (e) {
        fail("socket: " + e.message());
        return;
      }
      receive();
    }
    std::random_device rd;
    for (auto& b : txid_)
      b = uint8_t(rd());
    try_ = 0;
    send();
  });
}

void StunClient::send() {
  if (stopped_) return;
  boost::system::error_code ec;
  socket_.send_to(asio::buffer(stun_binding_request(txid_)), server_, 0, ec);
  timer_.expires_after(options_.first_timeout * (1 << try_));
  timer_.async_wait([this](auto ec) {
    if (ec || stopped_) return;
    if (++try_ >= options_.tries) {
      fail("no answer from " + options_.server);
      return;
    }
    send();
  });
}

void StunClient::receive() {
  socket_.async_receive_from(asio::buffer(buf_), from_, [this](auto ec, size_t n) {
    if (stopped_ || ec == asio::error::operation_aborted) return;
    if (!ec && from_ == server_) {
      if (auto mapped = stun_mapped_address(std::string_view(buf_.data(), n), txid_)) {
        const std::string address = mapped->address().to_string();
        {
          std::lock_guard lock(mu_);
          address_ = address;
          port_ = mapped->port();
          error_.clear();
          updated_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
        }
        timer_.cancel();
        found_(address);
        timer_.expires_after(options_.interval);
        timer_.async_wait([this](auto ec) {
          if (!ec && !stopped_) query();
        });
      }
    }
    receive();
  });
}

void StunClient::fail(const std::string& why) {
  {
    std::lock_guard lock(mu_);
    error_ = why;
  }
  timer_.expires_after(options_.interval);
  timer_.async_wait([this](auto ec) {
    if (!ec && !stopped_) query();
  });
}

nlohmann::json StunClient::status() const {
  std::lock_guard lock(mu_);
  return {{"server", options_.server},
          {"address", address_},
          {"port", port_},
          {"updated_ms", updated_ms_},
          {"error", error_}};
}

}  // namespace esg::transport
