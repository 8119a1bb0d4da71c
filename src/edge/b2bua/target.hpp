#pragma once
// Where one routing rule sends a call (the B2BUA's new legs, transfers included).

#include <memory>
#include <string>
#include <vector>

#include "accounts/account.hpp"
#include "accounts/registration.hpp"
#include "edge/context.hpp"

namespace esg::edge {

// Where one routing rule sends a call: the next hop, the INVITE's Request-URI, From and To,
// and the leg's settings; or why the rule's target cannot take a call now. Acquires the
// target's trunk (`trunk`) when it returns no `why`.
struct RouteTarget {
  std::string why;
  std::string kind, code, trunk;
  accounts::Destination dest;
  bool resolve = false;
  bool tls_verify = true;
  std::string ruri, from, to, extra;
  std::vector<std::string> passheaders;
  bool reinvite = true;
  bool media = false;
  std::vector<std::string> codecs;
  std::string dtmf = "rfc2833";
  std::string srtp = "off";
  std::shared_ptr<const accounts::Account> account;
  NormFields sent;
  std::vector<std::string> decisions;
};

RouteTarget route_target(Context& context, const EdgeConfig& cfg, const RouteRule& r,
                         const NormFields& routed);

}  // namespace esg::edge
