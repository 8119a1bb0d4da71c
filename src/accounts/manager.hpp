#pragma once
// Provider accounts at run time: the store is the truth; the manager imports the accounts the
// config file declares, applies REST changes at once (a new account registers, an edited one
// re-registers, a deleted or disabled one un-registers), runs one RegistrationClient per
// account on the worker its Call-ID belongs to, and keeps a snapshot of their state for the
// monitoring API. Registration state changes go to the registration log.

#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "accounts/account.hpp"
#include "accounts/registration.hpp"
#include "store/store.hpp"

namespace esg::accounts {

// What the manager needs of the running daemon (the app implements it).
class Runtime {
 public:
  virtual ~Runtime() = default;
  virtual size_t workers() const = 0;
  virtual size_t worker_for(std::string_view call_id) const = 0;
  virtual void post(size_t worker, std::function<void()> f) = 0;
  virtual txn::Layer& layer(size_t worker) = 0;
  virtual txn::Timers& timers(size_t worker) = 0;
  virtual Link& link() = 0;
};

struct ManagerOptions {
  RegistrationOptions registration;
  // Accounts that start registering per second, at start-up and when this instance takes
  // accounts over from another (leased mode), so that a registrar sees no burst.
  double register_rate = 50;
  std::string log_dir;  // the registration log goes here (empty: none)
  // After every change of the accounts in the store (import, REST), outside the manager's locks.
  std::function<void()> on_change;
  // Calls in progress through an account (by code), for `onlinetrunkcount`.
  std::function<int(const std::string& code)> calls_in_progress;
  // Several instances (cluster/): an account runs only while this instance holds its lease;
  // serve() and unserve() say when.
  bool leased = false;
};

// An account as the cluster sees it: what to lease, and where it may run.
struct Leasable {
  int64_t id = 0;               // negative: a register-out PBX connection
  std::vector<int> serveridxs;  // empty: any instance
};

// An answer for the REST API: an HTTP status and a message naming the field.
struct ApiError {
  int status = 400;
  std::string message;
  std::string field;
};

class AccountManager {
 public:
  AccountManager(store::Store& store, Runtime& runtime, ManagerOptions options);
  ~AccountManager();
  AccountManager(const AccountManager&) = delete;
  AccountManager& operator=(const AccountManager&) = delete;

  // Imports the config's accounts (by code: added, or replaced when the code exists), then
  // starts every enabled account. Throws std::runtime_error naming `providers[i].field`.
  void start(const nlohmann::json& config_providers);
  // Un-registers every registered account and waits for the answers (bounded).
  void stop();

  Result<nlohmann::json, ApiError> list();
  Result<nlohmann::json, ApiError> get(int64_t id);
  Result<nlohmann::json, ApiError> create(const nlohmann::json& body);
  Result<nlohmann::json, ApiError> replace(int64_t id, const nlohmann::json& body);
  Result<nlohmann::json, ApiError> patch(int64_t id, const nlohmann::json& body);
  Result<void, ApiError> remove(int64_t id);

  // PBX connections in mode register-out register like accounts, under id -pbx.id and code
  // "pbx:<code>": this starts, restarts or stops them to match `wanted`.
  void sync_register_out(const std::vector<Account>& wanted);

  // Leased mode: start serving an account (when it exists; later when it appears), first
  // removing a dead instance's bindings when `clear_first`; stop serving it (un-register,
  // then `done` on a worker).
  void serve(int64_t id, bool clear_first);
  void unserve(int64_t id, std::function<void()> done);
  std::vector<Leasable> leasable() const;
  // Another instance changed the providers in the store: apply what differs. False when the
  // store could not be read (nothing changed).
  bool resync();

  // The `regs` entries of /api/monitor/v1/esg/active, one per account.
  nlohmann::json regs() const;
  // For tests and the monitoring page: the state of one account by code.
  std::optional<RegistrationStatus> status(const std::string& code) const;
  // The state of one account by id: what routing asks before sending a call out.
  std::optional<RegistrationStatus> status(int64_t id) const;
  // The account this manager keeps under `a.id` when it is the same account (every field
  // equal), else `a` as a new one: the edge's tables share the manager's accounts instead of
  // holding a second copy of each (≈0.85 KiB an account).
  std::shared_ptr<const Account> shared(Account&& a) const;

 private:
  struct Slot {
    int64_t id = 0;
    size_t worker = 0;
    std::unique_ptr<RegistrationClient> client;  // touched on `worker` only
  };
  struct Snapshot {
    std::shared_ptr<const Account> account;  // the one its client uses
    SharedStatus status;                     // the one its client handed out
  };

  void run(const Account& a, txn::Millis delay);
  void run_locked(const Account& a, txn::Millis delay);                // mu_ held
  void launch(const Account& a, txn::Millis delay, bool clear_first);  // mu_ held
  // When an account that starts now may send its first REGISTER: the next free slot of
  // register_rate (0 for one that does not register). mu_ held.
  txn::Millis next_register_delay(const Account& a);
  void halt(int64_t id, std::function<void()> done = {});
  // Halts the account's client and runs `a` in its place once it has stopped, unless a later
  // change (another restart, a removal) came in the meantime: a DELETE right after a PUT must
  // not see the PUT's client start after the account is gone.
  void restart(const Account& a);
  void forget(int64_t id);
  // The providers in the store, parsed (unparsable rows skipped).
  Result<std::vector<Account>, store::Error>
  stored();  // no longer wanted here: un-register, gone from monitoring
  void on_status(int64_t id, const Slot* from, const SharedStatus& s);
  std::string call_id_for(size_t worker, const std::string& prefix) const;
  Result<nlohmann::json, ApiError> save(int64_t id, const nlohmann::json& body, bool is_new);

  store::Store& store_;
  Runtime& runtime_;
  ManagerOptions options_;
  mutable std::mutex mu_;  // guards slots_, snapshots_ and the log
  std::unordered_map<int64_t, std::shared_ptr<Slot>> slots_;
  // Slots whose client is un-registering: stop() must be able to end them too.
  std::unordered_map<Slot*, std::shared_ptr<Slot>> halting_;
  std::unordered_map<int64_t, Snapshot> snapshots_;
  std::ofstream reg_log_;
  std::mutex api_mu_;  // one REST change at a time: store and clients stay in step
  std::unordered_map<int64_t, std::string> register_out_;  // id -> stored JSON of what runs
  // Every account that would run here (leased or not), and in leased mode those this instance
  // serves (value: remove old bindings first). Guarded by mu_.
  std::unordered_map<int64_t, std::shared_ptr<const Account>> known_;  // shared with the clients
  std::unordered_map<int64_t, bool> served_;
  std::chrono::steady_clock::time_point next_register_{};  // guarded by mu_
  // Restarts in flight: id -> the number of the latest one (only that one may run). Entries
  // live while a client stops, so idle accounts cost nothing here. Guarded by mu_.
  std::unordered_map<int64_t, uint64_t> restarting_;
  uint64_t restarts_ = 0;  // guarded by mu_
};

}  // namespace esg::accounts
