#include "edge/b2bua/sessions.hpp"

#include "dialog/reliable.hpp"

namespace esg::edge {

namespace {

// While another INVITE is in progress on the call esg's refresh re-INVITE waits this long and
// tries again (RFC 3261 §14.1: one INVITE transaction at a time on a dialog).
constexpr std::chrono::milliseconds kBusyRetry{2000};

const char* side(bool a_leg) {
  return a_leg ? "A" : "B";
}

}  // namespace

std::atomic<uint64_t>& B2bua::sessions_expired() {
  static std::atomic<uint64_t> n{0};
  return n;
}

B2bua::Sessions::Sessions(txn::Layer& layer, txn::Timers& timers, dialog::SessionTimerPolicy policy,
                          HangUp hang_up)
    : layer_(layer), timers_(timers), policy_(policy), hang_up_(std::move(hang_up)) {}

uint16_t B2bua::Sessions::refuse(const sip::Message& invite, std::string* headers) const {
  if (!enabled()) return 0;
  const dialog::UasSessionDecision d = dialog::uas_session(invite, policy_);
  if (!d.reject) return 0;
  *headers = d.headers();
  return d.reject;
}

std::string B2bua::Sessions::ask() const {
  if (!enabled()) return {};
  return "Supported: timer\r\nSession-Expires: " + std::to_string(policy_.session_expires) +
         ";refresher=uas\r\nMin-SE: " + std::to_string(policy_.min_se) + "\r\n";
}

std::string B2bua::Sessions::answer(const std::shared_ptr<Call>& c, bool a_leg,
                                    const sip::Message& request) {
  if (!enabled()) return {};
  Leg& leg = a_leg ? c->a : c->b;
  // Without an Allow header a peer's UPDATE support is unknown: esg tries UPDATE, and a 405 or
  // 501 moves the leg to re-INVITEs.
  leg.peer_takes_update = dialog::takes_update(request, leg.peer_takes_update);
  const dialog::UasSessionDecision d = dialog::uas_session(request, policy_);
  if (d.reject || !d.session) return {};
  // esg refreshes a peer without timers too: with UPDATE, or, when the peer takes none, with
  // a re-INVITE that changes nothing (refresh()).
  start(c, a_leg, d.session->seconds, d.session->refresher == dialog::Refresher::Uas);
  return d.headers();
}

void B2bua::Sessions::answered(const std::shared_ptr<Call>& c, bool a_leg,
                               const sip::Message& response, uint32_t asked) {
  if (!enabled()) return;
  Leg& leg = a_leg ? c->a : c->b;
  leg.peer_takes_update = dialog::takes_update(response, leg.peer_takes_update);
  const auto se =
      dialog::uac_session(response, asked ? std::optional<uint32_t>(asked) : std::nullopt);
  if (!se) {
    if (leg.session) leg.session->stop();  // no timer on this leg
    return;
  }
  start(c, a_leg, se->seconds, se->refresher == dialog::Refresher::Uac);
}

std::string B2bua::Sessions::keep(const Leg& leg) const {
  if (!kept_seconds(leg)) return {};
  return "Supported: timer\r\nSession-Expires: " + std::to_string(leg.session_seconds) +
         (leg.esg_refreshes ? ";refresher=uac" : ";refresher=uas") + "\r\n";
}

uint32_t B2bua::Sessions::kept_seconds(const Leg& leg) const {
  return enabled() && leg.session && leg.session->running() ? leg.session_seconds : 0;
}

bool B2bua::Sessions::only_refreshes(const sip::Message& request, const Leg& from) const {
  if (!enabled()) return false;
  if (request.method() == sip::Method::Update) return request.body().empty();
  return request.method() == sip::Method::Invite && !request.body().empty() &&
         request.body() == from.sdp;
}

void B2bua::Sessions::start(const std::shared_ptr<Call>& c, bool a_leg, uint32_t seconds,
                            bool esg_refreshes) {
  Leg& leg = a_leg ? c->a : c->b;
  leg.session_seconds = seconds;
  leg.esg_refreshes = esg_refreshes;
  if (!leg.session) {
    std::weak_ptr<Call> weak = c;
    leg.session = std::make_unique<dialog::SessionTimer>(
        timers_,
        [this, weak, a_leg] {
          auto c = weak.lock();
          if (c && c->state != Call::State::Ended)
            refresh(c, a_leg, (a_leg ? c->a : c->b).session_seconds);
        },
        [this, weak, a_leg] {
          auto c = weak.lock();
          if (!c || c->state == Call::State::Ended) return;
          const Leg& leg = a_leg ? c->a : c->b;
          sessions_expired().fetch_add(1, std::memory_order_relaxed);
          hang_up_(c, std::string("Session timer expired: no refresh on the ") + side(a_leg) +
                          " leg within " + std::to_string(leg.session_seconds) + " s");
        });
  }
  leg.session->start(seconds, esg_refreshes);
}

void B2bua::Sessions::refresh(const std::shared_ptr<Call>& c, bool a_leg, uint32_t seconds) {
  Leg& leg = a_leg ? c->a : c->b;
  if (!leg.dialog) return;
  // A peer that takes no UPDATE gets a re-INVITE with the description it was last sent (none
  // sent yet: UPDATE is all there is).
  const bool update = leg.peer_takes_update || leg.sent_sdp.empty();
  std::weak_ptr<Call> weak = c;
  if (!update && (c->reinvite || leg.refresh_cseq)) {
    // Another INVITE is in progress on the call (a relayed re-INVITE): not now. The expiry
    // timer keeps running meanwhile.
    timers_.start(kBusyRetry, [this, weak, a_leg, seconds] {
      auto c = weak.lock();
      if (c && c->state != Call::State::Ended) refresh(c, a_leg, seconds);
    });
    return;
  }
  auto m = sip::parse_message(dialog::build_refresh(*leg.dialog, leg.via(), seconds, update,
                                                    leg.sent_sdp, leg.sent_sdp_type));
  if (!m) return;
  const std::string call_id = leg.call_id;
  if (!update) leg.refresh_cseq = m->cseq().number;
  txn::ClientUser user;
  user.on_response = [this, weak, a_leg, seconds, update, call_id](const sip::Message& r) {
    if (r.status() < 200) return;
    auto c = weak.lock();
    if (!c) return;
    Leg& leg = a_leg ? c->a : c->b;
    if (leg.call_id != call_id || !leg.dialog) return;  // the leg was replaced (a transfer)
    if (!update && r.status() < 300) {
      // RFC 3261 §13.2.2.4: esg ACKs its re-INVITE's 2xx, and again each retransmission. The
      // answer's description is not passed on: it answers an offer that changed nothing.
      if (leg.refresh_acked == r.cseq().number) {
        leg.channel.send(leg.refresh_ack);
        return;
      }
      leg.dialog->on_refresh_response(r);
      leg.refresh_ack = leg.dialog->build_request("ACK", leg.via(), r.cseq().number);
      leg.refresh_acked = r.cseq().number;
      leg.channel.send(leg.refresh_ack);
    }
    if (!update) leg.refresh_cseq = 0;
    on_refresh_answer(c, a_leg, seconds, update, r.status(), &r);
  };
  user.on_failure = [this, weak, a_leg, seconds, update, call_id](uint16_t status) {
    auto c = weak.lock();
    if (!c) return;
    Leg& leg = a_leg ? c->a : c->b;
    if (leg.call_id != call_id) return;
    if (!update) leg.refresh_cseq = 0;
    on_refresh_answer(c, a_leg, seconds, update, status, nullptr);
  };
  layer_.send_request(std::move(*m), leg.channel, std::move(user));
}

void B2bua::Sessions::on_refresh_answer(const std::shared_ptr<Call>& c, bool a_leg,
                                        uint32_t seconds, bool update, uint16_t status,
                                        const sip::Message* response) {
  if (c->state == Call::State::Ended) return;
  Leg& leg = a_leg ? c->a : c->b;
  if (!leg.session) return;
  if (response && status >= 200 && status < 300) {
    answered(c, a_leg, *response, seconds);
    return;
  }
  if (response && status == 422) {
    // §7.3: ask again with the peer's Min-SE.
    if (auto longer = dialog::retry_interval(*response, seconds); longer && *longer > seconds) {
      refresh(c, a_leg, *longer);
      return;
    }
  }
  if (status == 481 || status == 408) {
    // The peer no longer knows the dialog, or does not answer at all: the call is gone.
    sessions_expired().fetch_add(1, std::memory_order_relaxed);
    hang_up_(c, "Session refresh on the " + std::string(side(a_leg)) + " leg: " +
                    (status == 481 ? "481 Call/Transaction Does Not Exist" : "no answer"));
    return;
  }
  if (update && (status == 405 || status == 501) && !leg.sent_sdp.empty()) {
    // The peer takes no UPDATE after all (it had not said): re-INVITEs from now on.
    leg.peer_takes_update = false;
    c->decisions.push_back(std::string("session refresh on the ") + side(a_leg) + " leg: " +
                           std::to_string(status) + " to esg's UPDATE, by re-INVITE from now on");
    refresh(c, a_leg, seconds);
    return;
  }
  if (status == 405 || status == 501 || status == 420) {
    // The peer takes no such request or no timers: nothing to refresh this leg with.
    leg.session->stop();
    c->decisions.push_back(std::string("session timer on the ") + side(a_leg) +
                           " leg off: " + std::to_string(status) + " to esg's " +
                           (update ? "UPDATE" : "re-INVITE"));
    return;
  }
  // It answered (491 glare, a 5xx): alive. The next refresh is due in half an interval.
  start(c, a_leg, seconds, true);
}

}  // namespace esg::edge
