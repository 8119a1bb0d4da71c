#pragma once
// A Store that times every call of the store it wraps (for /metrics: store latency), in a
// histogram per kind: reads (list, get, find_code, CDR queries) and writes (the rest).

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <type_traits>
#include <utility>

#include "store/store.hpp"

namespace esg::store {

struct StoreTimings {
  // Upper bounds in milliseconds; the last bucket is everything above.
  static constexpr std::array<double, 6> kBucketsMs = {1, 5, 10, 50, 100, 500};
  struct Histogram {
    std::array<std::atomic<uint64_t>, 7> buckets{};
    std::atomic<uint64_t> sum_us{0};
  };
  Histogram read, write;
};

class TimedStore final : public Store {
 public:
  explicit TimedStore(std::unique_ptr<Store> inner) : inner_(std::move(inner)) {}
  const StoreTimings& timings() const { return timings_; }

  Result<std::vector<Row>, Error> list(Table t) override {
    return timed(timings_.read, [&] { return inner_->list(t); });
  }
  Result<Row, Error> get(Table t, int64_t id) override {
    return timed(timings_.read, [&] { return inner_->get(t, id); });
  }
  Result<Row, Error> find_code(Table t, const std::string& code) override {
    return timed(timings_.read, [&] { return inner_->find_code(t, code); });
  }
  Result<int64_t, Error> insert(Table t, const std::string& code, const std::string& data,
                                int64_t id = 0) override {
    return timed(timings_.write, [&] { return inner_->insert(t, code, data, id); });
  }
  Result<void, Error> update(Table t, int64_t id, const std::string& code,
                             const std::string& data) override {
    return timed(timings_.write, [&] { return inner_->update(t, id, code, data); });
  }
  Result<void, Error> remove(Table t, int64_t id) override {
    return timed(timings_.write, [&] { return inner_->remove(t, id); });
  }
  int schema_version() override { return inner_->schema_version(); }
  Result<int64_t, Error> cdr_insert(const Cdr& c) override {
    return timed(timings_.write, [&] { return inner_->cdr_insert(c); });
  }
  Result<void, Error> cdr_update(const Cdr& c) override {
    return timed(timings_.write, [&] { return inner_->cdr_update(c); });
  }
  Result<std::vector<Cdr>, Error> cdr_query(const CdrQuery& q) override {
    return timed(timings_.read, [&] { return inner_->cdr_query(q); });
  }
  Result<void, Error> in_transaction(const std::function<void()>& f) override {
    // The calls inside are timed one by one (they come back through this store).
    return inner_->in_transaction(f);
  }
  Result<int64_t, Error> cdr_interrupt_active(int64_t srvidx) override {
    return timed(timings_.write, [&] { return inner_->cdr_interrupt_active(srvidx); });
  }
  Result<ClusterView, Error> heartbeat(const InstanceRow& self, bool with_regs,
                                       int64_t dead_after_ms, int64_t leases_after) override {
    return timed(timings_.write,
                 [&] { return inner_->heartbeat(self, with_regs, dead_after_ms, leases_after); });
  }
  Result<std::vector<InstanceRow>, Error> instances() override {
    return timed(timings_.read, [&] { return inner_->instances(); });
  }
  Result<std::vector<std::string>, Error> acquire_leases(const std::vector<std::string>& accounts,
                                                         int64_t srvidx, int64_t ttl_ms) override {
    return timed(timings_.write, [&] { return inner_->acquire_leases(accounts, srvidx, ttl_ms); });
  }
  Result<void, Error> release_leases(const std::vector<std::string>& accounts,
                                     int64_t srvidx) override {
    return timed(timings_.write, [&] { return inner_->release_leases(accounts, srvidx); });
  }
  Result<void, Error> put_session(const SessionSnapshot& s, size_t keep) override {
    return timed(timings_.write, [&] { return inner_->put_session(s, keep); });
  }
  Result<std::vector<SessionSnapshot>, Error> sessions(int64_t line_id) override {
    return timed(timings_.read, [&] { return inner_->sessions(line_id); });
  }
  Result<void, Error> delete_sessions(int64_t line_id) override {
    return timed(timings_.write, [&] { return inner_->delete_sessions(line_id); });
  }

 private:
  template <class F>
  std::invoke_result_t<F&> timed(StoreTimings::Histogram& h, F&& f) {
    const auto start = std::chrono::steady_clock::now();
    auto r = f();
    const double us =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
    size_t b = 0;
    while (b < StoreTimings::kBucketsMs.size() && us > StoreTimings::kBucketsMs[b] * 1000)
      ++b;
    h.buckets[b].fetch_add(1, std::memory_order_relaxed);
    h.sum_us.fetch_add(uint64_t(us), std::memory_order_relaxed);
    return r;
  }

  std::unique_ptr<Store> inner_;
  StoreTimings timings_;
};

}  // namespace esg::store
