#include "dialog/reliable.hpp"

#include <gtest/gtest.h>

#include "test_support/parse.hpp"

#include <vector>

namespace esg::dialog {
namespace {

using namespace std::chrono_literals;

using test::parse;

std::string provisional(const std::string& tag, uint32_t rseq, bool require = true) {
  return "SIP/2.0 183 Session Progress\r\n"
         "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKr1\r\n"
         "From: <sip:a@127.0.0.1>;tag=a1\r\n"
         "To: <sip:b@127.0.0.2>;tag=" +
         tag + "\r\nCall-ID: rel-1\r\nCSeq: 7 INVITE\r\n" + (require ? "Require: 100rel\r\n" : "") +
         "RSeq: " + std::to_string(rseq) + "\r\nContent-Length: 0\r\n\r\n";
}

std::string prack(const std::string& rack) {
  return "PRACK sip:b@127.0.0.2 SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKp1\r\n"
         "From: <sip:a@127.0.0.1>;tag=a1\r\nTo: <sip:b@127.0.0.2>;tag=b1\r\n"
         "Call-ID: rel-1\r\nCSeq: 8 PRACK\r\nRAck: " +
         rack + "\r\nContent-Length: 0\r\n\r\n";
}

TEST(RAck, ParsesTheThreeParts_3262_7_2) {
  auto r = parse_rack("776656 1 INVITE");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, (RAck{776656, 1, "INVITE"}));
  EXPECT_TRUE(parse_rack("  5\t2   INVITE "));
  EXPECT_FALSE(parse_rack("0 1 INVITE"));           // RSeq starts at 1
  EXPECT_FALSE(parse_rack("2147483648 1 INVITE"));  // past 2^31-1
  EXPECT_FALSE(parse_rack("5 1"));
  EXPECT_FALSE(parse_rack("5 x INVITE"));
  EXPECT_FALSE(parse_rack("5 1 INVITE extra"));
}

TEST(PrackTracker, AcknowledgesEachReliableProvisionalOnceAndInOrder_3262_4) {
  PrackTracker t;
  auto first = t.on_provisional(parse(provisional("b1", 100)));
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, (RAck{100, 7, "INVITE"}));
  EXPECT_FALSE(t.on_provisional(parse(provisional("b1", 100))));  // a retransmission
  EXPECT_FALSE(t.on_provisional(parse(provisional("b1", 102))));  // out of order: dropped
  auto next = t.on_provisional(parse(provisional("b1", 101)));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->rseq, 101u);
  // A fork is a dialog of its own with its own sequence.
  EXPECT_TRUE(t.on_provisional(parse(provisional("b2", 9))));
  // Without Require: 100rel the provisional is unreliable: no PRACK.
  EXPECT_FALSE(t.on_provisional(parse(provisional("b3", 1, false))));
}

struct UasFixture : ::testing::Test {
  txn::SimulatedTimers timers;
  txn::TimerConfig config;
  std::vector<std::string> sent;
  int timeouts = 0;
  ReliableProvisionals rel{timers, config, false,
                           [this](std::string_view b) {
                             sent.emplace_back(b);
                             return true;
                           },
                           [this] { ++timeouts; }};
};

TEST_F(UasFixture, RetransmitsDoublingFromT1WithoutCapUntilThePrack_3262_3) {
  const uint32_t rseq = rel.next_rseq();
  EXPECT_GE(rseq, 1u);
  EXPECT_EQ(ReliableProvisionals::headers(rseq),
            "Require: 100rel\r\nRSeq: " + std::to_string(rseq) + "\r\n");
  rel.send(rseq, 7, "180 #1");
  EXPECT_EQ(sent.size(), 1u);
  timers.advance(500ms);
  EXPECT_EQ(sent.size(), 2u);
  timers.advance(1000ms);
  EXPECT_EQ(sent.size(), 3u);
  timers.advance(2000ms);
  timers.advance(4000ms);
  EXPECT_EQ(sent.size(), 5u);
  timers.advance(8000ms);  // no T2 cap: 8 s after 4 s
  EXPECT_EQ(sent.size(), 6u);
  // A PRACK for another RSeq or CSeq does not match (481).
  EXPECT_FALSE(rel.on_prack(parse(prack(std::to_string(rseq + 1) + " 7 INVITE"))));
  EXPECT_FALSE(rel.on_prack(parse(prack(std::to_string(rseq) + " 6 INVITE"))));
  EXPECT_TRUE(rel.on_prack(parse(prack(std::to_string(rseq) + " 7 INVITE"))));
  timers.advance(60s);
  EXPECT_EQ(sent.size(), 6u);
  EXPECT_EQ(timeouts, 0);
  EXPECT_FALSE(rel.pending());
  // A second PRACK for the same one matches nothing any more.
  EXPECT_FALSE(rel.on_prack(parse(prack(std::to_string(rseq) + " 7 INVITE"))));
}

TEST_F(UasFixture, SendsTheNextProvisionalOnlyAfterThePrackOfThePrevious_3262_3) {
  const uint32_t a = rel.next_rseq();
  const uint32_t b = rel.next_rseq();
  EXPECT_EQ(b, a + 1);
  rel.send(a, 7, "183");
  rel.send(b, 7, "180");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0], "183");
  ASSERT_TRUE(rel.on_prack(parse(prack(std::to_string(a) + " 7 INVITE"))));
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[1], "180");
}

TEST_F(UasFixture, GivesUpAfter64T1WithoutAPrack_3262_3) {
  rel.send(rel.next_rseq(), 7, "180");
  timers.advance(31999ms);
  EXPECT_EQ(timeouts, 0);
  timers.advance(1ms);
  EXPECT_EQ(timeouts, 1);
  EXPECT_FALSE(rel.pending());
  EXPECT_EQ(timers.pending(), 0u);
}

TEST_F(UasFixture, AFinalResponseStopsTheRetransmissions) {
  rel.send(rel.next_rseq(), 7, "180");
  rel.stop();
  timers.advance(60s);
  EXPECT_EQ(sent.size(), 1u);
  EXPECT_EQ(timeouts, 0);
}

TEST(ReliableProvisionals, OverAReliableTransportSendsOnce) {
  txn::SimulatedTimers timers;
  txn::TimerConfig config;
  int sent = 0;
  int timeouts = 0;
  ReliableProvisionals rel(
      timers, config, true, [&](std::string_view) { return ++sent > 0; }, [&] { ++timeouts; });
  rel.send(rel.next_rseq(), 1, "180");
  timers.advance(40s);
  EXPECT_EQ(sent, 1);
  EXPECT_EQ(timeouts, 1);  // still no PRACK: the call fails
}

}  // namespace
}  // namespace esg::dialog
