#include "edge/border/pike.hpp"

#include <chrono>

namespace esg::edge {

Pike::Pike(Options options) : options_(std::move(options)) {}

int64_t Pike::now() const {
  if (options_.now_ms) return options_.now_ms();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

size_t Pike::tracked() const {
  size_t n = 0;
  for (auto& shard : shards_) {
    std::lock_guard lock(shard.mu);
    n += shard.counters.size();
  }
  return n;
}

uint64_t Pike::hit(const IpKey& addr) {
  if (options_.requests <= 0) return 0;
  const size_t h = IpKeyHash{}(addr);
  Shard& shard = shards_[(h >> 7) % kShards];
  const int64_t t = now();
  const int64_t window = int64_t(options_.window) * 1000;
  std::lock_guard lock(shard.mu);
  auto it = shard.counters.find(addr);
  if (it == shard.counters.end()) {
    if (shard.counters.size() >= options_.max_tracked / kShards) {
      // Full: forget the addresses whose window has passed; if all are current, start over.
      for (auto c = shard.counters.begin(); c != shard.counters.end();)
        c = t - c->second.start >= window ? shard.counters.erase(c) : std::next(c);
      if (shard.counters.size() >= options_.max_tracked / kShards) shard.counters.clear();
    }
    it = shard.counters.emplace(addr, Counter{t, 0}).first;
  }
  Counter& c = it->second;
  if (t - c.start >= window) {
    c.start = t;
    c.count = 0;
  }
  ++c.count;
  return c.count == uint32_t(options_.requests) + 1 ? c.count : 0;
}

}  // namespace esg::edge
