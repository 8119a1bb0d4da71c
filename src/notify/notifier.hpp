#pragma once
// Delivers call events to the CRM webhooks (issue 23). Any thread publishes (the calls'
// workers do) and never waits: the event is handed to the notifier's own thread and
// io_context, which writes it to the disk queue once per webhook that wants it and POSTs it
// with Boost.Beast, one delivery at a time per webhook (in order), signed (sign.hpp). A failed
// attempt (no connection, timeout, an answer other than 2xx) is retried after the webhook's
// backoff until retry_for_s after the event; then the event is dropped, counted and logged.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "notify/webhook.hpp"

namespace esg::notify {

struct NotifierOptions {
  std::string dir = "var/webhooks";  // the disk queue's folder
  size_t max_queue = 10000;          // deliveries on disk; beyond, the oldest is dropped
  size_t max_pending = 10000;        // events handed over but not yet queued (a burst)
  int64_t srvidx = 1;
  std::string user_agent = "esg";
};

struct NotifierCounters {
  std::atomic<uint64_t> events{0};            // events published (wanted by a webhook)
  std::atomic<uint64_t> delivered{0};         // deliveries answered 2xx
  std::atomic<uint64_t> failed_attempts{0};   // attempts that failed (each retry counts)
  std::atomic<uint64_t> dropped_full{0};      // oldest deliveries dropped: the queue was full
  std::atomic<uint64_t> dropped_expired{0};   // not delivered within retry_for_s
  std::atomic<uint64_t> dropped_overload{0};  // events refused: too many waiting to be queued
  std::atomic<uint64_t> dropped_deleted{0};   // deliveries of a webhook that was deleted
  std::atomic<uint64_t> queue_depth{0};
};

class Notifier {
 public:
  // Opens the queue (throws std::runtime_error naming the folder).
  explicit Notifier(NotifierOptions options);
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  void start();
  void stop();
  // The webhooks now (from the store): any thread. Deliveries of webhooks no longer listed are
  // dropped.
  void set_webhooks(std::vector<Webhook> hooks);
  // Whether any enabled webhook wants `event` (cheap: the worker asks before building it).
  bool wants(std::string_view event) const;
  // Any thread, never blocks.
  void publish(std::string_view event, nlohmann::json call);
  const NotifierCounters& counters() const { return counters_; }
  nlohmann::json status() const;

 private:
  struct Impl;
  NotifierOptions options_;
  NotifierCounters counters_;
  std::atomic<uint32_t> wanted_{0};  // bit i: some webhook wants kEvents[i]
  std::atomic<size_t> pending_{0};
  std::unique_ptr<Impl> impl_;
};

}  // namespace esg::notify
