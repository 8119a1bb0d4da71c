#pragma once
// Bans (issue 6): failures an address causes (unknown accounts, wrong credentials, malformed
// requests) are counted in a sliding window; over the threshold the address is banned for a
// while and its packets are dropped at the socket, before parsing, without an answer. The flood
// limit (Pike) bans too, for its own duration. Addresses of configured providers and PBX
// connections, and those an allow rule names, are never banned (`set_exempt`). Shared by all
// threads: the per-packet check takes no lock while nothing is banned, and a reader lock
// otherwise.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "edge/border/address.hpp"

namespace esg::edge {

class Bans {
 public:
  struct Options {
    int failures = 5;  // within `window` seconds
    int window = 60;
    int duration = 3600;              // seconds banned
    size_t max_tracked = 100000;      // addresses with failures being counted
    std::function<int64_t()> now_ms;  // the system clock when empty
  };
  explicit Bans(Options options);

  // Counts a failure of `addr`; true when it has just been banned. Text that is no address is
  // ignored.
  bool count(const IpKey& addr, const std::string& why);
  bool count(const std::string& addr, const std::string& why);
  // Bans `addr` at once for `seconds` (the flood limit); false when it is exempt.
  bool ban(const IpKey& addr, const std::string& why, int seconds, uint64_t count);
  // The per-packet check.
  bool banned(const IpKey& addr) const;
  bool banned(const std::string& addr) const;
  // `{"items": [{"address", "reason", "since", "until", "count"}]}`, times in ms.
  nlohmann::json list() const;
  bool lift(const std::string& addr);
  void set_exempt(std::function<bool(const IpKey&)> exempt);
  uint64_t total_bans() const { return total_; }
  size_t active() const;

 private:
  int64_t now() const;
  bool exempt(const IpKey& addr) const { return exempt_ && exempt_(addr); }
  void sweep(int64_t t);  // forgets expired bans (under the writer lock)
  struct Ban {
    std::string reason;
    int64_t since = 0, until = 0;
    uint64_t count = 0;
  };

  Options options_;
  mutable std::shared_mutex mu_;
  std::unordered_map<IpKey, std::deque<int64_t>, IpKeyHash> failures_;
  std::unordered_map<IpKey, Ban, IpKeyHash> bans_;
  std::atomic<bool> any_{false};
  std::atomic<uint64_t> total_{0};
  std::function<bool(const IpKey&)> exempt_;
};

}  // namespace esg::edge
