#pragma once
// RFC 4028 session timers on B2BUA calls. Each leg keeps a timer of its own and the negotiation
// never crosses the legs (a B2BUA is the UA of both), so a call whose far end vanished without
// a BYE — a PBX that crashed, a provider that lost the call, a NAT binding gone — ends on both
// legs and frees its trunk, with or without the media relay. esg asks a callee to refresh
// (refresher=uas on the B leg), lets a caller that supports timers refresh (§9's default), and
// refreshes itself where the peer does not support timers (§7.4, §10): with UPDATE, or with a
// re-INVITE that changes nothing when the peer takes no UPDATE (it does not list it in Allow).
// Refreshes a peer sends are answered on its own leg; re-INVITEs and UPDATEs that change the media
// still cross, and each leg's answer then carries that leg's own Session-Expires. Private to the
// B2BUA; runs on the call's worker.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "dialog/session_timer.hpp"
#include "edge/b2bua/call.hpp"

namespace esg::edge {

class B2bua::Sessions {
 public:
  // Ends the call on both legs (BYE with a Reason).
  using HangUp = std::function<void(const std::shared_ptr<Call>&, const std::string& why)>;

  // `policy.session_expires` 0: no session timers (requests that require them get 420).
  Sessions(txn::Layer& layer, txn::Timers& timers, dialog::SessionTimerPolicy policy,
           HangUp hang_up);

  bool enabled() const { return policy_.session_expires != 0; }

  // §9: a caller's INVITE that asks for less than our Min-SE gets 422 with our Min-SE (the
  // header lines in `headers`); 0 when it may go on.
  uint16_t refuse(const sip::Message& invite, std::string* headers) const;
  // The header lines of esg's INVITE towards a callee (the callee refreshes if it can).
  std::string ask() const;
  // esg answers `request` (the leg's INVITE, or a refresh the leg sent) with a 2xx: the 2xx's
  // header lines. The leg's timer (re)starts.
  std::string answer(const std::shared_ptr<Call>& c, bool a_leg, const sip::Message& request);
  // A request esg sent on the leg (its INVITE, a re-INVITE or UPDATE it relayed or made),
  // asking for `asked` seconds (0: it did not ask), got this 2xx: the leg's timer (re)starts
  // as the 2xx says, or stops.
  void answered(const std::shared_ptr<Call>& c, bool a_leg, const sip::Message& response,
                uint32_t asked);
  // The header lines a re-INVITE or UPDATE esg relays onto `leg` carries, so that the leg's
  // timer goes on as negotiated, and the interval they ask for (0: none).
  std::string keep(const Leg& leg) const;
  uint32_t kept_seconds(const Leg& leg) const;
  // A request from `from` that only refreshes the session: an UPDATE without a body, or a
  // re-INVITE with the very description the leg sent last. It is answered on its own leg.
  bool only_refreshes(const sip::Message& request, const Leg& from) const;

 private:
  void start(const std::shared_ptr<Call>& c, bool a_leg, uint32_t seconds, bool esg_refreshes);
  void refresh(const std::shared_ptr<Call>& c, bool a_leg, uint32_t seconds);
  // `update`: the refresh was an UPDATE (else a re-INVITE).
  void on_refresh_answer(const std::shared_ptr<Call>& c, bool a_leg, uint32_t seconds, bool update,
                         uint16_t status, const sip::Message* response);

  txn::Layer& layer_;
  txn::Timers& timers_;
  dialog::SessionTimerPolicy policy_;
  HangUp hang_up_;
};

}  // namespace esg::edge
