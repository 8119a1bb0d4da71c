// What the cluster asks of the store (issue 20): a heartbeat asks only for the leases changed
// since the last one it saw, an idle one reads none and renews nothing lease by lease, and a
// takeover of thousands of accounts is a few statements, not one per account. Over a fake
// store (the module seam) that keeps the leases with a version counter like PostgreSQL's.
#include "cluster/cluster.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <map>

namespace esg::cluster {
namespace {

using namespace std::chrono_literals;

class FakeStore final : public store::Store {
 public:
  struct Counts {
    int heartbeats = 0, acquires = 0, releases = 0;
    size_t lease_rows_returned = 0;
    std::vector<int64_t> asked_after;  // leases_after of each heartbeat
  };

  // Another instance, as the store shows it.
  void other(int64_t srvidx, int64_t roleid, int64_t heartbeat_ms) {
    std::lock_guard lock(mu_);
    auto& r = instances_[srvidx];
    r.srvidx = srvidx;
    r.roleid = roleid;
    r.heartbeat_ms = heartbeat_ms;
  }
  void lease(const std::string& account, int64_t srvidx, int64_t expires_ms) {
    std::lock_guard lock(mu_);
    leases_[account] = {account, srvidx, expires_ms, ++version_};
  }
  Counts counts() {
    std::lock_guard lock(mu_);
    return counts_;
  }
  int64_t version() {
    std::lock_guard lock(mu_);
    return version_;
  }
  int64_t now() const { return now_ms_; }
  // Another instance changed the configuration tables.
  void change_config() {
    std::lock_guard lock(mu_);
    ++config_version_;
  }

  Result<store::ClusterView, store::Error> heartbeat(const store::InstanceRow& self, bool, int64_t,
                                                     int64_t leases_after) override {
    std::lock_guard lock(mu_);
    ++counts_.heartbeats;
    counts_.asked_after.push_back(leases_after);
    auto& r = instances_[self.srvidx];
    r = self;
    r.heartbeat_ms = self.heartbeat_ms < 0 ? 0 : now_ms_;
    store::ClusterView v;
    v.now_ms = now_ms_;
    v.lease_version = version_;
    v.config_version = config_version_;
    for (const auto& [id, i] : instances_)
      v.instances.push_back(i);
    for (const auto& [k, l] : leases_) {
      if (l.version > leases_after) v.leases.push_back(l);
    }
    counts_.lease_rows_returned += v.leases.size();
    return v;
  }
  Result<std::vector<std::string>, store::Error> acquire_leases(
      const std::vector<std::string>& accounts, int64_t srvidx, int64_t ttl_ms) override {
    std::lock_guard lock(mu_);
    ++counts_.acquires;
    ++version_;
    std::vector<std::string> got;
    for (const auto& a : accounts) {
      auto it = leases_.find(a);
      if (it != leases_.end() && it->second.srvidx != 0 && it->second.srvidx != srvidx) {
        const auto& holder = instances_[it->second.srvidx];
        const bool alive = holder.heartbeat_ms > now_ms_ - ttl_ms;
        if (it->second.expires_ms >= now_ms_ || alive) continue;
      }
      leases_[a] = {a, srvidx, now_ms_ + ttl_ms, version_};
      got.push_back(a);
    }
    return got;
  }
  Result<void, store::Error> release_leases(const std::vector<std::string>& accounts,
                                            int64_t srvidx) override {
    std::lock_guard lock(mu_);
    ++counts_.releases;
    ++version_;
    for (const auto& a : accounts) {
      auto it = leases_.find(a);
      if (it != leases_.end() && it->second.srvidx == srvidx) it->second = {a, 0, 0, version_};
    }
    return {};
  }
  Result<std::vector<store::InstanceRow>, store::Error> instances() override {
    std::lock_guard lock(mu_);
    std::vector<store::InstanceRow> out;
    for (const auto& [id, i] : instances_)
      out.push_back(i);
    return out;
  }
  Result<int64_t, store::Error> cdr_interrupt_active(int64_t) override { return int64_t(0); }

