#include "edge/b2bua/impl.hpp"

#include "media/srtp.hpp"

#include <algorithm>

namespace esg::edge {

void B2bua::Impl::end_all(const std::string& why) {
  std::vector<std::shared_ptr<Call>> all;
  for (const auto& [id, leg] : legs_) {
    if (leg.is_a && leg.call && leg.call->state != Call::State::Ended) all.push_back(leg.call);
  }
  for (const auto& c : all) {
    c->decisions.push_back("ended by esg: " + why);
    if (c->state >= Call::State::Answered) {
      hang_up(c, true, why);
      continue;
    }
    // Not answered yet: the caller hears 503 and may try another instance; the callee's
    // INVITE is cancelled (once it has answered provisionally, RFC 3261 §9.1).
    if (c->b_invite) {
      if (c->b_provisional) {
        send_cancel(*c);
      } else {
        c->cancel_pending = true;
      }
    }
    finish_a(c, 503, {}, "Retry-After: 5\r\n" + reason_line(503, "EB2B. " + why), "esg", why);
  }
}

bool B2bua::Impl::on_request(txn::TxnId server, const sip::Message& req, const txn::Channel& from) {
  if (req.to_tag().empty()) {
    if (req.method() != sip::Method::Invite) return false;
    start(server, req, from);
    return true;
  }
  auto it = legs_.find(std::string(req.call_id()));
  if (it == legs_.end()) return false;
  std::shared_ptr<Call> c = it->second.call;
  const bool from_a = it->second.is_a;
  Leg& x = from_a ? c->a : c->b;
  Leg& y = from_a ? c->b : c->a;
  if (req.to_tag() != x.local_tag || !x.dialog) return false;
  if (req.method() == sip::Method::Ack) {
    on_ack(c, from_a, req);
    return true;
  }
  if (auto r = x.dialog->on_request(req); !r) {
    if (r.error() == dialog::DialogErrc::CSeqTooLow)
      respond(server, req, 500, "CSeq Out Of Order", {}, x.local_tag);
    else
      return false;
    return true;
  }
  switch (req.method()) {
    case sip::Method::Bye:
      on_bye(c, from_a, server, req);
      return true;
    case sip::Method::Refer:
      on_refer(c, from_a, server, req);
      return true;
    case sip::Method::Cancel:
      return false;
    case sip::Method::Info:
      if (!info_to_media(*c, from_a, server, req, x, y)) relay(c, from_a, server, req, x, y);
      return true;
    default:
      relay(c, from_a, server, req, x, y);
      return true;
  }
}

bool B2bua::Impl::on_cancel(txn::TxnId invite, const sip::Message& cancel) {
  auto it = by_invite_.find(invite);
  if (it == by_invite_.end()) return false;
  std::shared_ptr<Call> c = it->second;
  if (c->state >= Call::State::Answered) return true;
  reply_a(*c, 487, {}, {});
  c->cancelled = true;
  c->decisions.push_back("CANCEL from the caller");
  if (const auto* h = cancel.header(sip::HeaderId::Reason)) {
    c->cancel_reason = std::string(h->value);
    c->decisions.push_back("CANCEL reason: " + c->cancel_reason);
  }
  if (c->b_invite) {
    if (c->b_provisional) {
      send_cancel(*c);
    } else {
      c->cancel_pending = true;  // RFC 3261 §9.1: not before a provisional response
    }
  }
  end(c, "caller", "CANCEL", 487);
  return true;
}

bool B2bua::Impl::on_stray_response(const sip::Message& r) {
  auto it = legs_.find(std::string(r.call_id()));
  const bool answer = r.cseq().method == "INVITE" && r.status() >= 200 && r.status() < 300;
  if (it == legs_.end() && answer) {
    // An INVITE we gave up on (its transaction timed out, the call moved on or ended) was
    // answered after all: confirm and end that session at once, or the callee stays off-hook.
    auto gone = abandoned_.find(std::string(r.call_id()));
    if (gone == abandoned_.end()) return false;
    const Call::Earlier e = gone->second;
    abandoned_.erase(gone);
    ack_and_bye(e, r, 408, "answered after the INVITE timed out");
    return true;
  }
  if (it == legs_.end()) return false;
  auto& c = it->second.call;
  Leg& leg = it->second.is_a ? c->a : c->b;
  if (answer && leg.call_id == r.call_id() && leg.refresh_acked &&
      r.cseq().number == leg.refresh_acked) {
    leg.channel.send(leg.refresh_ack);  // esg's refresh re-INVITE (sessions.cpp): ACK again
    return true;
  }
  if (it->second.is_a) return false;
  if (answer && !c->b_ack.empty()) {
    c->b.channel.send(c->b_ack);
    return true;
  }
  return false;
}

void B2bua::Impl::start(txn::TxnId server, const sip::Message& req, const txn::Channel& from) {
  if (draining_) {
    respond(server, req, 503, {},
            "Retry-After: 5\r\n" + reason_line(503, "EB2B. This instance is shutting down"));
    return;
  }
  if (live_ >= options_.max_calls) {
    respond(server, req, 503, "Too Many Calls",
            "Retry-After: 5\r\n" + reason_line(503, "EB2B. Call limit of this worker reached"));
    return;
  }
  if (req.max_forwards() && *req.max_forwards() == 0) {
    respond(server, req, 483, {});
    return;
  }
  std::string too_small;
  if (const uint16_t s = sessions_.refuse(req, &too_small)) {
    respond(server, req, s, {}, too_small);  // RFC 4028 §9: 422 with our Min-SE
    return;
  }
  auto c = std::make_shared<Call>();
  c->id = std::string(req.call_id());
  c->config = context_.config();
  c->a_invite = server;
  c->a_cseq = req.cseq().number;
  Leg& a = c->a;
  a.call_id = c->id;
  a.local_tag = new_tag();
  a.channel = from;
  a.transport = lower(req.top_via().transport);
  if (a.transport != "tcp" && a.transport != "tls") a.transport = "udp";
  const auto local = link_.local({a.transport, req.source().addr, req.source().port});
  a.via_host = host_port(local.host, local.port);
  a.media_host = local.host;
  a.contact =
      "<sip:esg@" + a.via_host + (a.transport == "udp" ? "" : ";transport=" + a.transport) + ">";
  auto d = dialog::Dialog::as_uas(req, a.local_tag, a.contact);
  if (!d) {
    // RFC 3261 §8.1.1.8: an INVITE must carry a Contact (the dialog's remote target).
    respond(server, req, 400,
            d.error() == dialog::DialogErrc::NoContact ? "Missing Contact" : "Bad Dialog");
    return;
  }
  a.dialog = std::move(*d);
  if (has_sdp(req)) {
    a.sdp = std::string(req.body());
    a.sdp_type = content_type_of(req);
  }
  c->received.from_user = req.from().uri.user_unescaped();
  c->received.from_display = req.from().display_name_unquoted();
  c->received.from_domain = std::string(req.from().uri.host);
  c->received.to_user = req.to().uri.user_unescaped();
  c->received.to_domain = std::string(req.to().uri.host);
  c->received.ruri_user = req.request_uri().user_unescaped();

  const std::string& src = req.source().addr;
  const EdgeConfig& cfg = *c->config;
  if (auto line = context_.telegram().at(src, req.source().port)) {
    start_from_telegram(c, server, req, *line);
    return;
  }
  auto pbx =
      cfg.pbx_from(src, [this](const accounts::PbxConnection& p) { return context_.resolved(p); });
  if (!pbx && context_.registrar()) {
    if (auto code = context_.registrar()->pbx_at(src)) pbx = cfg.pbx(*code);
  }
  if (!pbx && context_.registrar()) {
    bool failed = false;
    if (auto code = context_.registrar()->authenticate(req, &failed)) {
      pbx = cfg.pbx(*code);
      if (pbx) c->decisions.push_back("PBX connection " + *code + " authenticated");
    } else if (failed) {
      context_.count_failure(src, "wrong credentials in INVITE");
    }
  }
  if (pbx) {
    // Who is calling (CONTRACTS.md): a PBX connection's address is the inside.
    c->out = true;
    c->source_pbx = pbx;
    a.code = pbx->code;
    a.policy = LegPolicy::of(*pbx);
    c->decisions.push_back("from PBX connection " + pbx->code + " (address " + src + ")");
    if (!context_.trunks().acquire("pbx:" + pbx->code, pbx->trunks)) {
      refuse(c, server, req, 503,
             "EB2B. Trunk limit of PBX connection " + pbx->code + " reached (" +
                 std::to_string(pbx->trunks) + " calls)");
      return;
    }
    c->trunks.push_back("pbx:" + pbx->code);
    c->normalized = c->received;
  } else {
    MatchInput in;
    in.to_user = req.to().uri.user;
    in.to_host = req.to().uri.host;
    in.from_host = req.from().uri.host;
    std::optional<sip::ContactList> contacts;
    if (auto cl = req.contacts(); cl && !cl->items.empty()) {
      contacts = std::move(*cl);
      in.has_contact = true;
      in.contact_user = contacts->items.front().uri.user;
      in.contact_host = contacts->items.front().uri.host;
    }
    auto m = cfg.accounts ? cfg.accounts->match(in) : MatchResult{};
    c->decisions.push_back(m.decision);
    if (!m.account) {
      context_.count_failure(src, "unknown account");
      refuse(c, server, req, 404, "EB2B. Unknown account in contact");
      return;
    }
    if (!cfg.accounts->source_allowed(*m.account, src, context_.resolved(*m.account))) {
      // Answered like an unknown account, so that scanners cannot tell which accounts exist;
      // the call's decisions keep the real reason for the operator.
      c->decisions.push_back("source address " + src + " is not an address of account " +
                             m.account->code);
      context_.count_failure(src, "account " + m.account->code + " from a foreign address");
      refuse(c, server, req, 404, "EB2B. Unknown account in contact");
      return;
    }
    c->source_account = m.account;
    a.code = m.account->code;
    a.policy = LegPolicy::of(*m.account);
    if (!context_.trunks().acquire("acc:" + m.account->code, m.account->trunks)) {
      refuse(c, server, req, 503,
             "EB2B. Trunk limit of account " + m.account->code + " reached (" +
                 std::to_string(m.account->trunks) + " calls)");
      return;
    }
    c->trunks.push_back("acc:" + m.account->code);
    auto n = cfg.normalizer.apply(false, *m.account, c->received, cfg.system_domain);
    for (const auto& s : n.steps) {
      c->decisions.push_back("normalization rule " + std::to_string(s.rule) + ": " + s.field +
                             " '" + s.before + "' -> '" + s.after + "'");
    }
    c->normalized = std::move(n.fields);
  }
  c->routed = c->normalized;
  const std::string called = c->normalized.ruri_user;
  const std::string caller = c->normalized.from_user;
  c->candidates = cfg.router.candidates(c->out, a.code, called, caller);
  c->decisions.push_back("routing " + std::string(c->out ? "out" : "in") + " from " + a.code +
                         ", called '" + called + "', caller '" + caller +
                         "': " + std::to_string(c->candidates.size()) + " rule(s)");
  begin(c, server);
}

void B2bua::Impl::start_from_telegram(const std::shared_ptr<Call>& c, txn::TxnId server,
                                      const sip::Message& req, const TelegramLineInfo& line) {
  Leg& a = c->a;
  c->from_telegram = true;
  a.code = line.code;
  a.policy = telegram_leg_policy();
  c->decisions.push_back("from Telegram line " + line.code);
  if (!context_.trunks().acquire("tg:" + line.code, line.trunks)) {
    refuse(c, server, req, 503,
           "EB2B. Trunk limit of Telegram line " + line.code + " reached (" +
               std::to_string(line.trunks) + " calls)");
    return;
  }
  c->trunks.push_back("tg:" + line.code);
  take_tg_user(*c, req);
  c->normalized = c->received;
  c->normalized.from_domain.clear();  // the PBX's own domain, not the line's loopback address
  c->normalized.to_domain.clear();
  c->routed = c->normalized;
  c->own_rule = std::make_unique<RouteRule>();
  c->own_rule->action = "pbx";
  c->own_rule->target = line.pbx;
  // The menu of lines (issue 23): the entry the user picked names another PBX connection.
  if (const sip::HeaderField* asked = req.header("X-ESG-PBX"); asked && !asked->value.empty()) {
    const std::string code(asked->value);
    if (std::find(line.menu_pbxs.begin(), line.menu_pbxs.end(), code) != line.menu_pbxs.end()) {
      c->own_rule->target = code;
      c->decisions.push_back("the menu of line " + line.code + " picked PBX connection " + code);
    } else {
      c->decisions.push_back("X-ESG-PBX " + code + " is not in the menu of line " + line.code +
                             ": ignored");
    }
  }
  c->own_rule->number = c->normalized.ruri_user;
  c->own_rule->comment = "Telegram line " + line.code;
  c->candidates = {c->own_rule.get()};
  c->decisions.push_back("to the PBX connection " + c->own_rule->target + ", number '" +
                         c->normalized.ruri_user + "'");
  begin(c, server);
}

void B2bua::Impl::begin(const std::shared_ptr<Call>& c, txn::TxnId server) {
  log::call("b2bua", spdlog::level::debug, c->id, "{} call from {}: '{}' to '{}'",
            c->out ? "outgoing" : "incoming", c->a.code, c->normalized.from_user,
            c->normalized.ruri_user);
  legs_[c->id] = {c, true};
  by_invite_[server] = c;
  ++live_;
  context_.board().count_attempt(c->out ? "out" : "in");
  publish(*c);
  write_cdr(*c, false);
  try_next(c);
}

void B2bua::Impl::refuse(const std::shared_ptr<Call>& c, txn::TxnId server, const sip::Message& req,
                         uint16_t status, const std::string& why) {
  for (const auto& t : c->trunks)
    context_.trunks().release(t);
  c->trunks.clear();
  c->decisions.push_back("refused " + std::to_string(status) + ": " + why);
  log::call("b2bua", spdlog::level::debug, c->id, "INVITE from {} refused {}: {}",
            req.source().addr, status, why);
  respond(server, req, status, {}, reason_line(status, why), c->a.local_tag);
}

void B2bua::Impl::try_next(const std::shared_ptr<Call>& c) {
  const EdgeConfig& cfg = *c->config;
  while (c->next < c->candidates.size()) {
    const RouteRule& r = *c->candidates[c->next++];
    const std::string rule = "route " + std::to_string(r.id);
    if (r.action == "reject") {
      c->decisions.push_back(rule + ": reject " + std::to_string(r.status));
      finish_a(c, uint16_t(r.status), {}, reason_line(r.status, "EB2B. Rejected by route"), "route",
               "rejected by route");
      return;
    }
    RouteTarget t = route_target(context_, cfg, r, c->routed);
    if (!t.why.empty()) {
      c->skipped.push_back(t.why);
      c->decisions.push_back(rule + ": skipped, " + t.why);
      continue;
    }
    for (const auto& d : t.decisions)
      c->decisions.push_back(rule + ": " + d);
    c->attempt_trunk = t.trunk;
    log::call("b2bua", spdlog::level::debug, c->id, "route {}: to {} {} as '{}'", r.id, t.kind,
              t.code, t.sent.ruri_user);
    c->target_kind = t.kind;
    c->target_code = t.code;
    c->target_account = t.account;
    c->normalized = t.sent;
    Leg& b = c->b;
    b.code = t.code;
    b.policy = c->from_telegram && t.kind == "pbx" ? pbx_leg_for_telegram(t.policy) : t.policy;
    dial(c, t.dest, t.resolve, t.tls_verify, t.ruri, t.from, t.to, t.extra);
    return;
  }
  // Nothing (more) to try.
  if (c->last_failure) {
    finish_a(
        c, c->last_failure, {},
        c->last_headers.empty() ? reason_line(c->last_failure, c->last_reason) : c->last_headers,
        "callee", c->last_reason);
  } else if (!c->skipped.empty()) {
    std::string why = "EB2B. No available route:";
    for (const auto& s : c->skipped)
      why += " " + s + ";";
    why.pop_back();
    finish_a(c, 503, {}, reason_line(503, why), "esg", why);
  } else {
    finish_a(c, 404, {}, reason_line(404, "EB2B. No route"), "esg", "no route");
  }
}

void B2bua::Impl::dial(const std::shared_ptr<Call>& c, const Destination& dest, bool resolve,
                       bool tls_verify, std::string ruri, std::string from, std::string to,
                       std::string extra) {
  const int attempt = ++c->attempt;
  if (!resolve) {
    send_invite(c, dest, tls_verify, std::move(ruri), std::move(from), std::move(to), extra);
    return;
  }
  std::weak_ptr<Call> weak = c;
  link_.resolve(dest, [this, weak, attempt, dest, tls_verify, ruri, from, to,
                       extra](std::vector<Destination> found) {
    auto c = weak.lock();
    if (!c || c->attempt != attempt || c->state == Call::State::Ended) return;
    if (found.empty()) {
      c->decisions.push_back(c->target_code + ": cannot resolve " + dest.host);
      failed_attempt(c, 503, "cannot resolve " + dest.host);
      return;
    }
    send_invite(c, found.front(), tls_verify, ruri, from, to, extra);
  });
}

void B2bua::Impl::send_invite(const std::shared_ptr<Call>& c, const Destination& dest,
                              bool tls_verify, std::string ruri, std::string from, std::string to,
                              const std::string& extra, const std::string& auth) {
  const sip::Message* areq = layer_.request(c->a_invite);
  if (!areq) {
    end(c, "caller", "the caller's transaction ended", 0);
    return;
  }
  Leg& b = c->b;
  if (auth.empty()) {
    // A new target: a new Call-ID and tag (the old ones may still see stray answers).
    if (!b.call_id.empty()) {
      legs_.erase(b.call_id);
      // An earlier target may still answer 2xx (a race with our CANCEL): keep what taking
      // it down needs. Bounded by the number of routes tried.
      c->earlier.push_back({c->b_invite_bytes, b.channel, b.contact, b.via_host, b.transport});
      abandon(b.call_id, c->earlier.back());
    }
    b.call_id = new_call_id_();
    b.local_tag = new_tag();
    b.dialog.reset();
    c->b_cseq = 1;
    c->challenges = 0;
    c->b_provisional = false;
    legs_[b.call_id] = {c, false};
  } else {
    ++c->b_cseq;
  }
  b.transport = dest.transport;
  const auto local = link_.local(dest);
  b.via_host = host_port(local.host, local.port);
  b.media_host = local.host;
  b.contact =
      "<sip:esg@" + b.via_host + (b.transport == "udp" ? "" : ";transport=" + b.transport) + ">";
  // The caller's offer, pointed at our relay when it carries this call's media: always
  // (media.relay), for legs pinned to it (media=true), or when the legs share no codec or
  // only one of them takes SRTP.
  // A callee that requires SRTP offered no keys (a caller with srtp optional may offer plain
  // RTP) also needs the relay: esg then keys that leg itself.
  const bool transcode =
      (has_sdp(*areq) && media::needs_transcoding(areq->body(), b.policy.codecs)) ||
      (c->a.policy.srtp == "off") != (b.policy.srtp == "off") ||
      (b.policy.srtp == "required" && has_sdp(*areq) && !media::srtp_keyed(areq->body()));
  if (!c->media && media_.poller &&
      (media_.relay_all || c->a.policy.media || b.policy.media || transcode)) {
    c->media = std::make_unique<media::Session>(*media_.poller, *media_.ports, *media_.options,
                                                *media_.counters);
    c->decisions.push_back(media_.relay_all || c->a.policy.media || b.policy.media
                               ? "media relayed by esg"
                               : "media relayed by esg: no codec or SRTP in common with " + b.code);
  }
  if (c->media) {
    c->media->set_codecs(0, c->a.policy.codecs);
    c->media->set_codecs(1, b.policy.codecs);
    c->media->set_dtmf(0, c->a.policy.dtmf);
    c->media->set_dtmf(1, b.policy.dtmf);
    c->media->set_srtp(0, c->a.policy.srtp);
    c->media->set_srtp(1, b.policy.srtp);
    std::weak_ptr<Call> weak = c;
    c->media->on_dtmf = [this, weak](int side, char digit, int ms) {
      if (auto c = weak.lock()) send_dtmf_info(*c, side == 0 ? c->a : c->b, digit, ms);
    };
  }
  std::string body(areq->body());
  if (has_sdp(*areq)) {
    std::string why;
    body = cross(*c, 0, body, b.media_host, &why);
    if (!why.empty()) {
      const uint16_t status = why == media::kNoPorts ? 503 : 488;
      finish_a(c, status, {}, reason_line(status, "EB2B. Media: " + why), "esg", why);
      return;
    }
  }
  const uint8_t mf = areq->max_forwards() ? uint8_t(*areq->max_forwards() - 1) : 69;
  std::string m = "INVITE " + ruri + " SIP/2.0\r\n";
  m += "Via: " + b.via() + "\r\n";
  m += "Max-Forwards: " + std::to_string(mf) + "\r\n";
  m += "From: " + from + ";tag=" + b.local_tag + "\r\n";
  m += "To: " + to + "\r\n";
  m += "Call-ID: " + b.call_id + "\r\n";
  m += "CSeq: " + std::to_string(c->b_cseq) + " INVITE\r\n";
  m += "Contact: " + b.contact + "\r\n";
  m += "Allow: " + std::string(kAllow) + "\r\n";
  m += "User-Agent: " + options_.user_agent + "\r\n";
  if (!options_.call_id_header.empty()) m += options_.call_id_header + ": " + c->id + "\r\n";
  m += auth;
  // RFC 3262 end to end: reliable provisionals only when the caller can PRACK them.
  if (has_option(*areq, sip::HeaderId::Require, "100rel")) {
    m += "Require: 100rel\r\n";
  } else if (has_option(*areq, sip::HeaderId::Supported, "100rel")) {
    m += "Supported: 100rel\r\n";
  }
  m += sessions_.ask();
  m += header_lines(*areq, c->a.policy.passheaders, b.policy.passheaders);
  m += extra;
  if (!body.empty()) m += "Content-Type: " + content_type_of(*areq) + "\r\n";
  m += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  m.append(body);
  auto parsed = sip::parse_message(m);
  if (!parsed) {
    c->decisions.push_back("cannot build the INVITE: " + std::string(parsed.error().reason));
    failed_attempt(c, 500, "cannot build the INVITE");
    return;
  }
  c->b_invite_bytes = m;
  c->b_dest = dest;
  b.sent_sdp = body;
  b.sent_sdp_type = body.empty() ? std::string() : content_type_of(*areq);
  b.channel = link_.channel(dest, tls_verify);
  c->state = Call::State::Calling;
  const int attempt = c->attempt;
  std::weak_ptr<Call> weak = c;
  txn::ClientUser user;
  user.on_response = [this, weak, attempt](const sip::Message& r) {
    if (auto c = weak.lock()) on_b_response(c, attempt, r);
  };
  user.on_failure = [this, weak, attempt](uint16_t status, std::string_view why) {
    auto c = weak.lock();
    if (!c || c->attempt != attempt) return;
    if (c->state == Call::State::Ended) return;
    // A transport error names itself ("TCP connect to ... refused"): the caller's 503 says so.
    failed_attempt(c, status,
                   !why.empty()    ? "cannot reach " + c->target_code + ": " + std::string(why)
                   : status == 408 ? "no answer from " + c->target_code
                                   : "cannot reach " + c->target_code);
  };
  c->b_final = false;
  c->b_invite = layer_.send_request(std::move(*parsed), b.channel, std::move(user));
  publish(*c);
}

void B2bua::Impl::on_b_response(const std::shared_ptr<Call>& c, int attempt,
                                const sip::Message& r) {
  const uint16_t s = r.status();
  Leg& b = c->b;
  if (attempt != c->attempt) {
    // An earlier target answering late: it must not win; take its 2xx down.
    if (s >= 200 && s < 300) ack_and_bye(c, r);
    return;
  }
  if (s >= 200) c->b_final = true;
  if (s < 200) {
    if (s == 100) return;
    c->b_provisional = true;
    if (c->cancel_pending) {
      c->cancel_pending = false;
      send_cancel(*c);
      return;
    }
    if (c->state == Call::State::Ended) return;
    if (!r.to_tag().empty() && !b.dialog) {
      if (auto inv = sip::parse_message(c->b_invite_bytes)) {
        if (auto d = dialog::Dialog::as_uac(*inv, r, b.contact)) b.dialog = std::move(*d);
      }
    }
    if (has_sdp(r)) {
      b.sdp = std::string(r.body());
      b.sdp_type = content_type_of(r);
    }
    std::string extra = "Contact: " + c->a.contact + "\r\n" +
                        header_lines(r, c->a.policy.passheaders, b.policy.passheaders);
    if (const auto* rseq = r.header("RSeq")) {
      // A reliable provisional: the caller PRACKs it through us (RAck mapped in relay()).
      extra += "Require: 100rel\r\nRSeq: " + std::string(rseq->value) + "\r\n";
    }
    // A description the relay refuses is not passed on as it is (it may be SRTP-less).
    std::string why;
    std::string early = has_sdp(r) ? cross(*c, 1, r.body(), {}, &why) : std::string();
    if (why == media::kSrtpMissing) {
      // An early answer without keys where SRTP is required: the final answer will have none
      // either, and early media would cross in clear. The callee is cancelled and the attempt
      // fails like a 488; the next target is tried (issue 20).
      const std::string text = refused_media(*c, why);
      send_cancel(*c, reason_line(488, text));
      ++c->attempt;  // its 487 (or a 2xx after all, taken down) belongs to the past
      failed_attempt(c, 488, text);
      return;
    }
    if (!why.empty()) early.clear();
    if (!early.empty()) {
      c->a.sent_sdp = early;
      c->a.sent_sdp_type = content_type_of(r);
    }
    reply_a(*c, s, r.reason(), extra, early, content_type_of(r));
    if (!c->ringing_told) {
      c->ringing_told = true;
      if (c->target_kind == "telegram") take_tg_user(*c, r);
      tell(*c, "call.ringing");
    }
    if (!c->ring_timer) start_ring_timer(c);
    c->state = Call::State::Early;
    return;
  }
  if (s < 300) {
    if (c->state == Call::State::Answered || c->state == Call::State::Confirmed) {
      if (!c->b_ack.empty()) b.channel.send(c->b_ack);  // our ACK was lost
      return;
    }
    if (c->cancelled || c->state == Call::State::Ended) {
      ack_and_bye(c, r);
      return;
    }
    auto inv = sip::parse_message(c->b_invite_bytes);
    if (inv) {
      if (auto d = dialog::Dialog::as_uac(*inv, r, b.contact)) {
        b.dialog = std::move(*d);
      } else if (b.dialog) {
        b.dialog->on_refresh_response(r);
      }
    }
    if (!b.dialog) {
      ack_and_bye(c, r);
      failed_attempt(c, 502, "unusable 2xx from " + c->target_code);
      return;
    }
    // An answer the relay refuses (no SRTP key from a leg that requires it, a broken
    // description): the callee is hung up and the attempt fails like a 488.
    std::string why;
    const std::string answer = has_sdp(r) ? cross(*c, 1, r.body(), {}, &why) : std::string();
    if (!why.empty()) {
      const std::string text = refused_media(*c, why);
      ack_and_bye(c, r, 488, text);
      failed_attempt(c, 488, text);
      return;
    }
    b.dialog->confirm();
    stop_ring_timer(*c);
    if (has_sdp(r)) {
      b.sdp = std::string(r.body());
      b.sdp_type = content_type_of(r);
    }
    std::string extra = "Contact: " + c->a.contact + "\r\nAllow: " + kAllow + "\r\n" +
                        header_lines(r, c->a.policy.passheaders, b.policy.passheaders);
    const sip::Message* areq = layer_.request(c->a_invite);
    if (!areq) {
      ack_and_bye(c, r);
      end(c, "caller", "the caller's transaction ended", 0);
      return;
    }
    sessions_.answered(c, false, r, options_.session.session_expires);
    extra += sessions_.answer(c, true, *areq);
    std::string ok = with_body(sip::build_response(*areq, s, r.reason(), c->a.local_tag, extra),
                               content_type_of(r), answer);
    layer_.respond(c->a_invite, s, ok);
    if (!answer.empty()) {
      c->a.sent_sdp = answer;
      c->a.sent_sdp_type = content_type_of(r);
    }
    c->a.dialog->confirm();
    by_invite_.erase(c->a_invite);
    std::weak_ptr<Call> weak = c;
    c->ok_to_a = std::make_unique<dialog::Retransmitter>(
        timers_, tc_, c->a.channel.reliable, c->a.channel.send, [this, weak] {
          // RFC 3261 §13.3.1.4: no ACK within 64*T1 ends the session.
          if (auto c = weak.lock()) hang_up(c, true, "no ACK from the caller");
        });
    c->ok_to_a->start(ok, false);
    c->state = Call::State::Answered;
    c->answered = now_ms();
    log::call("b2bua", spdlog::level::debug, c->id, "answered {} by {}", s, c->target_code);
    c->final_status = s;
    start_media_timer(c);
    publish(*c);
    write_cdr(*c, false);
    if (c->target_kind == "telegram") take_tg_user(*c, r);
    tell(*c, "call.answered");
    return;
  }
  // A final failure: the INVITE is over (its transaction ACKs it).
  if (c->state == Call::State::Ended) return;
  c->b_invite = 0;
  if ((s == 401 || s == 407) && c->target_account && c->challenges == 0) {
    const auto* h =
        r.header(s == 401 ? sip::HeaderId::WwwAuthenticate : sip::HeaderId::ProxyAuthenticate);
    auto ch = h ? sip::auth::parse_challenge(h->value)
                : Result<sip::auth::Challenge, sip::ValueError>(
                      unexpected(sip::ValueError{"no challenge"}));
    auto inv = sip::parse_message(c->b_invite_bytes);
    if (ch && inv) {
      const auto& acc = *c->target_account;
      const std::string uri(inv->request_uri().text);
      auto answer = c->digest.answer(*ch, {acc.username, acc.pwd, "INVITE", uri, inv->body()});
      if (answer) {
        ++c->challenges;
        c->decisions.push_back("account " + acc.code + " challenged the INVITE (" +
                               std::to_string(s) + "): answered");
        const std::string auth =
            std::string(s == 401 ? "Authorization: " : "Proxy-Authorization: ") + *answer + "\r\n";
        send_invite(c, c->b_dest, acc.tls_verify, uri,
                    std::string(inv->from().text).substr(0, inv->from().text.find(";tag=")),
                    std::string(inv->to().text), {}, auth);
        return;
      }
    }
  }
  c->decisions.push_back(c->target_code + " answered " + std::to_string(s) + " " +
                         std::string(r.reason()));
  if (is_failover_status(s) && !c->cancelled) {
    // Its Retry-After and Reason reach the caller if no other target answers.
    failed_attempt(c, s, std::string(r.reason()), header_lines(r, kFailureHeaders));
    return;
  }
  const std::string extra = header_lines(r, kFailureHeaders) +
                            header_lines(r, c->a.policy.passheaders, b.policy.passheaders);
  finish_a(c, s, r.reason(), extra, "callee", std::to_string(s) + " " + std::string(r.reason()));
}

std::string B2bua::Impl::cross(Call& c, int from, std::string_view body,
                               const std::string& advertise, std::string* why) {
  if (body.empty()) return std::string(body);
  if (!c.media) {
    // Without the relay a description reaches the other peer as it is, keys and all (they go
    // end to end): where either leg requires SRTP, it must carry them.
    if (why && (c.a.policy.srtp == "required" || c.b.policy.srtp == "required") &&
        !media::srtp_keyed(body)) {
      c.decisions.push_back(std::string("media: ") + media::kSrtpMissing);
      *why = media::kSrtpMissing;
    }
    return std::string(body);
  }
  const std::string& host = !advertise.empty() ? advertise : (from == 0 ? c.b : c.a).media_host;
  auto r = c.media->relay_description(from, body, host);
  if (!r) {
    c.decisions.push_back("media: " + r.error());
    if (why) *why = r.error();
    return std::string(body);
  }
  return std::move(*r);
}

std::string B2bua::Impl::crossed(Call& c, bool from_a, const sip::Message& m) {
  return has_sdp(m) ? cross(c, from_a ? 0 : 1, m.body()) : std::string(m.body());
}

void B2bua::Impl::send_dtmf_info(Call& c, Leg& leg, char digit, int ms) {
  if (!leg.dialog || c.state == Call::State::Ended) return;
  const std::string body =
      std::string("Signal=") + digit + "\r\nDuration=" + std::to_string(ms > 0 ? ms : 160) + "\r\n";
  auto m = sip::parse_message(
      leg.dialog->build_request("INFO", leg.via(), 0, {}, body, "application/dtmf-relay"));
  if (m) layer_.send_request(std::move(*m), leg.channel, {});
  c.decisions.push_back(std::string("DTMF ") + digit + " sent as INFO to " + leg.code);
}

bool B2bua::Impl::info_to_media(Call& c, bool from_a, txn::TxnId server, const sip::Message& req,
                                Leg& x, Leg& y) {
  if (!c.media || y.policy.dtmf == "info" || c.state == Call::State::Ended) return false;
  const auto key = b2bua_text::dtmf_of_info(req);
  if (!key || !c.media->send_digit(from_a ? 1 : 0, key->key, key->ms)) return false;
  respond(server, req, 200, {}, {}, x.local_tag);
  c.decisions.push_back(std::string("DTMF ") + key->key + " from INFO sent to " + y.code +
                        (y.policy.dtmf == "inband" ? " as tones" : " as events"));
  return true;
}

void B2bua::Impl::start_media_timer(const std::shared_ptr<Call>& c) {
  if (!c->media) return;
  if (!c->media_since) c->media_since = media::steady_ms();
  std::weak_ptr<Call> weak = c;
  c->media_timer = timers_.start(std::chrono::milliseconds(1000), [this, weak] {
    auto c = weak.lock();
    if (!c) return;
    c->media_timer = 0;
    if (c->state == Call::State::Ended || !c->media) return;
    publish(*c);
    const int64_t now = media::steady_ms();
    if (c->media->on_hold()) c->media_since = now;
    const int64_t last = std::max(c->media->last_packet_ms(), c->media_since);
    if (media_.timeout > 0 && now - last >= int64_t(media_.timeout) * 1000) {
      ++media_.counters->timeouts;
      c->decisions.push_back("media timeout");
      hang_up(c, true, "Media timeout: no RTP for " + std::to_string(media_.timeout) + " s");
      return;
    }
    start_media_timer(c);
  });
}

void B2bua::Impl::start_ring_timer(const std::shared_ptr<Call>& c) {
  std::weak_ptr<Call> weak = c;
  const int attempt = c->attempt;
  c->ring_timer = timers_.start(options_.ring_timeout, [this, weak, attempt] {
    auto c = weak.lock();
    if (!c) return;
    c->ring_timer = 0;
    if (c->attempt != attempt || c->state == Call::State::Ended ||
        c->state >= Call::State::Answered)
      return;
    send_cancel(*c);
    ++c->attempt;  // its 487 (or a late 2xx, taken down) belongs to the past
    failed_attempt(c, 408, c->target_code + " rang without answer");
  });
}

void B2bua::Impl::stop_ring_timer(Call& c) {
  if (c.ring_timer) timers_.stop(c.ring_timer);
  c.ring_timer = 0;
}

void B2bua::Impl::failed_attempt(const std::shared_ptr<Call>& c, uint16_t status,
                                 const std::string& why, const std::string& headers) {
  stop_ring_timer(*c);
  if (!c->attempt_trunk.empty()) {
    context_.trunks().release(c->attempt_trunk);
    c->attempt_trunk.clear();
  }
  c->b_invite = 0;
  c->last_failure = status;
  c->last_reason = why;
  c->last_headers = headers;
  c->decisions.push_back("attempt failed: " + std::to_string(status) + " " + why);
  if (c->cancelled) return;
  try_next(c);
}

void B2bua::Impl::finish_a(const std::shared_ptr<Call>& c, uint16_t status, std::string_view reason,
                           const std::string& extra, const std::string& by,
                           const std::string& why) {
  reply_a(*c, status, reason, extra);
  end(c, by, why, status);
}

void B2bua::Impl::reply_a(Call& c, uint16_t status, std::string_view reason,
                          const std::string& extra, std::string_view body,
                          const std::string& content_type) {
  const sip::Message* areq = layer_.request(c.a_invite);
  if (!areq) return;
  layer_.respond(c.a_invite, status,
                 with_body(sip::build_response(*areq, status, reason, c.a.local_tag, extra),
                           content_type, body));
}

void B2bua::Impl::respond(txn::TxnId server, const sip::Message& req, uint16_t status,
                          std::string_view reason, const std::string& extra,
                          const std::string& tag) {
  if (!server) return;
  layer_.respond(server, status,
                 sip::build_response(req, status, reason, tag.empty() ? new_tag() : tag, extra));
}

std::string B2bua::Impl::refused_media(const Call& c, const std::string& why) {
  return "media: " + why + (why == media::kSrtpMissing ? " from " + c.target_code : "");
}

void B2bua::Impl::send_cancel(Call& c, const std::string& reason) {
  auto inv = sip::parse_message(c.b_invite_bytes);
  if (!inv) return;
  std::string m = "CANCEL " + std::string(inv->request_uri().text) + " SIP/2.0\r\n";
  m += "Via: " + std::string(inv->top_via().text) + "\r\n";
  m += "Max-Forwards: 70\r\n";
  m += "From: " + std::string(inv->from().text) + "\r\n";
  m += "To: " + std::string(inv->to().text) + "\r\n";
  m += "Call-ID: " + std::string(inv->call_id()) + "\r\n";
  m += "CSeq: " + std::to_string(inv->cseq().number) + " CANCEL\r\n";
  if (!reason.empty()) {
    m += reason;
  } else {
    m += c.cancel_reason.empty() ? reason_line(487, "Cancelled by the caller")
                                 : "Reason: " + c.cancel_reason + "\r\n";
  }
  m += "Content-Length: 0\r\n\r\n";
  if (auto p = sip::parse_message(m)) layer_.send_request(std::move(*p), c.b.channel, {});
}

void B2bua::Impl::ack_and_bye(const std::shared_ptr<Call>& c, const sip::Message& r, uint16_t cause,
                              const std::string& text) {
  // The current attempt's INVITE, or an earlier one's (same Call-ID as the answer).
  if (auto inv = sip::parse_message(c->b_invite_bytes); inv && inv->call_id() == r.call_id()) {
    ack_and_bye({c->b_invite_bytes, c->b.channel, c->b.contact, c->b.via_host, c->b.transport}, r,
                cause, text);
    return;
  }
  for (const auto& e : c->earlier) {
    auto old = sip::parse_message(e.invite);
    if (old && old->call_id() == r.call_id()) ack_and_bye(e, r, cause, text);
  }
}

void B2bua::Impl::ack_and_bye(const Call::Earlier& e, const sip::Message& r, uint16_t cause,
                              const std::string& text) {
  Leg leg;
  leg.channel = e.channel;
  leg.contact = e.contact;
  leg.via_host = e.via_host;
  leg.transport = e.transport;
  auto inv = sip::parse_message(e.invite);
  if (!inv) return;
  auto d = dialog::Dialog::as_uac(*inv, r, leg.contact);
  if (!d) return;
  d->confirm();
  leg.channel.send(d->build_request("ACK", leg.via(), inv->cseq().number));
  auto bye = sip::parse_message(d->build_request("BYE", leg.via(), 0, reason_line(cause, text)));
  if (bye) layer_.send_request(std::move(*bye), leg.channel, {});
}

B2bua::B2bua(size_t worker, txn::Layer& layer, txn::Timers& timers,
             const txn::TimerConfig& timer_config, accounts::Link& link, Context& context,
             B2buaOptions options, std::function<std::string()> new_call_id)
    : impl_(std::make_unique<Impl>(worker, layer, timers, timer_config, link, context,
                                   std::move(options), std::move(new_call_id))) {}

B2bua::~B2bua() = default;

bool B2bua::on_request(txn::TxnId server, const sip::Message& request, const txn::Channel& from) {
  return impl_->on_request(server, request, from);
}
bool B2bua::on_cancel(txn::TxnId invite, const sip::Message& cancel) {
  return impl_->on_cancel(invite, cancel);
}
bool B2bua::on_stray_response(const sip::Message& response) {
  return impl_->on_stray_response(response);
}
size_t B2bua::calls() const {
  return impl_->calls();
}
void B2bua::drain() {
  impl_->drain();
}
void B2bua::end_all(const std::string& why) {
  impl_->end_all(why);
}

}  // namespace esg::edge
