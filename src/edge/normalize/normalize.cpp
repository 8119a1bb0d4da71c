#include "edge/normalize/normalize.hpp"

#include <re2/re2.h>

#include <algorithm>

#include "edge/pattern.hpp"

namespace esg::edge {

using nlohmann::json;

namespace {

std::string* field_of(NormFields& f, const std::string& name) {
  if (name == "from_user") return &f.from_user;
  if (name == "to_user") return &f.to_user;
  if (name == "ruri_user") return &f.ruri_user;
  if (name == "from_display") return &f.from_display;
  return nullptr;
}

// The rule's replacement in RE2's syntax: $N becomes \N, ${account.x} the account's value, and
// a literal backslash is escaped.
std::string rewrite_for(const std::string& replace, const accounts::Account& a) {
  std::string out;
  for (size_t i = 0; i < replace.size(); ++i) {
    const char c = replace[i];
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '$' && i + 1 < replace.size() && replace[i + 1] >= '0' &&
               replace[i + 1] <= '9') {
      out += '\\';
      out += replace[++i];
    } else if (c == '$' && i + 1 < replace.size() && replace[i + 1] == '{') {
      const size_t end = replace.find('}', i);
      const std::string name = replace.substr(i + 2, end - i - 2);
      std::string value;
      if (name == "account.username") value = a.username;
      if (name == "account.code") value = a.code;
      if (name == "account.domain") value = a.domain;
      for (char v : value) {
        if (v == '\\') out += '\\';
        out += v;
      }
      i = end;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

Result<NormRule, accounts::FieldError> norm_rule_from_json(const json& j) {
  using E = accounts::FieldError;
  auto bad = [](std::string field, std::string msg) {
    return unexpected(E{std::move(field), std::move(msg)});
  };
  static const char* kKnown[] = {"id",    "priority", "direction", "account", "providercode",
                                 "field", "match",    "replace",   "enabled", "comment"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (std::find_if(std::begin(kKnown), std::end(kKnown),
                     [&](const char* k) { return it.key() == k; }) == std::end(kKnown)) {
      return bad(it.key(), "unknown field");
    }
  }
  NormRule r;
  auto str = [&](const char* k, std::string& out) -> bool {
    if (!j.contains(k)) return true;
    if (!j[k].is_string()) return false;
    out = j[k].get<std::string>();
    return true;
  };
  if (j.contains("id") && !j["id"].is_number_integer()) return bad("id", "must be an integer");
  if (j.contains("id")) r.id = j["id"].get<int64_t>();
  if (j.contains("priority")) {
    if (!j["priority"].is_number_integer()) return bad("priority", "must be an integer");
    r.priority = j["priority"].get<int>();
  }
  if (!str("direction", r.direction)) return bad("direction", "must be a string");
  if (r.direction != "in" && r.direction != "out") return bad("direction", "must be in or out");
  if (j.contains("account")) {
    if (!j["account"].is_number_integer() || j["account"].get<int64_t>() < 0)
      return bad("account", "must be an account id");
    r.account = j["account"].get<int64_t>();
  }
  if (!str("providercode", r.providercode)) return bad("providercode", "must be a string");
  if (r.account == 0 && r.providercode.empty())
    return bad("providercode", "give an account id or a providercode mask (* for all)");
  if (r.account != 0 && !r.providercode.empty())
    return bad("providercode", "give either account or providercode, not both");
  std::string why;
  if (!r.providercode.empty() && !valid_pattern(r.providercode, &why))
    return bad("providercode", why);
  if (!str("field", r.field)) return bad("field", "must be a string");
  NormFields probe;
  if (!field_of(probe, r.field))
    return bad("field", "must be from_user, to_user, ruri_user or from_display");
  if (!str("match", r.match)) return bad("match", "must be a string");
  if (r.match.empty()) return bad("match", "is required (an RE2 expression)");
  RE2::Options o;
  o.set_log_errors(false);
  RE2 re(r.match, o);
  if (!re.ok()) return bad("match", "bad regular expression: " + re.error());
  if (!str("replace", r.replace)) return bad("replace", "must be a string");
  for (size_t i = 0; i < r.replace.size(); ++i) {
    if (r.replace[i] != '$' || i + 1 >= r.replace.size()) continue;
    const char n = r.replace[i + 1];
    if (n >= '0' && n <= '9') {
      if (n - '0' > re.NumberOfCapturingGroups())
        return bad("replace", std::string("refers to group $") + n + " that match does not have");
    } else if (n == '{') {
      const size_t end = r.replace.find('}', i);
      const std::string name = end == std::string::npos ? "" : r.replace.substr(i + 2, end - i - 2);
      if (name != "account.username" && name != "account.code" && name != "account.domain")
        return bad("replace",
                   "unknown variable; use ${account.username}, ${account.code} or "
                   "${account.domain}");
    }
  }
  if (j.contains("enabled")) {
    if (!j["enabled"].is_boolean()) return bad("enabled", "must be true or false");
    r.enabled = j["enabled"].get<bool>();
  }
  if (!str("comment", r.comment)) return bad("comment", "must be a string");
  return r;
}

json to_json(const NormRule& r) {
  json j = {{"id", r.id},           {"priority", r.priority}, {"direction", r.direction},
            {"field", r.field},     {"match", r.match},       {"replace", r.replace},
            {"enabled", r.enabled}, {"comment", r.comment}};
  if (r.account)
    j["account"] = r.account;
  else
    j["providercode"] = r.providercode;
  return j;
}

json to_json(const NormFields& f) {
  return {{"from_user", f.from_user},     {"from_display", f.from_display},
          {"from_domain", f.from_domain}, {"to_user", f.to_user},
          {"to_domain", f.to_domain},     {"ruri_user", f.ruri_user}};
}

struct Normalizer::Compiled {
  NormRule rule;
  Pattern providercode;
  std::unique_ptr<RE2> re;
};

Normalizer::Normalizer(std::vector<NormRule> rules) {
  std::stable_sort(rules.begin(), rules.end(), [](const NormRule& a, const NormRule& b) {
    return a.priority != b.priority ? a.priority < b.priority : a.id < b.id;
  });
  for (auto& r : rules) {
    if (!r.enabled) continue;
    Compiled c;
    c.providercode = Pattern(r.providercode);
    RE2::Options o;
    o.set_log_errors(false);
    c.re = std::make_unique<RE2>(r.match, o);
    if (!c.re->ok()) continue;
    c.rule = std::move(r);
    rules_.push_back(std::move(c));
  }
}

Normalizer::~Normalizer() = default;
Normalizer::Normalizer(Normalizer&&) noexcept = default;
Normalizer& Normalizer::operator=(Normalizer&&) noexcept = default;

NormResult Normalizer::apply(bool out, const accounts::Account& account, NormFields in,
                             const std::string& system_domain) const {
  NormResult r;
  r.fields = std::move(in);
  const std::string direction = out ? "out" : "in";
  bool to_user_set = false;
  for (const auto& c : rules_) {
    if (c.rule.direction != direction) continue;
    const bool bound = c.rule.account
                           ? c.rule.account == account.id
                           : (c.rule.providercode == "*" || c.providercode.matches(account.code));
    if (!bound) continue;
    std::string* value = field_of(r.fields, c.rule.field);
    if (!value || !RE2::PartialMatch(*value, *c.re)) continue;
    std::string after = *value;
    RE2::Replace(&after, *c.re, rewrite_for(c.rule.replace, account));
    if (c.rule.field == "to_user") to_user_set = true;
    r.steps.push_back({c.rule.id, c.rule.field, *value, after});
    *value = std::move(after);
  }
  const std::string& domain = out ? account.domain : system_domain;
  r.fields.from_domain = domain;
  r.fields.to_domain = domain;
  r.defaults.push_back("From and To domains := " + domain);
  if (!out && !to_user_set) {
    r.fields.to_user.clear();
    r.defaults.push_back("To user := empty (no rule set it)");
  }
  return r;
}

}  // namespace esg::edge
