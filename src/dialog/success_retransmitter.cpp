#include "dialog/success_retransmitter.hpp"

namespace esg::dialog {

SuccessRetransmitter::SuccessRetransmitter(txn::Timers& timers, const txn::TimerConfig& config,
                                           bool reliable,
                                           std::function<bool(std::string_view)> send,
                                           std::function<void()> on_no_ack)
    : timers_(timers),
      config_(config),
      reliable_(reliable),
      send_(std::move(send)),
      on_no_ack_(std::move(on_no_ack)) {}

SuccessRetransmitter::~SuccessRetransmitter() {
  ack();
}

void SuccessRetransmitter::start(std::string response, bool send_now) {
  ack();
  response_ = std::move(response);
  interval_ = config_.t1;
  if (send_now) send_(response_);
  give_up_ = timers_.start(64 * config_.t1, [this] {
    give_up_ = 0;
    if (retransmit_) timers_.stop(retransmit_);
    retransmit_ = 0;
    if (on_no_ack_) on_no_ack_();
  });
  if (!reliable_) retransmit_ = timers_.start(interval_, [this] { retransmit(); });
}

void SuccessRetransmitter::retransmit() {
  retransmit_ = 0;
  send_(response_);
  interval_ = std::min(2 * interval_, config_.t2);
  retransmit_ = timers_.start(interval_, [this] { retransmit(); });
}

void SuccessRetransmitter::ack() {
  if (retransmit_) timers_.stop(retransmit_);
  if (give_up_) timers_.stop(give_up_);
  retransmit_ = give_up_ = 0;
}

}  // namespace esg::dialog
