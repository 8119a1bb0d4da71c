#include "dialog/retransmitter.hpp"

namespace esg::dialog {

Retransmitter::Retransmitter(txn::Timers& timers, const txn::TimerConfig& config, bool reliable,
                             std::function<bool(std::string_view)> send,
                             std::function<void()> on_give_up, Backoff backoff)
    : timers_(timers),
      config_(config),
      reliable_(reliable),
      send_(std::move(send)),
      on_give_up_(std::move(on_give_up)),
      backoff_(backoff) {}

Retransmitter::~Retransmitter() {
  stop();
}

void Retransmitter::start(std::string message, bool send_now) {
  stop();
  message_ = std::move(message);
  interval_ = config_.t1;
  if (send_now) send_(message_);
  give_up_ = timers_.start(64 * config_.t1, [this] {
    give_up_ = 0;
    if (retransmit_) timers_.stop(retransmit_);
    retransmit_ = 0;
    if (on_give_up_) on_give_up_();
  });
  if (!reliable_) retransmit_ = timers_.start(interval_, [this] { retransmit(); });
}

void Retransmitter::retransmit() {
  retransmit_ = 0;
  send_(message_);
  interval_ *= 2;
  if (backoff_ == Backoff::CapAtT2) interval_ = std::min(interval_, config_.t2);
  retransmit_ = timers_.start(interval_, [this] { retransmit(); });
}

void Retransmitter::stop() {
  if (retransmit_) timers_.stop(retransmit_);
  if (give_up_) timers_.stop(give_up_);
  retransmit_ = give_up_ = 0;
}

}  // namespace esg::dialog
