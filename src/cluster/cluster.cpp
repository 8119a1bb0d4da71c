#include "cluster/cluster.hpp"

#include <algorithm>
#include <unordered_map>

#include "base/json_text.hpp"
#include "base/random.hpp"
#include "base/time.hpp"
#include "log/log.hpp"

namespace esg::cluster {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// FNV-1a, 64 bits: the same on every instance and every build (std::hash is neither promised).
uint64_t fnv1a(const std::string& key, int64_t srvidx) {
  uint64_t h = 14695981039346656037ull;
  auto mix = [&h](unsigned char c) {
    h ^= c;
    h *= 1099511628211ull;
  };
  for (unsigned char c : key)
    mix(c);
  for (int i = 0; i < 8; ++i)
    mix(static_cast<unsigned char>(uint64_t(srvidx) >> (8 * i)));
  // A final avalanche: FNV's low bits alone spread consecutive srvidx values poorly.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

// What a monitoring page must see at once: which accounts, in which states.
std::string regs_summary(const nlohmann::json& regs) {
  std::string out;
  for (const auto& r : regs) {
    if (!r.is_object()) continue;
    out += r.value("code", "") + ":" + r.value("regstate", "") + ":" + r.value("pingstate", "") +
           ":" + std::to_string(r.value("onlinetrunkcount", 0)) + ";";
  }
  return out;
}

spdlog::logger& lg() {
  return log::get("cluster");
}

}  // namespace

int64_t rightful_owner(const std::string& key, const std::vector<int>& serveridxs,
                       const std::vector<Instance>& live) {
  const Instance* best = nullptr;
  uint64_t best_hash = 0;
  for (const auto& i : live) {
    if (!serveridxs.empty() &&
        std::find(serveridxs.begin(), serveridxs.end(), int(i.srvidx)) == serveridxs.end()) {
      continue;
    }
    const uint64_t h = fnv1a(key, i.srvidx);
    if (!best || i.roleid < best->roleid || (i.roleid == best->roleid && h > best_hash)) {
      best = &i;
      best_hash = h;
    }
  }
  return best ? best->srvidx : 0;
}

Cluster::Cluster(std::unique_ptr<store::Store> store, Owned& owned, Options options)
    : store_(std::move(store)),
      owned_(owned),
      options_(std::move(options)),
      started_ms_(timeutil::unix_ms()),
      boot_(random::hex(16)),
      // A lease lives as long as an instance's silence may last before it counts as dead: both
      // run out together, so the next owner is known the moment the lease is free.
      ttl_(options_.dead_after) {}

Cluster::~Cluster() {
  stop();
}

void Cluster::start() {
  lg().info("instance {} (roleid {}, node {}): heartbeat every {} ms, dead after {} ms",
            options_.srvidx, options_.roleid, options_.node, options_.heartbeat.count(),
            options_.dead_after.count());
  thread_ = std::thread([this] { loop(); });
  watchdog_thread_ = std::thread([this] { watchdog(); });
}

void Cluster::loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    const milliseconds wait = tick();
    lock.lock();
    if (stopping_) break;
    // Work that finished meanwhile (an un-REGISTER answered) wakes the loop early.
    cv_.wait_for(lock, wait, [this] { return stopping_ || !to_release_.empty(); });
  }
}

// Leases may run out `ttl_` after the renewal was sent; a store that hangs or is gone must not
// let this instance serve past that: this thread does not wait for the store.
void Cluster::watchdog() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, milliseconds(50), [this] { return stopping_; });
    if (stopping_ || serving_.empty() || Clock::now() < deadline_) continue;
    lock.unlock();
    drop_all_serving("the leases could not be renewed in time");
    lock.lock();
  }
}

void Cluster::drop_all_serving(const char* why) {
  std::set<std::string> keys;
  {
    std::lock_guard lock(mu_);
    keys.swap(serving_);
  }
  if (keys.empty()) return;
  lg().warn("stops serving {} account(s): {}", keys.size(), why);
  // No release: the store is out of reach; the leases run out or come back to us.
  for (const auto& k : keys)
    owned_.unserve(k, {});
}

store::InstanceRow Cluster::row(int64_t heartbeat_ms, std::string regs) const {
  store::InstanceRow r{options_.srvidx, options_.roleid, options_.node,   options_.addr,
                       started_ms_,     heartbeat_ms,    std::move(regs), boot_};
  if (options_.addrs) r.addrs = json_text(to_json(options_.addrs()));
  return r;
}

