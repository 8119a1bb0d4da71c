#pragma once
// RFC 4028 session timers: keep-alive of a call by periodic refreshes (re-INVITE or UPDATE), so
// that a call whose other end vanished (a crashed PBX, a lost BYE) ends instead of holding a
// trunk forever. Negotiation helpers for both sides, and the timer that drives one dialog.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.hpp"
#include "dialog/dialog.hpp"
#include "sip/error.hpp"
#include "sip/message.hpp"
#include "txn/timers.hpp"

namespace esg::dialog {

enum class Refresher : uint8_t { None, Uac, Uas };

// Session-Expires = delta-seconds *( SEMI se-params ), se-params with `refresher=uac|uas`.
struct SessionExpires {
  uint32_t seconds = 0;
  Refresher refresher = Refresher::None;
  bool operator==(const SessionExpires&) const = default;
};
Result<SessionExpires, sip::ValueError> parse_session_expires(std::string_view value);
std::string format_session_expires(const SessionExpires& se);

struct SessionTimerPolicy {
  uint32_t min_se = 90;             // our Min-SE (the RFC's floor is 90 s)
  uint32_t session_expires = 1800;  // what we ask for or grant when the peer says nothing
};

// The UAS decision for an INVITE or UPDATE that starts or refreshes a session (RFC 4028 §9).
struct UasSessionDecision {
  uint16_t reject = 0;  // 422 Session Interval Too Small: add "Min-SE: <min_se>"
  uint32_t min_se = 0;
  std::optional<SessionExpires> session;  // the session timer of the answer, if any
  bool require_timer = false;             // the UAC supports it: say "Require: timer"
  // Header lines for the 2xx (Session-Expires, Require) or the 422 (Min-SE), CRLF-terminated.
  std::string headers() const;
};
UasSessionDecision uas_session(const sip::Message& request, const SessionTimerPolicy& policy);

// The UAC side (§7.2): from the 2xx to our INVITE or UPDATE that asked for `requested`
// seconds. nullopt: no session timer on this call.
std::optional<SessionExpires> uac_session(const sip::Message& response,
                                          std::optional<uint32_t> requested);
// §7.3: after a 422, the next request asks for the larger of its Min-SE and our interval.
std::optional<uint32_t> retry_interval(const sip::Message& response_422, uint32_t requested);

// RFC 3311 §5.1: whether the peer that sent `m` (its INVITE, or its 2xx to ours) takes UPDATE,
// which it says by listing UPDATE in Allow. Without an Allow header nothing is known: `unknown`.
bool takes_update(const sip::Message& m, bool unknown);

// The session refresh esg sends as the refresher of dialog `d` (§7.4), with `via` (a new branch)
// and refresher=uac (esg is this request's UAC and stays the refresher). A peer that takes
// UPDATE gets an UPDATE without a body. One that does not gets a re-INVITE repeating `sdp`, the
// description it was last sent, byte for byte: the same o= version means no change (RFC 3264
// §8), so the refresh touches neither the media nor the other leg.
std::string build_refresh(Dialog& d, std::string_view via, uint32_t seconds, bool update,
                          std::string_view sdp = {}, std::string_view content_type = {});

// Drives one dialog's session timer. As the refresher it asks for a refresh at half the interval
// (§10); otherwise it ends the session at the interval minus min(32 s, interval/3) without a
// refresh (§10: "the BYE SHOULD be sent before the session expires").
class SessionTimer {
 public:
  SessionTimer(txn::Timers& timers, std::function<void()> on_refresh,
               std::function<void()> on_expired);
  ~SessionTimer();
  SessionTimer(const SessionTimer&) = delete;
  SessionTimer& operator=(const SessionTimer&) = delete;

  // (Re)starts after a 2xx that set the session interval; `we_refresh` from the refresher.
  void start(uint32_t seconds, bool we_refresh);
  void stop();
  bool running() const { return expiry_ != 0; }

 private:
  txn::Timers& timers_;
  std::function<void()> on_refresh_;
  std::function<void()> on_expired_;
  txn::Timers::Id timer_ = 0;
  // The refresher still ends the session when its own refreshes keep failing.
  txn::Timers::Id expiry_ = 0;
};

}  // namespace esg::dialog
