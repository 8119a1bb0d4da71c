#include "media/ports.hpp"

#include <gtest/gtest.h>

#include <set>

namespace {

using esg::media::PortPool;

TEST(PortPool, EvenPortsInTurnUntilTheRangeIsUsedUp) {
  PortPool pool(20001, 20010);  // even ports 20002..20010 with their odd partners: 4 pairs
  EXPECT_EQ(pool.size(), 4u);
  std::set<uint16_t> got;
  for (int i = 0; i < 4; ++i) {
    auto p = pool.take();
    ASSERT_TRUE(p);
    EXPECT_EQ(*p % 2, 0);
    EXPECT_GE(*p, 20002);
    EXPECT_LE(*p + 1, 20010);
    got.insert(*p);
  }
  EXPECT_EQ(got.size(), 4u);
  EXPECT_FALSE(pool.take());  // used up: the caller answers 503
  EXPECT_EQ(pool.free(), 0u);
  pool.give(20004);
  EXPECT_EQ(pool.take(), 20004);
}

TEST(PortPool, AReturnedPortIsTheLastToBeTakenAgain) {
  PortPool pool(30000, 30007);  // 30000, 30002, 30004, 30006
  auto first = pool.take();
  pool.give(*first);
  EXPECT_EQ(pool.take(), 30002);
  EXPECT_EQ(pool.take(), 30004);
  EXPECT_EQ(pool.take(), 30006);
  EXPECT_EQ(pool.take(), 30000);
  pool.give(12);  // not ours: ignored
  EXPECT_EQ(pool.free(), 0u);
}

}  // namespace
