#pragma once
// The flood limit (issue 6), like Kamailio's pike: requests per source address are counted in
// fixed windows; an address that sends more than `requests` within `window` seconds is reported
// once, and the border bans it for a while (its packets are then dropped before they get here).
// Counters live in shards with their own locks, so workers rarely wait on each other, and their
// number is bounded: a flood from many addresses forgets the quietest, not the memory.

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <unordered_map>

#include "edge/border/address.hpp"

namespace esg::edge {

class Pike {
 public:
  struct Options {
    int requests = 30;  // allowed within `window`; 0 turns the limit off
    int window = 2;     // seconds
    size_t max_tracked = 100000;
    std::function<int64_t()> now_ms;  // the steady clock when empty
  };
  explicit Pike(Options options);

  // Counts one request of `addr`; the count when it has just crossed the limit, else 0.
  uint64_t hit(const IpKey& addr);
  bool enabled() const { return options_.requests > 0; }
  size_t tracked() const;  // addresses being counted
  const Options& options() const { return options_; }

 private:
  int64_t now() const;
  struct Counter {
    int64_t start = 0;  // window start, ms
    uint32_t count = 0;
  };
  struct alignas(64) Shard {
    std::mutex mu;
    std::unordered_map<IpKey, Counter, IpKeyHash> counters;
  };
  static constexpr size_t kShards = 16;
  Options options_;
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace esg::edge
