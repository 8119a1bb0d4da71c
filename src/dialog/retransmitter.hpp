#pragma once
// What the UAS core (not the transaction) retransmits over unreliable transports until the
// other side acknowledges it:
//   - a 2xx to an INVITE (RFC 3261 §13.3.1.4): every T1, doubling up to T2, until the ACK;
//   - a reliable provisional (RFC 3262 §3): every T1, doubling without a cap, until the PRACK.
// Both give up after 64*T1 (the caller then ends the session or rejects the INVITE). On
// reliable transports the message is sent once and the acknowledgement still awaited.

#include <functional>
#include <string>

#include "txn/timers.hpp"

namespace esg::dialog {

class Retransmitter {
 public:
  enum class Backoff : uint8_t { CapAtT2, Uncapped };
  Retransmitter(txn::Timers& timers, const txn::TimerConfig& config, bool reliable,
                std::function<bool(std::string_view)> send, std::function<void()> on_give_up,
                Backoff backoff = Backoff::CapAtT2);
  ~Retransmitter();
  Retransmitter(const Retransmitter&) = delete;
  Retransmitter& operator=(const Retransmitter&) = delete;

  // Arms the timers; sends the message now unless someone (the INVITE transaction) already did.
  void start(std::string message, bool send_now = true);
  void stop();  // acknowledged (or no longer wanted): no more sends, no give-up
  bool waiting() const { return give_up_ != 0; }

 private:
  void retransmit();

  txn::Timers& timers_;
  const txn::TimerConfig& config_;
  bool reliable_;
  std::function<bool(std::string_view)> send_;
  std::function<void()> on_give_up_;
  Backoff backoff_;
  std::string message_;
  txn::Millis interval_{0};
  txn::Timers::Id retransmit_ = 0;
  txn::Timers::Id give_up_ = 0;
};

}  // namespace esg::dialog
