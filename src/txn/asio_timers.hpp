#pragma once
// txn::Timers on an io_context: the production clock of the transaction machines.
//
// One worker runs thousands of SIP timers at once (Timer A, B, D, the 100 Trying, the sweep of
// ended transactions), most of them stopped long before they expire. An asio steady_timer per
// SIP timer cost an allocation of the timer and its handler, a completion run for every stop,
// and a timerfd_settime each time the earliest timer changed: 2.5 system calls per call at
// 1,500 calls/s (issue 24). Here the worker's timers are one heap under one steady_timer:
// starting or stopping a timer is a heap push or a table erase, and the steady_timer is moved
// only when the earliest deadline moves earlier. Deadlines of 100 ms and more are rounded up to
// the next 10 ms, so timers falling due together fire in one wake-up (SIP's timers run from
// 200 ms up; 10 ms late is within what RFC 3261 allows). A timer of 0 ms is posted: it runs
// after what the worker is doing now, without a system call.

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <unordered_map>
#include <vector>

#include "txn/timers.hpp"

namespace esg::txn {

class AsioTimers final : public Timers {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr Millis kCoarseFrom{100};
  static constexpr Millis kSlot{10};

  explicit AsioTimers(boost::asio::io_context& io) : io_(io), timer_(io) {}
  ~AsioTimers() override { timer_.cancel(); }

  Id start(Millis after, std::function<void()> fire) override {
    const Id id = ++next_;
    live_.emplace(id, std::move(fire));
    if (after <= Millis(0)) {
      boost::asio::post(io_, [this, alive = std::weak_ptr<char>(alive_), id] {
        if (!alive.expired()) run(id);
      });
      return id;
    }
    Clock::time_point due = Clock::now() + after;
    if (after >= kCoarseFrom) {
      const auto slot = std::chrono::duration_cast<Clock::duration>(kSlot);
      due = Clock::time_point(((due.time_since_epoch() + slot - Clock::duration(1)) / slot) * slot);
    }
    heap_.push_back({due, id});
    std::push_heap(heap_.begin(), heap_.end(), Later{});
    arm();
    return id;
  }

  // A stopped timer leaves the table at once; its heap entry is dropped when it comes to the
  // top, or when stopped entries are most of the heap.
  void stop(Id id) override {
    if (live_.erase(id) == 0) return;
    if (live_.empty()) {
      // Nothing left to wait for: an idle worker's io_context has no timer keeping it busy.
      heap_.clear();
      if (armed_) timer_.cancel();
      armed_ = false;
    } else if (heap_.size() > 4096 && heap_.size() > 2 * live_.size()) {
      compact();
    }
  }

  size_t pending() const { return live_.size(); }
  // The live timers' entries and the stopped ones not dropped yet.
  size_t heap_entries() const { return heap_.size(); }

 private:
  struct Entry {
    Clock::time_point due;
    Id id;
  };
  // A min-heap on (due, id): timers due at the same instant fire in start order.
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const {
      return a.due != b.due ? a.due > b.due : a.id > b.id;
    }
  };

  void pop() {
    std::pop_heap(heap_.begin(), heap_.end(), Later{});
    heap_.pop_back();
  }

  void compact() {
    std::erase_if(heap_, [this](const Entry& e) { return !live_.count(e.id); });
    std::make_heap(heap_.begin(), heap_.end(), Later{});
  }

  // The steady_timer waits for the earliest live deadline; moved only when that is earlier
  // than what it waits for (a later one is re-armed when the wait ends).
  void arm() {
    while (!heap_.empty() && !live_.count(heap_.front().id))
      pop();
    if (heap_.empty()) return;  // a wait still running ends, finds nothing due, and stops
    const Clock::time_point next = heap_.front().due;
    if (armed_ && armed_at_ <= next) return;
    armed_ = true;
    armed_at_ = next;
    timer_.expires_at(next);  // ends a wait for a later deadline (operation_aborted)
    timer_.async_wait([this, alive = std::weak_ptr<char>(alive_),
                       generation = ++generation_](boost::system::error_code ec) {
      if (ec || alive.expired() || generation != generation_) return;
      armed_ = false;
      fire_due();
    });
  }

  void fire_due() {
    const Clock::time_point now = Clock::now();
    while (!heap_.empty() && heap_.front().due <= now) {
      const Id id = heap_.front().id;
      pop();
      // A callback may start and stop timers (the heap changes under it): each is looked up
      // afresh, and one stopped by an earlier callback of this turn does not fire.
      run(id);
    }
    arm();
  }

  void run(Id id) {
    auto it = live_.find(id);
    if (it == live_.end()) return;
    auto fire = std::move(it->second);
    live_.erase(it);
    fire();
  }

  boost::asio::io_context& io_;
  boost::asio::steady_timer timer_;
  Id next_ = 0;
  std::unordered_map<Id, std::function<void()>> live_;
  std::vector<Entry> heap_;
  bool armed_ = false;
  Clock::time_point armed_at_{};
  uint64_t generation_ = 0;
  std::shared_ptr<char> alive_ = std::make_shared<char>();  // gone with this object
};

}  // namespace esg::txn
