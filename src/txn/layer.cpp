#include "txn/layer.hpp"

#include "sip/response.hpp"

namespace esg::txn {

namespace {

std::string merged_key_of(const sip::Message& m) {
  // §8.2.2.2: From tag, Call-ID and CSeq of a request without a To tag.
  std::string k(m.from_tag());
  k.append("|").append(m.call_id()).append("|").append(std::to_string(m.cseq().number));
  k.append("|").append(m.cseq().method);
  return k;
}

}  // namespace

Layer::Layer(Timers& timers, TimerConfig config, User user)
    : timers_(timers), config_(config), user_(std::move(user)) {}

Layer::~Layer() {
  if (sweep_timer_) timers_.stop(sweep_timer_);
}

std::string Layer::client_key(std::string_view branch, std::string_view method) {
  std::string k(branch);
  k.append("|").append(method);
  return k;
}

// §17.2.3: the branch, the sent-by and the method (ACK matches its INVITE); without an RFC 3261
// branch, the RFC 2543 fields: Request-URI, Call-ID, From tag, CSeq number and the top Via.
std::string Layer::server_key(const sip::Message& m, std::string_view method_override) {
  std::string_view method = method_override.empty() ? m.method_text() : method_override;
  if (m.method() == sip::Method::Ack && method_override.empty()) method = "INVITE";
  const sip::Via& via = m.top_via();
  std::string k;
  if (via.rfc3261_branch()) {
    k.append(via.branch).append("|").append(via.host).append(":").append(std::to_string(via.port));
  } else {
    k.append("2543|").append(m.request_uri().text).append("|").append(m.call_id());
    k.append("|").append(m.from_tag()).append("|").append(std::to_string(m.cseq().number));
    k.append("|").append(via.text);
  }
  k.append("|").append(method);
  return k;
}

State Layer::state(TxnId id) const {
  auto it = txns_.find(id);
  return it == txns_.end() ? State::Terminated : it->second.txn->state();
}

const sip::Message* Layer::request(TxnId server) const {
  auto it = txns_.find(server);
  if (it == txns_.end()) return nullptr;
  switch (it->second.kind) {
    case Kind::ServerInvite:
      return static_cast<const ServerInvite*>(it->second.txn.get())->request();
    case Kind::ServerNonInvite:
      return static_cast<const ServerNonInvite*>(it->second.txn.get())->request();
    default:
      return nullptr;
  }
}

TxnId Layer::add(Kind kind, std::unique_ptr<Transaction> txn, std::string key, std::string merged) {
  const TxnId id = ++next_id_;
  txn->set_on_terminated([this, id] {
    dead_.push_back(id);
    schedule_sweep();
  });
  by_key_[key] = id;
  if (!merged.empty()) by_merged_key_[merged] = id;
  txns_.emplace(id, Entry{kind, std::move(txn), std::move(key), std::move(merged)});
  return id;
}

// A machine reports Terminated from inside its own call stack: it is deleted from a fresh
// timer callback (or at the end of the layer call that reached it), never under its own feet.
void Layer::schedule_sweep() {
  if (sweep_timer_) return;
  sweep_timer_ = timers_.start(Millis{0}, [this] {
    sweep_timer_ = 0;
    sweep();
  });
}

void Layer::sweep() {
  auto finished = std::move(finished_);
  finished_.clear();
  for (TxnId id : finished) {
    auto it = txns_.find(id);
    if (it != txns_.end() && !it->second.txn->terminated()) it->second.txn->shed();
  }
  auto dead = std::move(dead_);
  dead_.clear();
  for (TxnId id : dead) {
    auto it = txns_.find(id);
    if (it == txns_.end()) continue;
    auto k = by_key_.find(it->second.key);
    if (k != by_key_.end() && k->second == id) by_key_.erase(k);
    auto m = by_merged_key_.find(it->second.merged_key);
    if (m != by_merged_key_.end() && m->second == id) by_merged_key_.erase(m);
    txns_.erase(it);
  }
}

TxnId Layer::send_request(sip::Message request, Channel channel, ClientUser user) {
  std::string key = client_key(request.top_via().branch, request.method_text());
  const bool invite = request.method() == sip::Method::Invite;
  std::unique_ptr<ClientTransaction> txn;
  if (invite) {
    txn = std::make_unique<ClientInvite>(timers_, config_, std::move(channel), std::move(request),
                                         std::move(user));
  } else {
    txn = std::make_unique<ClientNonInvite>(timers_, config_, std::move(channel),
                                            std::move(request), std::move(user));
  }
  ClientTransaction* raw = txn.get();
  const TxnId id =
      add(invite ? Kind::ClientInvite : Kind::ClientNonInvite, std::move(txn), std::move(key), {});
  raw->start();
  // Not sweep(): the TU may be inside another transaction's callback (a failover INVITE sent
  // from on_response), and that transaction may already be dead.
  schedule_sweep();
  return id;
}

void Layer::receive(sip::Message message, const Channel& from) {
  if (message.is_request()) {
    receive_request(std::move(message), from);
  } else {
    receive_response(message);
  }
  sweep();
}

void Layer::receive_response(const sip::Message& response) {
  // §17.1.3: the top Via branch and the CSeq method.
  auto it = by_key_.find(client_key(response.top_via().branch, response.cseq().method));
  Entry* e = it == by_key_.end() ? nullptr : &txns_.at(it->second);
  if (!e || (e->kind != Kind::ClientInvite && e->kind != Kind::ClientNonInvite)) {
    ++counters_.stray_responses;
    if (user_.on_stray_response) user_.on_stray_response(response);
    return;
  }
  const TxnId id = it->second;  // the TU's callback may add transactions: `it` may not last
  static_cast<ClientTransaction*>(e->txn.get())->on_response(response);
  if (response.status() >= 200) finished_.push_back(id);  // shed by receive()'s sweep
}

void Layer::receive_request(sip::Message request, const Channel& from) {
  const bool ack = request.method() == sip::Method::Ack;
  std::string key = server_key(request);
  if (auto it = by_key_.find(key); it != by_key_.end()) {
    Entry& e = txns_.at(it->second);
    if (e.kind == Kind::ServerInvite) {
      auto* t = static_cast<ServerInvite*>(e.txn.get());
      if (ack) {
        t->on_ack(request);
      } else {
        ++counters_.retransmissions_absorbed;
        t->on_retransmission();
      }
    } else if (e.kind == Kind::ServerNonInvite && !ack) {
      ++counters_.retransmissions_absorbed;
      static_cast<ServerNonInvite*>(e.txn.get())->on_retransmission();
    }
    return;
  }
  if (ack) {
    // An ACK that matches no transaction acknowledges a 2xx: it belongs to the dialog.
    if (user_.on_request) user_.on_request(0, request, from);
    return;
  }
  std::string merged;
  if (request.to_tag().empty()) {
    merged = merged_key_of(request);
    if (by_merged_key_.count(merged)) {
      // §8.2.2.2: the same request arrived by another path.
      ++counters_.merged_482;
      if (from.send) from.send(sip::build_response(request, 482));
      return;
    }
  }
  const TxnId self = next_id_ + 1;  // the id add() is about to hand out
  ServerUser su;
  su.on_no_ack = [this, self] {
    if (user_.on_server_failure) user_.on_server_failure(self);
  };
  su.on_transport_error = su.on_no_ack;
  if (request.method() == sip::Method::Invite) {
    auto t = std::make_unique<ServerInvite>(timers_, config_, from, std::move(request), su);
    ServerInvite* raw = t.get();
    add(Kind::ServerInvite, std::move(t), std::move(key), std::move(merged));
    raw->start();
    if (user_.on_request) user_.on_request(self, *raw->request(), from);
    return;
  }
  const bool cancel = request.method() == sip::Method::Cancel;
  auto t = std::make_unique<ServerNonInvite>(timers_, config_, from, std::move(request), su);
  ServerNonInvite* raw = t.get();
  add(Kind::ServerNonInvite, std::move(t), std::move(key), std::move(merged));
  if (!cancel) {
    if (user_.on_request) user_.on_request(self, *raw->request(), from);
    return;
  }
  // §9.2: a CANCEL matches the INVITE server transaction with the same key but the method.
  // Answered here, shed by receive()'s sweep (after on_cancel has read it).
  const sip::Message& req = *raw->request();
  finished_.push_back(self);
  auto invite = by_key_.find(server_key(req, "INVITE"));
  Entry* e = invite == by_key_.end() ? nullptr : &txns_.at(invite->second);
  if (!e || e->kind != Kind::ServerInvite) {
    ++counters_.cancel_481;
    raw->respond(481, sip::build_response(req, 481));
    return;
  }
  auto* inv = static_cast<ServerInvite*>(e->txn.get());
  raw->respond(200, sip::build_response(req, 200));
  // "If the UAS has already sent a final response for the request, the CANCEL has no effect".
  if (inv->state() == State::Proceeding && user_.on_cancel) user_.on_cancel(invite->second, req);
}

bool Layer::respond(TxnId server, uint16_t status, std::string bytes) {
  auto it = txns_.find(server);
  if (it == txns_.end() || it->second.txn->terminated()) return false;
  Entry& e = it->second;
  if (e.kind == Kind::ServerInvite) {
    static_cast<ServerInvite*>(e.txn.get())->respond(status, std::move(bytes));
  } else if (e.kind == Kind::ServerNonInvite) {
    static_cast<ServerNonInvite*>(e.txn.get())->respond(status, std::move(bytes));
  } else {
    return false;
  }
  // Deferred: a TU answering from inside on_request still holds the request, which belongs to
  // the transaction a reliable transport terminates at once, or a final response sheds.
  if (status >= 200) finished_.push_back(server);
  schedule_sweep();
  return true;
}

}  // namespace esg::txn
