#include "transport/dns.hpp"

#include <gtest/gtest.h>

namespace esg::transport {
namespace {

Target srv(uint16_t priority, uint16_t weight, const std::string& host) {
  return Target{Proto::Udp, host, "", 5060, priority, weight};
}

TEST(SrvOrder, LowerPriorityAlwaysFirst_Rfc2782) {
  std::vector<Target> t = {srv(20, 100, "c"), srv(10, 1, "a"), srv(30, 0, "d"), srv(10, 1, "b")};
  Resolver::order_srv(t);
  ASSERT_EQ(t.size(), 4u);
  EXPECT_EQ(t[0].priority, 10);
  EXPECT_EQ(t[1].priority, 10);
  EXPECT_EQ(t[2].host, "c");
  EXPECT_EQ(t[3].host, "d");
}

TEST(SrvOrder, WeightsShareTheLoadWithinAPriority_Rfc2782) {
  int first_heavy = 0;
  for (int i = 0; i < 2000; ++i) {
    std::vector<Target> t = {srv(10, 90, "heavy"), srv(10, 10, "light")};
    Resolver::order_srv(t);
    first_heavy += t[0].host == "heavy";
  }
  // 90 of 100 by weight: allow for chance, but the heavy one must win most draws.
  EXPECT_GT(first_heavy, 1600);
  EXPECT_LT(first_heavy, 1950);
}

TEST(SrvOrder, DeterministicWithAGivenRandomSource) {
  std::vector<Target> t = {srv(1, 0, "zero"), srv(1, 50, "fifty")};
  Resolver::order_srv(t, [] { return 0u; });  // the running sum reaches 0 at the zero weight
  EXPECT_EQ(t[0].host, "zero");
  Resolver::order_srv(t, [] { return 50u; });
  EXPECT_EQ(t[0].host, "fifty");
}

TEST(TargetCursor, FailsOverOnTimeout503AndTransportErrorOnly_Rfc3263_4_3) {
  TargetCursor c({srv(10, 0, "a"), srv(10, 0, "b"), srv(20, 0, "c")});
  ASSERT_NE(c.current(), nullptr);
  EXPECT_EQ(c.current()->host, "a");
  EXPECT_TRUE(c.failover(503));
  EXPECT_EQ(c.current()->host, "b");
  EXPECT_FALSE(c.failover(486));  // a real answer: stop here
  EXPECT_EQ(c.current()->host, "b");
  EXPECT_TRUE(c.failover(408));
  EXPECT_EQ(c.current()->host, "c");
  EXPECT_FALSE(c.failover(0));  // transport error on the last one: nothing left
  EXPECT_EQ(c.current(), nullptr);
  EXPECT_EQ(c.tried(), 3u);
  TargetCursor empty({});
  EXPECT_EQ(empty.current(), nullptr);
}

TEST(Resolver, NumericHostsNeedNoLookup_Rfc3263_4) {
  Resolver r({{"127.0.0.1:9"}, std::chrono::milliseconds(200), 1});
  auto t = r.resolve_sync("sip:100@127.0.0.7:5070;transport=tcp");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].addr, "127.0.0.7");
  EXPECT_EQ(t[0].port, 5070);
  EXPECT_EQ(t[0].proto, Proto::Tcp);
  auto s = r.resolve_sync("sips:[::1]");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].addr, "::1");
  EXPECT_EQ(s[0].port, 5061);
  EXPECT_EQ(s[0].proto, Proto::Tls);
  EXPECT_TRUE(r.resolve_sync("tel:+100").empty());
}

}  // namespace
}  // namespace esg::transport
