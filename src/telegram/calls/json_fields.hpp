#pragma once
// Fields of TDLib's JSON (callStateReady and its servers), read by type, never thrown on: TDLib's
// JSON is the network's word, and a field of another type must not throw on a call's path.

#include <string>

#include <nlohmann/json.hpp>

namespace esg::telegram::calls::fields {

inline const nlohmann::json& member(const nlohmann::json& j, const char* key) {
  static const nlohmann::json kNone;
  if (!j.is_object()) return kNone;
  auto it = j.find(key);
  return it == j.end() ? kNone : *it;
}
inline std::string text(const nlohmann::json& j, const char* key) {
  const nlohmann::json& v = member(j, key);
  return v.is_string() ? v.get<std::string>() : std::string();
}
inline bool flag(const nlohmann::json& j, const char* key, bool otherwise) {
  const nlohmann::json& v = member(j, key);
  return v.is_boolean() ? v.get<bool>() : otherwise;
}

}  // namespace esg::telegram::calls::fields
