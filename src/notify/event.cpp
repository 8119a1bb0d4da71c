#include "notify/event.hpp"

#include <ctime>

#include "base/json_text.hpp"

namespace esg::notify {

std::string iso_ms(int64_t unix_ms) {
  const std::time_t t = std::time_t(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", int(unix_ms % 1000));
  return buf;
}

std::string event_body(std::string_view event, const std::string& id, int64_t unix_ms,
                       int64_t srvidx, const nlohmann::json& call) {
  nlohmann::json j = {{"id", id},
                      {"event", std::string(event)},
                      {"timestamp", iso_ms(unix_ms)},
                      {"instance", srvidx},
                      {"call", call}};
  // Invalid UTF-8 from a peer's headers is replaced, never a reason to lose the event.
  return json_text(j);
}

}  // namespace esg::notify
