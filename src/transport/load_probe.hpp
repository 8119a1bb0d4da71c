#pragma once
// Overload detection for one worker: how late its loop runs a timer it sets for itself every
// 100 ms, and how full the UDP receive queues are then. A worker that keeps falling behind has
// more to do than it can; new calls are then refused at once with 503 (the caller tries
// elsewhere) instead of queued until every one of them, and the calls already up, time out.
// The queues matter because a worker that reads its own socket is never late by much: what it
// cannot do waits in the kernel's buffer, then is dropped (issue 24: at twice the clean rate
// the loop stayed under 500 ms late while a tenth of the calls timed out). One late or full
// probe is a hiccup (a page fault, a burst); only a run of them is overload.

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>

namespace esg::transport {

// The decision, apart from the clock. A worker is overloaded after `kEnter` bad probes in a row
// (each at least `threshold_ms` late, or the receive queues at least `kFull` full); it then
// refuses a share of the new calls, not all of them: refusing every call while the overload
// held cost a tenth of the goodput (issue 24: 1,380 calls/s completed against 1,570 without the
// control). The share starts at `kRise` and grows by `kRise` with each further bad probe, holds
// while the worker is catching up (between half and all of both limits), and falls by `kFall`
// with each calm probe (under half of both); at 0 the worker is no longer overloaded. Falling
// slower than rising keeps the refusals from swinging between none and all.
class LagState {
 public:
  static constexpr int kEnter = 3;
  static constexpr double kFull = 0.5;
  static constexpr double kRise = 0.2, kFall = 0.05;
  explicit LagState(int threshold_ms) : threshold_ms_(threshold_ms) {}
  bool observe(int64_t late_ms, double backlog = 0);  // returns overloaded()
  bool overloaded() const { return share_ > 0; }
  double share() const { return share_; }  // of the new calls to refuse, 0..1

 private:
  int threshold_ms_;
  int late_run_ = 0;
  double share_ = 0;
};

class LoadProbe {
 public:
  // `threshold_ms` 0: never overloaded (no timer runs). `backlog`: how full the receive
  // queues are, 0..1 (Transport::udp_backlog); none: the lag alone.
  LoadProbe(boost::asio::io_context& io, int threshold_ms,
            std::chrono::milliseconds every = std::chrono::milliseconds(100),
            std::function<double()> backlog = {});
  LoadProbe(const LoadProbe&) = delete;
  LoadProbe& operator=(const LoadProbe&) = delete;

  // Read from any thread.
  bool overloaded() const { return refusing_pct() > 0; }  // the share moves in steps of 5 %
  int refusing_pct() const { return refusing_pct_.load(std::memory_order_relaxed); }
  // On the worker's thread, for each new call: refuse it? Spreads the refused share evenly over
  // the calls (every other one at 50 %), none when the worker keeps up.
  bool refuse();
  int64_t lag_ms() const { return lag_ms_.load(std::memory_order_relaxed); }
  int backlog_pct() const { return backlog_pct_.load(std::memory_order_relaxed); }

 private:
  void arm();

  boost::asio::steady_timer timer_;
  LagState state_;
  std::chrono::milliseconds every_;
  std::function<double()> backlog_;
  std::chrono::steady_clock::time_point due_;
  std::atomic<int64_t> lag_ms_{0};
  std::atomic<int> backlog_pct_{0};
  std::atomic<int> refusing_pct_{0};
  double credit_ = 0;  // worker thread: refusals owed, grows by the share with each new call
};

}  // namespace esg::transport
