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

void Bans::set_exempt(std::function<bool(const IpKey&)> exempt) {
  std::unique_lock lock(mu_);
  exempt_ = std::move(exempt);
}

bool Bans::count(const std::string& addr, const std::string& why) {
  auto key = IpKey::parse(addr);
  return key && count(*key, why);
}

bool Bans::count(const IpKey& addr, const std::string& why) {
  std::unique_lock lock(mu_);
  if (exempt(addr)) return false;
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
  const uint64_t n = seen.size();
  failures_.erase(addr);  // `seen` is gone from here on
  sweep(t);
  Ban ban;
  ban.reason = why;
  ban.since = t;
  ban.until = t + int64_t(options_.duration) * 1000;
  ban.count = n;
  bans_[addr] = ban;
  any_ = true;
  ++total_;
  return true;
}

bool Bans::ban(const IpKey& addr, const std::string& why, int seconds, uint64_t count) {
  std::unique_lock lock(mu_);
  if (exempt(addr)) return false;
  const int64_t t = now();
  sweep(t);
  Ban& ban = bans_[addr];
  if (ban.until > t) {  // banned already: the longer of the two holds
    ban.until = std::max(ban.until, t + int64_t(seconds) * 1000);
    ban.count += count;
    return false;
  }
  ban.reason = why;
  ban.since = t;
  ban.until = t + int64_t(seconds) * 1000;
  ban.count = count;
  any_ = true;
  ++total_;
  return true;
}

void Bans::sweep(int64_t t) {
  if (bans_.size() < 1024) return;  // small: list() skips expired ones anyway
  for (auto it = bans_.begin(); it != bans_.end();)
    it = it->second.until <= t ? bans_.erase(it) : std::next(it);
}

bool Bans::banned(const IpKey& addr) const {
  if (!any_.load(std::memory_order_relaxed)) return false;
  std::shared_lock lock(mu_);
  auto it = bans_.find(addr);
  return it != bans_.end() && it->second.until > now();
}

bool Bans::banned(const std::string& addr) const {
  auto key = IpKey::parse(addr);
  return key && banned(*key);
}

size_t Bans::active() const {
  std::shared_lock lock(mu_);
  const int64_t t = now();
  size_t n = 0;
  for (const auto& [addr, b] : bans_)
    n += b.until > t;
  return n;
}

nlohmann::json Bans::list() const {
  std::shared_lock lock(mu_);
  nlohmann::json items = nlohmann::json::array();
  const int64_t t = now();
  for (const auto& [addr, b] : bans_) {
    if (b.until <= t) continue;
    items.push_back({{"address", addr.to_string()},
                     {"reason", b.reason},
                     {"since", b.since},
                     {"until", b.until},
                     {"count", b.count}});
  }
  return {{"items", items}};
}

bool Bans::lift(const std::string& addr) {
  auto key = IpKey::parse(addr);
  if (!key) return false;
  std::unique_lock lock(mu_);
  auto it = bans_.find(*key);
  const bool found = it != bans_.end() && it->second.until > now();
  if (it != bans_.end()) bans_.erase(it);
  failures_.erase(*key);
  any_ = !bans_.empty();
  return found;
}

}  // namespace esg::edge
