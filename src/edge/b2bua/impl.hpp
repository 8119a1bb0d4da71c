#pragma once
// The B2BUA of one worker, declared once and defined in three files: the initial INVITE,
// routing and media (b2bua.cpp), requests inside the dialogs and the end of a call
// (in_dialog.cpp), REFER carried out locally (refer.cpp). Private to src/edge/b2bua/.

#include "edge/b2bua/b2bua.hpp"

#include <chrono>
#include <deque>
#include <optional>
#include <vector>

#include "base/random.hpp"
#include "base/text.hpp"
#include "dialog/dialog.hpp"
#include "dialog/reliable.hpp"
#include "dialog/retransmitter.hpp"
#include "edge/b2bua/call.hpp"
#include "edge/b2bua/sessions.hpp"
#include "edge/b2bua/target.hpp"
#include "edge/b2bua/text.hpp"
#include "log/log.hpp"
#include "media/negotiate.hpp"
#include "sip/auth/digest.hpp"
#include "sip/response.hpp"

namespace esg::edge {

using accounts::Account;
using accounts::Destination;
using accounts::PbxConnection;
using nlohmann::json;

inline constexpr const char* kAllow =
    "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, NOTIFY, REFER";
// Headers that carry meaning end to end for the in-dialog requests we relay (not routing).
inline const std::vector<std::string> kRelayedHeaders = {
    "Info-Package", "Event", "Subscription-State", "Content-Disposition", "Reason"};
// What a failure answer tells the caller beyond its status.
inline const std::vector<std::string> kFailureHeaders = {"Retry-After", "Reason", "Warning"};

using b2bua_text::content_type_of;
using b2bua_text::has_sdp;
using b2bua_text::header_lines;
using b2bua_text::host_port;
using b2bua_text::is_failover_status;
using b2bua_text::lower;
using b2bua_text::name_addr;
using b2bua_text::new_branch;
using b2bua_text::now_ms;
using b2bua_text::reason_line;
using b2bua_text::with_body;
using dialog::has_option;

class B2bua::Impl {
 public:
  Impl(size_t worker, txn::Layer& layer, txn::Timers& timers, const txn::TimerConfig& tc,
       accounts::Link& link, Context& context, B2buaOptions options,
       std::function<std::string()> new_call_id)
      : worker_(worker),
        layer_(layer),
        timers_(timers),
        tc_(tc),
        link_(link),
        context_(context),
        options_(std::move(options)),
        new_call_id_(std::move(new_call_id)),
        sessions_(layer, timers, options_.session,
                  [this](const std::shared_ptr<Call>& c, const std::string& why) {
                    c->decisions.push_back(why);
                    hang_up(c, true, why);
                  }) {}

  ~Impl() {
    for (auto& [id, t] : cleanup_)
      timers_.stop(t);
  }

  size_t calls() const { return live_; }
  void drain() { draining_ = true; }

  void end_all(const std::string& why);

  bool on_request(txn::TxnId server, const sip::Message& req, const txn::Channel& from);

  bool on_cancel(txn::TxnId invite, const sip::Message& cancel);

  bool on_stray_response(const sip::Message& r);

 private:
  struct LegRef {
    std::shared_ptr<Call> call;
    bool is_a;
  };

  // --- the initial INVITE ---------------------------------------------------------------

  void start(txn::TxnId server, const sip::Message& req, const txn::Channel& from);

  // A call from a Telegram line's SIP side (issue 9): it goes to the line's PBX connection, to
  // the number the line put in the Request-URI; the X-TG-* headers cross with it.
  void start_from_telegram(const std::shared_ptr<Call>& c, txn::TxnId server,
                           const sip::Message& req, const TelegramLineInfo& line);

  // The call is accepted for routing: known by its A leg from now on.
  void begin(const std::shared_ptr<Call>& c, txn::TxnId server);

  // A refusal before the call exists: answered, counted in the decision log only.
  void refuse(const std::shared_ptr<Call>& c, txn::TxnId server, const sip::Message& req,
              uint16_t status, const std::string& why);

