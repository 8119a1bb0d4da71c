// The account manager's REST changes against clients that stop asynchronously: what an operator
// changed last is what runs, whatever order the workers finish in.
#include "accounts/manager.hpp"

#include <gtest/gtest.h>

#include "one_worker.hpp"
#include "store/store.hpp"

namespace esg::accounts {
namespace {

nlohmann::json p2p(const std::string& code, int port) {
  return {{"code", code},      {"domain", "127.0.0.1"}, {"proxyaddr", "127.0.0.1"},
          {"proxyport", port}, {"reg", false},          {"username", "u1"}};
}

bool listed(const AccountManager& m, const std::string& code) {
  for (const auto& r : m.regs())
    if (r.value("code", "") == code) return true;
  return false;
}

// A DELETE that comes while the client of the account's last PUT is still stopping: the PUT's
// client must not start once the old one has stopped (it did: the account stayed in monitoring
// and ran with no row in the store, e2e.store_pg's CRUD round trip on a slower store).
TEST(AccountManager, ARemovalWhileARestartWaitsForTheOldClientWins) {
  auto store = store::open_sqlite(":memory:");
  OneWorker rt;
  AccountManager manager(*store, rt, ManagerOptions{});
  manager.start(nlohmann::json::array());
  auto created = manager.create(p2p("crud", 5070));
  ASSERT_TRUE(created) << created.error().field << ": " << created.error().message;
  rt.run();
  ASSERT_TRUE(listed(manager, "crud"));
  const int64_t id = (*created)["id"];

  ASSERT_TRUE(manager.replace(id, p2p("crud", 5071)));  // the old client stops on its worker
  ASSERT_TRUE(manager.remove(id));                      // before it has stopped
  EXPECT_FALSE(listed(manager, "crud")) << "gone from monitoring at once";
  rt.run();
  EXPECT_FALSE(listed(manager, "crud")) << "and not brought back by the PUT's client";
  EXPECT_FALSE(manager.status(id));
  EXPECT_TRUE(manager.leasable().empty()) << "nothing left that would run here";
}

// Two changes in a row while the first client stops: the last one runs, once.
TEST(AccountManager, TheLastOfTwoQuickChangesIsTheOneThatRuns) {
  auto store = store::open_sqlite(":memory:");
  OneWorker rt;
  AccountManager manager(*store, rt, ManagerOptions{});
  manager.start(nlohmann::json::array());
  auto created = manager.create(p2p("quick", 5070));
  ASSERT_TRUE(created);
  rt.run();
  const int64_t id = (*created)["id"];

  ASSERT_TRUE(manager.replace(id, p2p("quick", 5071)));
  ASSERT_TRUE(manager.patch(id, {{"proxyport", 5072}}));
  rt.run();
  nlohmann::json regs = manager.regs();
  size_t seen = 0;
  for (const auto& r : regs) {
    if (r.value("code", "") != "quick") continue;
    ++seen;
    EXPECT_EQ(r.value("port", 0), 5072) << r.dump();
  }
  EXPECT_EQ(seen, 1u) << regs.dump();
  ASSERT_TRUE(manager.remove(id));  // nothing left running: the manager's stop has no wait
  rt.run();
}

}  // namespace
}  // namespace esg::accounts
