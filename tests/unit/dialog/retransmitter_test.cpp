#include "dialog/retransmitter.hpp"

#include <gtest/gtest.h>

namespace esg::dialog {
namespace {

using namespace std::chrono_literals;

TEST(Retransmitter, ResendsEveryT1DoublingToT2UntilTheAck_13_3_1_4) {
  txn::SimulatedTimers timers;
  txn::TimerConfig config;
  int sent = 0;
  int gave_up = 0;
  Retransmitter r(
      timers, config, false, [&](std::string_view) { return ++sent > 0; }, [&] { ++gave_up; });
  r.start("SIP/2.0 200 OK\r\n\r\n");
  EXPECT_EQ(sent, 1);
  timers.advance(500ms);
  EXPECT_EQ(sent, 2);
  timers.advance(1000ms);
  EXPECT_EQ(sent, 3);
  timers.advance(2000ms);
  EXPECT_EQ(sent, 4);
  timers.advance(4000ms);
  EXPECT_EQ(sent, 5);
  timers.advance(4000ms);
  EXPECT_EQ(sent, 6);
  r.stop();
  timers.advance(60s);
  EXPECT_EQ(sent, 6);
  EXPECT_EQ(gave_up, 0);
  EXPECT_FALSE(r.waiting());
}

TEST(Retransmitter, GivesUpAfter64T1WithoutAnAck_13_3_1_4) {
  txn::SimulatedTimers timers;
  txn::TimerConfig config;
  int gave_up = 0;
  Retransmitter r(
      timers, config, false, [](std::string_view) { return true; }, [&] { ++gave_up; });
  r.start("x");
  timers.advance(31999ms);
  EXPECT_EQ(gave_up, 0);
  timers.advance(1ms);
  EXPECT_EQ(gave_up, 1);
  EXPECT_EQ(timers.pending(), 0u);
}

TEST(Retransmitter, ReliableTransportSendsOnceButStillWaitsForTheAck) {
  txn::SimulatedTimers timers;
  txn::TimerConfig config;
  int sent = 0;
  int gave_up = 0;
  Retransmitter r(
      timers, config, true, [&](std::string_view) { return ++sent > 0; }, [&] { ++gave_up; });
  r.start("x");
  timers.advance(40s);
  EXPECT_EQ(sent, 1);
  EXPECT_EQ(gave_up, 1);
}

}  // namespace
}  // namespace esg::dialog
