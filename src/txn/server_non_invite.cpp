// RFC 3261 §17.2.2: the server non-INVITE transaction.

#include "txn/transaction.hpp"

namespace esg::txn {

ServerNonInvite::ServerNonInvite(Timers& timers, const TimerConfig& config, Channel channel,
                                 sip::Message request, ServerUser user)
    : Transaction(timers, config, std::move(channel), State::Trying),
      request_(std::make_unique<sip::Message>(std::move(request))),
      user_(std::move(user)) {}

void ServerNonInvite::shed() {
  // Completed resends its final response, built already, to retransmitted requests.
  if (state() == State::Completed) request_.reset();
}

void ServerNonInvite::on_retransmission() {
  switch (state()) {
    case State::Trying:
      return;  // "any further request retransmissions are discarded"
    case State::Proceeding:
    case State::Completed:
      // "the most recently sent provisional response" / "the final response" is resent.
      if (!transmit(last_response_)) transport_failed();
      return;
    default:
      return;
  }
}

void ServerNonInvite::respond(uint16_t status, std::string bytes) {
  if (state() == State::Completed || terminated()) return;  // finals are sent once
  last_response_ = std::move(bytes);
  if (!transmit(last_response_)) {
    transport_failed();
    return;
  }
  if (status < 200) {
    set_state(State::Proceeding);
    return;
  }
  // Completed; Timer J = 64*T1 unreliable, zero reliable.
  set_state(State::Completed);
  if (reliable()) {
    terminate();
  } else {
    start_timer(Timer::J, 64 * config_.t1);
  }
}

void ServerNonInvite::on_timer(Timer t) {
  if (t == Timer::J) terminate();
}

}  // namespace esg::txn