void Cluster::lost_store(const std::string& why) {
  bool was_ok;
  {
    std::lock_guard lock(mu_);
    was_ok = store_ok_;
    store_ok_ = false;
  }
  if (was_ok) lg().error("store unreachable: {}", why);
}

void Cluster::apply_leases(const store::ClusterView& view) {
  for (const auto& l : view.leases) {
    if (l.srvidx == 0) {
      leases_.erase(l.account);  // released: as free as a lease never taken
    } else {
      leases_[l.account] = l;
    }
  }
  lease_version_ = view.lease_version;
  {
    std::lock_guard lock(mu_);
    lease_rows_read_ += view.leases.size();
  }
  publish_holders();
}

void Cluster::publish_holders() {
  std::unordered_map<std::string, int64_t> holders;
  for (const auto& [k, l] : leases_) {
    if (k.rfind("tg:", 0) == 0) holders[k] = l.srvidx;
  }
  std::lock_guard lock(mu_);
  tg_holders_.swap(holders);
}

int64_t Cluster::holder(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = tg_holders_.find(key);
  return it == tg_holders_.end() ? 0 : it->second;
}

milliseconds Cluster::tick() {
  // Releases first: an account un-registered since the last tick is free for its next owner.
  std::vector<std::string> release;
  {
    std::lock_guard lock(mu_);
    release.swap(to_release_);
  }
  if (!release.empty()) {
    if (auto r = store_->release_leases(release, options_.srvidx); !r) {
      lost_store(r.error().message);
      std::lock_guard lock(mu_);
      // The leases run out by themselves if we never get through.
      to_release_.insert(to_release_.end(), release.begin(), release.end());
    } else {
      for (const auto& k : release) {
        lg().info("{}: released", k);
        auto it = leases_.find(k);
        if (it != leases_.end() && it->second.srvidx == options_.srvidx) leases_.erase(it);
      }
      std::lock_guard lock(mu_);
      leases_released_ += release.size();
    }
  }

  // Every refresh changes an account's last response: with thousands of accounts the whole
  // list would be rewritten each heartbeat. A change of state goes out at once, the rest at
  // most every 5 s (and only serialized then). With more than kManyRegs accounts even building
  // the list takes a good part of a heartbeat (it could make the heartbeat late): every 5 s.
  constexpr size_t kManyRegs = 1000;
  const bool look =
      published_count_ <= kManyRegs || Clock::now() - published_at_ >= std::chrono::seconds(5);
  const nlohmann::json regs = look ? owned_.regs() : nlohmann::json::array();
  const std::string summary = look ? regs_summary(regs) : published_summary_;
  const bool due = look && (summary != published_summary_ ||
                            Clock::now() - published_at_ >= std::chrono::seconds(5));
  if (look) published_count_ = regs.size();
  store::InstanceRow self = row(0, due ? json_text(regs) : std::string());
  const bool regs_changed = due && self.regs != published_regs_;
  // The heartbeat renews our leases: they may run out ttl_ after it was sent.
  const auto sent = Clock::now();
  auto view = store_->heartbeat(self, regs_changed, options_.dead_after.count(), lease_version_);
  if (!view && view.error().code == store::Errc::Conflict) {
    // Another live instance has our srvidx: serving anything would register the same accounts
    // twice. Nothing is renewed (the watchdog stops what we serve) nor taken until its row
    // falls silent (a restart right after a crash waits out the old start's dead_after).
    std::lock_guard lock(mu_);
    // Said when it starts, then every 30 s (the message changes each time: the other's age).
    if (conflict_.empty() || Clock::now() - conflict_said_ >= std::chrono::seconds(30)) {
      lg().error("{}", view.error().message);
      conflict_said_ = Clock::now();
    }
    conflict_ = view.error().message;
    return options_.heartbeat;
  }
  if (view && view->lease_version < lease_version_) {
    // The counter went back (a store restored from a backup): our copy means nothing now.
    lg().warn("the store's lease version went back ({} < {}): reading every lease",
              view->lease_version, lease_version_);
    leases_.clear();
    lease_version_ = -1;
    view = store_->heartbeat(self, regs_changed, options_.dead_after.count(), lease_version_);
  }
  if (!view) {
    lost_store(view.error().message);
    return options_.heartbeat;
  }
  {
    std::lock_guard lock(mu_);
    if (!conflict_.empty()) lg().info("srvidx {} is ours again", options_.srvidx);
    conflict_.clear();
  }
  if (due) {
    if (regs_changed) published_regs_ = std::move(self.regs);
    published_summary_ = summary;
    published_at_ = Clock::now();
  }
  apply_leases(*view);
  {
    std::lock_guard lock(mu_);
    if (!store_ok_) lg().info("store reachable");
    store_ok_ = true;
    // Stop serving a little before the leases can run out: un-registering takes a moment.
    deadline_ = sent + ttl_ - std::min(options_.heartbeat / 2, ttl_ / 4);
    last_instances_ = view->instances;
  }

  // Who is alive, by the store's clock.
  std::vector<Instance> live;
  std::set<int64_t> live_ids;
  for (const auto& i : view->instances) {
    const bool alive =
        i.srvidx == options_.srvidx || view->now_ms - i.heartbeat_ms < options_.dead_after.count();
    if (alive) {
      live.push_back({i.srvidx, i.roleid});
      live_ids.insert(i.srvidx);
    }
    bool was_alive;
    {
      std::lock_guard lock(mu_);
      auto it = alive_.find(i.srvidx);
      was_alive = it == alive_.end() ? alive : it->second;
      alive_[i.srvidx] = alive;
    }
    if (alive) {
      closed_.erase(i.srvidx);
    } else if (!closed_.count(i.srvidx)) {
      // Its calls died with it: close their records, once per death.
      if (auto n = store_->cdr_interrupt_active(i.srvidx); n) {
        closed_.insert(i.srvidx);
        if (was_alive || *n > 0) {
          lg().warn("instance {} ({}) is dead; {} of its call(s) closed as interrupted", i.srvidx,
                    i.node, *n);
        }
      }
    } else if (was_alive) {
      lg().warn("instance {} ({}) is dead", i.srvidx, i.node);
    }
  }

  if (view->config_version != config_version_) {
    // The first view too: the configuration this instance loaded at start may predate it
    // (another instance changed it between that load and this heartbeat, and would otherwise
    // stay unseen until the next change: e2e.cluster_line_serveridxs once missed a new line).
    if (owned_.config_changed()) config_version_ = view->config_version;
    // Re-reading thousands of accounts takes a while: decide on a fresh view and heartbeat,
    // not on one that may be close to running out.
    if (Clock::now() - sent > options_.heartbeat / 2) return milliseconds(0);
  }

  std::set<std::string> held;
  for (const auto& [k, l] : leases_) {
    if (l.srvidx == options_.srvidx) held.insert(k);
  }
  std::unordered_map<std::string, std::vector<int>> members;
  for (auto& m : owned_.members())
    members[m.key] = std::move(m.serveridxs);

  std::set<std::string> serving, releasing;
  {
    std::lock_guard lock(mu_);
    serving = serving_;
    releasing = releasing_;
  }
  milliseconds wait = options_.heartbeat;
  // An instance that has gone silent dies at its last heartbeat + dead_after: look then, not up
  // to a heartbeat later (a live one heartbeats again well before, and this never fires).
  for (const auto& i : view->instances) {
    const int64_t dies_in = i.heartbeat_ms + options_.dead_after.count() - view->now_ms;
    if (i.srvidx != options_.srvidx && dies_in >= 0) {
      wait = std::min(wait, milliseconds(dies_in + 20));
    }
  }

  // Served without a lease: another instance has it now (we were away too long).
  for (const auto& k : serving) {
    if (held.count(k) || releasing.count(k)) continue;
    lg().warn("{}: lease lost, stops serving", k);
    {
      std::lock_guard lock(mu_);
      serving_.erase(k);
    }
    owned_.unserve(k, {});
  }
  // Held but gone from the configuration: un-register, then release.
  for (const auto& k : held) {
    if (!members.count(k) && !releasing.count(k)) hand_over(k);
  }

  // Leases to take: all in a few statements, whatever their number (a takeover of thousands).
  std::vector<std::string> take;
  std::set<std::string> clear;  // taken over from a dead instance: its binding may be there
  for (const auto& [key, serveridxs] : members) {
    const int64_t owner = rightful_owner(key, serveridxs, live);
    if (releasing.count(key)) continue;  // on its way out: released on a later tick
    const bool is_held = held.count(key) > 0;
    const bool is_serving = serving.count(key) > 0;
    if (owner == options_.srvidx) {
      if (is_held) {
        if (!is_serving) {
          {
            std::lock_guard lock(mu_);
            serving_.insert(key);
          }
          // A lease from this srvidx's previous start (a restart after a crash): that start's
          // binding may still be at the registrar.
          const bool earlier = !taken_.count(key);
          lg().info("{}: serving again (lease kept{})", key,
                    earlier ? " from an earlier start" : "");
          taken_.insert(key);
          owned_.serve(key, earlier);
        }
        continue;
      }
      auto it = leases_.find(key);
      const store::Lease* l = it == leases_.end() ? nullptr : &it->second;
      // A lease is held until it was taken ttl_ ago and its holder is silent.
      if (l && (l->expires_ms >= view->now_ms || live_ids.count(l->srvidx))) {
        // Its holder un-registers and releases it (failback), or dies (failover): look again
        // soon, and right after it runs out.
        wait = std::min(wait, milliseconds(200));
        wait =
            std::min(wait, milliseconds(std::max<int64_t>(20, l->expires_ms - view->now_ms + 20)));
        continue;
      }
      take.push_back(key);
      if (l) clear.insert(key);
    } else if (is_serving || is_held) {
      // Someone with a better claim is alive: hand over in order (un-register, then release).
      lg().info("{}: handing over to instance {}", key, owner);
      hand_over(key);
    }
  }
  std::sort(take.begin(), take.end());
  constexpr size_t kBatch = 1000;  // bounds one statement's size
  for (size_t from = 0; from < take.size(); from += kBatch) {
    // Serving thousands takes a while: the rest after the next heartbeat, not so late that
    // the watchdog stops what was just taken.
    if (from > 0 && Clock::now() - sent > options_.heartbeat / 2) {
      wait = milliseconds(0);
      break;
    }
    const std::vector<std::string> batch(take.begin() + from,
                                         take.begin() + std::min(take.size(), from + kBatch));
    auto got = store_->acquire_leases(batch, options_.srvidx, ttl_.count());
    if (!got) {
      lost_store(got.error().message);
      break;
    }
    if (got->size() < batch.size()) wait = std::min(wait, milliseconds(200));
    for (const auto& key : *got) {
      const bool from_dead = clear.count(key) > 0;
      lg().info(
          "{}: lease taken{}", key,
          from_dead ? " from dead instance " + std::to_string(leases_[key].srvidx) : std::string());
      leases_[key] = {key, options_.srvidx, view->now_ms + ttl_.count(), lease_version_};
      taken_.insert(key);
      {
        std::lock_guard lock(mu_);
        serving_.insert(key);
        ++leases_taken_;
      }
      owned_.serve(key, from_dead);
    }
  }
  if (!take.empty()) publish_holders();
  return wait;
}

