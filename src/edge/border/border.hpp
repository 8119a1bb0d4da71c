#pragma once
// The border (issue 6, CONTRACTS.md "Who is calling" steps 1-2): border rules, bans and the
// flood limit in front of everything else. On the socket, before parsing, it answers from the
// address alone (address-only rules, bans, flood counts) and drops what it can as cheaply as it
// can; after parsing it runs the rules on parsed fields. Rules are swapped in whole on every
// change; each worker keeps its own reference to the current compilation and only looks at a
// version counter per packet, so the hot path takes no lock and touches no shared reference
// count.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "edge/border/bans.hpp"
#include "edge/border/pike.hpp"
#include "edge/border/rules.hpp"

namespace esg::edge {

class Border {
 public:
  struct Options {
    Bans::Options bans;
    Pike::Options pike;
    int pike_duration = 120;  // seconds a flooding address stays dropped
    size_t workers = 1;       // per-worker snapshots (calls from other threads take a lock)
  };
  struct Counters {
    std::atomic<uint64_t> dropped_by_rule{0};  // drop rules and default drop
    std::atomic<uint64_t> dropped_banned{0};
    std::atomic<uint64_t> denied{0};  // answered 403 by a deny rule
    std::atomic<uint64_t> flood_bans{0};
    std::atomic<uint64_t> failures{0};          // counted towards bans
    std::atomic<uint64_t> protected_passed{0};  // provider/PBX packets a rule would have dropped
  };

  explicit Border(Options options);

  // Any thread; new packets see the rules at once. Prints warnings new to this compilation.
  void set_rules(std::shared_ptr<const BorderRules> rules);
  std::shared_ptr<const BorderRules> rules() const;
  // More addresses never to ban (PBXs registered to esg: their address is known only then).
  void set_extra_exempt(std::function<bool(const IpKey&)> exempt);

  // On the socket: true drops the packet (or connection: empty `bytes`) silently. `worker` is
  // the calling worker thread's index, or -1 on another thread.
  bool drop_at_socket(const IpKey& addr, std::string_view bytes, int worker);
  // After parsing (on a worker): allow, deny (answer 403) or drop.
  BorderVerdict after_parse(const IpKey& addr, const PacketFields& fields, int worker);
  // A failure towards esg from `addr` (unknown account, wrong credentials, malformed request).
  void count_failure(const std::string& addr, const std::string& why);

  Bans& bans() { return bans_; }
  const Counters& counters() const { return counters_; }
  // Rules in force, warnings, counters, active bans: for the monitoring API.
  nlohmann::json status() const;

 private:
  template <class F>
  auto with_rules(int worker, F&& f);
  static bool trusted(const BorderRules& r, const IpKey& addr) {
    return r.is_protected(addr) || r.allowed_by_address(addr);
  }

  struct alignas(64) Slot {
    std::shared_ptr<const BorderRules> rules;
    uint64_t version = 0;
  };
  Options options_;
  Bans bans_;
  Pike pike_;
  Counters counters_;
  mutable std::mutex mu_;
  std::shared_ptr<const BorderRules> current_;
  std::atomic<uint64_t> version_{1};
  std::vector<Slot> slots_;  // slot w is touched only by worker w's thread
  std::function<bool(const IpKey&)> extra_exempt_;
};

}  // namespace esg::edge
