#include "edge/routing/routing.hpp"

#include <re2/re2.h>

#include <algorithm>

#include "base/random.hpp"
#include "edge/pattern.hpp"

namespace esg::edge {

using nlohmann::json;

namespace {

bool compile(const std::string& expr, std::unique_ptr<RE2>& out, std::string* why) {
  if (expr.empty()) return true;
  RE2::Options o;
  o.set_log_errors(false);
  out = std::make_unique<RE2>(expr, o);
  if (!out->ok()) {
    if (why) *why = "bad regular expression: " + out->error();
    return false;
  }
  return true;
}

}  // namespace

Result<RouteRule, accounts::FieldError> route_rule_from_json(const json& j) {
  using E = accounts::FieldError;
  auto bad = [](std::string field, std::string msg) {
    return unexpected(E{std::move(field), std::move(msg)});
  };
  static const char* kKnown[] = {"id",     "priority", "direction", "source", "called",  "caller",
                                 "action", "target",   "number",    "status", "enabled", "comment"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (std::find_if(std::begin(kKnown), std::end(kKnown),
                     [&](const char* k) { return it.key() == k; }) == std::end(kKnown)) {
      return bad(it.key(), "unknown field");
    }
  }
  RouteRule r;
  for (const char* k :
       {"direction", "source", "called", "caller", "action", "target", "number", "comment"}) {
    if (j.contains(k) && !j[k].is_string()) return bad(k, "must be a string");
  }
  for (const char* k : {"id", "priority", "status"}) {
    if (j.contains(k) && !j[k].is_number_integer()) return bad(k, "must be an integer");
  }
  if (j.contains("enabled") && !j["enabled"].is_boolean())
    return bad("enabled", "must be true or false");
  r.id = j.value("id", int64_t(0));
  r.priority = j.value("priority", 100);
  r.direction = j.value("direction", std::string("in"));
  r.source = j.value("source", std::string("*"));
  r.called = j.value("called", std::string());
  r.caller = j.value("caller", std::string());
  r.action = j.value("action", std::string());
  r.target = j.value("target", std::string());
  r.number = j.value("number", std::string());
  r.status = j.value("status", 0);
  r.enabled = j.value("enabled", true);
  r.comment = j.value("comment", std::string());
  if (r.direction != "in" && r.direction != "out") return bad("direction", "must be in or out");
  std::string why;
  if (r.source.empty()) r.source.assign(1, '*');  // (GCC 12 -Wrestrict misfires on = "*")
  if (!valid_pattern(r.source, &why)) return bad("source", why);
  std::unique_ptr<RE2> re;
  if (!compile(r.called, re, &why)) return bad("called", why);
  if (!compile(r.caller, re, &why)) return bad("caller", why);
  if (r.action != "external" && r.action != "pbx" && r.action != "telegram" && r.action != "reject")
    return bad("action", "must be external, pbx, telegram or reject");
  if (r.action == "reject") {
    if (r.status < 400 || r.status > 699) return bad("status", "must be a SIP status 400-699");
  } else if (r.target.empty()) {
    return bad("target", "is required for action " + r.action + " (a code)");
  }
  if (!r.number.empty() && r.number.find_first_of(" \t\r\n<>@;:\"") != std::string::npos)
    return bad("number", "must be a plain number or user part");
  return r;
}

json to_json(const RouteRule& r) {
  json j = {{"id", r.id},           {"priority", r.priority}, {"direction", r.direction},
            {"source", r.source},   {"called", r.called},     {"caller", r.caller},
            {"action", r.action},   {"target", r.target},     {"number", r.number},
            {"enabled", r.enabled}, {"comment", r.comment}};
  if (r.action == "reject") j["status"] = r.status;
  return j;
}

struct Router::Compiled {
  RouteRule rule;
  Pattern source;
  std::unique_ptr<RE2> called, caller;
};

Router::Router(std::vector<RouteRule> rules) {
  std::sort(rules.begin(), rules.end(), [](const RouteRule& a, const RouteRule& b) {
    return a.priority != b.priority ? a.priority < b.priority : a.id < b.id;
  });
  for (auto& r : rules) {
    if (!r.enabled) continue;
    Compiled c;
    c.source = Pattern(r.source);
    if (!compile(r.called, c.called, nullptr) || !compile(r.caller, c.caller, nullptr)) continue;
    c.rule = std::move(r);
    rules_.push_back(std::move(c));
  }
}

Router::~Router() = default;
Router::Router(Router&&) noexcept = default;
Router& Router::operator=(Router&&) noexcept = default;
size_t Router::size() const {
  return rules_.size();
}

std::vector<const RouteRule*> Router::candidates(bool out, const std::string& source,
                                                 const std::string& called,
                                                 const std::string& caller) const {
  std::vector<const RouteRule*> found;
  const char* direction = out ? "out" : "in";
  for (const auto& c : rules_) {
    if (c.rule.direction != direction) continue;
    if (c.rule.source != "*" && !c.source.matches(source)) continue;
    if (c.called && !RE2::FullMatch(called, *c.called)) continue;
    if (c.caller && !RE2::FullMatch(caller, *c.caller)) continue;
    found.push_back(&c.rule);
  }
  // Equal priorities in a random order (Fisher-Yates within each run of equal priority).
  for (size_t begin = 0; begin < found.size();) {
    size_t end = begin + 1;
    while (end < found.size() && found[end]->priority == found[begin]->priority)
      ++end;
    for (size_t i = end - 1; i > begin; --i) {
      const size_t j = begin + size_t(random::between(0, i - begin));
      std::swap(found[i], found[j]);
    }
    begin = end;
  }
  return found;
}

}  // namespace esg::edge
