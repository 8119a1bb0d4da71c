#include "edge/b2bua/text.hpp"

#include <cctype>
#include <chrono>

#include "base/random.hpp"
#include "base/text.hpp"

namespace esg::edge::b2bua_text {

std::string new_branch() {
  return "z9hG4bK" + random::hex(16);
}

// Reason (RFC 3326) text is a quoted-string: no quotes or backslashes inside.
std::string reason_line(int cause, std::string_view text) {
  std::string t;
  for (char c : text) {
    if (c != '"' && c != '\\' && c != '\r' && c != '\n') t += c;
  }
  return "Reason: SIP;cause=" + std::to_string(cause) + ";text=\"" + t + "\"\r\n";
}

// build_response() ends with an empty body; give it one.
std::string with_body(std::string response, std::string_view content_type, std::string_view body) {
  if (body.empty()) return response;
  constexpr std::string_view kEmpty = "Content-Length: 0\r\n\r\n";
  if (response.size() >= kEmpty.size() &&
      std::string_view(response).substr(response.size() - kEmpty.size()) == kEmpty) {
    response.resize(response.size() - kEmpty.size());
  }
  response.append("Content-Type: ").append(content_type).append("\r\n");
  response.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n\r\n");
  response.append(body);
  return response;
}

bool is_failover_status(uint16_t s) {
  return s == 408 || s == 480 || s == 500 || s == 502 || s == 503 || s == 504;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  }
  return out;
}

// A display name as a quoted-string (RFC 3261 §25.1): quotes and backslashes escaped.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\r' || c == '\n') continue;
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// A URI user part as RFC 3261 §25.1 allows it: other characters ('#', spaces) %-escaped.
std::string escaped_user(std::string_view user) {
  static const std::string_view kAllowed = "-_.!~*'()&=+$,;?/";
  std::string out;
  for (char c : user) {
    if (std::isalnum(static_cast<unsigned char>(c)) || kAllowed.find(c) != std::string::npos) {
      out += c;
    } else {
      static const char* kHex = "0123456789ABCDEF";
      out += '%';
      out += kHex[(static_cast<unsigned char>(c) >> 4) & 0xF];
      out += kHex[static_cast<unsigned char>(c) & 0xF];
    }
  }
  return out;
}

std::string name_addr(std::string_view display, std::string_view user, std::string_view host) {
  std::string out;
  if (!display.empty()) out = quoted(display) + " ";
  out += "<sip:";
  if (!user.empty()) out.append(escaped_user(user)).append("@");
  out.append(host).append(">");
  return out;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string host_port(const std::string& host, uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos && host.front() != '[';
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

bool has_sdp(const sip::Message& m) {
  if (m.body().empty()) return false;
  auto ct = m.content_type();
  return !ct ||
         (*ct && text::iequals((*ct)->type, "application") && text::iequals((*ct)->subtype, "sdp"));
}

std::string content_type_of(const sip::Message& m) {
  const auto* h = m.header(sip::HeaderId::ContentType);
  return h ? std::string(h->value) : std::string("application/sdp");
}

std::optional<DtmfKey> dtmf_of_info(const sip::Message& m) {
  auto ct = m.content_type();
  if (!ct || !*ct || !text::iequals((*ct)->type, "application")) return std::nullopt;
  auto is_key = [](char c) {
    return (c >= '0' && c <= '9') || c == '*' || c == '#' || (c >= 'A' && c <= 'D') ||
           (c >= 'a' && c <= 'd');
  };
  auto upper = [](char c) { return c >= 'a' && c <= 'd' ? char(c - 'a' + 'A') : c; };
  const std::string_view body = text::trim(m.body());
  if (text::iequals((*ct)->subtype, "dtmf")) {
    if (body.size() != 1 || !is_key(body[0])) return std::nullopt;
    return DtmfKey{upper(body[0]), 0};
  }
  if (!text::iequals((*ct)->subtype, "dtmf-relay")) return std::nullopt;
  std::optional<DtmfKey> out;
  int ms = 0;
  size_t at = 0;
  while (at <= body.size()) {
    size_t eol = body.find('\n', at);
    if (eol == std::string_view::npos) eol = body.size();
    const std::string_view line = text::trim(body.substr(at, eol - at));
    at = eol + 1;
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view name = text::trim(line.substr(0, eq));
    const std::string_view value = text::trim(line.substr(eq + 1));
    if (text::iequals(name, "Signal") && value.size() == 1 && is_key(value[0])) {
      out = DtmfKey{upper(value[0]), 0};
    } else if (text::iequals(name, "Duration")) {
      int v = 0;
      for (char c : value) {
        if (c < '0' || c > '9' || v > 100000) break;
        v = v * 10 + (c - '0');
      }
      ms = v;
    }
  }
  if (out) out->ms = ms;
  return out;
}

std::string header_lines(const sip::Message& m, const std::vector<std::string>& names,
                         const std::vector<std::string>& more) {
  std::string out;
  if (names.empty() && more.empty()) return out;
  for (const auto& h : m.headers()) {
    bool wanted = false;
    for (const auto* list : {&names, &more}) {
      for (const auto& name : *list)
        wanted = wanted || text::iequals(name, h.name);
    }
    if (wanted) out.append(h.name).append(": ").append(h.value).append("\r\n");
  }
  return out;
}

}  // namespace esg::edge::b2bua_text
