#include "sip/uri.hpp"

#include "sip/detail/lex.hpp"
#include "sip/params.hpp"

namespace esg::sip {

using detail::fail;

using text::iequals;
using text::is_alnum;
using text::is_alpha;
using text::is_digit;
using text::is_hex;

namespace {

HostType classify_host(std::string_view h) {
  if (h.empty()) return HostType::None;
  if (h.front() == '[') {
    if (h.size() < 3 || h.back() != ']') return HostType::None;
    for (char c : h.substr(1, h.size() - 2)) {
      if (!is_hex(c) && c != ':' && c != '.') return HostType::None;
    }
    return HostType::IPv6;
  }
  // One pass: every character is a host character; count dots and digits for IPv4.
  int dots = 0;
  size_t digits = 0;
  for (char c : h) {
    if (!detail::has_class(c, detail::kHostChar)) return HostType::None;
    dots += c == '.';
    digits += is_digit(c);
  }
  if (digits + size_t(dots) != h.size()) {
    // hostname: the top label starts with a letter (RFC 3261 §25.1 toplabel).
    size_t last = h.rfind('.', h.size() - (h.back() == '.' ? 2 : 1));
    const char top = h[last == std::string_view::npos ? 0 : last + 1];
    return is_alpha(top) ? HostType::Name : HostType::None;
  }
  if (dots != 3) return HostType::None;
  // Four decimal octets of one to three digits, each at most 255.
  unsigned octet = 0;
  size_t len = 0;
  for (char c : h) {
    if (c == '.') {
      if (len == 0) return HostType::None;
      octet = 0;
      len = 0;
      continue;
    }
    octet = octet * 10 + unsigned(c - '0');
    if (++len > 3 || octet > 255) return HostType::None;
  }
  if (len == 0) return HostType::None;
  return HostType::IPv4;
}

Scheme classify_scheme(std::string_view s) {
  if (iequals(s, "sip")) return Scheme::Sip;
  if (iequals(s, "sips")) return Scheme::Sips;
  if (iequals(s, "tel")) return Scheme::Tel;
  return Scheme::Other;
}

// sip:/sips: after the scheme: [userinfo "@"] hostport uri-parameters [headers]
Result<void, ValueError> parse_sip_part(Uri& uri, std::string_view rest, size_t base, size_t at) {
  size_t host_start = 0;
  if (at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    size_t colon = userinfo.find(':');
    if (colon != std::string_view::npos) {
      uri.user = userinfo.substr(0, colon);
      uri.password = userinfo.substr(colon + 1);
      uri.has_password = true;
    } else {
      uri.user = userinfo;
    }
    if (uri.user.empty()) return fail("empty user part", base);
    host_start = at + 1;
  }
  size_t i = host_start;
  if (i < rest.size() && rest[i] == '[') {
    size_t close = rest.find(']', i);
    if (close == std::string_view::npos) return fail("unterminated IPv6 reference", base + i);
    i = close + 1;
  } else {
    while (i < rest.size() && detail::has_class(rest[i], detail::kHostChar))
      ++i;
  }
  uri.host = rest.substr(host_start, i - host_start);
  uri.host_type = classify_host(uri.host);
  if (uri.host_type == HostType::None) return fail("bad host", base + host_start);
  if (i < rest.size() && rest[i] == ':') {
    size_t p = ++i;
    while (i < rest.size() && is_digit(rest[i]))
      ++i;
    auto port = text::parse_uint(rest.substr(p, i - p), 65535);
    if (!port || *port == 0) return fail("bad port", base + p);
    uri.port = static_cast<uint16_t>(*port);
  }
  if (i < rest.size() && rest[i] == ';') {
    size_t q = rest.find('?', i);
    if (q == std::string_view::npos) q = rest.size();
    uri.params = rest.substr(i, q - i);
    size_t bad = 0;
    if (!params_valid(uri.params, &bad)) return fail("bad URI parameter", base + i + bad);
    i = q;
  }
  if (i < rest.size() && rest[i] == '?') {
    uri.headers = rest.substr(i + 1);
    if (uri.headers.empty()) return fail("empty URI headers", base + i);
    i = rest.size();
  }
  if (i != rest.size()) return fail("unexpected character after host", base + i);
  return {};
}

}  // namespace

std::optional<std::string_view> Uri::param(std::string_view name) const {
  return find_param(params, name);
}

std::string Uri::user_unescaped() const {
  return unescape(user);
}

Result<Uri, ValueError> parse_uri(std::string_view text) {
  Uri uri;
  uri.text = text;
  if (text.empty()) return fail("empty URI", 0);
  // Reject what never belongs in a URI: one table lookup per byte, OR-ed together, so the loop
  // has no branch; the offending byte is looked for only when there is one.
  uint8_t seen = 0;
  for (char c : text)
    seen |= detail::kCharClasses[static_cast<unsigned char>(c)];
  if (seen & detail::kNotInUri) {
    size_t i = 0;
    while (!detail::has_class(text[i], detail::kNotInUri))
      ++i;
    return fail("character not allowed in a URI", i);
  }
  const size_t colon = text.find(':');
  // The userinfo ends at the first '@' after the scheme: '@' is allowed nowhere else.
  const size_t at = colon == std::string_view::npos ? colon : text.find('@', colon);
  // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
  if (colon == std::string_view::npos || colon == 0 || !is_alpha(text[0])) {
    return fail("missing URI scheme", 0);
  }
  for (size_t i = 1; i < colon; ++i) {
    const char c = text[i];
    if (!is_alnum(c) && c != '+' && c != '-' && c != '.') return fail("bad URI scheme", i);
  }
  uri.scheme_text = text.substr(0, colon);
  uri.scheme = classify_scheme(uri.scheme_text);
  std::string_view rest = text.substr(colon + 1);
  uri.opaque = rest;
  if (rest.empty()) return fail("empty URI after scheme", colon + 1);
  switch (uri.scheme) {
    case Scheme::Sip:
    case Scheme::Sips: {
      auto r =
          parse_sip_part(uri, rest, colon + 1, at == std::string_view::npos ? at : at - colon - 1);
      if (!r) return unexpected(r.error());
      break;
    }
    case Scheme::Tel: {
      // telephone-subscriber *( ";" par ): the number is the user, the rest parameters.
      size_t semi = rest.find(';');
      uri.user = rest.substr(0, semi);
      if (uri.user.empty()) return fail("empty telephone number", colon + 1);
      if (semi != std::string_view::npos) {
        uri.params = rest.substr(semi);
        size_t bad = 0;
        if (!params_valid(uri.params, &bad)) {
          return fail("bad tel parameter", colon + 1 + semi + bad);
        }
      }
      break;
    }
    case Scheme::Other:
      break;
  }
  return uri;
}

std::string unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && is_hex(s[i + 1]) && is_hex(s[i + 2])) {
      out.push_back(static_cast<char>(text::hex_value(s[i + 1]) * 16 + text::hex_value(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string_view scheme_name(Scheme s) {
  switch (s) {
    case Scheme::Sip:
      return "sip";
    case Scheme::Sips:
      return "sips";
    case Scheme::Tel:
      return "tel";
    case Scheme::Other:
      return "other";
  }
  return "other";
}

namespace {

bool iequals_unescaped(std::string_view a, std::string_view b) {
  return iequals(unescape(a), unescape(b));
}

// §19.1.4: user, ttl, method, maddr and transport must match when either URI has them; any
// other parameter is compared only when both have it.
bool params_equal(const Uri& a, const Uri& b) {
  static constexpr std::string_view kMustMatch[] = {"user", "ttl", "method", "maddr", "transport"};
  for (auto name : kMustMatch) {
    auto pa = a.param(name);
    auto pb = b.param(name);
    if (pa.has_value() != pb.has_value()) return false;
    if (pa && !iequals_unescaped(*pa, *pb)) return false;
  }
  ParamCursor cursor(a.params);
  Param p;
  while (cursor.next(p)) {
    auto other = b.param(p.name);
    if (other && !iequals_unescaped(p.value, *other)) return false;
  }
  return true;
}

// Header components must match exactly as a set (values compared case-sensitively after
// unescaping; names case-insensitively).
bool headers_subset(std::string_view a, std::string_view b) {
  size_t start = 0;
  while (start < a.size()) {
    size_t end = a.find('&', start);
    if (end == std::string_view::npos) end = a.size();
    std::string_view item = a.substr(start, end - start);
    size_t eq = item.find('=');
    std::string_view name = item.substr(0, eq);
    std::string value = eq == std::string_view::npos ? "" : unescape(item.substr(eq + 1));
    bool found = false;
    size_t s2 = 0;
    while (s2 < b.size() && !found) {
      size_t e2 = b.find('&', s2);
      if (e2 == std::string_view::npos) e2 = b.size();
      std::string_view other = b.substr(s2, e2 - s2);
      size_t eq2 = other.find('=');
      if (iequals(other.substr(0, eq2), name) &&
          (eq2 == std::string_view::npos ? "" : unescape(other.substr(eq2 + 1))) == value) {
        found = true;
      }
      s2 = e2 + 1;
    }
    if (!found) return false;
    start = end + 1;
  }
  return true;
}

}  // namespace

bool uri_equal(const Uri& a, const Uri& b) {
  if (a.scheme != b.scheme) return false;
  if (!a.is_sip()) {
    return iequals(a.scheme_text, b.scheme_text) && iequals(a.opaque, b.opaque);
  }
  // Comparison of the userinfo is case-sensitive, after unescaping.
  if (unescape(a.user) != unescape(b.user)) return false;
  if (a.has_password != b.has_password || unescape(a.password) != unescape(b.password)) {
    return false;
  }
  if (!iequals(a.host, b.host)) return false;
  if (a.port != b.port) return false;  // an absent port never equals an explicit 5060
  if (!params_equal(a, b)) return false;
  return headers_subset(a.headers, b.headers) && headers_subset(b.headers, a.headers);
}

}  // namespace esg::sip
