#pragma once
// RFC 3261 §13.3.1.4: the UAS core, not the transaction, retransmits a 2xx to an INVITE: every
// T1, doubling up to T2, until the ACK arrives; after 64*T1 without an ACK the session is over
// (the caller sends BYE). On reliable transports the 2xx is sent once, the ACK still awaited.

#include <functional>
#include <string>

#include "txn/timers.hpp"

namespace esg::dialog {

class SuccessRetransmitter {
 public:
  SuccessRetransmitter(txn::Timers& timers, const txn::TimerConfig& config, bool reliable,
                       std::function<bool(std::string_view)> send, std::function<void()> on_no_ack);
  ~SuccessRetransmitter();
  SuccessRetransmitter(const SuccessRetransmitter&) = delete;
  SuccessRetransmitter& operator=(const SuccessRetransmitter&) = delete;

  // Arms the timers; sends the response now unless the INVITE transaction already did.
  void start(std::string response, bool send_now = true);
  void ack();  // the ACK arrived: stop
  bool waiting() const { return give_up_ != 0; }

 private:
  void retransmit();

  txn::Timers& timers_;
  const txn::TimerConfig& config_;
  bool reliable_;
  std::function<bool(std::string_view)> send_;
  std::function<void()> on_no_ack_;
  std::string response_;
  txn::Millis interval_{0};
  txn::Timers::Id retransmit_ = 0;
  txn::Timers::Id give_up_ = 0;
};

}  // namespace esg::dialog
