#include "sip/headers.hpp"

#include <array>

#include "sip/detail/lex.hpp"
#include "sip/name_addr.hpp"
#include "sip/params.hpp"

namespace esg::sip {

using detail::fail;

using detail::is_token;
using detail::is_token_char;
using detail::skip_ws;
using text::iequals;

namespace {

constexpr std::array<std::string_view, kHeaderIdCount> kNames = {
    "",
    "Accept",
    "Accept-Contact",
    "Allow-Events",
    "Allow",
    "Authorization",
    "Call-ID",
    "Contact",
    "Content-Encoding",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Event",
    "Expires",
    "From",
    "Identity",
    "Identity-Info",
    "Max-Forwards",
    "Min-Expires",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "Reason",
    "Record-Route",
    "Refer-To",
    "Referred-By",
    "Reject-Contact",
    "Request-Disposition",
    "Require",
    "Retry-After",
    "Route",
    "Session-Expires",
    "Subject",
    "Supported",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "WWW-Authenticate",
};

HeaderId compact(char c) {
  switch (text::to_lower(c)) {
    case 'a':
      return HeaderId::AcceptContact;
    case 'b':
      return HeaderId::ReferredBy;
    case 'c':
      return HeaderId::ContentType;
    case 'd':
      return HeaderId::RequestDisposition;
    case 'e':
      return HeaderId::ContentEncoding;
    case 'f':
      return HeaderId::From;
    case 'i':
      return HeaderId::CallId;
    case 'j':
      return HeaderId::RejectContact;
    case 'k':
      return HeaderId::Supported;
    case 'l':
      return HeaderId::ContentLength;
    case 'm':
      return HeaderId::Contact;
    case 'n':
      return HeaderId::IdentityInfo;
    case 'o':
      return HeaderId::Event;
    case 'r':
      return HeaderId::ReferTo;
    case 's':
      return HeaderId::Subject;
    case 't':
      return HeaderId::To;
    case 'u':
      return HeaderId::AllowEvents;
    case 'v':
      return HeaderId::Via;
    case 'x':
      return HeaderId::SessionExpires;
    case 'y':
      return HeaderId::Identity;
    default:
      return HeaderId::Other;
  }
}

// Open-addressed table keyed by length and the first and last letters (case-folded): a lookup
// is one hash and, almost always, one comparison. Built at compile time.
constexpr size_t kBuckets = 256;

constexpr size_t name_hash(std::string_view n) {
  return (n.size() * 37 + size_t(text::to_lower(n.front())) * 11 +
          size_t(text::to_lower(n.back()))) %
         kBuckets;
}

constexpr std::array<uint8_t, kBuckets> make_name_table() {
  std::array<uint8_t, kBuckets> t{};
  for (size_t i = 1; i < kNames.size(); ++i) {
    size_t b = name_hash(kNames[i]);
    while (t[b] != 0)
      b = (b + 1) % kBuckets;
    t[b] = static_cast<uint8_t>(i);
  }
  return t;
}
constexpr std::array<uint8_t, kBuckets> kNameTable = make_name_table();

}  // namespace

HeaderId header_id(std::string_view name) {
  if (name.size() <= 1) return name.empty() ? HeaderId::Other : compact(name[0]);
  for (size_t b = name_hash(name);; b = (b + 1) % kBuckets) {
    const uint8_t id = kNameTable[b];
    if (id == 0) return HeaderId::Other;
    if (iequals(kNames[id], name)) return static_cast<HeaderId>(id);
  }
}

std::string_view header_name(HeaderId id) {
  const auto i = size_t(id);
  return i < kNames.size() ? kNames[i] : std::string_view{};
}

Result<CSeq, ValueError> parse_cseq(std::string_view value) {
  size_t i = skip_ws(value, 0);
  size_t start = i;
  while (i < value.size() && text::is_digit(value[i]))
    ++i;
  if (i == start) return fail("missing sequence number", start);
  auto number = text::parse_uint(value.substr(start, i - start), UINT32_MAX);
  if (!number) return fail("sequence number over 2^32-1", start);
  if (i >= value.size() || !detail::is_ws(value[i])) return fail("expected LWS", i);
  i = skip_ws(value, i);
  size_t m = i;
  while (i < value.size() && is_token_char(value[i]))
    ++i;
  if (i == m) return fail("missing method", m);
  if (skip_ws(value, i) != value.size()) return fail("unexpected text after method", i);
  return CSeq{static_cast<uint32_t>(*number), value.substr(m, i - m)};
}

Result<uint32_t, ValueError> parse_delta_seconds(std::string_view value) {
  value = text::trim(value);
  if (value.empty()) return fail("missing delta-seconds", 0);
  for (size_t i = 0; i < value.size(); ++i) {
    if (!text::is_digit(value[i])) return fail("delta-seconds must be digits", i);
  }
  auto v = text::parse_uint(value, UINT32_MAX);
  return v ? static_cast<uint32_t>(*v) : UINT32_MAX;
}

Result<RetryAfter, ValueError> parse_retry_after(std::string_view value) {
  RetryAfter ra;
  size_t i = skip_ws(value, 0);
  size_t start = i;
  while (i < value.size() && text::is_digit(value[i]))
    ++i;
  auto seconds = parse_delta_seconds(value.substr(start, i - start));
  if (!seconds) return fail("missing delta-seconds", start);
  ra.seconds = *seconds;
  i = skip_ws(value, i);
  if (i < value.size() && value[i] == '(') {
    // comment = LPAREN *(ctext / quoted-pair / comment) RPAREN
    int depth = 0;
    size_t c = i;
    for (; c < value.size(); ++c) {
      if (value[c] == '\\') {
        ++c;
      } else if (value[c] == '(') {
        ++depth;
      } else if (value[c] == ')' && --depth == 0) {
        break;
      }
    }
    if (c >= value.size()) return fail("unterminated comment", i);
    ra.comment = value.substr(i + 1, c - i - 1);
    i = skip_ws(value, c + 1);
  }
  ra.params = value.substr(i);
  size_t bad = 0;
  if (!params_valid(ra.params, &bad)) return fail("bad Retry-After parameter", i + bad);
  return ra;
}

Result<Reason, ValueError> parse_reason(std::string_view value) {
  Reason r;
  size_t i = skip_ws(value, 0);
  size_t start = i;
  while (i < value.size() && is_token_char(value[i]))
    ++i;
  if (i == start) return fail("missing protocol", start);
  r.protocol = value.substr(start, i - start);
  i = skip_ws(value, i);
  r.params = value.substr(i);
  ParamCursor cursor(r.params);
  Param p;
  while (cursor.next(p)) {
    if (iequals(p.name, "cause")) {
      auto cause = text::parse_uint(p.value, 65535);
      if (!cause) return fail("bad cause", i + cursor.offset());
      r.cause = static_cast<uint16_t>(*cause);
    } else if (iequals(p.name, "text")) {
      r.text = p.value;
      if (r.text.size() >= 2 && r.text.front() == '"') r.text = r.text.substr(1, r.text.size() - 2);
    }
  }
  if (!cursor.ok()) return fail("bad Reason parameter", i + cursor.offset());
  return r;
}

bool MediaType::is(std::string_view t, std::string_view s) const {
  return iequals(type, t) && iequals(subtype, s);
}

Result<MediaType, ValueError> parse_media_type(std::string_view value) {
  MediaType mt;
  size_t i = skip_ws(value, 0);
  size_t start = i;
  while (i < value.size() && is_token_char(value[i]))
    ++i;
  if (i == start) return fail("missing media type", start);
  mt.type = value.substr(start, i - start);
  i = skip_ws(value, i);
  if (i >= value.size() || value[i] != '/') return fail("expected '/'", i);
  i = skip_ws(value, i + 1);
  start = i;
  while (i < value.size() && is_token_char(value[i]))
    ++i;
  if (i == start) return fail("missing media subtype", start);
  mt.subtype = value.substr(start, i - start);
  i = skip_ws(value, i);
  mt.params = value.substr(i);
  size_t bad = 0;
  if (!params_valid(mt.params, &bad)) return fail("bad media type parameter", i + bad);
  return mt;
}

Result<std::vector<std::string_view>, ValueError> parse_token_list(std::string_view value) {
  std::vector<std::string_view> out;
  size_t bad = std::string_view::npos;
  for_each_value(value, [&](std::string_view item, size_t offset) {
    if (item.empty()) return;  // tolerate "a, ,b" and an empty header
    if (!is_token(item) && bad == std::string_view::npos) bad = offset;
    out.push_back(item);
  });
  if (bad != std::string_view::npos) return fail("expected a token", bad);
  return out;
}

}  // namespace esg::sip