void Cluster::hand_over(const std::string& key) {
  bool was_serving;
  {
    std::lock_guard lock(mu_);
    was_serving = serving_.erase(key) > 0;
    if (was_serving) {
      releasing_.insert(key);
    } else {
      to_release_.push_back(key);
    }
  }
  if (!was_serving) return;
  // Not under mu_: `done` may run at once, on this thread.
  owned_.unserve(key, [this, key] {
    std::lock_guard lock(mu_);
    releasing_.erase(key);
    to_release_.push_back(key);
    cv_.notify_all();
  });
}

void Cluster::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (watchdog_thread_.joinable()) watchdog_thread_.join();
  // Un-register everything, wait (bounded), release, and say so in the instances table.
  std::set<std::string> keys;
  {
    std::lock_guard lock(mu_);
    keys = serving_;
    for (const auto& k : releasing_)
      keys.insert(k);
    serving_.clear();
  }
  struct Wait {
    std::mutex m;
    std::condition_variable cv;
    size_t left = 0;
  };
  auto w = std::make_shared<Wait>();
  w->left = keys.size();
  for (const auto& k : keys) {
    owned_.unserve(k, [w] {
      std::lock_guard l(w->m);
      --w->left;
      w->cv.notify_all();
    });
  }
  {
    std::unique_lock l(w->m);
    w->cv.wait_for(l, std::chrono::seconds(5), [&] { return w->left == 0; });
  }
  // The loop has ended: its copy of the leases is ours to read.
  std::vector<std::string> held;
  for (const auto& [k, l] : leases_) {
    if (l.srvidx == options_.srvidx) held.push_back(k);
  }
  for (const auto& k : keys) {
    if (!leases_.count(k)) held.push_back(k);
  }
  (void)store_->release_leases(held, options_.srvidx);
  // A heartbeat of 0: the others see this instance dead now, not after `dead_after`.
  (void)store_->heartbeat(row(-1, "[]"), true, options_.dead_after.count(), lease_version_);
  lg().info("instance {} stopped: {} account(s) handed over", options_.srvidx, keys.size());
}

