#pragma once
// What Telegram says about a call, as the SIP answer a PBX understands (issue 9, and the table
// in TELEGRAM.md): a status, a Reason text saying what Telegram said, and Retry-After where a
// wait is known. Pure functions; the call bridge decides when to retry a short flood wait.

#include <string>
#include <string_view>

#include "telegram/td/tdjson.hpp"

namespace esg::telegram {

struct SipAnswer {
  int status = 0;
  std::string reason;       // for Reason: SIP;cause=<status>;text="<reason>"
  int retry_after = 0;      // seconds; 0: no Retry-After
  bool restricted = false;  // the line is under the spam restriction
};

// Retry-After for the spam restriction (PEER_FLOOD), whose end Telegram does not tell.
inline constexpr int kPeerFloodRetryAfter = 3600;

// A TDLib error answering a lookup or createCall, or carried by callStateError.
SipAnswer answer_for_error(const td::TdError& e);
// A call discarded before it was answered, by TDLib's reason (callDiscardReasonDeclined...).
SipAnswer answer_for_discard(std::string_view reason_type);

}  // namespace esg::telegram
