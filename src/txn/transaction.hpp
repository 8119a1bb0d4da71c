#pragma once
// The four transaction machines of RFC 3261 §17, with RFC 6026's Accepted state. States and
// timers are named as in the RFC. A machine never deletes itself: it reports Terminated and the
// layer that owns it deletes it outside its callbacks.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include "sip/message.hpp"
#include "txn/timers.hpp"

namespace esg::txn {

// Told, after a send was accepted, that its bytes never reached the peer, and why ("TCP
// connect to 127.0.0.1:5999 refused"). Runs on the worker that sent, at most once per send.
using SendFailed = std::function<void(std::string_view why)>;

// How a transaction reaches its peer: the socket or connection of its request.
struct Channel {
  bool reliable = false;                       // TCP/TLS: the transport retransmits, we do not
  std::function<bool(std::string_view)> send;  // false: transport error (§17.1.4, §17.2.4)
  // A connection fails after `send` accepted the bytes: refused, timed out, a TLS certificate
  // that does not verify, lost before they were written. Channels that can tell set this (send,
  // plus the later report); transactions then send through it and fail at once (§17.1.4)
  // instead of at Timer B/F, 32 s later.
  std::function<bool(std::string_view, SendFailed failed)> send_watched = nullptr;
};

enum class State : uint8_t {
  Calling,
  Trying,
  Proceeding,
  Completed,
  Confirmed,
  Accepted,  // RFC 6026 §7.1 and §7.2
  Terminated,
};
std::string_view state_name(State s);
// Client transactions that timed out (Timer B or F) in this process: for /metrics.
std::atomic<uint64_t>& client_timeouts();

enum class Timer : uint8_t { A, B, D, E, F, G, H, I, J, K, L, M, Trying, kCount };

class Transaction {
 public:
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  virtual ~Transaction();

  State state() const { return state_; }
  bool terminated() const { return state_ == State::Terminated; }
  // Called once, when the machine reaches Terminated.
  void set_on_terminated(std::function<void()> f) { on_terminated_ = std::move(f); }
  // Frees what the machine no longer needs once its final response is out or in: the request,
  // the TU's callbacks where none can come. A finished transaction lingers for up to 64*T1
  // (32 s) to absorb retransmissions, and at a thousand calls a second it held tens of
  // thousands of parsed requests it would never read again. The layer calls this outside the
  // machine's callbacks: a TU may still read the request inside them.
  virtual void shed() = 0;

 protected:
  Transaction(Timers& timers, const TimerConfig& config, Channel channel, State initial);

  void start_timer(Timer t, Millis after);
  void stop_timer(Timer t);
  bool timer_running(Timer t) const { return ids_[size_t(t)] != 0; }
  // Sends on the channel; a failure the channel reports later comes to on_transport_failure.
  bool transmit(std::string_view bytes);
  bool reliable() const { return channel_.reliable; }
  void set_state(State s) { state_ = s; }
  void terminate();
  // Terminates and then tells the user, who may be waiting on this transaction's callbacks.
  void terminate_and(const std::function<void()>& notify);
  virtual void on_timer(Timer t) = 0;
  // The channel reported that something this transaction sent never reached the peer.
  virtual void on_transport_failure(std::string_view why) = 0;

  const TimerConfig& config_;

 private:
  Timers& timers_;
  Channel channel_;
  State state_;
  std::array<Timers::Id, size_t(Timer::kCount)> ids_{};
  std::function<void()> on_terminated_;
  // Expires with the transaction: a failure reported after it is gone finds nobody.
  std::shared_ptr<Transaction*> alive_;
};

// No final response: 408 on Timer B/F, 503 on a transport error (RFC 3261 §8.1.3.1) with what
// went wrong (`why`, empty for a timeout). The TU's handler takes (status, why), or (status)
// when the status is all it needs.
class FailureHandler {
 public:
  FailureHandler() = default;
  FailureHandler(std::nullptr_t) {}  // NOLINT(google-explicit-constructor)
  // Implicit: TUs assign their lambdas, of either shape.
  template <typename F>
  FailureHandler(F f) {  // NOLINT(google-explicit-constructor)
    if constexpr (std::is_invocable_v<F&, uint16_t, std::string_view>) {
      f_ = std::move(f);
    } else {
      f_ = [g = std::move(f)](uint16_t status, std::string_view) mutable { g(status); };
    }
  }
  explicit operator bool() const { return bool(f_); }
  void operator()(uint16_t status, std::string_view why) const { f_(status, why); }

