#pragma once
// URIs as SIP carries them (RFC 3261 §19.1, RFC 3966 tel:), as views into the message text.
// Unknown schemes are kept opaque: they are legal in From/To/Contact (RFC 4475 §3.3.4).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.hpp"
#include "sip/error.hpp"

namespace esg::sip {

enum class Scheme : uint8_t { Sip, Sips, Tel, Other };
enum class HostType : uint8_t { None, Name, IPv4, IPv6 };

struct Uri {
  std::string_view text;  // the whole URI as written
  Scheme scheme = Scheme::Other;
  std::string_view scheme_text;
  std::string_view user;      // still %-escaped; for tel: the number
  std::string_view password;  // still %-escaped
  bool has_password = false;
  std::string_view host;  // IPv6 references keep their brackets
  HostType host_type = HostType::None;
  uint16_t port = 0;         // 0 when absent
  std::string_view params;   // raw `;name=value...` (no LWS), "" when none
  std::string_view headers;  // raw text after '?', "" when none
  std::string_view opaque;   // everything after "scheme:" for schemes we do not interpret

  bool is_sip() const { return scheme == Scheme::Sip || scheme == Scheme::Sips; }
  bool has_port() const { return port != 0; }
  // A URI parameter's value ("" for a flag such as `lr`), nullopt when absent.
  std::optional<std::string_view> param(std::string_view name) const;
  bool has_param(std::string_view name) const { return param(name).has_value(); }
  std::string user_unescaped() const;
};

// Parses one URI. Whitespace, '<', '>' and '"' are never part of a URI.
Result<Uri, ValueError> parse_uri(std::string_view text);

// %HH escapes decoded; malformed escapes are kept literally.
std::string unescape(std::string_view s);

// URI comparison of RFC 3261 §19.1.4 for sip:/sips:; tel: and other schemes compare
// case-insensitively as text.
bool uri_equal(const Uri& a, const Uri& b);

std::string_view scheme_name(Scheme s);

}  // namespace esg::sip
