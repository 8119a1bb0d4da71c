#pragma once
// Routing rules: which target a call goes to. Rules match on direction, source (a mask over the
// provider or PBX code the call came from), called and caller numbers (RE2, whole value); they
// are tried by priority, rules of equal priority in a random order each time so that calls
// spread over the accounts behind them. The B2BUA walks the candidates, skipping targets that
// are unavailable and failing over on 408/480/5xx before answer.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "accounts/account.hpp"
#include "base/result.hpp"

namespace esg::edge {

struct RouteRule {
  int64_t id = 0;
  int priority = 100;
  std::string direction = "in";  // in | out
  std::string source = "*";      // mask over the provider or PBX code the call comes from
  std::string called;            // RE2 over the called number (empty = any)
  std::string caller;            // RE2 over the caller number (empty = any)
  std::string action;            // external | pbx | telegram | reject
  std::string target;            // provider, PBX or line code
  std::string number;            // called number to use (optional)
  int status = 0;                // for reject
  bool enabled = true;
  std::string comment;
};

Result<RouteRule, accounts::FieldError> route_rule_from_json(const nlohmann::json& j);
nlohmann::json to_json(const RouteRule& r);

class Router {
 public:
  explicit Router(std::vector<RouteRule> rules);
  ~Router();
  Router(Router&&) noexcept;
  Router& operator=(Router&&) noexcept;

  // The rules that match, in the order to try them.
  std::vector<const RouteRule*> candidates(bool out, const std::string& source,
                                           const std::string& called,
                                           const std::string& caller) const;
  size_t size() const;

 private:
  struct Compiled;
  std::vector<Compiled> rules_;
};

}  // namespace esg::edge
