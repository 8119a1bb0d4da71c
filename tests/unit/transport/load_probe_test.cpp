#include "transport/load_probe.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

using esg::transport::LagState;
using esg::transport::LoadProbe;

TEST(LagState, OneLateProbeIsAHiccupARunOfThemIsOverload) {
  LagState s(500);
  EXPECT_FALSE(s.observe(2000));  // a single stall
  EXPECT_FALSE(s.observe(3));
  for (int i = 0; i < LagState::kEnter - 1; ++i)
    EXPECT_FALSE(s.observe(600));
  EXPECT_TRUE(s.observe(500));  // the threshold itself counts as late
}

// Overloaded, the worker refuses a share of the new calls: more with each further bad probe,
// the same while it catches up (between half the threshold and the threshold), less with each
// calm probe, none once the share is back at 0.
TEST(LagState, TheRefusedShareRisesWhileLateHoldsWhileCatchingUpAndFallsWhenCalm) {
  LagState s(500);
  for (int i = 0; i < LagState::kEnter; ++i)
    s.observe(900);
  ASSERT_TRUE(s.overloaded());
  EXPECT_DOUBLE_EQ(s.share(), LagState::kRise);
  s.observe(900);
  EXPECT_DOUBLE_EQ(s.share(), 2 * LagState::kRise);
  for (int i = 0; i < 20; ++i)
    s.observe(900);
  EXPECT_DOUBLE_EQ(s.share(), 1.0) << "all new calls at most";
  for (int i = 0; i < 30; ++i)
    EXPECT_TRUE(s.observe(300));
  EXPECT_DOUBLE_EQ(s.share(), 1.0) << "catching up: the share holds";
  s.observe(10);
  EXPECT_NEAR(s.share(), 1.0 - LagState::kFall, 1e-9);
  EXPECT_TRUE(s.observe(700)) << "a late probe while overloaded raises the share at once";
  EXPECT_NEAR(s.share(), 1.0, 1e-9);
  int calm = 0;
  while (s.observe(10))
    ++calm;
  EXPECT_EQ(calm + 1, int(1.0 / LagState::kFall + 0.5)) << "falls slower than it rose";
  EXPECT_EQ(s.share(), 0.0);
  // Back to normal: a single late probe is a hiccup again.
  EXPECT_FALSE(s.observe(900));
}

// A worker that reads its own socket is never late by much: its backlog is the kernel's queue.
TEST(LagState, AReceiveQueueHalfFullIsLikeALateProbe) {
  LagState s(500);
  for (int i = 0; i < LagState::kEnter - 1; ++i)
    EXPECT_FALSE(s.observe(5, 0.9));
  EXPECT_TRUE(s.observe(5, LagState::kFull));
  // On time but the queue still over a quarter full: still catching up.
  for (int i = 0; i < 30; ++i)
    EXPECT_TRUE(s.observe(5, 0.3));
  EXPECT_DOUBLE_EQ(s.share(), LagState::kRise);
  for (int i = 0; i < int(LagState::kRise / LagState::kFall + 0.5) - 1; ++i)
    EXPECT_TRUE(s.observe(5, 0.1));
  EXPECT_FALSE(s.observe(5, 0.1));
}

// The refused share is spread over the new calls: at 20 % every fifth one, none at 0.
TEST(LoadProbe, RefusesItsShareOfTheNewCallsEvenly) {
  boost::asio::io_context io;
  double queue = 0.8;
  LoadProbe probe(io, 500, std::chrono::milliseconds(2), [&] { return queue; });
  EXPECT_FALSE(probe.refuse());
  for (int i = 0; i < LagState::kEnter; ++i)
    io.run_one();  // one probe each
  ASSERT_TRUE(probe.overloaded());
  EXPECT_EQ(probe.refusing_pct(), 20);
  std::string refused;
  for (int i = 0; i < 10; ++i)
    refused += probe.refuse() ? 'x' : '.';
  EXPECT_EQ(refused, "....x....x");
  queue = 0;
  for (int i = 0; i < 4; ++i)
    io.run_one();
  EXPECT_FALSE(probe.overloaded());
  EXPECT_EQ(probe.refusing_pct(), 0);
  for (int i = 0; i < 10; ++i)
    EXPECT_FALSE(probe.refuse());
}

TEST(LoadProbe, AFullReceiveQueueMakesAnOnTimeWorkerOverloaded) {
  boost::asio::io_context io;
  double queue = 0.8;
  LoadProbe probe(io, 500, std::chrono::milliseconds(5), [&] { return queue; });
  io.run_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(probe.overloaded());
  EXPECT_EQ(probe.backlog_pct(), 80);
  EXPECT_LT(probe.lag_ms(), 500);
  queue = 0;
  io.restart();
  io.run_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(probe.overloaded());
}

TEST(LoadProbe, AWorkerKeptBusyIsOverloadedAndRecoversWhenFreed) {
  boost::asio::io_context io;
  // Margins wide enough for a loaded (sanitized, parallel) test machine.
  LoadProbe probe(io, 150, std::chrono::milliseconds(10));
  // Every job keeps the loop 200 ms from its timers: each probe runs late.
  const auto busy_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(2000);
  std::function<void()> hog = [&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    if (std::chrono::steady_clock::now() < busy_until) boost::asio::post(io, hog);
  };
  boost::asio::post(io, hog);
  io.run_for(std::chrono::milliseconds(2000));
  EXPECT_TRUE(probe.overloaded());
  EXPECT_GE(probe.lag_ms(), 150);
  io.restart();
  io.run_for(std::chrono::milliseconds(500));  // idle: the probes run on time
  EXPECT_FALSE(probe.overloaded());
}

TEST(LoadProbe, OffWhenTheThresholdIsZero) {
  boost::asio::io_context io;
  LoadProbe probe(io, 0);
  EXPECT_EQ(io.run_for(std::chrono::milliseconds(50)), 0u) << "no timer runs";
  EXPECT_FALSE(probe.overloaded());
}
