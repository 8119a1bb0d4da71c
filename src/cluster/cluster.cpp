#include "cluster/cluster.hpp"

#include <algorithm>
#include <unordered_map>

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
  return {options_.srvidx, options_.roleid, options_.node,   options_.addr,
          started_ms_,     heartbeat_ms,    std::move(regs), boot_};
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

milliseconds Cluster::tick() {
  // Releases first: an account un-registered since the last tick is free for its next owner.
  std::vector<std::string> release;
  {
    std::lock_guard lock(mu_);
    release.swap(to_release_);
  }
  for (const auto& k : release) {
    if (auto r = store_->release_lease(k, options_.srvidx); !r) {
      lost_store(r.error().message);
      std::lock_guard lock(mu_);
      to_release_.push_back(k);  // the lease runs out by itself if we never get through
    } else {
      lg().info("{}: released", k);
      std::lock_guard lock(mu_);
      ++leases_released_;
    }
  }

  // Every refresh changes an account's last response: with thousands of accounts the whole
  // list would be rewritten each heartbeat. A change of state goes out at once, the rest at
  // most every 5 s (and only serialized then).
  const nlohmann::json regs = owned_.regs();
  const std::string summary = regs_summary(regs);
  const bool due =
      summary != published_summary_ || Clock::now() - published_at_ >= std::chrono::seconds(5);
  store::InstanceRow self = row(0, due ? regs.dump() : std::string());
  const bool regs_changed = due && self.regs != published_regs_;
  auto view = store_->heartbeat(self, regs_changed, options_.dead_after.count());
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
  const auto sent = Clock::now();
  auto held_list = store_->renew_leases(options_.srvidx, ttl_.count());
  if (!held_list) {
    lost_store(held_list.error().message);
    return options_.heartbeat;
  }
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
  for (const auto& i : view->instances) {
    const bool alive =
        i.srvidx == options_.srvidx || view->now_ms - i.heartbeat_ms < options_.dead_after.count();
    if (alive) live.push_back({i.srvidx, i.roleid});
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
    if (config_version_ < 0 || owned_.config_changed()) config_version_ = view->config_version;
  }

  std::unordered_map<std::string, const store::Lease*> leases;
  for (const auto& l : view->leases)
    leases[l.account] = &l;
  const std::set<std::string> held(held_list->begin(), held_list->end());
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
          lg().info("{}: serving again (lease kept)", key);
          owned_.serve(key, false);
        }
        continue;
      }
      auto it = leases.find(key);
      const store::Lease* l = it == leases.end() ? nullptr : it->second;
      if (l && l->srvidx != options_.srvidx && l->expires_ms >= view->now_ms) {
        // Its holder un-registers and releases it (failback), or dies (failover): look again
        // soon, and right after it runs out.
        wait = std::min(wait, milliseconds(200));
        wait =
            std::min(wait, milliseconds(std::max<int64_t>(20, l->expires_ms - view->now_ms + 20)));
        continue;
      }
      auto got = store_->acquire_lease(key, options_.srvidx, ttl_.count());
      if (!got) {
        lost_store(got.error().message);
        break;
      }
      if (!*got) {
        wait = std::min(wait, milliseconds(200));
        continue;
      }
      // Taken over from an instance that did not release it: its binding may still be there.
      const bool clear = l && l->srvidx != options_.srvidx;
      lg().info("{}: lease taken{}", key,
                clear ? " from dead instance " + std::to_string(l->srvidx) : std::string());
      {
        std::lock_guard lock(mu_);
        serving_.insert(key);
        ++leases_taken_;
      }
      owned_.serve(key, clear);
    } else if (is_serving || is_held) {
      // Someone with a better claim is alive: hand over in order (un-register, then release).
      lg().info("{}: handing over to instance {}", key, owner);
      hand_over(key);
    }
  }
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
  auto held = store_->renew_leases(options_.srvidx, 0);
  if (held) {
    for (const auto& k : *held)
      (void)store_->release_lease(k, options_.srvidx);
  }
  // A heartbeat of 0: the others see this instance dead now, not after `dead_after`.
  (void)store_->heartbeat(row(-1, "[]"), true, options_.dead_after.count());
  lg().info("instance {} stopped: {} account(s) handed over", options_.srvidx, keys.size());
}

nlohmann::json Cluster::servers(const nlohmann::json& own_regs) {
  std::vector<store::InstanceRow> rows;
  auto fresh = store_->instances();
  std::map<int64_t, bool> alive;
  {
    std::lock_guard lock(mu_);
    rows = fresh ? *fresh : last_instances_;
    alive = alive_;
  }
  // Before its first heartbeat (or with the store away) this instance is not in the table yet.
  if (std::none_of(rows.begin(), rows.end(),
                   [this](const store::InstanceRow& r) { return r.srvidx == options_.srvidx; })) {
    rows.push_back(row(0, ""));
  }
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
          {"srvidx_conflict", !conflict_.empty()}};
}

}  // namespace esg::cluster
