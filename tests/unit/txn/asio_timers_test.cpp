#include "txn/asio_timers.hpp"

#include <gtest/gtest.h>

#include <thread>

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

}  // namespace
}  // namespace esg::txn
