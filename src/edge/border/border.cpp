#include "edge/border/border.hpp"

#include "log/log.hpp"

#include <algorithm>
#include <iostream>

namespace esg::edge {

Border::Border(Options options)
    : options_(std::move(options)),
      bans_(options_.bans),
      pike_(options_.pike),
      current_(std::make_shared<BorderRules>()),
      slots_(std::max<size_t>(options_.workers, 1)) {
  bans_.set_exempt([this](const IpKey& addr) {
    std::function<bool(const IpKey&)> extra;
    std::shared_ptr<const BorderRules> r;
    {
      std::lock_guard lock(mu_);
      extra = extra_exempt_;
      r = current_;
    }
    return trusted(*r, addr) || (extra && extra(addr));
  });
}

void Border::set_rules(std::shared_ptr<const BorderRules> rules) {
  std::vector<std::string> fresh;
  {
    std::lock_guard lock(mu_);
    for (const auto& w : rules->warnings()) {
      const auto& old = current_->warnings();
      if (std::find(old.begin(), old.end(), w) == old.end()) fresh.push_back(w);
    }
    current_ = std::move(rules);
    version_.fetch_add(1, std::memory_order_release);
  }
  for (const auto& w : fresh)
    log::get("edge").warn("border: {}", w);
}

std::shared_ptr<const BorderRules> Border::rules() const {
  std::lock_guard lock(mu_);
  return current_;
}

void Border::set_extra_exempt(std::function<bool(const IpKey&)> exempt) {
  std::lock_guard lock(mu_);
  extra_exempt_ = std::move(exempt);
}

template <class F>
auto Border::with_rules(int worker, F&& f) {
  if (worker >= 0 && size_t(worker) < slots_.size()) {
    Slot& slot = slots_[size_t(worker)];
    if (slot.version != version_.load(std::memory_order_acquire)) {
      std::lock_guard lock(mu_);
      slot.rules = current_;
      slot.version = version_.load(std::memory_order_relaxed);
    }
    return f(*slot.rules);
  }
  const auto r = rules();
  return f(*r);
}

bool Border::drop_at_socket(const IpKey& addr, std::string_view bytes, int worker) {
  return with_rules(worker, [&](const BorderRules& r) {
    const auto s = r.at_socket(addr);
    if (s.step == BorderRules::Step::Drop) {
      ++counters_.dropped_by_rule;
      return true;
    }
    if (s.protected_) ++counters_.protected_passed;
    if (bans_.banned(addr) && !trusted(r, addr)) {
      ++counters_.dropped_banned;
      return true;
    }
    // Requests only: answers to our own requests and keep-alives are not a flood.
    const bool request =
        !bytes.empty() && bytes[0] != '\r' && bytes[0] != '\n' && bytes.substr(0, 4) != "SIP/";
    if (!request || !pike_.enabled() || trusted(r, addr)) return false;
    const uint64_t n = pike_.hit(addr);
    if (n == 0) return false;
    const std::string why = "flood: more than " + std::to_string(options_.pike.requests) +
                            " requests in " + std::to_string(options_.pike.window) + " s";
    if (bans_.ban(addr, why, options_.pike_duration, n)) ++counters_.flood_bans;
    ++counters_.dropped_banned;
    return true;
  });
}

BorderVerdict Border::after_parse(const IpKey& addr, const PacketFields& fields, int worker) {
  return with_rules(worker, [&](const BorderRules& r) {
    BorderVerdict v = r.decide(addr, fields);
    if (v.protected_) ++counters_.protected_passed;
    if (v.action == BorderAction::Deny) ++counters_.denied;
    if (v.action == BorderAction::Drop) ++counters_.dropped_by_rule;
    return v;
  });
}

void Border::count_failure(const std::string& addr, const std::string& why) {
  ++counters_.failures;
  bans_.count(addr, why);
}

nlohmann::json Border::status() const {
  const auto r = rules();
  return {{"default_action", std::string(border_action_name(r->default_action()))},
          {"rules", r->size()},
          {"address_rules", r->address_rules()},
          {"warnings", r->warnings()},
          {"bans", bans_.active()},
          {"pike",
           {{"requests", options_.pike.requests},
            {"window", options_.pike.window},
            {"duration", options_.pike_duration}}},
          {"counters",
           {{"dropped_by_rule", counters_.dropped_by_rule.load()},
            {"dropped_banned", counters_.dropped_banned.load()},
            {"denied", counters_.denied.load()},
            {"bans", bans_.total_bans()},
            {"flood_bans", counters_.flood_bans.load()},
            {"failures", counters_.failures.load()},
            {"protected_passed", counters_.protected_passed.load()}}}};
}

}  // namespace esg::edge
