#include "txn/asio_timers.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

namespace esg::txn {
namespace {

// Two timers that expire together are handed to their handlers in one batch; when the first
// stops the second, the second must not fire (a Retransmitter destroyed by the first would
// otherwise be called back: the crash the B2BUA benchmark found at 3,000 calls/s).
TEST(AsioTimers, AStopAfterExpiryStillPreventsTheCallback) {
  boost::asio::io_context io;
  AsioTimers timers(io);
  bool second_fired = false;
  Timers::Id second = 0;
  timers.start(Millis(0), [&] { timers.stop(second); });
  second = timers.start(Millis(0), [&] { second_fired = true; });
  std::this_thread::sleep_for(std::chrono::milliseconds(5));  // both have expired
  io.run();
  EXPECT_FALSE(second_fired);
  EXPECT_EQ(timers.pending(), 0u);
}

TEST(AsioTimers, FiresOnceAndForgets) {
  boost::asio::io_context io;
  AsioTimers timers(io);
  int fired = 0;
  timers.start(Millis(1), [&] { ++fired; });
  io.run();
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(timers.pending(), 0u);
}

// Timers due at the same instant fire in start order; a later one started first still fires
// after an earlier one started after it; a stopped one never fires.
TEST(AsioTimers, FireInDeadlineOrderAndStoppedOnesNever) {
  boost::asio::io_context io;
  AsioTimers timers(io);
  std::vector<int> order;
  timers.start(Millis(30), [&] { order.push_back(30); });
  const auto stopped = timers.start(Millis(20), [&] { order.push_back(-1); });
  timers.start(Millis(10), [&] { order.push_back(10); });
  timers.start(Millis(10), [&] { order.push_back(11); });
  timers.start(Millis(0), [&] { order.push_back(0); });
  timers.stop(stopped);
  io.run();
  EXPECT_EQ(order, (std::vector<int>{0, 10, 11, 30}));
  EXPECT_EQ(timers.pending(), 0u);
}

// A timer of 100 ms or more fires at most one slot (10 ms) late and never early; a callback
// that starts a timer gets it too.
TEST(AsioTimers, CoarseDeadlinesAreNeverEarly) {
  boost::asio::io_context io;
  AsioTimers timers(io);
  const auto t0 = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration first{}, second{};
  timers.start(Millis(120), [&] {
    first = std::chrono::steady_clock::now() - t0;
    timers.start(Millis(100), [&] { second = std::chrono::steady_clock::now() - t0; });
  });
  io.run();
  EXPECT_GE(first, Millis(120));
  EXPECT_LT(first, Millis(120 + 200));  // late by the slot, and by a busy machine
  EXPECT_GE(second, Millis(220));
}

// Stopping the last timer leaves nothing for the io_context to wait on: run() returns at once
// instead of when the stopped timer would have expired.
TEST(AsioTimers, StoppingTheLastTimerLetsTheLoopGo) {
  boost::asio::io_context io;
  AsioTimers timers(io);
  const auto id = timers.start(Millis(30000), [] {});
  timers.stop(id);
  const auto t0 = std::chrono::steady_clock::now();
  io.run();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

// Stopped entries are dropped from the heap when they outnumber the live ones (a worker stops
// most of its timers: Timer B for every answered INVITE).
TEST(AsioTimers, ManyStoppedTimersAreCompacted) {
  boost::asio::io_context io;
  AsioTimers timers(io);
  int fired = 0;
  timers.start(Millis(1), [&] { ++fired; });
  for (int i = 0; i < 20000; ++i)
    timers.stop(timers.start(Millis(32000), [&] { fired += 1000; }));
  EXPECT_EQ(timers.pending(), 1u);
  EXPECT_LE(timers.heap_entries(), 4096u * 2 + 1);
  io.run();
  EXPECT_EQ(fired, 1);
}

}  // namespace
}  // namespace esg::txn
