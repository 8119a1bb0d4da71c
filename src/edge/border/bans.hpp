#pragma once
// Bans (issue 6): failures an address causes (unknown accounts, wrong credentials) are counted
// in a sliding window; over the threshold the address is banned for a while and its packets are
// dropped at the socket, before parsing, without an answer. Addresses of configured providers
// and PBX connections are never banned (`set_exempt`). Shared by all threads: the per-packet
// check takes no lock while nothing is banned, and a reader lock otherwise.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include <nlohmann/json.hpp>

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

  // Counts a failure of `addr`; true when it has just been banned.
  bool count(const std::string& addr, const std::string& why);
  // The per-packet check.
  bool banned(const std::string& addr) const;
  // `{"items": [{"address", "reason", "since", "until", "count"}]}`, times in ms.
  nlohmann::json list() const;
  bool lift(const std::string& addr);
  void set_exempt(std::function<bool(const std::string&)> exempt);
  uint64_t total_bans() const { return total_; }

 private:
  int64_t now() const;
  struct Ban {
    std::string reason;
    int64_t since = 0, until = 0;
    uint64_t count = 0;
  };

  Options options_;
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, std::deque<int64_t>> failures_;
  std::unordered_map<std::string, Ban> bans_;
  std::atomic<bool> any_{false};
  std::atomic<uint64_t> total_{0};
  std::function<bool(const std::string&)> exempt_;
};

}  // namespace esg::edge