  // The configuration tables: not used by the cluster.
  Result<std::vector<store::Row>, store::Error> list(store::Table) override { return none(); }
  Result<store::Row, store::Error> get(store::Table, int64_t) override { return none(); }
  Result<store::Row, store::Error> find_code(store::Table, const std::string&) override {
    return none();
  }
  Result<int64_t, store::Error> insert(store::Table, const std::string&, const std::string&,
                                       int64_t) override {
    return none();
  }
  Result<void, store::Error> update(store::Table, int64_t, const std::string&,
                                    const std::string&) override {
    return none();
  }
  Result<void, store::Error> remove(store::Table, int64_t) override { return none(); }
  int schema_version() override { return 0; }
  Result<int64_t, store::Error> cdr_insert(const store::Cdr&) override { return none(); }
  Result<void, store::Error> cdr_update(const store::Cdr&) override { return none(); }
  Result<std::vector<store::Cdr>, store::Error> cdr_query(const store::CdrQuery&) override {
    return none();
  }
  Result<void, store::Error> in_transaction(const std::function<void()>& f) override {
    f();
    return {};
  }

 private:
  static Unexpected<store::Error> none() {
    return unexpected(store::Error{store::Errc::NotFound, "not in the fake"});
  }

  std::mutex mu_;
  const int64_t now_ms_ = 1'000'000;  // the store's clock stands still: nobody dies meanwhile
  std::map<int64_t, store::InstanceRow> instances_;
  std::map<std::string, store::Lease> leases_;
  int64_t version_ = 0;
  int64_t config_version_ = 7;  // changed before this instance started
  Counts counts_;
};

class Accounts final : public Owned {
 public:
  explicit Accounts(int n) {
    for (int i = 0; i < n; ++i)
      members_.push_back({"provider:" + std::to_string(i + 1), {}});
  }
  std::vector<Member> members() override { return members_; }
  void serve(const std::string& key, bool clear_first) override {
    std::lock_guard lock(mu_);
    served_[key] = clear_first;
  }
  void unserve(const std::string& key, std::function<void()> done) override {
    {
      std::lock_guard lock(mu_);
      served_.erase(key);
    }
    if (done) done();
  }
  bool config_changed() override {
    ++reloads;
    return true;
  }
  std::atomic<int> reloads{0};
  nlohmann::json regs() override { return nlohmann::json::array(); }
  std::map<std::string, bool> served() {
    std::lock_guard lock(mu_);
    return served_;
  }

