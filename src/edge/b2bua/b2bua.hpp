#pragma once
// The B2BUA of one worker: every call that reaches it becomes two legs, each with its own
// Call-ID, tags, dialog and transactions; Via, Route and Record-Route never cross, and other
// headers only when the account or connection lists them (`passheaders`). Incoming calls are
// matched to a provider account (six steps), normalized into the internal number plan and
// routed; outgoing calls from a PBX are routed, then normalized for the account chosen.
// Everything here runs on the worker that owns the call's Call-IDs: no locks per message.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "accounts/registration.hpp"
#include "dialog/session_timer.hpp"
#include "edge/context.hpp"
#include "media/session.hpp"
#include "sip/message.hpp"
#include "txn/layer.hpp"

namespace esg::edge {

// The media relay as the B2BUA uses it (issue 7): the worker's poller for the sockets, the
// shared port range and counters. Without a poller, descriptions cross unchanged.
struct B2buaMedia {
  media::Poller* poller = nullptr;
  media::PortPool* ports = nullptr;
  const media::Options* options = nullptr;
  media::Counters* counters = nullptr;
  bool relay_all = true;  // instance media.relay; else only accounts/connections with media=true
  int timeout = 60;       // seconds without RTP on an answered, unheld call; 0: never
};

// Where a call's lifecycle events go (issue 23, the CRM webhooks): the app wires it to
// notify/. "call.ringing" (the first 18x towards the caller), "call.answered" (the 2xx),
// "call.ended" (when the final CDR is written), with the call's record (event_of). Called on
// the call's worker: an implementation only hands the event over, never waits.
class CallEvents {
 public:
  virtual ~CallEvents() = default;
  virtual bool wants(std::string_view event) const = 0;
  virtual void on_call_event(std::string_view event, nlohmann::json call) = 0;
};

struct B2buaOptions {
  std::string user_agent = "esg";
  std::string tag_prefix = "esg";            // unique per instance and worker
  size_t max_calls = 50000;                  // per worker; beyond: 503 with Retry-After
  std::string call_id_header = "X-Call-ID";  // the A leg's Call-ID on the B leg ("" = none)
  // A target that rings but never answers is cancelled after this long (RFC 3261 §16.6's
  // Timer C, for a B2BUA) and the next route tried.
  std::chrono::milliseconds ring_timeout{180000};
  // RFC 4028 session timers on each leg (session_expires 0: none).
  dialog::SessionTimerPolicy session;
  B2buaMedia media;
  CallEvents* events = nullptr;  // none: no call events
};

// The fields of a Telegram call's CDR (issue 22) from what the board says of its Telegram side.
nlohmann::json telegram_cdr_fields(const nlohmann::json& telegram);

class B2bua {
 public:
  // `new_call_id` makes a Call-ID that hashes to this worker (the B leg must stay here).
  B2bua(size_t worker, txn::Layer& layer, txn::Timers& timers, const txn::TimerConfig& timer_config,
        accounts::Link& link, Context& context, B2buaOptions options,
        std::function<std::string()> new_call_id);
  ~B2bua();
  B2bua(const B2bua&) = delete;
  B2bua& operator=(const B2bua&) = delete;

  // A request the server core hands over: an INVITE outside a dialog, or any request inside
  // one (To tag), ACK to a 2xx included (`server` 0). False when it is not ours (no such
  // dialog): the core answers it.
  bool on_request(txn::TxnId server, const sip::Message& request, const txn::Channel& from);
  // A CANCEL matched a pending INVITE of ours (the layer answered the CANCEL). Its Reason
  // (RFC 3326: "Call completed elsewhere"...) goes on to the callee.
  bool on_cancel(txn::TxnId invite, const sip::Message& cancel);
  // A 2xx retransmission after its transaction ended: re-ACK.
  bool on_stray_response(const sip::Message& response);

  size_t calls() const;
  // Shutting down (SIGTERM): new calls get 503 with Retry-After, calls in progress go on.
  void drain();
  // Ends every call: answered ones with BYE on both legs, ringing ones with 503 to the caller
  // and CANCEL to the callee; `why` goes into their Reason headers.
  void end_all(const std::string& why);
  // Calls ended because a leg's session timer ran out or its refresh failed (RFC 4028), across
  // all workers: dead calls cleaned up (for /metrics).
  static std::atomic<uint64_t>& sessions_expired();

 private:
  struct Call;
  struct Leg;
  class Impl;
  class Sessions;  // RFC 4028 on each leg (sessions.*)
  // The call as the monitoring API shows it (the board's record), or its CDR's data (`cdr`), as
  // JSON text (record.cpp). `decisions`: the full trace (the final CDR, the board);
  // intermediate CDR records leave it out (the writer keeps only the last record).
  static std::string record_text(const Call& c, size_t worker, bool decisions, bool cdr,
                                 const nlohmann::json* telegram = nullptr);
  // `telegram`: what the board says of the call's Telegram side (CallBridge), when it has one:
  // the fields that matter after the call go into the record (issue 22).
  static store::Cdr cdr_of(const Call& c, size_t worker, bool last,
                           const nlohmann::json* telegram = nullptr);
  // What a call event says of the call (the CRM webhooks' "call" object).
  static nlohmann::json event_of(const Call& c);
  std::unique_ptr<Impl> impl_;
};

}  // namespace esg::edge
