#include <gtest/gtest.h>

#include "harness.hpp"

namespace esg::txn {
namespace {

using namespace test;

struct ClientInviteTest : ClientFixture {};

TEST_F(ClientInviteTest, TimerADoublesAndTimerBTimesOutAfter64T1_17_1_1_2) {
  ClientInvite t(timers, config, wire.channel(), request("INVITE"), user());
  t.start();
  // Sends at 0, 0.5, 1.5, 3.5, 7.5, 15.5 and 31.5 s; Timer B at 32 s.
  timers.advance(31999ms);
  EXPECT_EQ(wire.sent.size(), 7u);
  EXPECT_EQ(t.state(), State::Calling);
  timers.advance(1ms);
  EXPECT_EQ(failures, std::vector<int>{408});
  EXPECT_TRUE(t.terminated());
}

TEST_F(ClientInviteTest, ProvisionalStopsRetransmissions_17_1_1_2) {
  ClientInvite t(timers, config, wire.channel(), request("INVITE"), user());
  t.start();
  t.on_response(response(180, "INVITE"));
  EXPECT_EQ(t.state(), State::Proceeding);
  timers.advance(10s);
  EXPECT_EQ(wire.sent.size(), 1u);
  EXPECT_EQ(responses, std::vector<int>{180});
}

TEST_F(ClientInviteTest, NonSuccessFinalIsAcknowledgedByTheTransaction_17_1_1_3) {
  ClientInvite t(timers, config, wire.channel(), request("INVITE", "z9hG4bKabc", 7), user());
  t.start();
  t.on_response(response(486, "INVITE", "z9hG4bKabc", "callee-tag", 7));
  EXPECT_EQ(t.state(), State::Completed);
  ASSERT_EQ(wire.sent.size(), 2u);
  auto ack = sip::parse_message(wire.sent[1]);
  ASSERT_TRUE(ack) << wire.sent[1];
  EXPECT_EQ(ack->method(), sip::Method::Ack);
  EXPECT_EQ(ack->request_uri().text, "sip:100@127.0.0.1:5080");
  EXPECT_EQ(ack->top_via().branch, "z9hG4bKabc");  // same branch as the INVITE
  EXPECT_EQ(ack->to_tag(), "callee-tag");          // To of the response
  EXPECT_EQ(ack->from_tag(), "f1");
  EXPECT_EQ(ack->cseq().number, 7u);
  EXPECT_EQ(ack->cseq().method, "ACK");
  EXPECT_EQ(ack->count(sip::HeaderId::Route), 1u);
  // A retransmitted final response is answered with the same ACK, and not passed up again.
  t.on_response(response(486, "INVITE", "z9hG4bKabc", "callee-tag", 7));
  EXPECT_EQ(wire.sent.size(), 3u);
  EXPECT_EQ(wire.sent[2], wire.sent[1]);
  EXPECT_EQ(responses, std::vector<int>{486});
  timers.advance(31999ms);
  EXPECT_EQ(t.state(), State::Completed);
  timers.advance(1ms);  // Timer D
  EXPECT_TRUE(t.terminated());
}

TEST_F(ClientInviteTest, SuccessGoesToAcceptedAndTheTuAcknowledges_Rfc6026) {
  ClientInvite t(timers, config, wire.channel(), request("INVITE"), user());
  t.start();
  t.on_response(response(200, "INVITE"));
  EXPECT_EQ(t.state(), State::Accepted);
  EXPECT_EQ(wire.sent.size(), 1u);  // no ACK from the transaction for a 2xx
  t.on_response(response(200, "INVITE"));
  EXPECT_EQ(responses, (std::vector<int>{200, 200}));  // retransmitted 2xx go to the TU
  timers.advance(32s);                                 // Timer M = 64*T1
  EXPECT_TRUE(t.terminated());
}

TEST_F(ClientInviteTest, ReliableTransportEndsRightAfterTheAck) {
  ClientInvite t(timers, config, wire.channel(true), request("INVITE"), user());
  t.start();
  timers.advance(5s);
  EXPECT_EQ(wire.sent.size(), 1u);
  t.on_response(response(603, "INVITE"));
  EXPECT_EQ(wire.sent.size(), 2u);
  EXPECT_TRUE(t.terminated());
}

TEST_F(ClientInviteTest, TransportErrorOnRetransmissionBecomes503) {
  ClientInvite t(timers, config, wire.channel(), request("INVITE"), user());
  t.start();
  wire.broken = true;
  timers.advance(500ms);
  EXPECT_EQ(failures, std::vector<int>{503});
  EXPECT_TRUE(t.terminated());
}

// A connection that is refused (or fails TLS verification) after the INVITE was queued on it: the
// TU hears 503 with the reason at once, not 408 from Timer B 32 s later.
TEST_F(ClientInviteTest, ConnectionFailureReportedLaterIs503AtOnce_17_1_4) {
  ClientInvite t(timers, config, wire.watched_channel(), request("INVITE"), user());
  t.start();
  ASSERT_EQ(wire.reports.size(), 1u);
  timers.advance(10ms);
  EXPECT_TRUE(failures.empty());
  wire.reports[0]("TCP connect to 127.0.0.1:5999 refused");
  EXPECT_EQ(failures, std::vector<int>{503});
  EXPECT_EQ(failure_reasons, std::vector<std::string>{"TCP connect to 127.0.0.1:5999 refused"});
  EXPECT_TRUE(t.terminated());
  EXPECT_EQ(timers.pending(), 0u);  // Timer B is gone: no 408 later
  timers.advance(64s);
  EXPECT_EQ(failures, std::vector<int>{503});
}

TEST_F(ClientInviteTest, AFailureReportedAfterTheFinalResponseChangesNothing) {
  ClientInvite t(timers, config, wire.watched_channel(), request("INVITE"), user());
  t.start();
  t.on_response(response(200, "INVITE"));
  wire.reports[0]("connection to 127.0.0.1:5061 lost: Broken pipe");
  EXPECT_EQ(t.state(), State::Accepted);
  EXPECT_TRUE(failures.empty());
  EXPECT_EQ(responses, std::vector<int>{200});
}

TEST_F(ClientInviteTest, AFailureReportedAfterTheTransactionIsGoneFindsNobody) {
  {
    ClientInvite t(timers, config, wire.watched_channel(), request("INVITE"), user());
    t.start();
  }
  ASSERT_EQ(wire.reports.size(), 1u);
  wire.reports[0]("TCP connect to 127.0.0.1:5999 timed out");
  EXPECT_TRUE(failures.empty());
}

}  // namespace
}  // namespace esg::txn
