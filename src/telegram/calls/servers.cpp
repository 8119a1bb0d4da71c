#include "telegram/calls/servers.hpp"

#include <algorithm>
#include <charconv>
#include <optional>

#include "base/base64.hpp"
#include "telegram/calls/json_fields.hpp"

namespace esg::telegram::calls {

using nlohmann::json;

namespace {

using fields::flag;
using fields::member;
using fields::text;

// callServer.id is an int64: TDLib's JSON writes those as strings; a number is taken too.
std::optional<int64_t> server_id(const json& s) {
  const json& v = member(s, "id");
  if (v.is_number_integer()) return v.get<int64_t>();
  if (!v.is_string()) return std::nullopt;
  const std::string t = v.get<std::string>();
  int64_t out = 0;
  const auto r = std::from_chars(t.data(), t.data() + t.size(), out);
  if (t.empty() || r.ec != std::errc() || r.ptr != t.data() + t.size()) return std::nullopt;
  return out;
}

std::string id_text(const json& s) {
  const json& v = member(s, "id");
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// The server's addresses (IPv4 and IPv6, whichever it has) with its port.
std::vector<media::ice::Endpoint> endpoints(const json& s) {
  std::vector<media::ice::Endpoint> out;
  const json& p = member(s, "port");
  const int64_t port = p.is_number_integer() ? p.get<int64_t>() : 0;
  if (port <= 0 || port > 65535) return out;
  for (const char* field : {"ip_address", "ipv6_address"}) {
    boost::system::error_code ec;
    const auto addr = boost::asio::ip::make_address(text(s, field), ec);
    if (!ec) out.emplace_back(addr, uint16_t(port));
  }
  return out;
}

std::string address_text(const json& s) {
  std::string a = text(s, "ip_address");
  const std::string v6 = text(s, "ipv6_address");
  if (!v6.empty()) a += (a.empty() ? "[" : " [") + v6 + "]";
  const json& p = member(s, "port");
  return a + ":" + (p.is_number_integer() ? std::to_string(p.get<int64_t>()) : "?");
}

constexpr const char* kReflector = "callServerTypeTelegramReflector";

}  // namespace

CallServers parse_call_servers(const json& servers) {
  CallServers out;
  if (!servers.is_array()) return out;
  auto skip = [&](const json& s, std::string why) {
    out.skipped.push_back({id_text(s), address_text(s), std::move(why)});
  };
  // §5.1: every reflector's id, UDP and TCP, counts in the numbering.
  std::vector<int64_t> ids;
  for (const auto& s : servers) {
    if (text(member(s, "type"), "@type") != kReflector) continue;
    if (auto id = server_id(s)) ids.push_back(*id);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());

  for (const auto& s : servers) {
    const json& type = member(s, "type");
    const std::string t = text(type, "@type");
    if (t == "callServerTypeWebrtc") {
      const auto eps = endpoints(s);
      if (eps.empty()) skip(s, "no usable address or port");
      for (const auto& ep : eps) {
        if (flag(type, "supports_stun", false)) out.ice.push_back({ep, false, {}, {}});
        if (flag(type, "supports_turn", false))
          out.ice.push_back({ep, true, text(type, "username"), text(type, "password")});
      }
      continue;
    }
    if (t != kReflector) {
      skip(s, "unknown server type " + (t.empty() ? std::string("(none)") : t));
      continue;
    }
    if (flag(type, "is_tcp", false)) {
      // §5.5: tgcalls' V2 skips them too; the count shows how many calls could have used one.
      ++out.skipped_tcp_reflectors;
      skip(s, "TCP reflector (not supported)");
      continue;
    }
    const auto id = server_id(s);
    if (!id) {
      skip(s, "reflector without a readable id");
      continue;
    }
    const size_t rank = size_t(std::lower_bound(ids.begin(), ids.end(), *id) - ids.begin());
    if (rank >= 255) {
      skip(s, "reflector past the 255th id");
      continue;
    }
    const std::string tag = base64::decode(text(type, "peer_tag"));
    if (tag.size() != media::ice::reflector::kPeerTagSize) {
      skip(s, "reflector peer_tag is not 16 bytes");
      continue;
    }
    const auto eps = endpoints(s);
    if (eps.empty()) skip(s, "no usable address or port");
    for (const auto& ep : eps)
      out.reflectors.push_back({uint8_t(rank + 1), ep, tag});
  }
  return out;
}

CustomParameters parse_custom_parameters(const std::string& text) {
  CustomParameters out;
  if (text.empty()) return out;
  json parsed = json::parse(text, nullptr, false);
  if (!parsed.is_object()) {
    out.valid = false;
    out.value = text;
    return out;
  }
  for (auto it = parsed.begin(); it != parsed.end(); ++it) {
    if (it.value().is_boolean() && it.value().get<bool>()) out.unknown_true.push_back(it.key());
  }
  out.value = std::move(parsed);
  return out;
}

}  // namespace esg::telegram::calls
