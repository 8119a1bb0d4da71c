// A runtime of one simulated worker for the account manager's tests: what the manager posts
// waits in a queue until the test runs it, so the order of its steps is the test's to choose.
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "accounts/manager.hpp"
#include "txn/timers.hpp"

namespace esg::accounts {

struct RecordingLink : Link {
  std::vector<std::string> sent;
  Local local(const Destination&) override { return {"127.0.0.1", 5080}; }
  void resolve(const Destination& d, std::function<void(std::vector<Destination>)> done) override {
    done({d});
  }
  txn::Channel channel(const Destination&, bool) override {
    // Reliable: the transaction ends with the final response (no Timer K to wait out).
    return txn::Channel{true, [this](std::string_view b) {
                          sent.emplace_back(b);
                          return true;
                        }};
  }
};

struct OneWorker : Runtime {
  txn::SimulatedTimers timers_;
  txn::Layer layer_{timers_, txn::TimerConfig{}, txn::Layer::User{}};
  RecordingLink link_;
  std::deque<std::function<void()>> queue;

  size_t workers() const override { return 1; }
  size_t worker_for(std::string_view) const override { return 0; }
  void post(size_t, std::function<void()> f) override { queue.push_back(std::move(f)); }
  txn::Layer& layer(size_t) override { return layer_; }
  txn::Timers& timers(size_t) override { return timers_; }
  Link& link() override { return link_; }
  void run() {
    while (!queue.empty()) {
      auto f = std::move(queue.front());
      queue.pop_front();
      f();
    }
  }
};

}  // namespace esg::accounts
