#include "edge/border/bans.hpp"

#include <mutex>

namespace esg::edge {

Bans::Bans(Options options) : options_(std::move(options)) {}

int64_t Bans::now() const {
  if (options_.now_ms) return options_.now_ms();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void Bans::set_exempt(std::function<bool(const std::string&)> exempt) {
  std::unique_lock lock(mu_);
  exempt_ = std::move(exempt);
}

bool Bans::count(const std::string& addr, const std::string& why) {
  std::unique_lock lock(mu_);
  if (exempt_ && exempt_(addr)) return false;
  const int64_t t = now();
  auto b = bans_.find(addr);
  if (b != bans_.end() && b->second.until > t) {
    ++b->second.count;
    return false;
  }
  // Bounded: a flood from many addresses restarts the count rather than growing it.
  if (failures_.size() >= options_.max_tracked && !failures_.count(addr)) failures_.clear();
  auto& seen = failures_[addr];
  seen.push_back(t);
  while (!seen.empty() && seen.front() <= t - int64_t(options_.window) * 1000)
    seen.pop_front();
  if (seen.size() < size_t(options_.failures)) return false;
  Ban ban;
  ban.reason = why;
  ban.since = t;
  ban.until = t + int64_t(options_.duration) * 1000;
  ban.count = seen.size();
  failures_.erase(addr);  // `seen` is gone from here on
  bans_[addr] = ban;
  any_ = true;
  ++total_;
  return true;
}

bool Bans::banned(const std::string& addr) const {
  if (!any_.load(std::memory_order_relaxed)) return false;
  std::shared_lock lock(mu_);
  auto it = bans_.find(addr);
  return it != bans_.end() && it->second.until > now();
}

nlohmann::json Bans::list() const {
  std::shared_lock lock(mu_);
  nlohmann::json items = nlohmann::json::array();
  const int64_t t = now();
  for (const auto& [addr, b] : bans_) {
    if (b.until <= t) continue;
    items.push_back({{"address", addr},
                     {"reason", b.reason},
                     {"since", b.since},
                     {"until", b.until},
                     {"count", b.count}});
  }
  return {{"items", items}};
}

bool Bans::lift(const std::string& addr) {
  std::unique_lock lock(mu_);
  const bool found = bans_.erase(addr) > 0;
  failures_.erase(addr);
  any_ = !bans_.empty();
  return found;
}

}  // namespace esg::edge
