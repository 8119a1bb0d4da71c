#include "media/webrtc/ice/candidate.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string>
#include <vector>

namespace esg::media::ice {
namespace {

template <class T>
bool number(std::string_view s, T& out) {
  if (s.empty()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::optional<Candidate> Candidate::parse(std::string_view sdp) {
  while (!sdp.empty() && (sdp.back() == '\r' || sdp.back() == '\n' || sdp.back() == ' ')) {
    sdp.remove_suffix(1);
  }
  while (!sdp.empty() && sdp.front() == ' ')
    sdp.remove_prefix(1);
  if (starts_with_nocase(sdp, "a=")) sdp.remove_prefix(2);
  if (starts_with_nocase(sdp, "candidate:")) sdp.remove_prefix(10);
  std::vector<std::string_view> tok;
  tok.reserve(24);
  while (!sdp.empty()) {
    const size_t sp = sdp.find(' ');
    const std::string_view t = sdp.substr(0, sp);
    if (!t.empty()) tok.push_back(t);
    if (sp == std::string_view::npos) break;
    sdp.remove_prefix(sp + 1);
    if (tok.size() > 64) return std::nullopt;  // no real candidate line is that long
  }
  // foundation component transport priority address port "typ" type
  if (tok.size() < 8 || tok[6] != "typ") return std::nullopt;
  Candidate c;
  c.foundation = std::string(tok[0]);
  if (c.foundation.size() > 32) return std::nullopt;
  if (!number(tok[1], c.component) || c.component < 1 || c.component > 256) return std::nullopt;
  c.protocol = lower(tok[2]);
  if (!number(tok[3], c.priority)) return std::nullopt;
  c.address = std::string(tok[4]);
  if (c.address.empty() || c.address.size() > 255) return std::nullopt;
  if (!number(tok[5], c.port)) return std::nullopt;
  c.type = lower(tok[7]);
  if (c.type != "host" && c.type != "srflx" && c.type != "prflx" && c.type != "relay") {
    return std::nullopt;
  }
  // Extension attributes come in name/value pairs; unknown ones are skipped.
  for (size_t i = 8; i + 1 < tok.size(); i += 2) {
    const std::string_view name = tok[i], value = tok[i + 1];
    if (name == "raddr") {
      c.related_address = std::string(value);
    } else if (name == "rport") {
      if (!number(value, c.related_port)) return std::nullopt;
    } else if (name == "generation") {
      number(value, c.generation);
    } else if (name == "ufrag") {
      c.ufrag = std::string(value);
    } else if (name == "network-id") {
      number(value, c.network_id);
    }
  }
  return c;
}

std::string Candidate::to_sdp() const {
  std::string s;
  s.reserve(128);
  s.append("candidate:").append(foundation);
  s.append(" ").append(std::to_string(component));
  s.append(" ").append(protocol);
  s.append(" ").append(std::to_string(priority));
  s.append(" ").append(address);
  s.append(" ").append(std::to_string(port));
  s.append(" typ ").append(type);
  if (!related_address.empty()) {
    s.append(" raddr ").append(related_address);
    s.append(" rport ").append(std::to_string(related_port));
  }
  s.append(" generation ").append(std::to_string(generation));
  if (!ufrag.empty()) s.append(" ufrag ").append(ufrag);
  s.append(" network-id ").append(std::to_string(network_id));
  return s;
}

}  // namespace esg::media::ice
