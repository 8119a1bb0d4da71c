// RFC 3261 §17.2.1 with RFC 6026 §7.1: the server INVITE transaction.

#include "sip/response.hpp"
#include "txn/transaction.hpp"

namespace esg::txn {

ServerInvite::ServerInvite(Timers& timers, const TimerConfig& config, Channel channel,
                           sip::Message request, ServerUser user)
    : Transaction(timers, config, std::move(channel), State::Proceeding),
      request_(std::make_unique<sip::Message>(std::move(request))),
      user_(std::move(user)),
      interval_(config.t1) {}

void ServerInvite::shed() {
  switch (state()) {
    case State::Accepted:
      // The 2xx is the TU's to retransmit (RFC 6026); retransmitted INVITEs are absorbed.
      last_response_ = {};
      [[fallthrough]];
    case State::Completed:  // resends last_response_ until the ACK
    case State::Confirmed:
      request_.reset();
      return;
    default:
      return;
  }
}

void ServerInvite::start() {
  // "the server transaction MUST generate a 100 (Trying) response unless it knows that the TU
  // will generate a provisional or final response within 200 ms".
  start_timer(Timer::Trying, config_.trying);
}

void ServerInvite::on_retransmission() {
  switch (state()) {
    case State::Proceeding:
    case State::Completed:
      // Proceeding: "the most recent provisional response"; Completed: the final response.
      if (!last_response_.empty() && !transmit(last_response_)) transport_failed();
      return;
    default:
      return;  // Accepted (RFC 6026): absorbed; Confirmed: absorbed
  }
}

void ServerInvite::on_ack(const sip::Message& ack) {
  switch (state()) {
    case State::Completed:
      // "the server transaction MUST transition to the Confirmed state", Timer I = T4
      // unreliable, zero reliable.
      stop_timer(Timer::G);
      stop_timer(Timer::H);
      set_state(State::Confirmed);
      last_response_ = {};  // Confirmed absorbs retransmissions without answering them
      if (reliable()) {
        terminate();
      } else {
        start_timer(Timer::I, config_.t4);
      }
      return;
    case State::Accepted:
      if (user_.on_ack) user_.on_ack(ack);  // RFC 6026: the ACK for a 2xx goes to the TU
      return;
    default:
      return;
  }
}

void ServerInvite::respond(uint16_t status, std::string bytes) {
  if (state() != State::Proceeding && !(state() == State::Accepted && status < 300)) return;
  stop_timer(Timer::Trying);
  last_response_ = std::move(bytes);
  last_status_ = status;
  if (!transmit(last_response_)) {
    transport_failed();
    return;
  }
  if (status < 200 || state() == State::Accepted) return;
  if (status < 300) {
    // RFC 6026: Accepted, Timer L = 64*T1; 2xx retransmissions are the TU's (the dialog's).
    set_state(State::Accepted);
    start_timer(Timer::L, 64 * config_.t1);
    return;
  }
  // Completed: Timer G (unreliable) retransmits, Timer H bounds the wait for the ACK.
  set_state(State::Completed);
  if (!reliable()) start_timer(Timer::G, interval_);
  start_timer(Timer::H, 64 * config_.t1);
}

void ServerInvite::on_timer(Timer t) {
  switch (t) {
    case Timer::Trying:
      if (state() == State::Proceeding && last_response_.empty() && request_) {
        last_response_ = sip::build_response(*request_, 100);
        last_status_ = 100;
        if (!transmit(last_response_)) transport_failed();
      }
      return;
    case Timer::G:
      // "the response is passed to the transport layer ... timer G ... min(2*T1, T2)".
      interval_ = std::min(2 * interval_, config_.t2);
      if (!transmit(last_response_)) {
        transport_failed();
        return;
      }
      start_timer(Timer::G, interval_);
      return;
    case Timer::H:
      // "the server transaction MUST transition to the Terminated state, and MUST indicate to
      // the TU that a transaction failure has occurred".
      terminate_and(user_.on_no_ack);
      return;
    case Timer::I:
    case Timer::L:
      terminate();
      return;
    default:
      return;
  }
}

}  // namespace esg::txn
