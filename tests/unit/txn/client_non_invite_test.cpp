#include <gtest/gtest.h>

#include "harness.hpp"

namespace esg::txn {
namespace {

using namespace test;

struct ClientNonInviteTest : ClientFixture {};

TEST_F(ClientNonInviteTest, TimerERetransmitsDoublingToT2ThenTimerFTimesOut_17_1_2_2) {
  ClientNonInvite t(timers, config, wire.channel(), request("OPTIONS"), user());
  t.start();
  ASSERT_EQ(wire.sent.size(), 1u);
  // Retransmissions at 500, 1500, 3500, 7500, 11500 ... (intervals 500, 1 s, 2 s, then T2).
  const std::pair<int, size_t> script[] = {{499, 1},  {500, 2},  {1499, 2},  {1500, 3},
                                           {3500, 4}, {7500, 5}, {11500, 6}, {15500, 7}};
  Millis at{0};
  for (auto [ms, count] : script) {
    timers.advance(Millis{ms} - at);
    at = Millis{ms};
    EXPECT_EQ(wire.sent.size(), count) << "at " << ms << " ms";
  }
  EXPECT_EQ(t.state(), State::Trying);
  timers.advance(32000ms - at);  // Timer F = 64*T1
  EXPECT_EQ(failures, std::vector<int>{408});
  EXPECT_TRUE(t.terminated());
  const size_t sent = wire.sent.size();
  timers.advance(10s);
  EXPECT_EQ(wire.sent.size(), sent);  // nothing after Terminated
}

TEST_F(ClientNonInviteTest, ProvisionalMovesToProceedingAndRetransmitsEveryT2_17_1_2_2) {
  ClientNonInvite t(timers, config, wire.channel(), request("OPTIONS"), user());
  t.start();
  t.on_response(response(100, "OPTIONS"));
  EXPECT_EQ(t.state(), State::Proceeding);
  EXPECT_EQ(responses, std::vector<int>{100});
  timers.advance(500ms);  // Timer E was armed in Trying
  EXPECT_EQ(wire.sent.size(), 2u);
  timers.advance(4000ms);
  EXPECT_EQ(wire.sent.size(), 3u);
  timers.advance(4000ms);
  EXPECT_EQ(wire.sent.size(), 4u);
}

TEST_F(ClientNonInviteTest, FinalResponseCompletesAndRetransmissionsAreAbsorbed_17_1_2_2) {
  ClientNonInvite t(timers, config, wire.channel(), request("REGISTER"), user());
  t.start();
  t.on_response(response(200, "REGISTER"));
  EXPECT_EQ(t.state(), State::Completed);
  t.on_response(response(200, "REGISTER"));
  EXPECT_EQ(responses, std::vector<int>{200});  // once to the TU
  timers.advance(4999ms);
  EXPECT_EQ(t.state(), State::Completed);
  EXPECT_EQ(wire.sent.size(), 1u);  // no retransmission after the final response
  timers.advance(1ms);              // Timer K = T4
  EXPECT_TRUE(t.terminated());
  EXPECT_TRUE(failures.empty());
}

TEST_F(ClientNonInviteTest, ReliableTransportNeverRetransmitsAndEndsAtOnce_17_1_2_2) {
  ClientNonInvite t(timers, config, wire.channel(/*reliable=*/true), request("BYE"), user());
  t.start();
  timers.advance(20s);
  EXPECT_EQ(wire.sent.size(), 1u);
  t.on_response(response(481, "BYE"));
  EXPECT_TRUE(t.terminated());
  EXPECT_EQ(responses, std::vector<int>{481});
}

TEST_F(ClientNonInviteTest, TransportErrorBecomes503_8_1_3_1) {
  wire.broken = true;
  ClientNonInvite t(timers, config, wire.channel(), request("OPTIONS"), user());
  t.start();
  EXPECT_EQ(failures, std::vector<int>{503});
  EXPECT_TRUE(t.terminated());
}

TEST_F(ClientNonInviteTest, ConfigurableTimers) {
  config.t1 = 100ms;
  config.t2 = 400ms;
  ClientNonInvite t(timers, config, wire.channel(), request("OPTIONS"), user());
  t.start();
  timers.advance(100ms);
  EXPECT_EQ(wire.sent.size(), 2u);
  timers.advance(6300ms);  // F = 64 * 100 ms
  EXPECT_EQ(failures, std::vector<int>{408});
}

TEST_F(ClientNonInviteTest, ConnectionFailureReportedLaterIs503AtOnce_17_1_4) {
  ClientNonInvite t(timers, config, wire.watched_channel(), request("REGISTER"), user());
  t.start();
  ASSERT_EQ(wire.reports.size(), 1u);
  wire.reports[0]("TLS certificate verification failed: self-signed certificate (127.0.0.1:5061)");
  EXPECT_EQ(failures, std::vector<int>{503});
  ASSERT_EQ(failure_reasons.size(), 1u);
  EXPECT_EQ(failure_reasons[0].rfind("TLS certificate verification failed: ", 0), 0u);
  EXPECT_TRUE(t.terminated());
  timers.advance(64s);
  EXPECT_EQ(failures, std::vector<int>{503});  // no 408 from Timer F
}

TEST_F(ClientNonInviteTest, AReliableChannelThatCannotTellFailsOnlyAtTimerF) {
  // The contrast: without send_watched the transaction learns nothing until Timer F.
  ClientNonInvite t(timers, config, wire.channel(true), request("OPTIONS"), user());
  t.start();
  timers.advance(31999ms);
  EXPECT_TRUE(failures.empty());
  timers.advance(1ms);
  EXPECT_EQ(failures, std::vector<int>{408});
  EXPECT_EQ(failure_reasons, std::vector<std::string>{""});
}

}  // namespace
}  // namespace esg::txn
