#pragma once
// txn::Timers on an io_context: the production clock of the transaction machines.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <unordered_map>

#include "txn/timers.hpp"

namespace esg::txn {

class AsioTimers final : public Timers {
 public:
  explicit AsioTimers(boost::asio::io_context& io) : io_(io) {}
  ~AsioTimers() override {
    for (auto& [id, t] : timers_)
      t->cancel();
  }

  Id start(Millis after, std::function<void()> fire) override {
    const Id id = ++next_;
    auto timer = std::make_unique<boost::asio::steady_timer>(io_, after);
    timer->async_wait([this, alive = std::weak_ptr<char>(alive_), id,
                       f = std::move(fire)](boost::system::error_code ec) {
      // Stopped; or these timers are gone while the handler of one that had already expired
      // was queued (cancel() cannot recall it): it must not touch the table.
      if (ec || alive.expired()) return;
      // Stopped after it expired but before this handler ran: cancel() cannot recall a
      // handler already queued, so the table is what says whether it still counts.
      if (timers_.erase(id) == 0) return;
      f();
    });
    timers_.emplace(id, std::move(timer));
    return id;
  }

  void stop(Id id) override {
    auto it = timers_.find(id);
    if (it == timers_.end()) return;
    // The handler still runs, with operation_aborted, and then touches nothing.
    it->second->cancel();
    timers_.erase(it);
  }

  size_t pending() const { return timers_.size(); }

 private:
  boost::asio::io_context& io_;
  Id next_ = 0;
  std::unordered_map<Id, std::unique_ptr<boost::asio::steady_timer>> timers_;
  std::shared_ptr<char> alive_ = std::make_shared<char>();  // gone with this object
};

}  // namespace esg::txn
