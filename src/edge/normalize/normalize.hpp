#pragma once
// Number normalization (the field manual's "number substitution"): rules bring an incoming
// call's numbers into the internal number plan and an outgoing call's into the external one.
// Rules are bound to one account, to a mask over account codes, or to all (`*`); they run in
// priority order, each on what the previous ones left, and every step is recorded so that the
// substitution test and the call diagram can show it.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "accounts/account.hpp"
#include "base/result.hpp"

namespace re2 {
class RE2;
}

namespace esg::edge {

struct NormRule {
  int64_t id = 0;
  int priority = 100;
  std::string direction = "in";  // in | out
  int64_t account = 0;           // bound to this account id, or
  std::string providercode;      // a mask over account codes ("*" = all)
  std::string field;             // from_user | to_user | ruri_user | from_display
  std::string match;             // RE2
  std::string replace;           // $1..$9, ${account.username}, ${account.code}, ${account.domain}
  bool enabled = true;
  std::string comment;
};

Result<NormRule, accounts::FieldError> norm_rule_from_json(const nlohmann::json& j);
nlohmann::json to_json(const NormRule& r);

struct NormFields {
  std::string from_user, from_display, from_domain;
  std::string to_user, to_domain;
  std::string ruri_user;
};
nlohmann::json to_json(const NormFields& f);

struct NormStep {
  int64_t rule = 0;
  std::string field, before, after;
};

struct NormResult {
  NormFields fields;
  std::vector<NormStep> steps;        // rules that changed something, in order
  std::vector<std::string> defaults;  // what the built-in behaviour did
};

class Normalizer {
 public:
  explicit Normalizer(std::vector<NormRule> rules);
  ~Normalizer();
  Normalizer(Normalizer&&) noexcept;
  Normalizer& operator=(Normalizer&&) noexcept;

  // Incoming (`out` false): From user kept, To user emptied unless a rule set it, both domains
  // become `system_domain`. Outgoing: users kept, both domains become the account's domain.
  NormResult apply(bool out, const accounts::Account& account, NormFields in,
                   const std::string& system_domain) const;

 private:
  struct Compiled;
  std::vector<Compiled> rules_;
};

}  // namespace esg::edge
