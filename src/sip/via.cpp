#include "sip/via.hpp"

#include "sip/detail/lex.hpp"
#include "sip/name_addr.hpp"
#include "sip/params.hpp"

namespace esg::sip {

using detail::fail;

using detail::is_token_char;
using detail::skip_ws;

namespace {

// Reads a token at `i` (after LWS); returns its end or npos when there is none.
size_t read_token(std::string_view s, size_t i, std::string_view& out) {
  i = skip_ws(s, i);
  size_t start = i;
  while (i < s.size() && is_token_char(s[i]))
    ++i;
  if (i == start) return std::string_view::npos;
  out = s.substr(start, i - start);
  return i;
}

size_t expect_slash(std::string_view s, size_t i) {
  i = skip_ws(s, i);
  if (i >= s.size() || s[i] != '/') return std::string_view::npos;
  return i + 1;
}

}  // namespace

std::optional<std::string_view> Via::param(std::string_view name) const {
  return find_param(params, name);
}

Result<Via, ValueError> parse_via(std::string_view value) {
  Via via;
  via.text = value;
  // sent-protocol = protocol-name SLASH protocol-version SLASH transport, LWS allowed around '/'.
  size_t i = read_token(value, 0, via.protocol);
  if (i == std::string_view::npos) return fail("missing protocol name", 0);
  if ((i = expect_slash(value, i)) == std::string_view::npos) return fail("expected '/'", 0);
  if ((i = read_token(value, i, via.version)) == std::string_view::npos) {
    return fail("missing protocol version", 0);
  }
  if ((i = expect_slash(value, i)) == std::string_view::npos) return fail("expected '/'", i);
  size_t transport_at = i;
  if ((i = read_token(value, i, via.transport)) == std::string_view::npos) {
    return fail("missing transport", transport_at);
  }
  if (i >= value.size() || !detail::is_ws(value[i])) return fail("expected LWS before sent-by", i);
  i = skip_ws(value, i);
  // sent-by = host [ COLON port ]
  size_t host_start = i;
  if (i < value.size() && value[i] == '[') {
    size_t close = value.find(']', i);
    if (close == std::string_view::npos) return fail("unterminated IPv6 reference", i);
    i = close + 1;
  } else {
    while (i < value.size() &&
           (text::is_alnum(value[i]) || value[i] == '-' || value[i] == '.' || value[i] == '_')) {
      ++i;
    }
  }
  via.host = value.substr(host_start, i - host_start);
  if (via.host.empty()) return fail("missing sent-by host", host_start);
  size_t j = skip_ws(value, i);
  if (j < value.size() && value[j] == ':') {
    j = skip_ws(value, j + 1);
    size_t p = j;
    while (j < value.size() && text::is_digit(value[j]))
      ++j;
    auto port = text::parse_uint(value.substr(p, j - p), 65535);
    if (!port || *port == 0) return fail("bad sent-by port", p);
    via.port = static_cast<uint16_t>(*port);
    i = j;
  }
  via.params = value.substr(i);
  ParamCursor cursor(via.params);
  Param p;
  while (cursor.next(p)) {
    if (text::iequals(p.name, "branch")) {
      if (!p.has_value) return fail("empty branch", i + cursor.offset());
      via.branch = p.value;
    } else if (text::iequals(p.name, "received")) {
      via.received = p.value;
    } else if (text::iequals(p.name, "maddr")) {
      via.maddr = p.value;
    } else if (text::iequals(p.name, "ttl")) {
      auto ttl = text::parse_uint(p.value, 255);
      if (!ttl) return fail("bad ttl", i + cursor.offset());
      via.ttl = static_cast<uint8_t>(*ttl);
    } else if (text::iequals(p.name, "rport")) {
      via.rport = true;
      if (p.has_value) {
        auto port = text::parse_uint(p.value, 65535);
        if (!port) return fail("bad rport", i + cursor.offset());
        via.rport_value = static_cast<uint16_t>(*port);
      }
    }
  }
  if (!cursor.ok()) return fail("bad Via parameter", i + cursor.offset());
  return via;
}

Result<std::vector<Via>, ValueError> parse_via_list(std::string_view value) {
  return parse_list<Via>(value, parse_via);
}

}  // namespace esg::sip
