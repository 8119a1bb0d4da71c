#include "edge/border/bans.hpp"

#include <gtest/gtest.h>

using esg::edge::Bans;

namespace {

struct BansTest : ::testing::Test {
  int64_t now = 1'000'000;
  Bans bans{options()};
  Bans::Options options() {
    Bans::Options o;
    o.failures = 3;
    o.window = 10;
    o.duration = 60;
    o.now_ms = [this] { return now; };
    return o;
  }
};

TEST_F(BansTest, ThresholdWithinTheWindowBansForTheDuration) {
  EXPECT_FALSE(bans.count("10.0.0.1", "unknown account"));
  EXPECT_FALSE(bans.count("10.0.0.1", "unknown account"));
  EXPECT_FALSE(bans.banned("10.0.0.1"));
  EXPECT_TRUE(bans.count("10.0.0.1", "unknown account"));
  EXPECT_TRUE(bans.banned("10.0.0.1"));
  EXPECT_FALSE(bans.banned("10.0.0.2"));
  now += 60'000;
  EXPECT_FALSE(bans.banned("10.0.0.1"));  // served its time
}

TEST_F(BansTest, FailuresOutsideTheWindowDoNotAddUp) {
  bans.count("10.0.0.1", "x");
  bans.count("10.0.0.1", "x");
  now += 11'000;
  EXPECT_FALSE(bans.count("10.0.0.1", "x"));
  EXPECT_FALSE(bans.banned("10.0.0.1"));
}

TEST_F(BansTest, ExemptAddressesAreNeverBannedAndBansCanBeLifted) {
  bans.set_exempt([](const esg::edge::IpKey& a) { return a.to_string() == "10.0.0.9"; });
  for (int i = 0; i < 10; ++i)
    bans.count("10.0.0.9", "x");
  EXPECT_FALSE(bans.banned("10.0.0.9"));
  for (int i = 0; i < 3; ++i)
    bans.count("10.0.0.1", "wrong credentials");
  auto list = bans.list()["items"];
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["address"], "10.0.0.1");
  EXPECT_EQ(list[0]["reason"], "wrong credentials");
  EXPECT_EQ(list[0]["until"].get<int64_t>() - list[0]["since"].get<int64_t>(), 60'000);
  EXPECT_TRUE(bans.lift("10.0.0.1"));
  EXPECT_FALSE(bans.banned("10.0.0.1"));
  EXPECT_FALSE(bans.lift("10.0.0.1"));
}

}  // namespace
