// Who serves an account among live instances (the rule every instance computes alike).
#include "cluster/cluster.hpp"

#include <gtest/gtest.h>

#include <map>

namespace esg::cluster {
namespace {

TEST(RightfulOwner, TheLowestRoleidAllowedWins) {
  const std::vector<Instance> live = {{1, 10}, {2, 5}, {3, 20}};
  EXPECT_EQ(rightful_owner("provider:1", {}, live), 2);
  // serveridxs binds the account to some instances: the best of those.
  EXPECT_EQ(rightful_owner("provider:1", {1, 3}, live), 1);
  EXPECT_EQ(rightful_owner("provider:1", {3}, live), 3);
  // None of them alive: nobody serves it (it never moves elsewhere).
  EXPECT_EQ(rightful_owner("provider:1", {4}, live), 0);
  EXPECT_EQ(rightful_owner("provider:1", {}, {}), 0);
}

TEST(RightfulOwner, EqualRoleidsShareTheAccountsEvenly) {
  const std::vector<Instance> live = {{1, 1}, {2, 1}, {3, 1}, {4, 2}};
  std::map<int64_t, int> count;
  const int n = 30000;
  for (int i = 0; i < n; ++i)
    ++count[rightful_owner("provider:" + std::to_string(i), {}, live)];
  EXPECT_EQ(count.count(4), 0u);  // a worse roleid gets nothing while the better ones live
  for (int64_t s : {1, 2, 3}) {
    EXPECT_GT(count[s], n / 3 * 0.9) << s;
    EXPECT_LT(count[s], n / 3 * 1.1) << s;
  }
}

TEST(RightfulOwner, AnInstanceLeavingMovesOnlyItsOwnShare) {
  const std::vector<Instance> all = {{1, 1}, {2, 1}, {3, 1}};
  const std::vector<Instance> without_2 = {{1, 1}, {3, 1}};
  for (int i = 0; i < 5000; ++i) {
    const std::string key = "provider:" + std::to_string(i);
    const int64_t before = rightful_owner(key, {}, all);
    const int64_t after = rightful_owner(key, {}, without_2);
    if (before != 2) {
      EXPECT_EQ(after, before) << key;
    }
  }
}

TEST(RightfulOwner, TheSameOnEveryInstance) {
  // A fixed hash (not std::hash): instances built apart agree on the owner of every key.
  const std::vector<Instance> a = {{1, 1}, {2, 1}, {3, 1}};
  const std::vector<Instance> b = {{3, 1}, {1, 1}, {2, 1}};
  for (int i = 0; i < 1000; ++i) {
    const std::string key = "pbx:" + std::to_string(i);
    EXPECT_EQ(rightful_owner(key, {}, a), rightful_owner(key, {}, b));
  }
}

}  // namespace
}  // namespace esg::cluster
