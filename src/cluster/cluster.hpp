#pragma once
// Several instances on one PostgreSQL store (DESIGN.md "Storage and scale"): each instance
// heartbeats into `instances`; each provider account, register-out PBX connection and Telegram
// line is served by the one live instance its `serveridxs` allows with the lowest `roleid`
// (equal roleids share the accounts by a hash), and only while it holds the account's lease.
//
// Handover is ordered. A rightful owner takes a lease only when nobody holds it or it ran out:
// the previous owner un-registers first and then releases it (failback), or dies and its lease
// runs out (failover: the new owner then removes the dead instance's bindings with
// `Contact: *` before registering). An instance that cannot renew its leases stops serving
// before they can run out (no split brain), and takes them up again when the store is back.
//
// Store traffic does not grow with the accounts: a heartbeat is two statements (write the
// instance's row, which also renews every lease it holds; read the instances and the leases
// changed since the last read, by a version counter), and each instance keeps a copy of the
// leases. Takeovers and releases are one statement per batch.
//
// The cluster runs on a thread of its own with a store connection of its own: store latency
// never reaches a worker, and a slow CDR write never delays a heartbeat.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "cluster/firewall.hpp"
#include "store/store.hpp"

namespace esg::cluster {

struct Member {
  std::string key;              // "provider:<id>", "pbx:<id>", "tg:<id>"
  std::vector<int> serveridxs;  // empty: any instance
};

// What the cluster drives (the app implements it over the account manager and the lines).
class Owned {
 public:
  virtual ~Owned() = default;
  virtual std::vector<Member> members() = 0;
  virtual void serve(const std::string& key, bool clear_first) = 0;
  // Stop serving (un-register); `done` may run on any thread, once.
  virtual void unserve(const std::string& key, std::function<void()> done) = 0;
  // Another instance changed the configuration in the store. False when it could not be read
  // (asked again on the next heartbeat).
  virtual bool config_changed() = 0;
  // This instance's `regs` for the monitoring API (a JSON array).
  virtual nlohmann::json regs() = 0;
};

struct Options {
  int64_t srvidx = 1;
  int64_t roleid = 1;
  std::string node = "esg";
  std::string addr;
  std::chrono::milliseconds heartbeat{1000};
  std::chrono::milliseconds dead_after{3000};  // silence after which an instance is dead
  // The addresses this instance sends to PBXs from, asked at each heartbeat (they follow a
  // reload, STUN and the interfaces) and published in its row; none when empty.
  std::function<std::vector<FwAddress>()> addrs;
};

struct Instance {
  int64_t srvidx = 0;
  int64_t roleid = 0;
};

// The rightful owner of `key` among `live`: allowed by `serveridxs` (all when empty), lowest
// roleid, ties broken by the highest hash of (key, srvidx) — rendezvous hashing, so that equal
// instances share the accounts evenly and one instance coming or going moves only its share.
// 0 when no live instance is allowed.
int64_t rightful_owner(const std::string& key, const std::vector<int>& serveridxs,
                       const std::vector<Instance>& live);

class Cluster {
 public:
  Cluster(std::unique_ptr<store::Store> store, Owned& owned, Options options);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  void start();
  // Graceful: un-registers what this instance serves, releases the leases and marks the
  // instance stopped, so that the others take over at once instead of after `dead_after`.
  void stop();
  // Every instance for the monitoring API: srvidx, node, addr, online, roleid, regs (this
  // instance's own `regs` given fresh by the caller).
  nlohmann::json servers(const nlohmann::json& own_regs);
  // Every instance with the addresses it published, for the firewall list (this instance's
  // own given fresh by the caller).
  std::vector<FwInstance> fw_instances(const std::vector<FwAddress>& own);
  // For /metrics, from the last heartbeat (no store access): {"store_ok", "serving",
  // "online", "offline", "leases_taken", "leases_released", "srvidx_conflict",
  // "lease_rows_read" (lease rows the heartbeats read: they grow only when leases change)}.
  nlohmann::json status() const;
  // The srvidx holding the lease of a Telegram line ("tg:<id>") at the last heartbeat; 0: none.
  int64_t holder(const std::string& key) const;

 private:
  void loop();
  void watchdog();
  std::chrono::milliseconds tick();  // returns how long to wait before the next one
  void lost_store(const std::string& why);
  // This instance's row: heartbeat_ms < 0 for "stopped", `regs` empty when not sent.
  store::InstanceRow row(int64_t heartbeat_ms, std::string regs) const;
  void drop_all_serving(const char* why);
  void hand_over(const std::string& key);  // un-register, then release the lease
  // Folds the leases changed since the last view into leases_.
  void apply_leases(const store::ClusterView& view);
  void publish_holders();  // the lines' holders from leases_ for holder()
  // The instances' rows with their regs and addrs (read at most once a heartbeat), and who is
  // alive: for servers() and fw_instances().
  std::vector<store::InstanceRow> rows_for_view(std::map<int64_t, bool>& alive);

  std::unique_ptr<store::Store> store_;
  Owned& owned_;
  Options options_;
  const int64_t started_ms_;
  const std::string boot_;  // this start's id in the instances table
  const std::chrono::milliseconds ttl_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool store_ok_ = false;
  std::string conflict_;  // another live instance uses our srvidx: why we serve nothing
  std::chrono::steady_clock::time_point conflict_said_;
  std::set<std::string> serving_;
  std::set<std::string> releasing_;                 // un-registering before the lease is released
  std::vector<std::string> to_release_;             // un-registered: release on the next tick
  std::chrono::steady_clock::time_point deadline_;  // leases may run out after this
  std::map<int64_t, bool> alive_;                   // srvidx -> alive at the last view
  std::set<int64_t> closed_;                        // dead instances whose calls were closed
  std::vector<store::InstanceRow> last_instances_;
  std::vector<store::InstanceRow> servers_rows_;  // the last instances() for servers()
  std::chrono::steady_clock::time_point servers_read_;
  int64_t config_version_ = -1;
  // The loop thread's copy of the leases table (free ones left out), up to lease_version_.
  std::unordered_map<std::string, store::Lease> leases_;
  int64_t lease_version_ = -1;
  std::unordered_map<std::string, int64_t> tg_holders_;  // guarded by mu_: "tg:<id>" -> srvidx
  std::set<std::string> taken_;   // leases this start took (not inherited from an earlier one)
  uint64_t lease_rows_read_ = 0;  // guarded by mu_
  uint64_t leases_taken_ = 0, leases_released_ = 0;  // guarded by mu_
  std::string published_regs_;
  std::string published_summary_;  // codes and states of what was published
  size_t published_count_ = 0;     // how many accounts it listed
  std::chrono::steady_clock::time_point published_at_;
  std::thread thread_, watchdog_thread_;
};

}  // namespace esg::cluster
