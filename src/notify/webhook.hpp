#pragma once
// A CRM webhook (issue 23): where call events go, which ones, the secret that signs them, and
// how long and how often a delivery is retried. Parsed from the config file and from REST
// bodies alike; errors name the field.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace esg::notify {

inline const std::vector<std::string> kEvents = {"call.ringing", "call.answered", "call.ended"};

struct FieldError {
  std::string field;
  std::string message;
};

// http://host[:port][/path]: the parts a request needs.
struct Url {
  std::string host;
  std::string port = "80";
  std::string target = "/";
};
Result<Url, std::string> parse_url(const std::string& url);

struct Webhook {
  int64_t id = 0;
  std::string url;
  std::vector<std::string> events;  // empty: all of kEvents
  std::string secret;               // empty: unsigned
  bool enabled = true;
  int retry_min_ms = 1000;  // the first retry's pause; each next one doubles
  int retry_max_ms = 60000;
  int retry_for_s = 600;  // an event not delivered by then is dropped (counted)
  int timeout_ms = 5000;  // one attempt: connect, send, answer

  bool wants(std::string_view event) const;
};

// `j` as received (REST, config); `id` is taken when present.
Result<Webhook, FieldError> webhook_from_json(const nlohmann::json& j);
nlohmann::json to_json(const Webhook& w);  // with the secret (stored form)

// The pause before retry number `attempt` (1 = the first retry): retry_min_ms doubled each
// time, at most retry_max_ms.
std::chrono::milliseconds backoff(const Webhook& w, int attempt);

}  // namespace esg::notify
