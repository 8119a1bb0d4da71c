#pragma once
// Via (RFC 3261 §20.42, §18.2.1, RFC 3581 rport).

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "sip/error.hpp"

namespace esg::sip {

// The RFC 3261 branch prefix: a branch that starts with it identifies the transaction alone.
inline constexpr std::string_view kMagicCookie = "z9hG4bK";

struct Via {
  std::string_view text;
  std::string_view protocol;   // "SIP"
  std::string_view version;    // "2.0"
  std::string_view transport;  // "UDP", "TCP", "TLS", "SCTP", "WS", or any token
  std::string_view host;       // IPv6 references keep their brackets
  uint16_t port = 0;           // 0 when absent
  std::string_view params;     // raw
  std::string_view branch;
  std::optional<std::string_view> received;
  std::optional<std::string_view> maddr;
  std::optional<uint8_t> ttl;
  bool rport = false;                   // `rport` present (RFC 3581)
  std::optional<uint16_t> rport_value;  // `rport=N` as filled in by the server

  std::optional<std::string_view> param(std::string_view name) const;
  // True when the branch is an RFC 3261 one: the magic cookie followed by at least one character
  // (RFC 4475 §3.2.1: a bare cookie falls back to RFC 2543 matching).
  bool rfc3261_branch() const {
    return branch.size() > kMagicCookie.size() && branch.substr(0, 7) == kMagicCookie;
  }
};

// One via-parm: sent-protocol LWS sent-by *( SEMI via-params ).
Result<Via, ValueError> parse_via(std::string_view value);
// All via-parms of one header value (comma-separated).
Result<std::vector<Via>, ValueError> parse_via_list(std::string_view value);

}  // namespace esg::sip