  void try_next(const std::shared_ptr<Call>& c);

  // A new attempt: looks `dest` up first when it is a name (RFC 3263), then sends the INVITE.
  void dial(const std::shared_ptr<Call>& c, const Destination& dest, bool resolve, bool tls_verify,
            std::string ruri, std::string from, std::string to, std::string extra);

  void send_invite(const std::shared_ptr<Call>& c, const Destination& dest, bool tls_verify,
                   std::string ruri, std::string from, std::string to, const std::string& extra,
                   const std::string& auth = {});

  void on_b_response(const std::shared_ptr<Call>& c, int attempt, const sip::Message& r);

  // --- media ---------------------------------------------------------------------------

  // The description `body` that side `from` (0: A, 1: B) sent, as the other side must see it:
  // through the relay when it carries the call's media (pointing at our `advertise` address,
  // by default the other leg's), else unchanged. A relay error leaves it unchanged, in `why`.
  std::string cross(Call& c, int from, std::string_view body, const std::string& advertise = {},
                    std::string* why = nullptr);
  std::string crossed(Call& c, bool from_a, const sip::Message& m);

  // A key press for a leg that takes DTMF as SIP INFO (application/dtmf-relay, the de facto
  // format of Cisco and Asterisk).
  void send_dtmf_info(Call& c, Leg& leg, char digit, int ms);

  // A key press as SIP INFO towards a leg that takes events or tones: written into the media
  // towards it and answered here. False: the INFO goes to the other leg as it is.
  bool info_to_media(Call& c, bool from_a, txn::TxnId server, const sip::Message& req, Leg& x,
                     Leg& y);

  // Once a second on an answered call with a relay: its media statistics go to the board (the
  // calls API reads them there), and no RTP from either side for `timeout` seconds (holds
  // excepted) ends the call.
  void start_media_timer(const std::shared_ptr<Call>& c);

  void start_ring_timer(const std::shared_ptr<Call>& c);

  void stop_ring_timer(Call& c);

  // The current target failed before answering: try the next route.
  void failed_attempt(const std::shared_ptr<Call>& c, uint16_t status, const std::string& why,
                      const std::string& headers = {});

  // Answers A's INVITE with a final failure and ends the call.
  void finish_a(const std::shared_ptr<Call>& c, uint16_t status, std::string_view reason,
                const std::string& extra, const std::string& by, const std::string& why);

  void reply_a(Call& c, uint16_t status, std::string_view reason, const std::string& extra,
               std::string_view body = {}, const std::string& content_type = {});

  void respond(txn::TxnId server, const sip::Message& req, uint16_t status, std::string_view reason,
               const std::string& extra = {}, const std::string& tag = {});

  // `reason`: the CANCEL's Reason line (default: the caller's CANCEL's, or "Cancelled by the
  // caller").
  void send_cancel(Call& c, const std::string& reason = {});

  // Why the callee's description is refused, for its BYE or CANCEL and the caller's answer.
  static std::string refused_media(const Call& c, const std::string& why);

  // A 2xx nobody wants (cancelled, or a late target): confirm it and take it down at once.
  void ack_and_bye(const std::shared_ptr<Call>& c, const sip::Message& r, uint16_t cause = 487,
                   const std::string& text = "Cancelled by the caller");
  void ack_and_bye(const Call::Earlier& invite, const sip::Message& r, uint16_t cause,
                   const std::string& text);
  // An INVITE given up on (the call moved to another target or ended unanswered): its late
  // 2xx is taken down by on_stray_response.
  void abandon(const std::string& call_id, const Call::Earlier& invite);

  // --- inside the dialogs ----------------------------------------------------------------

  void on_ack(const std::shared_ptr<Call>& c, bool from_a, const sip::Message& ack);

  void on_bye(const std::shared_ptr<Call>& c, bool from_a, txn::TxnId server,
              const sip::Message& req);

  void hang_up(const std::shared_ptr<Call>& c, bool by_esg, const std::string& why);

  void send_in_dialog(Leg& leg, std::string_view method, const std::string& extra);