std::vector<store::InstanceRow> Cluster::rows_for_view(std::map<int64_t, bool>& alive) {
  std::vector<store::InstanceRow> rows;
  bool cached;
  {
    std::lock_guard lock(mu_);
    // At most one read of the instances' regs per heartbeat, however often the monitoring API
    // is asked: they are big with thousands of accounts, and this is the heartbeat's store
    // connection (a page polling it must not hold the heartbeat back).
    cached = !servers_rows_.empty() && Clock::now() - servers_read_ < options_.heartbeat;
    if (cached) rows = servers_rows_;
  }
  if (!cached) {
    auto fresh = store_->instances();
    std::lock_guard lock(mu_);
    if (fresh) {
      servers_rows_ = *fresh;
      servers_read_ = Clock::now();
    }
    rows = fresh ? *fresh : last_instances_;
  }
  {
    std::lock_guard lock(mu_);
    alive = alive_;
  }
  // Before its first heartbeat (or with the store away) this instance is not in the table yet.
  if (std::none_of(rows.begin(), rows.end(),
                   [this](const store::InstanceRow& r) { return r.srvidx == options_.srvidx; })) {
    rows.push_back(row(0, ""));
  }
  return rows;
}

nlohmann::json Cluster::servers(const nlohmann::json& own_regs) {
  std::map<int64_t, bool> alive;
  const auto rows = rows_for_view(alive);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : rows) {
    const bool self = r.srvidx == options_.srvidx;
    auto it = alive.find(r.srvidx);
    const bool online = self || (it != alive.end() && it->second);
    nlohmann::json regs = nlohmann::json::array();
    if (self) {
      regs = own_regs;
    } else if (online && !r.regs.empty()) {
      regs = nlohmann::json::parse(r.regs, nullptr, false);
      if (!regs.is_array()) regs = nlohmann::json::array();
    }
    out.push_back({{"srvidx", r.srvidx},
                   {"roleid", r.roleid},
                   {"node", r.node},
                   {"addr", r.addr},
                   {"online", online},
                   {"regs", regs}});
  }
  return out;
}

