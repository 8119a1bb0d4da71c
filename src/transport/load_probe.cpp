#include "transport/load_probe.hpp"

#include <algorithm>

#include "log/log.hpp"

namespace esg::transport {

bool LagState::observe(int64_t late_ms, double backlog) {
  if (late_ms >= threshold_ms_ || backlog >= kFull) {
    if (++late_run_ >= kEnter || share_ > 0) share_ = std::min(1.0, share_ + kRise);
  } else {
    late_run_ = 0;
    if (late_ms * 2 < threshold_ms_ && backlog * 2 < kFull) share_ = std::max(0.0, share_ - kFall);
    if (share_ < 1e-9) share_ = 0;  // the steps are not exact in binary
  }
  return overloaded();
}

LoadProbe::LoadProbe(boost::asio::io_context& io, int threshold_ms, std::chrono::milliseconds every,
                     std::function<double()> backlog)
    : timer_(io), state_(threshold_ms), every_(every), backlog_(std::move(backlog)) {
  if (threshold_ms > 0) arm();
}

void LoadProbe::arm() {
  due_ = std::chrono::steady_clock::now() + every_;
  timer_.expires_at(due_);
  // The probe lives as long as the worker's io_context runs (the server tears it down after
  // the worker threads stopped), so `this` outlives every handler that is invoked.
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    const auto late = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - due_)
                          .count();
    const double backlog = backlog_ ? backlog_() : 0;
    lag_ms_.store(late, std::memory_order_relaxed);
    backlog_pct_.store(int(backlog * 100), std::memory_order_relaxed);
    const bool was = state_.overloaded();
    const bool now = state_.observe(late, backlog);
    refusing_pct_.store(int(state_.share() * 100 + 0.5), std::memory_order_relaxed);
    if (now != was) {
      if (now) {
        log::get("transport")
            .warn(
                "worker overloaded: its loop runs {} ms late, receive queue {} % full; {} % of "
                "new calls get 503",
                late, int(backlog * 100), refusing_pct());
      } else {
        log::get("transport")
            .info("worker keeps up again ({} ms late, receive queue {} % full); new calls accepted",
                  late, int(backlog * 100));
      }
    }
    arm();
  });
}

bool LoadProbe::refuse() {
  const double share = state_.share();  // the probe runs on this worker's thread too
  if (share <= 0) {
    credit_ = 0;
    return false;
  }
  credit_ += share;
  if (credit_ < 1 - 1e-9) return false;
  credit_ -= 1;
  return true;
}

}  // namespace esg::transport
