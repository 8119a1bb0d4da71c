#include "edge/b2bua/impl.hpp"

namespace esg::edge {

void B2bua::Impl::on_ack(const std::shared_ptr<Call>& c, bool from_a, const sip::Message& ack) {
  Leg& x = from_a ? c->a : c->b;
  Leg& y = from_a ? c->b : c->a;
  if (from_a && c->state == Call::State::Answered && ack.cseq().number == c->a_cseq) {
    if (c->ok_to_a) c->ok_to_a->stop();
    if (has_sdp(ack)) {
      x.sdp = std::string(ack.body());
      x.sdp_type = content_type_of(ack);
    }
    const std::string body = crossed(*c, from_a, ack);
    if (has_sdp(ack)) sent(y, body, content_type_of(ack));
    c->b_ack = y.dialog->build_request("ACK", y.via(), c->b_cseq, {}, body, content_type_of(ack));
    y.channel.send(c->b_ack);
    c->state = Call::State::Confirmed;
    return;
  }
  if (c->reinvite && c->reinvite->from_a == from_a && ack.cseq().number == c->reinvite->from_cseq &&
      c->reinvite->answered) {
    if (c->reinvite->ok) c->reinvite->ok->stop();
    if (has_sdp(ack)) {
      x.sdp = std::string(ack.body());
      x.sdp_type = content_type_of(ack);
    }
    if (c->reinvite->to_cseq && y.dialog) {
      const std::string body = crossed(*c, from_a, ack);
      if (has_sdp(ack)) sent(y, body, content_type_of(ack));
      y.channel.send(y.dialog->build_request("ACK", y.via(), c->reinvite->to_cseq, {}, body,
                                             content_type_of(ack)));
    }
    c->reinvite.reset();
  }
}

void B2bua::Impl::on_bye(const std::shared_ptr<Call>& c, bool from_a, txn::TxnId server,
                         const sip::Message& req) {
  respond(server, req, 200, {}, {}, (from_a ? c->a : c->b).local_tag);
  if (c->state == Call::State::Ended) return;
  Leg& y = from_a ? c->b : c->a;
  std::string extra;
  if (const auto* reason = req.header("Reason"))
    extra = "Reason: " + std::string(reason->value) + "\r\n";
  if (!from_a && c->state < Call::State::Answered) {
    // The callee left an early dialog: the caller's INVITE still needs its answer.
    finish_a(c, 480, {}, extra, "callee", "BYE before answer");
    return;
  }
  if (y.dialog) send_in_dialog(y, "BYE", extra);
  end(c, from_a ? "caller" : "callee", "BYE", c->final_status);
}

void B2bua::Impl::hang_up(const std::shared_ptr<Call>& c, bool by_esg, const std::string& why) {
  if (c->state == Call::State::Ended) return;
  const std::string extra = reason_line(by_esg ? 500 : 200, "EB2B. " + why);
  if (c->a.dialog && c->state >= Call::State::Answered) send_in_dialog(c->a, "BYE", extra);
  if (c->b.dialog && c->state >= Call::State::Answered) send_in_dialog(c->b, "BYE", extra);
  end(c, "esg", why, c->final_status);
}

void B2bua::Impl::send_in_dialog(Leg& leg, std::string_view method, const std::string& extra) {
  auto m = sip::parse_message(leg.dialog->build_request(method, leg.via(), 0, extra));
  if (m) layer_.send_request(std::move(*m), leg.channel, {});
}

void B2bua::Impl::relay(const std::shared_ptr<Call>& c, bool from_a, txn::TxnId server,
                        const sip::Message& req, Leg& x, Leg& y) {
  if (c->state == Call::State::Ended) {
    respond(server, req, 481, {}, {}, x.local_tag);
    return;
  }
  const bool invite = req.method() == sip::Method::Invite;
  const bool update = req.method() == sip::Method::Update;
  if (invite && (c->reinvite || c->a.refresh_cseq || c->b.refresh_cseq)) {
    // RFC 3261 §14.2 (an INVITE of ours is in progress: a relayed one, or esg's refresh).
    respond(server, req, 491, {}, {}, x.local_tag);
    return;
  }
  // A session refresh (RFC 4028) concerns its own leg only: answered here.
  const bool refresh_only = c->state >= Call::State::Answered && sessions_.only_refreshes(req, x);
  if (update && refresh_only) {
    respond(server, req, 200, {},
            "Contact: " + x.contact + "\r\n" + sessions_.answer(c, from_a, req), x.local_tag);
    return;
  }
  if (invite && (!x.policy.reinvite || refresh_only)) {
    // reinvite=false: answered on its own leg with what the other side last offered.
    if (y.sdp.empty()) {
      respond(server, req, 488, {}, {}, x.local_tag);
      return;
    }
    if (has_sdp(req)) {
      x.sdp = std::string(req.body());
      x.sdp_type = content_type_of(req);
      crossed(*c, from_a, req);  // the relay follows X's new description
    }
    // With the relay, X gets Y's description as the relay presents it to X.
    const std::string answer = c->media ? cross(*c, from_a ? 1 : 0, y.sdp) : y.sdp;
    std::string ok = with_body(
        sip::build_response(req, 200, {}, x.local_tag,
                            "Contact: " + x.contact + "\r\n" + sessions_.answer(c, from_a, req)),
        y.sdp_type, answer);
    layer_.respond(server, 200, ok);
    sent(x, answer, y.sdp_type);
    c->decisions.push_back(std::string("re-INVITE from ") + (from_a ? "A" : "B") +
                           (refresh_only ? " only refreshed the session: answered locally"
                                         : " answered locally (reinvite=false)"));
    start_reinvite_ok(c, from_a, req.cseq().number, 0, ok);
    return;
  }
  if (!y.dialog || (invite && y.dialog->state() != dialog::DialogState::Confirmed)) {
    respond(server, req, invite ? 491 : 481, {}, {}, x.local_tag);
    return;
  }
  std::string extra = header_lines(req, x.policy.passheaders, y.policy.passheaders);
  if (req.method() == sip::Method::Prack) {
    // RAck names the INVITE's CSeq on the caller's leg; ours on the other leg is b_cseq.
    const auto* h = req.header("RAck");
    auto rack = h ? dialog::parse_rack(h->value)
                  : Result<dialog::RAck, sip::ValueError>(unexpected(sip::ValueError{"none"}));
    if (!rack || !from_a) {
      respond(server, req, rack ? 481 : 400, rack ? std::string_view{} : "Bad RAck", {},
              x.local_tag);
      return;
    }
    extra +=
        "RAck: " + std::to_string(rack->rseq) + " " + std::to_string(c->b_cseq) + " INVITE\r\n";
  }
  extra += header_lines(req, kRelayedHeaders);
  // Each leg keeps its own session timer: the request asks for the other leg's.
  const uint32_t asked = invite || update ? sessions_.kept_seconds(y) : 0;
  if (asked) extra += sessions_.keep(y);
  if (invite || update) {
    if (has_sdp(req)) {
      x.sdp = std::string(req.body());
      x.sdp_type = content_type_of(req);
    }
  }
  const std::string body = crossed(*c, from_a, req);
  if (has_sdp(req)) sent(y, body, content_type_of(req));
  const std::string bytes =
      y.dialog->build_request(req.method_text(), y.via(), 0, extra, body,
                              req.body().empty() ? std::string() : content_type_of(req));
  auto m = sip::parse_message(bytes);
  if (!m) {
    respond(server, req, 500, {}, {}, x.local_tag);
    return;
  }
  const uint32_t to_cseq = m->cseq().number;
  const uint32_t from_cseq = req.cseq().number;
  if (invite) {
    c->reinvite.emplace();
    c->reinvite->from_a = from_a;
    c->reinvite->from_cseq = from_cseq;
    c->reinvite->to_cseq = to_cseq;
  }
  std::weak_ptr<Call> weak = c;
  txn::ClientUser user;
  user.on_response = [this, weak, from_a, server, invite, update, asked, from_cseq,
                      to_cseq](const sip::Message& r) {
    auto c = weak.lock();
    if (!c) return;
    const uint16_t s = r.status();
    if (s < 200) return;  // provisional answers stay on their leg
    Leg& x = from_a ? c->a : c->b;
    Leg& y = from_a ? c->b : c->a;
    const sip::Message* req = layer_.request(server);
    if (invite && s >= 200 && s < 300) {
      if (c->reinvite && c->reinvite->to_cseq == to_cseq && c->reinvite->answered) {
        // A retransmitted 2xx: our ACK went missing; the other leg ACKs again through us.
        return;
      }
      if (y.dialog) y.dialog->on_refresh_response(r);
      if (has_sdp(r)) {
        y.sdp = std::string(r.body());
        y.sdp_type = content_type_of(r);
      }
    }
    if (!req) return;
    std::string extra = header_lines(r, x.policy.passheaders, y.policy.passheaders);
    if (invite && s < 300) extra = "Contact: " + x.contact + "\r\n" + extra;
    if ((invite || update) && s < 300) {
      sessions_.answered(c, !from_a, r, asked);
      extra += sessions_.answer(c, from_a, *req);
    }
    const std::string body = crossed(*c, !from_a, r);
    if (has_sdp(r) && s < 300) sent(x, body, content_type_of(r));
    std::string out = with_body(sip::build_response(*req, s, r.reason(), x.local_tag, extra),
                                content_type_of(r), body);
    layer_.respond(server, s, out);
    if (invite) {
      if (s < 300) {
        start_reinvite_ok(c, from_a, from_cseq, to_cseq, out);
      } else if (c->reinvite && c->reinvite->to_cseq == to_cseq) {
        c->reinvite.reset();
      }
    }
  };
  user.on_failure = [this, weak, server, from_a, invite, to_cseq](uint16_t status) {
    auto c = weak.lock();
    if (!c) return;
    if (const sip::Message* req = layer_.request(server)) {
      layer_.respond(server, status,
                     sip::build_response(*req, status, {}, (from_a ? c->a : c->b).local_tag));
    }
    if (invite && c->reinvite && c->reinvite->to_cseq == to_cseq) c->reinvite.reset();
  };
  layer_.send_request(std::move(*m), y.channel, std::move(user));
}

void B2bua::Impl::start_reinvite_ok(const std::shared_ptr<Call>& c, bool from_a, uint32_t from_cseq,
                                    uint32_t to_cseq, const std::string& ok) {
  if (!c->reinvite) c->reinvite.emplace();
  c->reinvite->from_a = from_a;
  c->reinvite->from_cseq = from_cseq;
  c->reinvite->to_cseq = to_cseq;
  c->reinvite->answered = true;
  Leg& x = from_a ? c->a : c->b;
  std::weak_ptr<Call> weak = c;
  c->reinvite->ok = std::make_unique<dialog::Retransmitter>(
      timers_, tc_, x.channel.reliable, x.channel.send, [this, weak] {
        if (auto c = weak.lock()) hang_up(c, true, "no ACK for the re-INVITE");
      });
  c->reinvite->ok->start(ok, false);
}

void B2bua::Impl::end(const std::shared_ptr<Call>& c, const std::string& by, const std::string& why,
                      uint16_t status) {
  if (c->state == Call::State::Ended) return;
  const bool answered = c->state == Call::State::Answered || c->state == Call::State::Confirmed;
  c->state = Call::State::Ended;
  c->ended = now_ms();
  c->hangup_by = by;
  c->end_reason = why;
  if (!answered) c->final_status = status;
  std::string result = "failed";  // for /metrics: how the call ended
  if (answered) {
    result = "answered";
  } else if (c->cancelled) {
    result = "cancelled";
  } else if (status >= 400 && status < 700) {
    result = std::to_string(status / 100) + "xx";
  }
  context_.board().count_end(c->out ? "out" : "in", result);
  for (const auto& t : c->trunks)
    context_.trunks().release(t);
  c->trunks.clear();
  if (!c->attempt_trunk.empty()) context_.trunks().release(c->attempt_trunk);
  c->attempt_trunk.clear();
  if (c->ok_to_a) c->ok_to_a->stop();
  if (c->reinvite && c->reinvite->ok) c->reinvite->ok->stop();
  stop_ring_timer(*c);
  if (c->media_timer) timers_.stop(c->media_timer);
  c->media_timer = 0;
  for (Leg* leg : {&c->a, &c->b})  // stopped, not freed: this may run in their callback
    if (leg->session) leg->session->stop();
  if (c->transfer && !c->transfer->trunk.empty()) context_.trunks().release(c->transfer->trunk);
  if (c->transfer && !c->transfer->leg.call_id.empty()) {
    legs_.erase(c->transfer->leg.call_id);  // a late answer finds no call (ACK and BYE: none)
  }
  c->transfer.reset();
  by_invite_.erase(c->a_invite);
  context_.board().erase(c->id);
  write_cdr(*c, true);
  tell(*c, "call.ended");
  log::call(
      "b2bua", spdlog::level::info, c->id, "ended {} ({}) by {}: {}{}",
      answered ? "after " + std::to_string((c->ended - c->answered) / 1000) + " s" : "unanswered",
      status ? std::to_string(status) : std::string("-"), by, why,
      c->b.code.empty() ? "" : ", B leg " + c->b.call_id + " at " + c->b.code);
  if (log::get("b2bua").should_log(spdlog::level::debug)) {
    for (const auto& d : c->decisions)
      log::call("b2bua", spdlog::level::debug, c->id, "decision: {}", d);
  }
  c->media.reset();  // sockets closed, ports back in the range
  --live_;
  // What only a live call needs goes now (the call may linger below).
  c->decisions = {};
  c->candidates = {};
  c->skipped = {};
  c->a.sdp = c->a.sent_sdp = {};
  c->b.sdp = c->b.sent_sdp = {};
  c->config.reset();
  // Retransmissions and late in-dialog requests are the transaction layer's (or get 481).
  // Only an INVITE still out towards the B side can bring a 2xx that must be taken down
  // (ACK and BYE): for that the call stays known until the INVITE's Timer B has passed.
  const bool invite_out = c->b_invite && !answered;
  if (!invite_out) {
    forget(c);
    return;
  }
  std::weak_ptr<Call> weak = c;
  const uint64_t key = ++cleanup_seq_;
  cleanup_[key] = timers_.start(64 * tc_.t1, [this, weak, key] {
    cleanup_.erase(key);
    if (auto c = weak.lock()) forget(c);
  });
}

void B2bua::Impl::forget(const std::shared_ptr<Call>& c) {
  for (const std::string* id : {&c->a.call_id, &c->b.call_id}) {
    auto it = legs_.find(*id);
    if (it != legs_.end() && it->second.call == c) legs_.erase(it);
  }
  // The last target never answered: its 2xx may still come after its transaction ended.
  if (!c->b_invite_bytes.empty() && !c->b_final) {
    abandon(c->b.call_id,
            {c->b_invite_bytes, c->b.channel, c->b.contact, c->b.via_host, c->b.transport});
  }
}

void B2bua::Impl::abandon(const std::string& call_id, const Call::Earlier& e) {
  // Kept as long as a callee may still answer an INVITE it never answered before (Timer B,
  // 64*T1, and a margin), and a bounded number of them.
  const int64_t now = now_ms();
  const int64_t keep_ms = 2 * 64 * int64_t(tc_.t1.count()) + 5000;
  while (!abandoned_order_.empty() && (abandoned_order_.size() >= kAbandonedMax ||
                                       now - abandoned_order_.front().first > keep_ms)) {
    abandoned_.erase(abandoned_order_.front().second);
    abandoned_order_.pop_front();
  }
  abandoned_[call_id] = e;
  abandoned_order_.emplace_back(now, call_id);
}

void B2bua::Impl::write_cdr(const Call& c, bool last) {
  CdrWriter* w = context_.cdrs();
  if (!w) return;
  // A Telegram line's call: its Telegram side is noted on one of the legs (CallBridge).
  std::optional<nlohmann::json> tg;
  for (const std::string* leg : {&c.a.call_id, &c.b.call_id})
    if (!tg && !leg->empty()) tg = context_.board().note(*leg, "telegram");
  w->write(c.id + "#" + std::to_string(c.started), cdr_of(c, worker_, last, tg ? &*tg : nullptr),
           last);
}

}  // namespace esg::edge
