// RFC 3261 §17.1.2: the client non-INVITE transaction.

#include "txn/transaction.hpp"

namespace esg::txn {

void ClientNonInvite::start() {
  // "the client transaction MUST set timer F to fire in 64*T1 seconds" and, for an unreliable
  // transport, "timer E to fire in T1 seconds".
  start_timer(Timer::F, 64 * config_.t1);
  if (!reliable()) start_timer(Timer::E, interval_);
  if (!transmit(request_->bytes())) fail(503);
}

void ClientNonInvite::shed() {
  // Completed only absorbs retransmitted responses until Timer K: nothing is sent, nobody told.
  if (state() != State::Completed) return;
  request_.reset();
  user_ = {};
}

void ClientNonInvite::on_response(const sip::Message& response) {
  const uint16_t status = response.status();
  switch (state()) {
    case State::Trying:
    case State::Proceeding:
      if (status < 200) {
        set_state(State::Proceeding);
        if (user_.on_response) user_.on_response(response);
        return;
      }
      // "the response MUST be passed to the TU, and the client transaction MUST transition to
      // the Completed state" with Timer K = T4 (zero for reliable transports).
      set_state(State::Completed);
      stop_timer(Timer::E);
      stop_timer(Timer::F);
      if (user_.on_response) user_.on_response(response);
      if (reliable()) {
        terminate();
      } else if (!terminated()) {
        start_timer(Timer::K, config_.t4);
      }
      return;
    default:
      return;  // Completed: retransmitted responses are absorbed
  }
}

void ClientNonInvite::on_timer(Timer t) {
  switch (t) {
    case Timer::E:
      // Trying: the interval doubles up to T2; Proceeding: "retransmit ... every T2".
      interval_ = state() == State::Trying ? std::min(2 * interval_, config_.t2) : config_.t2;
      if (!transmit(request_->bytes())) {
        fail(503);
        return;
      }
      start_timer(Timer::E, interval_);
      return;
    case Timer::F:
      client_timeouts().fetch_add(1, std::memory_order_relaxed);
      fail(408);  // "the client transaction SHOULD inform the TU about the timeout"
      return;
    case Timer::K:
      terminate();
      return;
    default:
      return;
  }
}

}  // namespace esg::txn
