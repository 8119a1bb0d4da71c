#include "media/webrtc/ice/reflector.hpp"

#include <openssl/rand.h>

#include <charconv>
#include <functional>

#include "base/random.hpp"
#include "log/log.hpp"

namespace esg::media::ice {
namespace reflector {
namespace {

void put_le32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    s += char(uint8_t(v >> (8 * i)));
}

uint32_t le32(std::string_view s, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i)
    v = (v << 8) | uint8_t(s[at + size_t(i)]);
  return v;
}

uint32_t be32(std::string_view s, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i)
    v = (v << 8) | uint8_t(s[at + i]);
  return v;
}

bool all_ff(std::string_view s) {
  for (char c : s)
    if (uint8_t(c) != 0xFF) return false;
  return true;
}

// A decimal without sign or leading zero that fits T.
template <class T>
std::optional<T> decimal(std::string_view s) {
  if (s.empty() || s.size() > 10 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  T v{};
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

std::string hello(std::string_view call_tag12, uint32_t my_tag) {
  std::string out;
  out.reserve(kHelloSize);
  out.append(call_tag12.substr(0, kCallTagSize));
  out.resize(kCallTagSize, '\0');
  put_le32(out, my_tag);
  out.append(12, char(0xFF));
  out.append("\xFE\xFF\xFF\xFF", 4);
  // libtgvoip's ping query id, 123, big-endian.
  out.append(7, '\0');
  out += char(123);
  return out;
}

bool data_into(std::string& out, std::string_view call_tag12, uint32_t dst_tag, uint32_t src_tag,
               std::string_view payload) {
  out.clear();
  if (call_tag12.size() != kCallTagSize || payload.size() > kMaxPayload) return false;
  out.reserve(kHeaderSize + payload.size() + 3);
  out.append(call_tag12);
  put_le32(out, dst_tag);
  put_le32(out, src_tag);
  const uint32_t n = uint32_t(payload.size());
  out += char(n >> 24);
  out += char(n >> 16);
  out += char(n >> 8);
  out += char(n);
  out.append(payload);
  out.resize((out.size() + 3) / 4 * 4, '\0');  // tgcalls pads every packet to 4
  return true;
}

std::string data(std::string_view call_tag12, uint32_t dst_tag, uint32_t src_tag,
                 std::string_view payload) {
  std::string out;
  data_into(out, call_tag12, dst_tag, src_tag, payload);
  return out;
}

std::optional<Received> parse(std::string_view p, std::string_view call_tag12) {
  if (p.size() < 16 || call_tag12.size() != kCallTagSize || p.substr(0, 12) != call_tag12) {
    return std::nullopt;
  }
  Received r;
  if (p.size() <= kHeaderSize) return r;  // Short: READY and nothing else
  if (p.size() >= 28 && all_ff(p.substr(16, 12))) {
    r.kind = Received::Kind::Special;
    return r;
  }
  const uint32_t n = be32(p, 20);
  if (n > p.size() - kHeaderSize) {
    r.kind = Received::Kind::Overlong;
    return r;
  }
  r.kind = Received::Kind::Data;
  r.sender = le32(p, 16);
  r.payload = p.substr(kHeaderSize, n);
  return r;
}

std::string candidate_name(uint8_t server_id, uint32_t tag) {
  return "reflector-" + std::to_string(server_id) + "-" + std::to_string(tag) + ".reflector";
}

std::optional<Name> parse_name(std::string_view host) {
  constexpr std::string_view kPrefix = "reflector-", kSuffix = ".reflector";
  if (host.size() <= kPrefix.size() + kSuffix.size() || host.substr(0, kPrefix.size()) != kPrefix ||
      host.substr(host.size() - kSuffix.size()) != kSuffix) {
    return std::nullopt;
  }
  host.remove_prefix(kPrefix.size());
  host.remove_suffix(kSuffix.size());
  const size_t dash = host.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  const auto id = decimal<uint32_t>(host.substr(0, dash));
  const auto tag = decimal<uint32_t>(host.substr(dash + 1));
  // Ids are 1..255 (uint8 ranks + 1); a port's tag is never 0.
  if (!id || *id == 0 || *id > 255 || !tag || *tag == 0) return std::nullopt;
  return Name{uint8_t(*id), *tag};
}

}  // namespace reflector

ReflectorPort::ReflectorPort(Options o) : o_(std::move(o)), my_tag_(o_.my_tag) {
  call_tag_ = o_.server.peer_tag.substr(0, reflector::kCallTagSize);
  call_tag_.resize(reflector::kCallTagSize, '\0');
  while (my_tag_ == 0) {
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&my_tag_), sizeof my_tag_) != 1) {
      my_tag_ = uint32_t(esg::random::between(1, 0xFFFFFFFF));
    }
  }
}

void ReflectorPort::start(TimePoint now) {
  send_hello(now);
}

void ReflectorPort::send_hello(TimePoint now) {
  ++counters_.hellos_sent;
  if (send) send(reflector::hello(call_tag_, my_tag_));
  next_hello_ = now + (ready_ ? kHelloAfterReady : kHelloBeforeReady);
}

void ReflectorPort::tick(TimePoint now) {
  if (now >= next_hello_) send_hello(now);
}

bool ReflectorPort::send_to(uint32_t dest_tag, std::string_view payload) {
  if (!reflector::data_into(out_, call_tag_, dest_tag, my_tag_, payload)) {
    ++counters_.dropped;
    return false;
  }
  ++counters_.data_out;
  if (send) send(out_);
  return true;
}

std::optional<ReflectorPort::Inbound> ReflectorPort::on_datagram(const Endpoint& from,
                                                                 std::string_view data,
                                                                 TimePoint now) {
  // Only the reflector's exact address: anyone else could otherwise inject into the call.
  if (from != o_.server.address) {
    ++counters_.dropped;
    return std::nullopt;
  }
  auto r = reflector::parse(data, call_tag_);
  if (!r) {
    ++counters_.dropped;
    return std::nullopt;
  }
  if (!ready_) {
    ready_ = true;
    // From now on the slow keep-alive: the reflector knows us.
    next_hello_ = now + kHelloAfterReady;
    esg::log::get("media").info("ice: reflector {} at {}:{} ready, tag {}", int(o_.server.id),
                                o_.server.address.address().to_string(), o_.server.address.port(),
                                my_tag_);
    if (on_ready) on_ready(candidate(0));
  }
  switch (r->kind) {
    case reflector::Received::Kind::Short:
      return std::nullopt;
    case reflector::Received::Kind::Special:
      ++counters_.replies;
      return std::nullopt;
    case reflector::Received::Kind::Overlong:
      ++counters_.dropped;
      return std::nullopt;
    case reflector::Received::Kind::Data:
      break;
  }
  ++counters_.data_in;
  return Inbound{r->sender, r->payload};
}

Candidate ReflectorPort::candidate(uint32_t local_preference) const {
  Candidate c;
  c.foundation = std::to_string(
      uint32_t(std::hash<std::string>{}("reflector|" + o_.server.address.address().to_string() +
                                        "|" + std::to_string(o_.server.id))));
  c.priority = candidate_priority(kTypePreferenceRelay, local_preference);
  c.address = reflector::candidate_name(o_.server.id, my_tag_);
  c.port = o_.server.address.port();
  c.type = "relay";
  return c;
}

}  // namespace esg::media::ice
