#include "telegram/calls/connection.hpp"

#include <gtest/gtest.h>

namespace esg::telegram::calls {
namespace {

using namespace std::chrono_literals;
using Change = ConnectionRecord::Change;
using State = ConnectionRecord::State;
const ConnectionRecord::Clock::time_point t0 = ConnectionRecord::Clock::time_point() + 1000h;

TEST(ConnectionRecord, ConnectsOnceAndCountsTheTimeToConnectFromTheStart) {
  ConnectionRecord r;
  r.begin(t0);
  EXPECT_EQ(r.state(), State::Connecting);
  EXPECT_EQ(r.on_path(false, t0 + 100ms), Change::None);  // ICE checking: still connecting
  EXPECT_EQ(r.state(), State::Connecting);
  EXPECT_EQ(r.on_path(true, t0 + 412ms), Change::Connected);
  EXPECT_EQ(r.state(), State::Connected);
  EXPECT_EQ(r.connect_ms(), 412);
  EXPECT_EQ(r.on_path(true, t0 + 900ms), Change::None);  // the same path again
  const auto j = r.to_json(t0 + 1s);
  EXPECT_EQ(j["state"], "connected");
  EXPECT_EQ(j["connect_ms"], 412);
  EXPECT_EQ(j["reconnection_count"], 0);
  EXPECT_TRUE(j["reconnections"].empty());
  EXPECT_FALSE(j.contains("ended_by"));
}

TEST(ConnectionRecord, ALostPathIsReconnectingUntilItComesBackWithItsDuration) {
  ConnectionRecord r;
  r.begin(t0);
  r.on_path(true, t0 + 500ms);
  EXPECT_EQ(r.on_path(false, t0 + 10s), Change::Reconnecting);
  EXPECT_EQ(r.state(), State::Reconnecting);
  auto j = r.to_json(t0 + 12s);
  EXPECT_EQ(j["state"], "reconnecting");
  ASSERT_EQ(j["reconnections"].size(), 1u);
  EXPECT_EQ(j["reconnections"][0]["at_ms"], 10000);
  EXPECT_FALSE(j["reconnections"][0].contains("duration_ms"));  // still reconnecting
  EXPECT_EQ(j["reconnecting_ms"], 2000);
  EXPECT_EQ(r.on_path(false, t0 + 13s), Change::None);  // still down: the same loss
  EXPECT_EQ(r.on_path(true, t0 + 15s + 250ms), Change::Reconnected);
  j = r.to_json(t0 + 20s);
  EXPECT_EQ(j["state"], "connected");
  EXPECT_EQ(j["reconnections"][0]["duration_ms"], 5250);
  EXPECT_EQ(j["reconnection_count"], 1);
  EXPECT_EQ(j["reconnecting_ms"], 5250);
  EXPECT_EQ(j["connect_ms"], 500);  // the first connection's, not the reconnection's
}

TEST(ConnectionRecord, KeepsTheLastReconnectionsAndCountsThemAll) {
  ConnectionRecord r;
  r.begin(t0);
  r.on_path(true, t0);
  auto t = t0;
  for (int i = 0; i < 25; ++i) {
    t += 1s;
    r.on_path(false, t);
    t += 100ms;
    r.on_path(true, t);
  }
  const auto j = r.to_json(t);
  EXPECT_EQ(j["reconnection_count"], 25);
  ASSERT_EQ(j["reconnections"].size(), ConnectionRecord::kMaxReconnections);
  EXPECT_EQ(j["reconnections"][0]["at_ms"], 6000 + 5 * 100);  // the 6th loss is the oldest kept
  EXPECT_EQ(j["reconnecting_ms"], 2500);
}

TEST(ConnectionRecord, TheFirstReasonToEndStaysAndALossInProgressCountsUpToTheEnd) {
  ConnectionRecord r;
  r.begin(t0);
  r.on_path(true, t0 + 1s);
  r.on_path(false, t0 + 5s);
  r.end("no_path_20s", true, t0 + 25s);
  r.end("hangup", false, t0 + 26s);  // the stop the failure causes
  EXPECT_EQ(r.state(), State::Failed);
  EXPECT_EQ(r.ended_by(), "no_path_20s");
  EXPECT_EQ(r.on_path(true, t0 + 27s), Change::None);  // nothing after the end
  const auto j = r.to_json(t0 + 60s);
  EXPECT_EQ(j["state"], "failed");
  EXPECT_EQ(j["ended_by"], "no_path_20s");
  EXPECT_EQ(j["reconnecting_ms"], 20000);
  EXPECT_FALSE(j["reconnections"][0].contains("duration_ms"));
}

TEST(ConnectionRecord, AHangupEndsAndACallThatNeverConnectedHasNoConnectTime) {
  ConnectionRecord r;
  r.begin(t0);
  r.end("hangup", false, t0 + 3s);
  const auto j = r.to_json(t0 + 4s);
  EXPECT_EQ(j["state"], "ended");
  EXPECT_EQ(j["ended_by"], "hangup");
  EXPECT_FALSE(j.contains("connect_ms"));
  EXPECT_EQ(r.connect_ms(), -1);
}

}  // namespace
}  // namespace esg::telegram::calls