 private:
  std::vector<Member> members_;
  std::mutex mu_;
  std::map<std::string, bool> served_;
};

Options fast(int64_t srvidx) {
  Options o;
  o.srvidx = srvidx;
  o.roleid = srvidx;
  o.heartbeat = 20ms;
  o.dead_after = 60s;  // the fake's clock stands still; nothing runs out by itself
  return o;
}

template <class F>
bool eventually(F&& done) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

TEST(LeaseTraffic, AnIdleHeartbeatReadsNoLeaseRowAndATakeoverIsAFewStatements) {
  auto owned = std::make_unique<FakeStore>();
  FakeStore& store = *owned;
  Accounts accounts(2500);
  Cluster c(std::move(owned), accounts, fast(1));
  c.start();
  ASSERT_TRUE(eventually([&] { return accounts.served().size() == 2500; }));
  // 2,500 leases taken in batches (of 1,000), not 2,500 statements.
  const auto taken = store.counts();
  EXPECT_EQ(taken.acquires, 3);
  EXPECT_EQ(c.status()["serving"], 2500);

  // The next heartbeat reads our own takes back, once.
  ASSERT_TRUE(eventually([&] { return store.counts().heartbeats >= taken.heartbeats + 2; }));
  EXPECT_EQ(store.counts().lease_rows_returned, 2500u);

  // Idle: every heartbeat asks for what changed after the version it saw, gets nothing, and
  // there is no other statement (the heartbeat renews every lease at once).
  const auto before = store.counts();
  ASSERT_TRUE(eventually([&] { return store.counts().heartbeats >= before.heartbeats + 10; }));
  const auto after = store.counts();
  EXPECT_EQ(after.acquires, before.acquires);
  EXPECT_EQ(after.releases, before.releases);
  EXPECT_EQ(after.lease_rows_returned, before.lease_rows_returned);
  EXPECT_EQ(c.status()["lease_rows_read"], after.lease_rows_returned);
  for (size_t i = size_t(before.heartbeats) + 1; i < after.asked_after.size(); ++i)
    EXPECT_EQ(after.asked_after[i], store.version()) << i;

  // A change is read once: another instance's lease of an account we do not serve.
  store.lease("tg:7", 2, store.now() + 60000);
  ASSERT_TRUE(
      eventually([&] { return c.status()["lease_rows_read"] == after.lease_rows_returned + 1; }));
  const auto changed = store.counts().lease_rows_returned;
  ASSERT_TRUE(eventually([&] { return store.counts().heartbeats >= after.heartbeats + 20; }));
  EXPECT_EQ(store.counts().lease_rows_returned, changed);
  c.stop();
  // A graceful stop releases everything in one statement.
  EXPECT_EQ(store.counts().releases, 1);
}

TEST(LeaseTraffic, LeasesOfADeadInstanceAreTakenWithItsBindingsCleared) {
  auto owned = std::make_unique<FakeStore>();
  FakeStore& store = *owned;
  // Instance 2 (the better roleid, but silent for long) held two accounts; the third is free.
  store.other(2, 0, store.now() - 120000);
  store.lease("provider:1", 2, store.now() - 100000);
  store.lease("provider:2", 2, store.now() - 100000);
  Accounts accounts(3);
  Cluster c(std::move(owned), accounts, fast(1));
  c.start();
  ASSERT_TRUE(eventually([&] { return accounts.served().size() == 3; }));
  const std::map<std::string, bool> want = {
      {"provider:1", true}, {"provider:2", true}, {"provider:3", false}};
  EXPECT_EQ(accounts.served(), want);
  c.stop();
}

TEST(LeaseTraffic, TheLeaseOfALiveHolderIsWaitedForEvenWhenTakenLongAgo) {
  auto owned = std::make_unique<FakeStore>();
  FakeStore& store = *owned;
  // Instance 2 (roleid 5: instance 1 is the rightful owner) heartbeats and holds provider:1,
  // taken long ago: its heartbeat renews the lease, so instance 1 waits for the handover.
  store.other(2, 5, store.now());
  store.lease("provider:1", 2, store.now() - 100000);
  Accounts accounts(1);
  Cluster c(std::move(owned), accounts, fast(1));
  c.start();
  ASSERT_TRUE(eventually([&] { return store.counts().heartbeats >= 10; }));
  EXPECT_TRUE(accounts.served().empty());
  EXPECT_EQ(store.counts().acquires, 0);
  c.stop();
}

// What an instance loads at start may predate its first heartbeat's view (another instance
// changed the configuration in between): that view reloads it, and each later change once.
TEST(LeaseTraffic, TheFirstHeartbeatReadsAConfigurationChangedSinceTheStart) {
  auto owned = std::make_unique<FakeStore>();
  FakeStore& store = *owned;
  Accounts accounts(1);
  Cluster c(std::move(owned), accounts, fast(1));
  c.start();
  ASSERT_TRUE(eventually([&] { return store.counts().heartbeats >= 5; }));
  EXPECT_EQ(accounts.reloads, 1);
  store.change_config();
  ASSERT_TRUE(eventually([&] { return accounts.reloads == 2; }));
  const int heartbeats = store.counts().heartbeats;
  ASSERT_TRUE(eventually([&] { return store.counts().heartbeats >= heartbeats + 5; }));
  EXPECT_EQ(accounts.reloads, 2);
  c.stop();
}

}  // namespace
}  // namespace esg::cluster
