#pragma once
// Overload detection for one worker: how late its loop runs a timer it sets for itself every
// 100 ms. A worker that keeps falling behind has more to do than it can; new calls are then
// refused at once with 503 (the caller tries elsewhere) instead of queued until every one of
// them, and the calls already up, time out. One late probe is a hiccup (a page fault, a burst);
// only a run of them is overload.

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>

namespace esg::transport {

// The decision, apart from the clock: overloaded after `kEnter` late probes in a row (each at
// least `threshold_ms` late), back to normal after `kLeave` probes in a row under half of it.
class LagState {
 public:
  static constexpr int kEnter = 3, kLeave = 5;
  explicit LagState(int threshold_ms) : threshold_ms_(threshold_ms) {}
  bool observe(int64_t late_ms);  // returns overloaded()
  bool overloaded() const { return overloaded_; }

 private:
  int threshold_ms_;
  int late_run_ = 0, calm_run_ = 0;
  bool overloaded_ = false;
};

class LoadProbe {
 public:
  // `threshold_ms` 0: never overloaded (no timer runs).
  LoadProbe(boost::asio::io_context& io, int threshold_ms,
            std::chrono::milliseconds every = std::chrono::milliseconds(100));
  LoadProbe(const LoadProbe&) = delete;
  LoadProbe& operator=(const LoadProbe&) = delete;

  // Read from any thread.
  bool overloaded() const { return overloaded_.load(std::memory_order_relaxed); }
  int64_t lag_ms() const { return lag_ms_.load(std::memory_order_relaxed); }

 private:
  void arm();

  boost::asio::steady_timer timer_;
  LagState state_;
  std::chrono::milliseconds every_;
  std::chrono::steady_clock::time_point due_;
  std::atomic<bool> overloaded_{false};
  std::atomic<int64_t> lag_ms_{0};
};

}  // namespace esg::transport
