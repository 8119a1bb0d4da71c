#include "sdp/session.hpp"

#include "base/text.hpp"

namespace esg::sdp {

std::string_view direction_name(Direction d) {
  switch (d) {
    case Direction::SendRecv:
      return "sendrecv";
    case Direction::SendOnly:
      return "sendonly";
    case Direction::RecvOnly:
      return "recvonly";
    case Direction::Inactive:
      return "inactive";
  }
  return "sendrecv";
}

namespace {

std::optional<Direction> direction_of(const std::vector<Attribute>& attrs) {
  for (const auto& a : attrs) {
    if (a.value) continue;
    if (a.name == "sendrecv") return Direction::SendRecv;
    if (a.name == "sendonly") return Direction::SendOnly;
    if (a.name == "recvonly") return Direction::RecvOnly;
    if (a.name == "inactive") return Direction::Inactive;
  }
  return std::nullopt;
}

const Attribute* find(const std::vector<Attribute>& attrs, std::string_view name) {
  for (const auto& a : attrs) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

// "<pt> rest": the rest when the payload type matches.
std::optional<std::string_view> for_payload(const Attribute& a, int pt) {
  if (!a.value) return std::nullopt;
  std::string_view v = *a.value;
  size_t sp = v.find(' ');
  auto n = text::parse_uint(v.substr(0, sp), 127);
  if (!n || int(*n) != pt || sp == std::string_view::npos) return std::nullopt;
  return v.substr(sp + 1);
}

std::optional<uint32_t> uint_attr(const std::vector<Attribute>& attrs, std::string_view name) {
  const Attribute* a = find(attrs, name);
  if (!a || !a->value) return std::nullopt;
  auto v = text::parse_uint(text::trim(*a->value), UINT32_MAX);
  if (!v) return std::nullopt;
  return static_cast<uint32_t>(*v);
}

}  // namespace

const Attribute* Media::attribute(std::string_view name) const {
  return find(attributes, name);
}

std::vector<const Attribute*> Media::attributes_named(std::string_view name) const {
  std::vector<const Attribute*> out;
  for (const auto& a : attributes) {
    if (a.name == name) out.push_back(&a);
  }
  return out;
}

std::optional<RtpMap> Media::rtpmap(int pt) const {
  for (const auto& a : attributes) {
    if (a.name != "rtpmap") continue;
    auto rest = for_payload(a, pt);
    if (!rest) continue;
    RtpMap m;
    m.payload_type = pt;
    size_t s1 = rest->find('/');
    m.encoding = std::string(rest->substr(0, s1));
    if (s1 == std::string_view::npos) return std::nullopt;
    std::string_view tail = rest->substr(s1 + 1);
    size_t s2 = tail.find('/');
    auto clock = text::parse_uint(tail.substr(0, s2), UINT32_MAX);
    if (!clock) return std::nullopt;
    m.clock_rate = static_cast<uint32_t>(*clock);
    if (s2 != std::string_view::npos) {
      auto ch = text::parse_uint(tail.substr(s2 + 1), 255);
      if (!ch) return std::nullopt;
      m.channels = static_cast<uint32_t>(*ch);
    }
    return m;
  }
  // RFC 3551 static payload types need no rtpmap.
  static constexpr struct {
    int pt;
    const char* name;
    uint32_t rate;
  } kStatic[] = {{0, "PCMU", 8000}, {3, "GSM", 8000}, {4, "G723", 8000}, {8, "PCMA", 8000},
                 {9, "G722", 8000}, {13, "CN", 8000}, {18, "G729", 8000}};
  for (const auto& s : kStatic) {
    if (s.pt == pt) return RtpMap{pt, s.name, s.rate, 1};
  }
  return std::nullopt;
}

std::optional<std::string> Media::fmtp(int pt) const {
  for (const auto& a : attributes) {
    if (a.name != "fmtp") continue;
    auto rest = for_payload(a, pt);
    if (rest) return std::string(*rest);
  }
  return std::nullopt;
}

std::optional<uint32_t> Media::ptime() const {
  return uint_attr(attributes, "ptime");
}
std::optional<uint32_t> Media::maxptime() const {
  return uint_attr(attributes, "maxptime");
}
std::optional<Direction> Media::direction() const {
  return direction_of(attributes);
}

std::optional<uint16_t> Media::rtcp_port() const {
  const Attribute* a = find(attributes, "rtcp");
  if (!a || !a->value) return std::nullopt;
  std::string_view v = *a->value;
  auto port = text::parse_uint(v.substr(0, v.find(' ')), 65535);
  if (!port) return std::nullopt;
  return static_cast<uint16_t>(*port);
}

std::vector<Crypto> Media::crypto() const {
  std::vector<Crypto> out;
  for (const auto& a : attributes) {
    if (a.name != "crypto" || !a.value) continue;
    std::string_view v = *a.value;
    size_t s1 = v.find(' ');
    size_t s2 = s1 == std::string_view::npos ? s1 : v.find(' ', s1 + 1);
    auto tag = text::parse_uint(v.substr(0, s1), 999999999);
    if (!tag || s2 == std::string_view::npos) continue;
    Crypto c;
    c.tag = static_cast<uint32_t>(*tag);
    c.suite = std::string(v.substr(s1 + 1, s2 - s1 - 1));
    std::string_view rest = v.substr(s2 + 1);
    size_t s3 = rest.find(' ');
    c.key_params = std::string(rest.substr(0, s3));
    if (s3 != std::string_view::npos) c.session_params = std::string(rest.substr(s3 + 1));
    out.push_back(std::move(c));
  }
  return out;
}

const Attribute* Session::attribute(std::string_view name) const {
  return find(attributes, name);
}

Direction Session::direction(const Media& m) const {
  if (auto d = m.direction()) return *d;
  return direction_of(attributes).value_or(Direction::SendRecv);
}

const Connection* Session::connection_for(const Media& m) const {
  if (m.connection) return &*m.connection;
  return connection ? &*connection : nullptr;
}

}  // namespace esg::sdp
