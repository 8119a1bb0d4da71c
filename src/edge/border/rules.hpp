#pragma once
// Border rules (issue 6): the operator's allow/deny/drop list, first matching rule by priority
// decides, the instance's default action when none does. Rules whose only filter is `address`
// are compiled into an AddressIndex and answered on the socket before the packet is parsed;
// the others run on parsed fields. Addresses of configured providers and PBX connections are
// protected: a rule that does not name them explicitly does not drop them (a whitelist that
// silently eats the provider's answers to our REGISTERs is a classic outage).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "accounts/account.hpp"
#include "base/result.hpp"
#include "edge/border/address.hpp"
#include "edge/pattern.hpp"

namespace re2 {
class RE2;
}

namespace esg::edge {

enum class BorderAction : uint8_t { Allow, Deny, Drop };
std::string_view border_action_name(BorderAction a);
std::optional<BorderAction> border_action(std::string_view name);

struct BorderRule {
  int64_t id = 0;
  int priority = 100;  // lower first; equal priorities by id
  bool enabled = true;
  BorderAction action = BorderAction::Drop;
  // Filters: empty = any. `address`: IP, CIDR, mask (`44.55.6?.*`) or /reg/<RE2>; the others a
  // mask or /reg/<RE2> over the field.
  std::string address, port, proto, method, ruri_user, from_user, to_user, user_agent;
  std::string comment;
  bool address_only() const;
};

Result<BorderRule, accounts::FieldError> border_rule_from_json(const nlohmann::json& j);
nlohmann::json to_json(const BorderRule& r);

// Which of a set of address patterns match an address, by the lowest value among them, without
// scanning them: exact addresses in one hash table, CIDRs in one per prefix length, masks and
// regular expressions in one RE2::Set (a single linear pass over the address text).
class AddressIndex {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;
  AddressIndex();
  ~AddressIndex();
  AddressIndex(AddressIndex&&) noexcept;
  AddressIndex& operator=(AddressIndex&&) noexcept;

  // `pattern` as validated by border_rule_from_json; the lowest `value` wins.
  void add(const std::string& pattern, uint32_t value);
  void compile();  // after the last add
  uint32_t first(const IpKey& addr) const;
  bool empty() const;

 private:
  // An address as a 128-bit number (big-endian), for ordering.
  struct U128 {
    uint64_t hi = 0, lo = 0;
    auto operator<=>(const U128&) const = default;
  };
  static U128 number(const IpKey& k);
  struct Range {
    U128 first, last;
    uint32_t value;
  };
  std::unordered_map<IpKey, uint32_t, IpKeyHash> exact_;
  std::vector<Range> ranges_;  // CIDRs, as added
  // CIDRs compiled into disjoint segments: segment i runs from starts_[i] to the next start,
  // and its value is the lowest of the CIDRs that cover it (kNone: none). One binary search.
  std::vector<U128> starts_;
  std::vector<uint32_t> values_;
  std::vector<std::pair<std::string, uint32_t>> masks_;  // RE2 syntax, value
  struct Set;
  std::unique_ptr<Set> set_;
};

// What a parsed packet shows the rules.
struct PacketFields {
  std::string_view address;  // text form of the source address
  uint16_t port = 0;         // source port
  std::string_view proto;    // udp | tcp | tls
  std::string_view method;   // empty for responses
  std::string_view ruri_user, from_user, to_user, user_agent;
};

struct BorderVerdict {
  BorderAction action = BorderAction::Allow;
  int64_t rule = 0;         // id of the deciding rule; 0: the default action
  bool protected_ = false;  // a provider's/PBX's address passed although a rule would drop it
};

// One immutable compilation of the rules; the border swaps in a new one on every change.
class BorderRules {
 public:
  // A provider account or PBX connection address (`who` names it in warnings).
  struct Protected {
    IpKey addr;
    std::string who;
  };
  BorderRules();
  BorderRules(std::vector<BorderRule> rules, BorderAction default_action,
              std::vector<Protected> protect = {});
  ~BorderRules();

  enum class Step : uint8_t { Drop, Pass, Parse };
  struct AtSocket {
    Step step = Step::Pass;
    bool protected_ = false;  // a provider's/PBX's address passed although a rule would drop it
  };
  // The address-only part, before parsing: Parse when a rule on parsed fields comes first, or
  // the decision is `deny` (answering 403 needs the request).
  AtSocket at_socket(const IpKey& addr) const;
  BorderVerdict decide(const IpKey& addr, const PacketFields& f) const;
  // Matched by the address filter of an enabled allow rule: never banned.
  bool allowed_by_address(const IpKey& addr) const;
  bool is_protected(const IpKey& addr) const { return protected_.count(addr) > 0; }
  // Rules that drop the packets of protected addresses, and drop rules they pass despite.
  const std::vector<std::string>& warnings() const { return warnings_; }
  BorderAction default_action() const { return default_; }
  size_t size() const;
  size_t address_rules() const { return address_rules_; }
  // Whether the parsed fields can change the outcome: rules on them, or a deny to answer.
  bool needs_fields() const { return needs_fields_; }

 private:
  struct Compiled;
  BorderVerdict verdict_of(uint32_t order, const IpKey& addr) const;
  std::vector<Compiled> rules_;        // enabled rules by priority, then id
  std::vector<uint32_t> field_rules_;  // positions in rules_ of the rules on parsed fields
  uint32_t first_field_ = AddressIndex::kNone;
  AddressIndex address_only_;  // address-only rules -> position
  AddressIndex allow_addresses_;
  BorderAction default_ = BorderAction::Allow;
  std::unordered_map<IpKey, std::string, IpKeyHash> protected_;
  std::vector<std::string> warnings_;
  size_t address_rules_ = 0;
  bool needs_fields_ = false;
};

}  // namespace esg::edge
