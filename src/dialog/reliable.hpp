#pragma once
// RFC 3262: reliable provisional responses (100rel) and PRACK. Providers send
// `Supported: 100rel` and `Require: 100rel` on their 18x; both sides are here:
//   - ReliableProvisionals, the UAS side: numbers reliable 1xx with RSeq, retransmits each until
//     its PRACK arrives (T1 doubling, §3), one at a time, and gives up after 64*T1 (the UAS
//     then rejects the INVITE with a 5xx, §3);
//   - PrackTracker, the UAC side: which reliable 1xx to acknowledge with a PRACK (in order,
//     once each, per dialog; §4).

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/result.hpp"
#include "dialog/retransmitter.hpp"
#include "sip/error.hpp"
#include "sip/message.hpp"
#include "txn/timers.hpp"

namespace esg::dialog {

// RAck = response-num LWS CSeq-num LWS Method (RFC 3262 §7.2).
struct RAck {
  uint32_t rseq = 0;
  uint32_t cseq = 0;
  std::string method;
  bool operator==(const RAck&) const = default;
};
Result<RAck, sip::ValueError> parse_rack(std::string_view value);
// RSeq = response-num: 1*DIGIT, 1 to 2^31-1 (RFC 3262 §7.1).
Result<uint32_t, sip::ValueError> parse_rseq(std::string_view value);

// Does `m` list option tag `tag` in header `id` (Supported, Require)?
bool has_option(const sip::Message& m, sip::HeaderId id, std::string_view tag);

class ReliableProvisionals {
 public:
  ReliableProvisionals(txn::Timers& timers, const txn::TimerConfig& config, bool reliable,
                       std::function<bool(std::string_view)> send,
                       std::function<void()> on_timeout);
  ReliableProvisionals(const ReliableProvisionals&) = delete;
  ReliableProvisionals& operator=(const ReliableProvisionals&) = delete;

  // The RSeq for the next reliable provisional; put it in the response with
  // "Require: 100rel" (headers() writes both lines).
  uint32_t next_rseq() { return ++last_rseq_; }
  static std::string headers(uint32_t rseq);
  // Sends the provisional numbered `rseq` now, or after the PRACKs of those before it
  // (§3: "the UAS MUST NOT send a second reliable provisional response until the first is
  // acknowledged"). `cseq` is the INVITE's sequence number.
  void send(uint32_t rseq, uint32_t cseq, std::string response);
  // A PRACK arrived: true when it acknowledges the provisional in flight (answer it 200), false
  // when it matches nothing (answer 481, §3).
  bool on_prack(const sip::Message& prack);
  // A final response was sent: nothing more to retransmit.
  void stop();
  bool pending() const { return in_flight_.has_value() || !queue_.empty(); }

 private:
  struct Provisional {
    uint32_t rseq;
    uint32_t cseq;
    std::string bytes;
  };
  void transmit_next();

  std::function<void()> on_timeout_;
  uint32_t last_rseq_;
  std::optional<Provisional> in_flight_;
  std::deque<Provisional> queue_;
  Retransmitter retransmitter_;  // of the one in flight
};

class PrackTracker {
 public:
  // For a provisional response to our INVITE: the RAck to send in a PRACK when it is a reliable
  // provisional we have not acknowledged yet and in sequence; nullopt for an unreliable one,
  // a retransmission, or one out of order (§4: discarded, the UAS retransmits).
  std::optional<RAck> on_provisional(const sip::Message& response);

 private:
  std::unordered_map<std::string, uint32_t>
      last_rseq_;  // by To tag (forks are dialogs of their own)
};

}  // namespace esg::dialog
