#pragma once
// Which provider account an incoming INVITE belongs to (the field manual's six steps) and
// whether it came from one of that account's addresses. Pure: the accounts and the instance's
// external addresses go in when the configuration changes; each INVITE is a lookup.

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "accounts/account.hpp"
#include "edge/pattern.hpp"

namespace esg::edge {

// The (user, host) parts of an INVITE that the steps look at. Absent parts are empty.
struct MatchInput {
  std::string_view to_user, to_host;
  std::string_view from_host;
  std::string_view contact_user, contact_host;
  bool has_contact = false;
};

struct MatchResult {
  std::shared_ptr<const accounts::Account> account;  // null when none matched
  std::string step;                                  // "1.1" ... "2.3"
  std::string decision;                              // for the logs and the call diagram
};

class AccountIndex {
 public:
  AccountIndex(std::vector<std::shared_ptr<const accounts::Account>> accounts,
               std::vector<std::string> instance_extaddrs);

  MatchResult match(const MatchInput& in) const;
  // Is `ip` one of the account's addresses: its domain or proxy when they are addresses, what
  // their names resolved to (`resolved`), or one of its extaddrs (exact, mask, CIDR, /reg/).
  bool source_allowed(const accounts::Account& a, std::string_view ip,
                      const std::vector<std::string>& resolved = {}) const;

  std::shared_ptr<const accounts::Account> by_code(std::string_view code) const;
  const std::vector<std::shared_ptr<const accounts::Account>>& accounts() const {
    return accounts_;
  }

 private:
  struct Entry {
    std::shared_ptr<const accounts::Account> account;
    std::vector<Pattern> extaddrs;
  };
  // The first enabled account with registration `reg` that (user, domain) names.
  const Entry* find(bool reg, std::string_view user, std::string_view domain) const;
  bool domain_matches(const Entry& e, std::string_view domain) const;

  std::vector<std::shared_ptr<const accounts::Account>> accounts_;
  std::vector<Entry> entries_;  // ordered by account id
  // Lower-case username (and each of opts.extusernames) -> entries, per reg/no-reg.
  std::unordered_multimap<std::string, size_t> by_user_[2];
  std::vector<std::string> instance_extaddrs_;
  // Entries ordered by code: 4 bytes an account, where a hash map of codes took ~80 (an
  // instance holds tens of thousands of accounts; a lookup is a binary search).
  std::vector<uint32_t> by_code_;
};

}  // namespace esg::edge
