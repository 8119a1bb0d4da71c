#include "edge/matching/matching.hpp"

#include <algorithm>

#include "base/text.hpp"

namespace esg::edge {

namespace {

std::string lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  }
  return out;
}

// Hosts in URIs may carry IPv6 brackets; addresses elsewhere do not.
std::string_view bare(std::string_view host) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    return host.substr(1, host.size() - 2);
  return host;
}

}  // namespace

AccountIndex::AccountIndex(std::vector<std::shared_ptr<const accounts::Account>> accounts,
                           std::vector<std::string> instance_extaddrs)
    : accounts_(std::move(accounts)), instance_extaddrs_(std::move(instance_extaddrs)) {
  // Ordered by id so that the first account found is the same on every instance.
  std::sort(accounts_.begin(), accounts_.end(),
            [](const auto& a, const auto& b) { return a->id < b->id; });
  entries_.reserve(accounts_.size());
  for (const auto& a : accounts_) {
    Entry e{a, {}};
    for (const auto& x : a->extaddrs)
      e.extaddrs.emplace_back(x, true);
    entries_.push_back(std::move(e));
    const size_t i = entries_.size() - 1;
    by_code_.push_back(uint32_t(i));
    auto& index = by_user_[a->reg ? 1 : 0];
    index.emplace(lowered(a->username), i);
    for (const auto& u : a->extusernames) {
      if (!text::iequals(u, a->username)) index.emplace(lowered(u), i);
    }
  }
  // Stable: of two accounts with one code (the store allows none), the later id wins.
  std::stable_sort(by_code_.begin(), by_code_.end(), [this](uint32_t x, uint32_t y) {
    return entries_[x].account->code < entries_[y].account->code;
  });
}

bool AccountIndex::domain_matches(const Entry& e, std::string_view domain) const {
  domain = bare(domain);
  if (domain.empty()) return false;
  if (text::iequals(e.account->domain, domain)) return true;
  for (const auto& x : instance_extaddrs_) {
    if (text::iequals(x, domain)) return true;
  }
  for (const auto& p : e.extaddrs) {
    if (p.matches(domain)) return true;
  }
  return false;
}

const AccountIndex::Entry* AccountIndex::find(bool reg, std::string_view user,
                                              std::string_view domain) const {
  const auto [first, last] = by_user_[reg ? 1 : 0].equal_range(lowered(user));
  const Entry* best = nullptr;
  for (auto it = first; it != last; ++it) {
    const Entry& e = entries_[it->second];
    if (!e.account->enabled || !domain_matches(e, domain)) continue;
    if (!best || e.account->id < best->account->id) best = &e;
  }
  return best;
}

MatchResult AccountIndex::match(const MatchInput& in) const {
  struct Step {
    const char* name;
    bool reg;
    std::string_view user, host;
    bool needs_contact;
  };
  const Step steps[] = {
      {"1.1", true, in.to_user, in.to_host, false},
      {"1.2", true, in.to_user, in.from_host, false},
      {"1.3", true, in.contact_user, in.contact_host, true},
      {"2.1", false, in.contact_user, in.contact_host, true},
      {"2.2", false, {}, in.contact_host, true},
      {"2.3", false, in.to_user, in.from_host, false},
  };
  MatchResult r;
  std::string tried;
  for (const auto& s : steps) {
    if (s.needs_contact && !in.has_contact) continue;
    if (const Entry* e = find(s.reg, s.user, s.host)) {
      r.account = e->account;
      r.step = s.name;
      r.decision = "account " + e->account->code + " matched at step " + s.name + " (user '" +
                   std::string(s.user) + "', domain '" + std::string(s.host) + "')";
      return r;
    }
    tried += std::string(tried.empty() ? "" : ", ") + s.name + " '" + std::string(s.user) + "@" +
             std::string(s.host) + "'";
  }
  r.decision = "no account matched: tried " + tried;
  return r;
}

bool AccountIndex::source_allowed(const accounts::Account& a, std::string_view ip,
                                  const std::vector<std::string>& resolved) const {
  if (text::iequals(a.domain, ip) || text::iequals(a.proxyaddr, ip)) return true;
  for (const auto& r : resolved) {
    if (r == ip) return true;
  }
  // The account's entry: entries are ordered by id.
  auto e = std::lower_bound(entries_.begin(), entries_.end(), a.id,
                            [](const Entry& x, int64_t id) { return x.account->id < id; });
  for (; e != entries_.end() && e->account->id == a.id; ++e) {
    if (e->account.get() != &a) continue;
    for (const auto& p : e->extaddrs) {
      if (p.matches(ip)) return true;
    }
    return false;
  }
  return false;
}

std::shared_ptr<const accounts::Account> AccountIndex::by_code(std::string_view code) const {
  const auto it = std::upper_bound(
      by_code_.begin(), by_code_.end(), code,
      [this](std::string_view c, uint32_t i) { return c < entries_[i].account->code; });
  if (it == by_code_.begin() || entries_[*(it - 1)].account->code != code) return nullptr;
  return entries_[*(it - 1)].account;
}

}  // namespace esg::edge
