#pragma once
// Header names (long and compact forms, RFC 3261 §7.3.3 and the later registered ones) and the
// typed values of the simple headers.

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "sip/error.hpp"

namespace esg::sip {

enum class HeaderId : uint8_t {
  Other,
  Accept,
  AcceptContact,  // a
  AllowEvents,    // u
  Allow,
  Authorization,
  CallId,           // i
  Contact,          // m
  ContentEncoding,  // e
  ContentLength,    // l
  ContentType,      // c
  CSeq,
  Event,  // o
  Expires,
  From,          // f
  Identity,      // y
  IdentityInfo,  // n
  MaxForwards,
  MinExpires,
  ProxyAuthenticate,
  ProxyAuthorization,
  ProxyRequire,
  Reason,
  RecordRoute,
  ReferTo,             // r
  ReferredBy,          // b
  RejectContact,       // j
  RequestDisposition,  // d
  Require,
  RetryAfter,
  Route,
  SessionExpires,  // x
  Subject,         // s
  Supported,       // k
  To,              // t
  Unsupported,
  UserAgent,
  Via,  // v
  WwwAuthenticate,
};
inline constexpr size_t kHeaderIdCount = size_t(HeaderId::WwwAuthenticate) + 1;

// Case-insensitive lookup of a header name, compact forms included.
HeaderId header_id(std::string_view name);
// The canonical long name ("Call-ID"); "" for Other.
std::string_view header_name(HeaderId id);

struct CSeq {
  uint32_t number = 0;
  std::string_view method;
};
// CSeq = 1*DIGIT LWS Method; the number must fit 32 bits (RFC 3261 §8.1.1.5).
Result<CSeq, ValueError> parse_cseq(std::string_view value);

// delta-seconds as used by Expires, Retry-After, Min-Expires and the expires parameter.
// Values past 2^32-1 saturate (RFC 4475 §3.1.2.4: an overflow must not wrap).
Result<uint32_t, ValueError> parse_delta_seconds(std::string_view value);

// Retry-After = delta-seconds [ comment ] *( SEMI retry-param )
struct RetryAfter {
  uint32_t seconds = 0;
  std::string_view comment;
  std::string_view params;
};
Result<RetryAfter, ValueError> parse_retry_after(std::string_view value);

// Reason = protocol *( SEMI reason-params ) (RFC 3326), one value.
struct Reason {
  std::string_view protocol;  // "SIP", "Q.850"...
  std::optional<uint16_t> cause;
  std::string_view text;  // unquoted view (escapes kept), "" when absent
  std::string_view params;
};
Result<Reason, ValueError> parse_reason(std::string_view value);

// Content-Type = m-type SLASH m-subtype *( SEMI m-parameter )
struct MediaType {
  std::string_view type;
  std::string_view subtype;
  std::string_view params;
  bool is(std::string_view type, std::string_view subtype) const;
};
Result<MediaType, ValueError> parse_media_type(std::string_view value);

// Comma-separated tokens: Supported, Require, Proxy-Require, Allow, Unsupported.
Result<std::vector<std::string_view>, ValueError> parse_token_list(std::string_view value);

}  // namespace esg::sip
