#pragma once
// Timers for the transaction machines: an interface the event loop implements, and a simulated
// clock for tests (no sleeps: a test advances time and sees what fired).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <utility>

namespace esg::txn {

using Millis = std::chrono::milliseconds;

// RFC 3261 §17.1.1.1 and Table 4; every value is configurable.
struct TimerConfig {
  Millis t1{500};      // RTT estimate
  Millis t2{4000};     // maximum retransmit interval for non-INVITE requests and INVITE responses
  Millis t4{5000};     // maximum time a message stays in the network
  Millis trying{200};  // 100 Trying for INVITE when the TU has not answered by then (§17.2.1)
  Millis timer_d{32000};  // wait for response retransmissions (unreliable transports)
};

class Timers {
 public:
  using Id = uint64_t;
  virtual ~Timers() = default;
  virtual Id start(Millis after, std::function<void()> fire) = 0;
  virtual void stop(Id id) = 0;
};

// Time moves only when the test says so; timers due at the same instant fire in start order.
class SimulatedTimers final : public Timers {
 public:
  Id start(Millis after, std::function<void()> fire) override {
    const Id id = ++next_;
    due_.emplace(std::make_pair(now_ + after, id), std::move(fire));
    return id;
  }
  void stop(Id id) override {
    for (auto it = due_.begin(); it != due_.end(); ++it) {
      if (it->first.second == id) {
        due_.erase(it);
        return;
      }
    }
  }
  // Advances the clock by `d`, firing every timer that falls due, in order.
  void advance(Millis d) {
    const Millis until = now_ + d;
    while (!due_.empty() && due_.begin()->first.first <= until) {
      auto it = due_.begin();
      now_ = it->first.first;
      auto fire = std::move(it->second);
      due_.erase(it);
      fire();
    }
    now_ = until;
  }
  Millis now() const { return now_; }
  size_t pending() const { return due_.size(); }

 private:
  Millis now_{0};
  Id next_ = 0;
  std::map<std::pair<Millis, Id>, std::function<void()>> due_;
};

}  // namespace esg::txn
