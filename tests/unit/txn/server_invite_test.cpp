#include <gtest/gtest.h>

#include "harness.hpp"
#include "sip/response.hpp"

namespace esg::txn {
namespace {

using namespace test;

struct ServerInviteTest : ::testing::Test {
  SimulatedTimers timers;
  TimerConfig config;
  Wire wire;
  int acks = 0;
  int no_ack = 0;
  ServerUser user() {
    return {[this](const sip::Message&) { ++acks; }, [this] { ++no_ack; }, nullptr};
  }
};

TEST_F(ServerInviteTest, SendsTryingWhenTheTuIsSilentFor200ms_17_2_1) {
  ServerInvite t(timers, config, wire.channel(), request("INVITE"), user());
  t.start();
  timers.advance(199ms);
  EXPECT_TRUE(wire.sent.empty());
  timers.advance(1ms);
  ASSERT_EQ(wire.sent.size(), 1u);
  EXPECT_EQ(wire.line(0), "SIP/2.0 100 Trying");
  auto trying = sip::parse_message(wire.sent[0]);
  ASSERT_TRUE(trying);
  EXPECT_EQ(trying->top_via().branch, "z9hG4bK1");
  EXPECT_EQ(trying->cseq().method, "INVITE");
  // A retransmitted INVITE gets the 100 again.
  t.on_retransmission();
  EXPECT_EQ(wire.sent.size(), 2u);
}

TEST_F(ServerInviteTest, NoTryingWhenTheTuAnswersFirst_17_2_1) {
  ServerInvite t(timers, config, wire.channel(), request("INVITE"), user());
  t.start();
  timers.advance(50ms);
  t.respond(180, sip::build_response(*t.request(), 180, {}, "u1"));
  timers.advance(1s);
  ASSERT_EQ(wire.sent.size(), 1u);
  EXPECT_EQ(wire.line(0), "SIP/2.0 180 Ringing");
  t.on_retransmission();
  EXPECT_EQ(wire.line(1), "SIP/2.0 180 Ringing");
}

TEST_F(ServerInviteTest, NonSuccessFinalIsRetransmittedByTimerGUntilTheAck_17_2_1) {
  ServerInvite t(timers, config, wire.channel(), request("INVITE"), user());
  t.start();
  t.respond(486, sip::build_response(*t.request(), 486, {}, "u1"));
  EXPECT_EQ(t.state(), State::Completed);
  // Retransmissions at 0.5, 1.5, 3.5, 7.5, 11.5 s (intervals T1, 2T1, 4T1, then T2).
  timers.advance(500ms);
  EXPECT_EQ(wire.sent.size(), 2u);
  timers.advance(1000ms);
  EXPECT_EQ(wire.sent.size(), 3u);
  timers.advance(2000ms);
  EXPECT_EQ(wire.sent.size(), 4u);
  timers.advance(4000ms);
  EXPECT_EQ(wire.sent.size(), 5u);
  timers.advance(4000ms);
  EXPECT_EQ(wire.sent.size(), 6u);
  t.on_ack(request("ACK", "z9hG4bK1", 1, "u1"));
  EXPECT_EQ(t.state(), State::Confirmed);
  timers.advance(4999ms);  // Timer I = T4; no more retransmissions
  EXPECT_EQ(wire.sent.size(), 6u);
  EXPECT_EQ(t.state(), State::Confirmed);
  timers.advance(1ms);
  EXPECT_TRUE(t.terminated());
  EXPECT_EQ(no_ack, 0);
}

TEST_F(ServerInviteTest, TimerHEndsAWaitForAnAckThatNeverComes_17_2_1) {
  ServerInvite t(timers, config, wire.channel(), request("INVITE"), user());
  t.start();
  t.respond(500, sip::build_response(*t.request(), 500));
  timers.advance(32s);
  EXPECT_EQ(no_ack, 1);
  EXPECT_TRUE(t.terminated());
}

TEST_F(ServerInviteTest, SuccessGoesToAcceptedWhereAcksReachTheTu_Rfc6026) {
  ServerInvite t(timers, config, wire.channel(), request("INVITE"), user());
  t.start();
  t.respond(200, sip::build_response(*t.request(), 200, {}, "u1"));
  EXPECT_EQ(t.state(), State::Accepted);
  t.on_retransmission();  // absorbed: 2xx retransmission is the dialog's job
  EXPECT_EQ(wire.sent.size(), 1u);
  t.respond(200, sip::build_response(*t.request(), 200, {}, "u1"));  // the TU's retransmission
  EXPECT_EQ(wire.sent.size(), 2u);
  t.on_ack(request("ACK", "z9hG4bK1", 1, "u1"));
  EXPECT_EQ(acks, 1);
  timers.advance(32s);  // Timer L
  EXPECT_TRUE(t.terminated());
}

TEST_F(ServerInviteTest, ReliableTransportNeedsNoTimerG) {
  ServerInvite t(timers, config, wire.channel(true), request("INVITE"), user());
  t.start();
  t.respond(404, sip::build_response(*t.request(), 404));
  timers.advance(10s);
  EXPECT_EQ(wire.sent.size(), 1u);
  t.on_ack(request("ACK"));
  EXPECT_TRUE(t.terminated());
}

}  // namespace
}  // namespace esg::txn
