#pragma once
// Where one routing rule sends a call (the B2BUA's new legs, transfers included).

#include <memory>
#include <string>
#include <vector>

#include "accounts/account.hpp"
#include "accounts/registration.hpp"
#include "edge/context.hpp"

namespace esg::edge {

// What an account or connection says about its leg of a call.
struct LegPolicy {
  std::vector<std::string> passheaders;  // headers that may cross from and to this leg
  bool reinvite = true;                  // re-INVITEs cross (false: answered on the leg)
  bool media = false;                    // media pinned to our relay
  std::vector<std::string> codecs;       // preference, for the relay's negotiation
  std::string dtmf = "rfc2833";          // rfc2833 | info | inband
  std::string srtp = "off";              // off | optional | required

  template <class T>  // accounts::Account or accounts::PbxConnection
  static LegPolicy of(const T& x) {
    return {x.passheaders, x.reinvite, x.media, x.codecs, x.dtmf, x.srtp};
  }
};

// The policy of a Telegram line's leg (issue 9): media always through the relay (the line's
// side is Opus, transcoded there), telephone events, re-INVITEs passed, and the X-TG-*
// headers that describe the Telegram user.
LegPolicy telegram_leg_policy();
// What a PBX leg of a Telegram call offers: the connection's codecs, or G.711 when it names
// none (a PBX that was offered only Opus could refuse the call).
LegPolicy pbx_leg_for_telegram(LegPolicy pbx);

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
  LegPolicy policy;
  std::shared_ptr<const accounts::Account> account;
  NormFields sent;
  std::vector<std::string> decisions;
};

RouteTarget route_target(Context& context, const EdgeConfig& cfg, const RouteRule& r,
                         const NormFields& routed);

}  // namespace esg::edge
