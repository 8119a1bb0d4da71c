#include "edge/b2bua/sessions.hpp"

#include "dialog/reliable.hpp"

namespace esg::edge {

namespace {

bool takes_update(const sip::Message& m, bool before) {
  // RFC 3311 §5.1: a peer lists UPDATE in Allow when it takes it; without an Allow header we
  // cannot tell, and try (a 405 then turns the leg's timer off).
  if (!m.header(sip::HeaderId::Allow)) return before;
  return dialog::has_option(m, sip::HeaderId::Allow, "UPDATE");
}

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
  leg.peer_takes_update = takes_update(request, leg.peer_takes_update);
  const dialog::UasSessionDecision d = dialog::uas_session(request, policy_);
  if (d.reject || !d.session) return {};
  const bool esg_refreshes = d.session->refresher == dialog::Refresher::Uas;
  const bool peer_has_timers = dialog::has_option(request, sip::HeaderId::Supported, "timer");
  if (esg_refreshes && !leg.peer_takes_update && !peer_has_timers) {
    // A peer without timers that takes no UPDATE: esg could only refresh it with a re-INVITE
    // that changes nothing; the leg goes without (the other leg's timer and the media timeout
    // still end a dead call).
    if (leg.session) leg.session->stop();
    return {};
  }
  start(c, a_leg, d.session->seconds, esg_refreshes);
  return d.headers();
}

void B2bua::Sessions::answered(const std::shared_ptr<Call>& c, bool a_leg,
                               const sip::Message& response, uint32_t asked) {
  if (!enabled()) return;
  Leg& leg = a_leg ? c->a : c->b;
  leg.peer_takes_update = takes_update(response, leg.peer_takes_update);
  const auto se =
      dialog::uac_session(response, asked ? std::optional<uint32_t>(asked) : std::nullopt);
  const bool peer_has_timers = response.header(sip::HeaderId::SessionExpires) != nullptr;
  if (!se ||
      (se->refresher == dialog::Refresher::Uac && !leg.peer_takes_update && !peer_has_timers)) {
    // No timer on this leg (or only esg's, which it could not refresh): nothing runs.
    if (leg.session) leg.session->stop();
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
  // esg is the UAC of its refresh: refresher=uac keeps esg the refresher (§7.4).
  const std::string extra =
      "Session-Expires: " + std::to_string(seconds) + ";refresher=uac\r\nSupported: timer\r\n";
  auto m = sip::parse_message(leg.dialog->build_request("UPDATE", leg.via(), 0, extra));
  if (!m) return;
  std::weak_ptr<Call> weak = c;
  txn::ClientUser user;
  user.on_response = [this, weak, a_leg, seconds](const sip::Message& r) {
    if (r.status() < 200) return;
    if (auto c = weak.lock()) on_refresh_answer(c, a_leg, seconds, r.status(), &r);
  };
  user.on_failure = [this, weak, a_leg, seconds](uint16_t status) {
    if (auto c = weak.lock()) on_refresh_answer(c, a_leg, seconds, status, nullptr);
  };
  layer_.send_request(std::move(*m), leg.channel, std::move(user));
}

void B2bua::Sessions::on_refresh_answer(const std::shared_ptr<Call>& c, bool a_leg,
                                        uint32_t seconds, uint16_t status,
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
  if (status == 405 || status == 501 || status == 420) {
    // The peer takes no UPDATE or no timers: nothing to refresh this leg with.
    leg.session->stop();
    c->decisions.push_back(std::string("session timer on the ") + side(a_leg) +
                           " leg off: " + std::to_string(status) + " to esg's UPDATE");
    return;
  }
  // It answered (491 glare, a 5xx): alive. The next refresh is due in half an interval.
  start(c, a_leg, seconds, true);
}

}  // namespace esg::edge