std::vector<FwInstance> Cluster::fw_instances(const std::vector<FwAddress>& own) {
  std::map<int64_t, bool> alive;
  const auto rows = rows_for_view(alive);
  std::vector<FwInstance> out;
  for (const auto& r : rows) {
    FwInstance i;
    i.srvidx = r.srvidx;
    i.node = r.node;
    i.self = r.srvidx == options_.srvidx;
    auto it = alive.find(r.srvidx);
    // A row our last heartbeat did not see was written since: alive, unless it says stopped.
    i.online = i.self || (it != alive.end() ? it->second : r.heartbeat_ms > 0);
    // An offline instance stays listed: it comes back (and takes its accounts back) from the
    // same addresses, and the PBX must not refuse it then.
    i.addrs = i.self ? own : fw_addresses_from_json(nlohmann::json::parse(r.addrs, nullptr, false));
    out.push_back(std::move(i));
  }
  return out;
}

nlohmann::json Cluster::status() const {
  std::lock_guard lock(mu_);
  int online = 0, offline = 0;
  for (const auto& [srvidx, alive] : alive_)
    ++(alive ? online : offline);
  return {{"store_ok", store_ok_},
          {"serving", serving_.size()},
          {"online", online},
          {"offline", offline},
          {"leases_taken", leases_taken_},
          {"leases_released", leases_released_},
          {"lease_rows_read", lease_rows_read_},
          {"srvidx_conflict", !conflict_.empty()}};
}

}  // namespace esg::cluster
