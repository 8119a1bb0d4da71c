#include "edge/b2bua/impl.hpp"

namespace esg::edge {

void B2bua::Impl::on_refer(const std::shared_ptr<Call>& c, bool from_a, txn::TxnId server,
                           const sip::Message& req) {
  Leg& x = from_a ? c->a : c->b;
  if (c->state != Call::State::Confirmed || c->transfer || c->reinvite) {
    respond(server, req, 491, {}, {}, x.local_tag);
    return;
  }
  const auto* refer_to = req.header("Refer-To");
  if (!refer_to) refer_to = req.header("r");
  auto target =
      refer_to ? sip::parse_name_addr(refer_to->value)
               : Result<sip::NameAddr, sip::ValueError>(unexpected(sip::ValueError{"no Refer-To"}));
  if (!target || target->uri.user.empty()) {
    respond(server, req, 400, "Bad Refer-To", {}, x.local_tag);
    return;
  }
  const std::string called = target->uri.user_unescaped();
  respond(server, req, 202, {}, "Contact: " + x.contact + "\r\n", x.local_tag);
  notify(x, "SIP/2.0 100 Trying", false);
  const EdgeConfig& cfg = *c->config;
  auto tr = std::make_unique<Call::Transfer>();
  tr->from_a = from_a;
  // The remaining party calls the target, in the number plan of the referring side.
  const bool y_is_a = !from_a;
  const bool x_is_pbx = from_a == c->out;
  NormFields f;
  f.from_user = y_is_a ? c->routed.from_user : c->normalized.ruri_user;
  f.to_user = called;
  f.ruri_user = called;
  f.from_domain = f.to_domain = cfg.system_domain;
  if (!x_is_pbx) {
    auto account = c->out ? c->target_account : c->source_account;
    if (account) f = cfg.normalizer.apply(false, *account, f, cfg.system_domain).fields;
    f.to_user = f.ruri_user;
  }
  tr->routed = f;
  tr->candidates = cfg.router.candidates(x_is_pbx, x.code, f.ruri_user, f.from_user);
  c->decisions.push_back(std::string("REFER from ") + (from_a ? "A" : "B") + " to '" + called +
                         "': " + std::to_string(tr->candidates.size()) + " rule(s)");
  c->transfer = std::move(tr);
  transfer_next(c);
}

void B2bua::Impl::notify(Leg& x, const std::string& sipfrag, bool final) {
  if (!x.dialog) return;
  const std::string extra = std::string("Event: refer\r\nSubscription-State: ") +
                            (final ? "terminated;reason=noresource" : "active;expires=60") + "\r\n";
  auto m = sip::parse_message(x.dialog->build_request("NOTIFY", x.via(), 0, extra, sipfrag + "\r\n",
                                                      "message/sipfrag;version=2.0"));
  if (m) layer_.send_request(std::move(*m), x.channel, {});
}

void B2bua::Impl::transfer_next(const std::shared_ptr<Call>& c) {
  auto& tr = *c->transfer;
  const EdgeConfig& cfg = *c->config;
  while (tr.next < tr.candidates.size()) {
    const RouteRule& r = *tr.candidates[tr.next++];
    if (r.action == "reject") {
      transfer_failed(c, uint16_t(r.status));
      return;
    }
    RouteTarget t = route_target(context_, cfg, r, tr.routed);
    if (!t.why.empty()) {
      c->decisions.push_back("REFER: route " + std::to_string(r.id) + " skipped, " + t.why);
      continue;
    }
    tr.trunk = t.trunk;
    tr.code = t.code;
    Leg& n = tr.leg;
    n.code = t.code;
    n.policy = t.policy;
    n.call_id = new_call_id_();
    n.local_tag = new_tag();
    const int attempt = ++tr.attempt;
    std::weak_ptr<Call> weak = c;
    auto send = [this, weak, attempt, t](const Destination& to) {
      auto c = weak.lock();
      if (!c || !c->transfer || c->transfer->attempt != attempt) return;
      transfer_invite(c, to, t);
    };
    if (!t.resolve) {
      send(t.dest);
    } else {
      link_.resolve(t.dest, [this, weak, attempt, send](std::vector<Destination> found) {
        auto c = weak.lock();
        if (!c || !c->transfer || c->transfer->attempt != attempt) return;
        if (found.empty()) {
          transfer_attempt_failed(c, 503);
          return;
        }
        send(found.front());
      });
    }
    return;
  }
  transfer_failed(c, c->transfer->last_failure ? c->transfer->last_failure : 404);
}

void B2bua::Impl::transfer_invite(const std::shared_ptr<Call>& c, const Destination& dest,
                                  const RouteTarget& t) {
  auto& tr = *c->transfer;
  Leg& n = tr.leg;
  Leg& y = tr.from_a ? c->b : c->a;
  n.transport = dest.transport;
  const auto local = link_.local(dest);
  n.via_host = host_port(local.host, local.port);
  n.media_host = local.host;
  n.contact =
      "<sip:esg@" + n.via_host + (n.transport == "udp" ? "" : ";transport=" + n.transport) + ">";
  std::string m = "INVITE " + t.ruri + " SIP/2.0\r\n";
  m += "Via: " + n.via() + "\r\n";
  m += "Max-Forwards: 70\r\n";
  m += "From: " + t.from + ";tag=" + n.local_tag + "\r\n";
  m += "To: " + t.to + "\r\n";
  m += "Call-ID: " + n.call_id + "\r\n";
  m += "CSeq: 1 INVITE\r\n";
  m += "Contact: " + n.contact + "\r\n";
  m += "Allow: " + std::string(kAllow) + "\r\n";
  m += "User-Agent: " + options_.user_agent + "\r\n";
  if (!options_.call_id_header.empty()) m += options_.call_id_header + ": " + c->id + "\r\n";
  m += sessions_.ask();
  m += t.extra;
  // The remaining party's session description is the offer: the target answers it (through
  // the relay, on the side the referring leg had).
  const std::string offer =
      c->media && !y.sdp.empty() ? cross(*c, tr.from_a ? 1 : 0, y.sdp, n.media_host) : y.sdp;
  sent(n, offer, y.sdp_type);
  if (!offer.empty()) m += "Content-Type: " + y.sdp_type + "\r\n";
  m += "Content-Length: " + std::to_string(offer.size()) + "\r\n\r\n" + offer;
  auto parsed = sip::parse_message(m);
  if (!parsed) {
    transfer_attempt_failed(c, 500);
    return;
  }
  tr.invite_bytes = m;
  n.channel = link_.channel(dest, t.tls_verify);
  legs_[n.call_id] = {c, tr.from_a};  // the slot it will take (until then: 481)
  const int attempt = tr.attempt;
  std::weak_ptr<Call> weak = c;
  txn::ClientUser user;
  user.on_response = [this, weak, attempt](const sip::Message& r) {
    if (auto c = weak.lock()) on_transfer_response(c, attempt, r);
  };
  user.on_failure = [this, weak, attempt](uint16_t status) {
    auto c = weak.lock();
    if (c && c->transfer && c->transfer->attempt == attempt) transfer_attempt_failed(c, status);
  };
  layer_.send_request(std::move(*parsed), n.channel, std::move(user));
}

void B2bua::Impl::on_transfer_response(const std::shared_ptr<Call>& c, int attempt,
                                       const sip::Message& r) {
  const uint16_t s = r.status();
  if (!c->transfer || c->transfer->attempt != attempt || c->state == Call::State::Ended) return;
  auto& tr = *c->transfer;
  if (s < 200) return;  // NOTIFY reports 100 Trying and the final answer only
  if (s >= 300) {
    if (tr.leg.call_id.size()) legs_.erase(tr.leg.call_id);
    if (is_failover_status(s)) {
      transfer_attempt_failed(c, s);
    } else {
      transfer_failed(c, s);
    }
    return;
  }
  auto inv = sip::parse_message(tr.invite_bytes);
  if (!inv) return;
  auto d = dialog::Dialog::as_uac(*inv, r, tr.leg.contact);
  if (!d) return;
  Leg n = std::move(tr.leg);
  n.dialog = std::move(*d);
  n.dialog->confirm();
  n.channel.send(n.dialog->build_request("ACK", n.via(), inv->cseq().number));
  if (has_sdp(r)) {
    n.sdp = std::string(r.body());
    n.sdp_type = content_type_of(r);
  }
  const bool from_a = tr.from_a;
  Leg& x = from_a ? c->a : c->b;
  notify(x, "SIP/2.0 200 OK", true);
  send_in_dialog(x, "BYE", reason_line(200, "EB2B. Call transferred"));
  // The referring leg's trunk goes, the new leg's comes.
  if (from_a) {
    for (const auto& k : c->trunks)
      context_.trunks().release(k);
    c->trunks.clear();
    c->trunks.push_back(tr.trunk);
  } else {
    if (!c->attempt_trunk.empty()) context_.trunks().release(c->attempt_trunk);
    c->attempt_trunk = tr.trunk;
    c->target_code = tr.code;
  }
  c->decisions.push_back("REFER: " + tr.code + " answered; " + (from_a ? "A" : "B") +
                         " leg replaced");
  const std::string old_id = x.call_id;
  x = std::move(n);
  if (c->media) {
    c->media->reset_side(from_a ? 0 : 1);  // a new peer on that side
    c->media->set_codecs(from_a ? 0 : 1, x.policy.codecs);
    c->media->set_dtmf(from_a ? 0 : 1, x.policy.dtmf);
    c->media->set_srtp(from_a ? 0 : 1, x.policy.srtp);
  }
  legs_[x.call_id] = {c, from_a};
  sessions_.answered(c, from_a, r, options_.session.session_expires);  // the new leg's timer
  // The old leg's BYE is answered by its transaction; late requests on it get 481.
  if (old_id != x.call_id) legs_.erase(old_id);
  c->transfer.reset();
  // The remaining party now talks to the new leg: offer it the new session description.
  Leg& y = from_a ? c->b : c->a;
  if (y.dialog && !x.sdp.empty()) {
    const std::string offer = cross(*c, from_a ? 0 : 1, x.sdp);
    sent(y, offer, x.sdp_type);
    // The re-INVITE refreshes the remaining leg's session timer too (RFC 4028 §7.4).
    const uint32_t asked = sessions_.kept_seconds(y);
    auto m = sip::parse_message(
        y.dialog->build_request("INVITE", y.via(), 0, sessions_.keep(y), offer, x.sdp_type));
    if (m) {
      std::weak_ptr<Call> weak = c;
      const bool y_is_a = !from_a;
      txn::ClientUser user;
      user.on_response = [this, weak, y_is_a, asked](const sip::Message& r) {
        auto c = weak.lock();
        if (!c || r.status() < 200) return;
        Leg& y = y_is_a ? c->a : c->b;
        if (r.status() >= 300 || !y.dialog) return;
        y.dialog->on_refresh_response(r);
        sessions_.answered(c, y_is_a, r, asked);
        if (has_sdp(r)) {
          y.sdp = std::string(r.body());
          y.sdp_type = content_type_of(r);
          crossed(*c, y_is_a, r);  // the relay follows the answer
        }
        y.channel.send(y.dialog->build_request("ACK", y.via(), r.cseq().number));
      };
      layer_.send_request(std::move(*m), y.channel, std::move(user));
    }
  }
  publish(*c);
}

void B2bua::Impl::transfer_attempt_failed(const std::shared_ptr<Call>& c, uint16_t status) {
  auto& tr = *c->transfer;
  if (!tr.trunk.empty()) context_.trunks().release(tr.trunk);
  tr.trunk.clear();
  tr.last_failure = status;
  c->decisions.push_back("REFER: " + tr.code + " failed with " + std::to_string(status));
  transfer_next(c);
}

void B2bua::Impl::transfer_failed(const std::shared_ptr<Call>& c, uint16_t status) {
  auto& tr = *c->transfer;
  if (!tr.trunk.empty()) context_.trunks().release(tr.trunk);
  if (!tr.leg.call_id.empty()) legs_.erase(tr.leg.call_id);
  const std::string reason(sip::reason_phrase(status));
  notify(tr.from_a ? c->a : c->b, "SIP/2.0 " + std::to_string(status) + " " + reason, true);
  c->decisions.push_back("REFER failed: " + std::to_string(status));
  c->transfer.reset();
}

}  // namespace esg::edge