 private:
  std::function<void(uint16_t, std::string_view)> f_;
};

// What a client transaction tells its user (the TU).
struct ClientUser {
  std::function<void(const sip::Message&)> on_response;
  FailureHandler on_failure;
};

// What the two client machines share: the request, the user, the retransmit interval, and
// failing towards the user.
class ClientTransaction : public Transaction {
 public:
  // The request; nullptr once shed().
  const sip::Message* request() const { return request_.get(); }
  virtual void start() = 0;  // sends the request and starts the machine's timers
  virtual void on_response(const sip::Message& response) = 0;

 protected:
  ClientTransaction(Timers& timers, const TimerConfig& config, Channel channel, State initial,
                    sip::Message request, ClientUser user)
      : Transaction(timers, config, std::move(channel), initial),
        request_(std::make_unique<sip::Message>(std::move(request))),
        user_(std::move(user)),
        interval_(config.t1) {}
  void fail(uint16_t status, std::string_view why = {});  // Terminated, then on_failure
  // §17.1.4: "the client transaction SHOULD inform the TU that a transport failure has
  // occurred, and the client transaction SHOULD transition directly to the Terminated state";
  // §8.1.3.1: the TU treats it as a 503. Only before a final response: the request was lost.
  void on_transport_failure(std::string_view why) override;

  std::unique_ptr<sip::Message> request_;  // on the heap, so that shed() frees all of it
  ClientUser user_;
  Millis interval_;
};

// §17.1.2: client non-INVITE transaction.
class ClientNonInvite final : public ClientTransaction {
 public:
  ClientNonInvite(Timers& timers, const TimerConfig& config, Channel channel, sip::Message request,
                  ClientUser user)
      : ClientTransaction(timers, config, std::move(channel), State::Trying, std::move(request),
                          std::move(user)) {}
  void start() override;  // Timers E and F
  void on_response(const sip::Message& response) override;
  void shed() override;

 private:
  void on_timer(Timer t) override;
};

// §17.1.1 with RFC 6026: client INVITE transaction. It acknowledges non-2xx finals itself
// (§17.1.1.3); the TU acknowledges 2xx.
class ClientInvite final : public ClientTransaction {
 public:
  ClientInvite(Timers& timers, const TimerConfig& config, Channel channel, sip::Message request,
               ClientUser user)
      : ClientTransaction(timers, config, std::move(channel), State::Calling, std::move(request),
                          std::move(user)) {}
  void start() override;  // Timers A and B
  void on_response(const sip::Message& response) override;
  void shed() override;
  // The ACK of §17.1.1.3 for a non-2xx final response to `invite`.
  static std::string build_ack(const sip::Message& invite, const sip::Message& response);

 private:
  void on_timer(Timer t) override;

  std::string ack_;
};

// What a server transaction tells its user.
struct ServerUser {
  std::function<void(const sip::Message&)> on_ack;  // ACK to a 2xx seen in Accepted
  std::function<void()> on_no_ack;                  // Timer H: no ACK for our final response
  std::function<void()> on_transport_error;
};

// §17.2.2: server non-INVITE transaction.
class ServerNonInvite final : public Transaction {
 public:
  ServerNonInvite(Timers& timers, const TimerConfig& config, Channel channel, sip::Message request,
                  ServerUser user);
  void on_retransmission();
  void respond(uint16_t status, std::string bytes);
  // The request, to build responses from; nullptr once shed().
  const sip::Message* request() const { return request_.get(); }
  void shed() override;

 private:
  void on_timer(Timer t) override;
  void on_transport_failure(std::string_view) override {
    if (!terminated()) transport_failed();
  }
  void transport_failed() { terminate_and(user_.on_transport_error); }

  std::unique_ptr<sip::Message> request_;
  ServerUser user_;
  std::string last_response_;
};

// §17.2.1 with RFC 6026: server INVITE transaction. Sends 100 Trying when the TU has not
// answered within TimerConfig::trying.
class ServerInvite final : public Transaction {
 public:
  ServerInvite(Timers& timers, const TimerConfig& config, Channel channel, sip::Message request,
               ServerUser user);
  void start();  // starts the 100 Trying timer
  void on_retransmission();
  void on_ack(const sip::Message& ack);
  void respond(uint16_t status, std::string bytes);
  // The request, to build responses from; nullptr once shed().
  const sip::Message* request() const { return request_.get(); }
  void shed() override;
  uint16_t last_status() const { return last_status_; }

 private:
  void on_timer(Timer t) override;
  void on_transport_failure(std::string_view) override {
    if (!terminated()) transport_failed();
  }
  void transport_failed() { terminate_and(user_.on_transport_error); }

  std::unique_ptr<sip::Message> request_;
  ServerUser user_;
  std::string last_response_;
  uint16_t last_status_ = 0;
  Millis interval_;
};

}  // namespace esg::txn
