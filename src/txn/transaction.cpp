#include "txn/transaction.hpp"

namespace esg::txn {

std::atomic<uint64_t>& client_timeouts() {
  static std::atomic<uint64_t> n{0};
  return n;
}

std::string_view state_name(State s) {
  switch (s) {
    case State::Calling:
      return "Calling";
    case State::Trying:
      return "Trying";
    case State::Proceeding:
      return "Proceeding";
    case State::Completed:
      return "Completed";
    case State::Confirmed:
      return "Confirmed";
    case State::Accepted:
      return "Accepted";
    case State::Terminated:
      return "Terminated";
  }
  return "?";
}

Transaction::Transaction(Timers& timers, const TimerConfig& config, Channel channel, State initial)
    : config_(config), timers_(timers), channel_(std::move(channel)), state_(initial) {}

// Stopping every timer here is what makes `this` safe to capture in timer callbacks.
Transaction::~Transaction() {
  for (auto& id : ids_) {
    if (id) timers_.stop(id);
  }
}

void Transaction::start_timer(Timer t, Millis after) {
  stop_timer(t);
  ids_[size_t(t)] = timers_.start(after, [this, t] {
    ids_[size_t(t)] = 0;
    on_timer(t);
  });
}

void Transaction::stop_timer(Timer t) {
  auto& id = ids_[size_t(t)];
  if (id) timers_.stop(id);
  id = 0;
}

bool Transaction::transmit(std::string_view bytes) {
  if (!channel_.send_watched) return channel_.send && channel_.send(bytes);
  if (!alive_) alive_ = std::make_shared<Transaction*>(this);
  // The report comes later, from a fresh stack on this worker: the transaction may be gone.
  return channel_.send_watched(bytes,
                               [weak = std::weak_ptr<Transaction*>(alive_)](std::string_view why) {
                                 if (auto self = weak.lock()) (*self)->on_transport_failure(why);
                               });
}

void Transaction::terminate() {
  if (state_ == State::Terminated) return;
  state_ = State::Terminated;
  for (size_t i = 0; i < ids_.size(); ++i)
    stop_timer(static_cast<Timer>(i));
  if (on_terminated_) on_terminated_();
}

void Transaction::terminate_and(const std::function<void()>& notify) {
  auto copy = notify;  // `notify` may live in this transaction's user, which terminate() may free
  terminate();
  if (copy) copy();
}

void ClientTransaction::fail(uint16_t status, std::string_view why) {
  if (terminated()) return;
  terminate_and([user = user_.on_failure, status, why = std::string(why)] {
    if (user) user(status, why);
  });
}

void ClientTransaction::on_transport_failure(std::string_view why) {
  const State s = state();
  if (s == State::Calling || s == State::Trying || s == State::Proceeding) fail(503, why);
}

}  // namespace esg::txn
