#pragma once
// The deliveries waiting to go out, kept on disk so that a restart loses none: one file per
// delivery in one folder, named "<seq>-<webhook id>-<created ms>.ev" and holding the exact body
// (written to a temporary name, then renamed: a crash leaves a whole file or none). Bounded by
// `max` deliveries: a push beyond drops the oldest, counted. Deliveries leave in order per
// webhook (`front`), so a receiver sees the events of a call in the order they happened.
//
// A folder of the instance's own, not a store table: the calls' events are this instance's,
// and queueing them must not depend on PostgreSQL being reachable (a CRM outage and a store
// outage often come together). Used by one thread (the notifier's).

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace esg::notify {

class DiskQueue {
 public:
  struct Item {
    uint64_t seq = 0;
    int64_t hook = 0;
    int64_t created_ms = 0;  // Unix ms, when the event happened
    std::string body;
  };

  // Creates the folder when missing and loads what a previous run left. Throws
  // std::runtime_error naming the folder when it cannot be used.
  DiskQueue(std::string dir, size_t max);

  // Returns how many of the oldest were dropped to make room (0 or 1).
  size_t push(int64_t hook, int64_t created_ms, std::string body);
  const Item* front(int64_t hook) const;
  void pop(int64_t hook);
  // Drops every delivery of webhooks not in `keep` (deleted ones); returns how many.
  size_t retain(const std::vector<int64_t>& keep);
  std::vector<int64_t> hooks() const;  // webhooks with deliveries waiting
  size_t size() const { return size_; }
  size_t queued(int64_t hook) const {
    auto it = by_hook_.find(hook);
    return it == by_hook_.end() ? 0 : it->second.size();
  }
  size_t max() const { return max_; }
  uint64_t write_errors() const { return write_errors_; }

 private:
  std::string path_of(const Item& i) const;
  void remove_file(const Item& i);
  void drop_oldest();

  std::string dir_;
  size_t max_;
  uint64_t next_seq_ = 1;
  size_t size_ = 0;
  uint64_t write_errors_ = 0;
  std::map<int64_t, std::deque<Item>> by_hook_;
};

}  // namespace esg::notify
