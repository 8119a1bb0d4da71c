#pragma once
// The transaction layer: matches messages to transactions (RFC 3261 §17.1.3, §17.2.3, with the
// RFC 2543 fallback), absorbs retransmissions, answers CANCEL (§9.2) and merged requests (482,
// §8.2.2.2), and owns the machines, deleting them only outside their own callbacks.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "sip/message.hpp"
#include "txn/timers.hpp"
#include "txn/transaction.hpp"

namespace esg::txn {

using TxnId = uint64_t;  // 0 means "no transaction"

class Layer {
 public:
  struct User {
    // A new request. `server` is its transaction, or 0 for an ACK to a 2xx (which has none).
    std::function<void(TxnId server, const sip::Message& request, const Channel& from)> on_request;
    // A CANCEL matched a pending INVITE; the layer answered the CANCEL 200, the TU answers the
    // INVITE (487 Request Terminated). `cancel` carries what the canceller said (its Reason).
    std::function<void(TxnId invite, const sip::Message& cancel)> on_cancel;
    // A response that matches no client transaction (2xx retransmissions after Accepted).
    std::function<void(const sip::Message& response)> on_stray_response;
    // The server transaction failed (no ACK within Timer H, or a transport error).
    std::function<void(TxnId server)> on_server_failure;
  };
  struct Counters {
    uint64_t retransmissions_absorbed = 0;
    uint64_t merged_482 = 0;
    uint64_t cancel_481 = 0;
    uint64_t stray_responses = 0;
  };

  Layer(Timers& timers, TimerConfig config, User user);
  ~Layer();
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  // Starts a client transaction for `request` (INVITE or non-INVITE, not ACK).
  TxnId send_request(sip::Message request, Channel channel, ClientUser user);
  // Everything the transport received, after parsing.
  void receive(sip::Message message, const Channel& from);
  // Sends a response on server transaction `server`; false if it is gone.
  bool respond(TxnId server, uint16_t status, std::string bytes);

  size_t size() const { return txns_.size(); }
  const Counters& counters() const { return counters_; }
  // The state of a live transaction, Terminated when it is gone.
  State state(TxnId id) const;
  // The request of a live server transaction (to build its responses), nullptr when gone or
  // finished (a final response sent: what it held is freed).
  const sip::Message* request(TxnId server) const;

  static std::string server_key(const sip::Message& request, std::string_view method_override = {});
  static std::string client_key(std::string_view branch, std::string_view method);

 private:
  enum class Kind : uint8_t { ClientInvite, ClientNonInvite, ServerInvite, ServerNonInvite };
  struct Entry {
    Kind kind;
    std::unique_ptr<Transaction> txn;
    std::string key;
    std::string merged_key;  // server transactions of requests without a To tag
  };

  void receive_request(sip::Message request, const Channel& from);
  void receive_response(const sip::Message& response);
  TxnId add(Kind kind, std::unique_ptr<Transaction> txn, std::string key, std::string merged);
  void schedule_sweep();
  void sweep();

  Timers& timers_;
  TimerConfig config_;
  User user_;
  TxnId next_id_ = 0;
  std::unordered_map<TxnId, Entry> txns_;
  std::unordered_map<std::string, TxnId> by_key_;
  std::unordered_map<std::string, TxnId> by_merged_key_;
  std::vector<TxnId> dead_;
  std::vector<TxnId> finished_;  // final response sent or received: to shed() in sweep()
  Timers::Id sweep_timer_ = 0;
  Counters counters_;
};

}  // namespace esg::txn
