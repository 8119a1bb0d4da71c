#include <gtest/gtest.h>

#include "harness.hpp"
#include "sip/response.hpp"

namespace esg::txn {
namespace {

using namespace test;

struct ServerNonInviteTest : ::testing::Test {
  SimulatedTimers timers;
  TimerConfig config;
  Wire wire;
  int transport_errors = 0;
  ServerUser user() {
    return {nullptr, nullptr, [this] { ++transport_errors; }};
  }
};

TEST_F(ServerNonInviteTest, RetransmissionInTryingIsDiscarded_17_2_2) {
  ServerNonInvite t(timers, config, wire.channel(), request("OPTIONS"), user());
  t.on_retransmission();
  EXPECT_TRUE(wire.sent.empty());
  EXPECT_EQ(t.state(), State::Trying);
}

TEST_F(ServerNonInviteTest, ProceedingResendsTheLastProvisional_17_2_2) {
  ServerNonInvite t(timers, config, wire.channel(), request("REGISTER"), user());
  t.respond(100, sip::build_response(*t.request(), 100));
  EXPECT_EQ(t.state(), State::Proceeding);
  t.on_retransmission();
  ASSERT_EQ(wire.sent.size(), 2u);
  EXPECT_EQ(wire.line(1), "SIP/2.0 100 Trying");
}

TEST_F(ServerNonInviteTest, CompletedResendsTheFinalUntilTimerJ_17_2_2) {
  ServerNonInvite t(timers, config, wire.channel(), request("REGISTER"), user());
  t.respond(200, sip::build_response(*t.request(), 200, {}, "as1"));
  EXPECT_EQ(t.state(), State::Completed);
  t.on_retransmission();
  t.on_retransmission();
  ASSERT_EQ(wire.sent.size(), 3u);
  EXPECT_EQ(wire.sent[2], wire.sent[0]);
  t.respond(500, "ignored");  // a second final is never sent
  EXPECT_EQ(wire.sent.size(), 3u);
  timers.advance(31999ms);
  EXPECT_EQ(t.state(), State::Completed);
  timers.advance(1ms);
  EXPECT_TRUE(t.terminated());
}

TEST_F(ServerNonInviteTest, ReliableTransportEndsWithTheFinal_17_2_2) {
  ServerNonInvite t(timers, config, wire.channel(true), request("BYE"), user());
  t.respond(200, sip::build_response(*t.request(), 200));
  EXPECT_TRUE(t.terminated());
}

TEST_F(ServerNonInviteTest, TransportErrorIsReported_17_2_4) {
  ServerNonInvite t(timers, config, wire.channel(), request("BYE"), user());
  wire.broken = true;
  t.respond(200, sip::build_response(*t.request(), 200));
  EXPECT_EQ(transport_errors, 1);
  EXPECT_TRUE(t.terminated());
}

TEST_F(ServerNonInviteTest, AProvisionalLostWithItsConnectionIsATransportError_17_2_4) {
  ServerNonInvite t(timers, config, wire.watched_channel(), request("OPTIONS"), user());
  t.respond(100, sip::build_response(*t.request(), 100));
  ASSERT_EQ(wire.reports.size(), 1u);
  wire.reports[0]("connection to 127.0.0.2:5060 closed");
  EXPECT_EQ(transport_errors, 1);
  EXPECT_TRUE(t.terminated());
  wire.reports[0]("connection to 127.0.0.2:5060 closed");  // terminated: told once
  EXPECT_EQ(transport_errors, 1);
}

}  // namespace
}  // namespace esg::txn
