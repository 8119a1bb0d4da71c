#pragma once
// Clock readings in milliseconds and the ISO 8601 form the APIs show times in.

#include <chrono>
#include <cstdint>
#include <ctime>
#include <string>

namespace esg::timeutil {

inline int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// "2026-12-02T20:26:29Z" (UTC) for unix milliseconds.
inline std::string iso_time(int64_t ms) {
  const std::time_t t = std::time_t(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace esg::timeutil