  // esg sent `leg`'s peer the description `body` (nothing when empty): kept for refreshes.
  static void sent(Leg& leg, std::string_view body, std::string_view content_type) {
    if (body.empty()) return;
    leg.sent_sdp = std::string(body);
    leg.sent_sdp_type = std::string(content_type);
  }

  // Any other request inside the dialog goes to the other leg, and its answer comes back.
  void relay(const std::shared_ptr<Call>& c, bool from_a, txn::TxnId server,
             const sip::Message& req, Leg& x, Leg& y);

  void start_reinvite_ok(const std::shared_ptr<Call>& c, bool from_a, uint32_t from_cseq,
                         uint32_t to_cseq, const std::string& ok);

  // --- REFER, carried out locally ----------------------------------------------------------

  // RFC 3515: accepted (202), progress as NOTIFY with message/sipfrag on the referring leg, a
  // new call from the referring side's number plan to the Refer-To target, the remaining leg
  // re-INVITEd towards it, and the referring leg ended.
  void on_refer(const std::shared_ptr<Call>& c, bool from_a, txn::TxnId server,
                const sip::Message& req);

  void notify(Leg& x, const std::string& sipfrag, bool final);

  void transfer_next(const std::shared_ptr<Call>& c);

  void transfer_invite(const std::shared_ptr<Call>& c, const Destination& dest,
                       const RouteTarget& t);

  void on_transfer_response(const std::shared_ptr<Call>& c, int attempt, const sip::Message& r);

  void transfer_attempt_failed(const std::shared_ptr<Call>& c, uint16_t status);

  void transfer_failed(const std::shared_ptr<Call>& c, uint16_t status);

  // --- the end -----------------------------------------------------------------------------

  void end(const std::shared_ptr<Call>& c, const std::string& by, const std::string& why,
           uint16_t status);

  void forget(const std::shared_ptr<Call>& c);

  void publish(const Call& c) {
    context_.board().put(c.id, record_text(c, worker_, true, false), c.a.call_id, c.b.call_id);
  }

  void write_cdr(const Call& c, bool last);

  // The X-TG-* headers of a Telegram line's SIP side (its INVITE, or its answers when the
  // PBX called a Telegram user): who the Telegram user is, for the call events.
  static void take_tg_user(Call& c, const sip::Message& m) {
    static const std::pair<const char*, const char*> kFields[] = {{"X-TG-ID", "id"},
                                                                  {"X-TG-Username", "username"},
                                                                  {"X-TG-Phone", "phone"},
                                                                  {"X-TG-Name", "name"}};
    for (const auto& [header, key] : kFields) {
      if (const auto* h = m.header(header)) c.tg_user[key] = std::string(h->value);
    }
  }

  // A call event to the CRM webhooks, when someone listens.
  void tell(const Call& c, std::string_view event) {
    if (options_.events && options_.events->wants(event))
      options_.events->on_call_event(event, event_of(c));
  }

  std::string new_tag() { return options_.tag_prefix + random::hex(10); }

  size_t worker_;
  txn::Layer& layer_;
  txn::Timers& timers_;
  const txn::TimerConfig& tc_;
  accounts::Link& link_;
  Context& context_;
  B2buaOptions options_;
  const B2buaMedia& media_ = options_.media;
  std::function<std::string()> new_call_id_;
  Sessions sessions_;
  std::unordered_map<std::string, LegRef> legs_;  // Call-ID of either leg -> call
  std::unordered_map<txn::TxnId, std::shared_ptr<Call>> by_invite_;  // A's pending INVITE
  std::unordered_map<uint64_t, txn::Timers::Id> cleanup_;
  static constexpr size_t kAbandonedMax = 4096;
  std::unordered_map<std::string, Call::Earlier> abandoned_;     // Call-ID of the B leg
  std::deque<std::pair<int64_t, std::string>> abandoned_order_;  // (when, Call-ID), oldest first
  uint64_t cleanup_seq_ = 0;
  size_t live_ = 0;
  bool draining_ = false;
};

}  // namespace esg::edge
