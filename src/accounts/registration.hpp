#pragma once
// The registration client (RFC 3261 §10.2) for one provider account, and the OPTIONS ping that
// keeps NAT bindings open. Runs on the worker its Call-ID hashes to; every wait has a timer.
//
// REGISTER goes to the account's domain, through its proxy when set (Route: <sip:proxy;lr>),
// answers digest challenges (401/407, MD5, SHA-256, qop), honours the expiry the registrar
// grants and refreshes before it runs out, raises Expires on 423, and on failure retries with a
// growing pause, capped, forever. Rejected credentials (403, or a 401/407 to an answered
// challenge that is not stale) are `auth_failed`, apart from `failed`.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "accounts/account.hpp"
#include "sip/auth/digest.hpp"
#include "txn/layer.hpp"

namespace esg::accounts {

enum class RegState : uint8_t {
  None,  // point-to-point: no registration
  Unregistered,
  Registering,
  Registered,
  Failed,
  AuthFailed,
  Disabled,
};
std::string_view reg_state_name(RegState s);

enum class PingState : uint8_t { Disabled, Ok, Failed };
std::string_view ping_state_name(PingState s);

// A place to send to: transport, host (a name before resolution, an address after), port
// (0 before resolution: none given, DNS says).
struct Destination {
  std::string transport = "udp";
  std::string host;
  uint16_t port = 5060;
};

// How the client reaches the network; the app implements it with the transport and DNS.
class Link {
 public:
  virtual ~Link() = default;
  struct Local {
    std::string host;  // for Via and Contact
    uint16_t port = 0;
  };
  // Our address towards `to` over its transport.
  virtual Local local(const Destination& to) = 0;
  // RFC 3263: the addresses to try for `to`, in order. `done` runs on the calling worker.
  virtual void resolve(const Destination& to,
                       std::function<void(std::vector<Destination>)> done) = 0;
  // A channel to a resolved destination.
  virtual txn::Channel channel(const Destination& to, bool tls_verify) = 0;
};

struct RegistrationOptions {
  txn::Millis retry_min{std::chrono::seconds(5)};  // first pause after a failure
  txn::Millis retry_max{std::chrono::minutes(5)};  // the pause doubles up to this
  txn::Millis start_delay{0};                      // spreads start-up REGISTERs
  std::string user_agent = "esg";
  // Fixed Call-IDs (the registration's and the pings'), chosen by the caller so that their
  // responses reach this client's worker; random when empty. An account that does not ping
  // keeps no ping Call-ID.
  std::string call_id;
  std::string ping_call_id;
  // A view of a constant, not a string: each account's client keeps its options, and a copy
  // of this line is ~100 bytes an account.
  std::string_view allow = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, REFER, NOTIFY";
  // Taking over from an instance that died (cluster/): first remove every binding of the
  // account (`Contact: *`, `Expires: 0`, RFC 3261 §10.2.2), then register, so that the
  // registrar never holds the dead instance's contact next to ours.
  bool clear_bindings_first = false;
};

struct RegistrationStatus {
  RegState regstate = RegState::Unregistered;
  PingState pingstate = PingState::Disabled;
  uint32_t expires = 0;       // granted by the registrar
  std::string reason;         // why the state is what it is ("401 Unauthorized", "timeout")
  std::string warning;        // e.g. a private address towards a public provider
  std::string last_response;  // the last response to REGISTER, whole
};
// A status as the client hands it out: never changed afterwards (the client's next change is
// a new one), so that the manager's snapshot shares it instead of keeping a copy of its own.
using SharedStatus = std::shared_ptr<const RegistrationStatus>;
// The status of a client that has not reported yet, in `state`: a constant, not an allocation.
SharedStatus initial_status(RegState state);

class RegistrationClient {
 public:
  using OnChange = std::function<void(const SharedStatus&)>;
  RegistrationClient(std::shared_ptr<const Account> account, txn::Layer& layer, txn::Timers& timers,
                     Link& link, RegistrationOptions options, OnChange on_change);
  ~RegistrationClient();
  RegistrationClient(const RegistrationClient&) = delete;
  RegistrationClient& operator=(const RegistrationClient&) = delete;

  const std::string& call_id() const { return call_id_; }
  const RegistrationStatus& status() const { return *status_; }
  const Account& account() const { return *account_; }

  void start();
  // Un-registers (Expires: 0) when registered, then calls `done` (at once when there is nothing
  // to un-register). Bounded by the transaction's own timeout.
  void stop(std::function<void()> done);

 private:
  void begin_register();
  void send_register(uint32_t expires);
  void on_response(const sip::Message& r);
  void on_failure(uint16_t status, std::string_view why);
  void registered(const sip::Message& r);
  void fail(RegState state, std::string reason, bool next_target);
  // What the client's one timer does next. An enum, not a std::function: the timer's callback
  // then fits in std::function's own storage (no allocation per account for its refresh).
  enum class Next : uint8_t { Register, Refresh };
  void schedule(txn::Millis after, Next next);
  void refresh();
  void set_state(RegState s, std::string reason);
  // The status to change: status_ itself until it is handed out, then a copy of it.
  RegistrationStatus& edit();
  void publish();
  void ping();
  uint32_t granted_expires(const sip::Message& r) const;

  std::shared_ptr<const Account> account_;  // shared with the manager's snapshot
  txn::Layer& layer_;
  txn::Timers& timers_;
  Link& link_;
  // What the client keeps of its options: the Call-IDs move into call_id_ and ping_call_id_
  // (two empty strings kept per account would be 64 bytes each of 10,000 clients).
  struct Kept {
    txn::Millis retry_min;
    txn::Millis retry_max;
    txn::Millis start_delay;
    std::string user_agent;
    std::string_view allow;
  } options_;
  OnChange on_change_;
  std::shared_ptr<RegistrationStatus> status_;
  bool status_shared_ = false;  // handed out: edit() copies it first

  std::string call_id_;
  std::string ping_call_id_;  // empty when the account does not ping
  uint32_t ping_cseq_ = 0;
  std::string from_tag_;
  uint32_t cseq_ = 0;
  uint32_t expires_;  // what we ask for (raised by 423)
  std::vector<Destination> targets_;
  size_t target_ = 0;
  Link::Local local_;
  sip::auth::DigestClient digest_;
  std::string nonce_;          // the nonce digest_ counts for
  std::string authorization_;  // header line answering the last challenge
  int challenges_ = 0;         // answered challenges since the last success
  txn::Millis retry_;
  txn::Timers::Id timer_ = 0;
  txn::Timers::Id ping_timer_ = 0;
  bool stopping_ = false;
  bool clearing_ = false;  // the `Contact: *` REGISTER is on its way
  uint32_t sent_expires_ = 0;
  std::function<void()> on_stopped_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // guards late callbacks
};

// RFC 1918, RFC 6598 and loopback/link-local ranges: addresses a provider cannot reach.
bool is_private_address(const std::string& addr);

}  // namespace esg::accounts
