#include "notify/webhook.hpp"

#include <algorithm>
#include <set>

namespace esg::notify {

using nlohmann::json;

Result<Url, std::string> parse_url(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind("https://", 0) == 0) {
    return unexpected(
        std::string("https:// is not supported: use http:// (a TLS proxy on the "
                    "CRM side, or a loopback one)"));
  }
  if (url.rfind(scheme, 0) != 0) return unexpected(std::string("must start with http://"));
  if (url.size() > 2048) return unexpected(std::string("is longer than 2048 characters"));
  for (char ch : url) {
    if (static_cast<unsigned char>(ch) <= ' ' || ch == 0x7f)
      return unexpected(std::string("must not contain spaces or control characters"));
  }
  Url u;
  std::string rest = url.substr(scheme.size());
  const size_t slash = rest.find_first_of("/?");
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) {
    u.target = rest.substr(slash);
    if (u.target[0] == '?') u.target = "/" + u.target;
  }
  if (authority.find('@') != std::string::npos)
    return unexpected(std::string("must not carry credentials (use secret)"));
  if (!authority.empty() && authority[0] == '[') {  // [v6]:port
    const size_t close = authority.find(']');
    if (close == std::string::npos) return unexpected(std::string("has an unclosed [ in its host"));
    u.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return unexpected(std::string("has junk after its host"));
      u.port = authority.substr(close + 2);
    }
  } else {
    const size_t colon = authority.rfind(':');
    u.host = authority.substr(0, colon);
    if (colon != std::string::npos) u.port = authority.substr(colon + 1);
  }
  if (u.host.empty()) return unexpected(std::string("has no host"));
  if (u.port.empty() || u.port.size() > 5 ||
      u.port.find_first_not_of("0123456789") != std::string::npos || std::stoi(u.port) < 1 ||
      std::stoi(u.port) > 65535) {
    return unexpected(std::string("has a port that is not 1-65535"));
  }
  return u;
}

bool Webhook::wants(std::string_view event) const {
  if (!enabled) return false;
  if (events.empty()) return true;
  return std::find(events.begin(), events.end(), event) != events.end();
}

namespace {

Result<void, FieldError> read_int(const json& j, const char* key, int& out, int min, int max) {
  auto it = j.find(key);
  if (it == j.end()) return {};
  if (!it->is_number_integer()) return unexpected(FieldError{key, "must be an integer"});
  const long long v = it->get<long long>();
  if (v < min || v > max) {
    return unexpected(
        FieldError{key, "must be between " + std::to_string(min) + " and " + std::to_string(max)});
  }
  out = int(v);
  return {};
}

}  // namespace

Result<Webhook, FieldError> webhook_from_json(const json& j) {
  if (!j.is_object()) return unexpected(FieldError{"", "a webhook must be an object"});
  static const std::set<std::string> kKnown = {
      "id",           "url",          "events",      "secret",     "enabled",
      "retry_min_ms", "retry_max_ms", "retry_for_s", "timeout_ms", "comment"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!kKnown.count(it.key())) return unexpected(FieldError{it.key(), "unknown field"});
  }
  Webhook w;
  if (auto it = j.find("id"); it != j.end() && it->is_number_integer()) w.id = it->get<int64_t>();
  auto url = j.find("url");
  if (url == j.end() || !url->is_string() || url->get<std::string>().empty())
    return unexpected(FieldError{"url", "is required (http://host:port/path)"});
  w.url = url->get<std::string>();
  if (auto u = parse_url(w.url); !u) return unexpected(FieldError{"url", u.error()});
  if (auto it = j.find("events"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return unexpected(FieldError{"events", "must be an array of event names"});
    for (size_t i = 0; i < it->size(); ++i) {
      const json& e = (*it)[i];
      const std::string field = "events[" + std::to_string(i) + "]";
      if (!e.is_string()) return unexpected(FieldError{field, "must be a string"});
      const std::string name = e.get<std::string>();
      if (std::find(kEvents.begin(), kEvents.end(), name) == kEvents.end()) {
        return unexpected(FieldError{field, "must be call.ringing, call.answered or call.ended"});
      }
      if (std::find(w.events.begin(), w.events.end(), name) == w.events.end())
        w.events.push_back(name);
    }
  }
  if (auto it = j.find("secret"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) return unexpected(FieldError{"secret", "must be a string"});
    w.secret = it->get<std::string>();
    if (w.secret.size() > 1024)
      return unexpected(FieldError{"secret", "is longer than 1024 characters"});
  }
  if (auto it = j.find("enabled"); it != j.end()) {
    if (!it->is_boolean()) return unexpected(FieldError{"enabled", "must be true or false"});
    w.enabled = it->get<bool>();
  }
  if (auto r = read_int(j, "retry_min_ms", w.retry_min_ms, 10, 3600000); !r)
    return unexpected(r.error());
  if (auto r = read_int(j, "retry_max_ms", w.retry_max_ms, 10, 3600000); !r)
    return unexpected(r.error());
  if (auto r = read_int(j, "retry_for_s", w.retry_for_s, 1, 86400); !r)
    return unexpected(r.error());
  if (auto r = read_int(j, "timeout_ms", w.timeout_ms, 100, 120000); !r)
    return unexpected(r.error());
  if (w.retry_max_ms < w.retry_min_ms)
    return unexpected(FieldError{"retry_max_ms", "must not be less than retry_min_ms"});
  return w;
}

json to_json(const Webhook& w) {
  json j = {{"url", w.url},
            {"events", w.events},
            {"secret", w.secret},
            {"enabled", w.enabled},
            {"retry_min_ms", w.retry_min_ms},
            {"retry_max_ms", w.retry_max_ms},
            {"retry_for_s", w.retry_for_s},
            {"timeout_ms", w.timeout_ms}};
  if (w.id) j["id"] = w.id;
  return j;
}

std::chrono::milliseconds backoff(const Webhook& w, int attempt) {
  int64_t ms = w.retry_min_ms;
  for (int i = 1; i < attempt && ms < w.retry_max_ms; ++i)
    ms *= 2;
  return std::chrono::milliseconds(std::min<int64_t>(ms, w.retry_max_ms));
}

}  // namespace esg::notify
