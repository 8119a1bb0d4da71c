// RFC 3261 §17.1.1 with RFC 6026 §7.2: the client INVITE transaction.

#include "txn/transaction.hpp"

namespace esg::txn {

void ClientInvite::start() {
  // "the client transaction MUST start timer B with a value of 64*T1"; Timer A = T1 for an
  // unreliable transport.
  start_timer(Timer::B, 64 * config_.t1);
  if (!reliable()) start_timer(Timer::A, interval_);
  if (!transmit(request_->bytes())) fail(503);
}

void ClientInvite::shed() {
  // Completed needs only its ACK, Accepted only the user (2xx retransmissions go up to it).
  if (state() == State::Completed || state() == State::Accepted) request_.reset();
}

// §17.1.1.3: Request-URI, Call-ID, From and the CSeq number of the INVITE, the To of the
// response (with its tag), one Via: the INVITE's top Via, and the INVITE's Route headers.
std::string ClientInvite::build_ack(const sip::Message& invite, const sip::Message& response) {
  std::string ack = "ACK ";
  ack.append(invite.request_uri().text).append(" SIP/2.0\r\n");
  ack.append("Via: ").append(invite.top_via().text).append("\r\n");
  for (const auto& h : invite.headers()) {
    if (h.id == sip::HeaderId::Route) ack.append("Route: ").append(h.value).append("\r\n");
  }
  ack.append("Max-Forwards: 70\r\n");
  ack.append("From: ").append(invite.from().text).append("\r\n");
  ack.append("To: ").append(response.to().text).append("\r\n");
  ack.append("Call-ID: ").append(invite.call_id()).append("\r\n");
  ack.append("CSeq: ").append(std::to_string(invite.cseq().number)).append(" ACK\r\n");
  ack.append("Content-Length: 0\r\n\r\n");
  return ack;
}

void ClientInvite::on_response(const sip::Message& response) {
  const uint16_t status = response.status();
  switch (state()) {
    case State::Calling:
    case State::Proceeding:
      if (status < 200) {
        // "the client transaction SHOULD NOT retransmit the request any longer"
        set_state(State::Proceeding);
        stop_timer(Timer::A);
        if (user_.on_response) user_.on_response(response);
        return;
      }
      stop_timer(Timer::A);
      stop_timer(Timer::B);
      if (status < 300) {
        // RFC 6026: Accepted, Timer M = 64*T1; further 2xx go to the TU for its ACKs.
        set_state(State::Accepted);
        start_timer(Timer::M, 64 * config_.t1);
        if (user_.on_response) user_.on_response(response);
        return;
      }
      // "the client transaction MUST ... generate an ACK request ... and then pass the
      // response up to the TU"; Timer D: 32 s or more unreliable, zero reliable.
      set_state(State::Completed);
      ack_ = build_ack(*request_, response);
      if (!transmit(ack_)) {
        fail(503);
        return;
      }
      if (user_.on_response) user_.on_response(response);
      if (terminated()) return;
      if (reliable()) {
        terminate();
      } else {
        start_timer(Timer::D, config_.timer_d);
      }
      return;
    case State::Completed:
      // "Any retransmissions of the final response ... MUST cause the ACK to be re-passed".
      if (status >= 300 && !transmit(ack_)) fail(503);
      return;
    case State::Accepted:
      if (status >= 200 && status < 300 && user_.on_response) user_.on_response(response);
      return;
    default:
      return;
  }
}

void ClientInvite::on_timer(Timer t) {
  switch (t) {
    case Timer::A:
      interval_ *= 2;  // "the timer is reset with a value of 2*T1 ... 4*T1 ..."
      if (!transmit(request_->bytes())) {
        fail(503);
        return;
      }
      start_timer(Timer::A, interval_);
      return;
    case Timer::B:
      client_timeouts().fetch_add(1, std::memory_order_relaxed);
      fail(408);
      return;
    case Timer::D:
    case Timer::M:
      terminate();
      return;
    default:
      return;
  }
}

}  // namespace esg::txn
