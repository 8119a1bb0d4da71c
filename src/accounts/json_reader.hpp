#pragma once
// Reading provisioning JSON field by field: each error names the field and says what is wrong,
// the first error wins, and the fields read are remembered so that unknown ones are refused.
// Shared by provider accounts and PBX connections.

#include <arpa/inet.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "accounts/account.hpp"

namespace esg::accounts::detail {

using nlohmann::json;

struct Reader {
  const json& j;
  std::set<std::string> seen;
  std::optional<FieldError> error;

  const json* get(const std::string& key) {
    seen.insert(key);
    auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  }
  bool fail(std::string field, std::string message) {
    if (!error) error = FieldError{std::move(field), std::move(message)};
    return false;
  }
  void str(const std::string& key, std::string& out) {
    if (const json* v = get(key)) {
      if (!v->is_string()) {
        fail(key, "must be a string");
        return;
      }
      out = v->get<std::string>();
    }
  }
  void boolean(const std::string& key, bool& out) {
    if (const json* v = get(key)) {
      if (!v->is_boolean()) {
        fail(key, "must be true or false");
        return;
      }
      out = v->get<bool>();
    }
  }
  template <typename T>
  void integer(const std::string& key, T& out, int64_t min, int64_t max) {
    if (const json* v = get(key)) {
      if (!v->is_number_integer()) {
        fail(key, "must be an integer");
        return;
      }
      const int64_t n = v->get<int64_t>();
      if (n < min || n > max) {
        fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
        return;
      }
      out = static_cast<T>(n);
    }
  }
  void one_of(const std::string& key, std::string& out,
              std::initializer_list<const char*> allowed) {
    str(key, out);
    for (const char* a : allowed) {
      if (out == a) return;
    }
    std::string list;
    for (const char* a : allowed)
      list += (list.empty() ? "" : ", ") + std::string(a);
    fail(key, "must be one of " + list);
  }
  // A field of few values (Choice): the error lists them.
  template <class C>
  void choice(const std::string& key, C& out) {
    std::string text;
    str(key, text);
    if (!get(key) || error) return;
    if (auto c = C::parse(text)) {
      out = *c;
      return;
    }
    std::string list;
    for (std::string_view a : C::values())
      list += (list.empty() ? "" : ", ") + std::string(a);
    fail(key, "must be one of " + list);
  }
  void strings(const json* v, const std::string& key, std::vector<std::string>& out) {
    if (!v) return;
    if (!v->is_array()) {
      fail(key, "must be an array of strings");
      return;
    }
    out.clear();
    for (size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_string()) {
        fail(key + "[" + std::to_string(i) + "]", "must be a string");
        return;
      }
      out.push_back((*v)[i].get<std::string>());
    }
  }
  void strings(const std::string& key, std::vector<std::string>& out) {
    strings(get(key), key, out);
  }
};

// A provisioned object's `code`: 1 to 64 letters, digits, '_', '.' or '-'.
inline constexpr const char* kCodeRule = "must be 1 to 64 letters, digits, '_', '.' or '-'";
inline bool valid_code(const std::string& code) {
  return !code.empty() && code.size() <= 64 &&
         code.find_first_not_of(
             "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") ==
             std::string::npos;
}

inline bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("-.!%*_+`'~").find(c) != std::string_view::npos;
}

// A host: a name of letters, digits, dots and dashes, an IPv4 address, or an IPv6 one.
inline bool valid_host(const std::string& h) {
  if (h.empty() || h.size() > 253) return false;
  in6_addr a6;
  std::string bare = h;
  if (bare.size() > 2 && bare.front() == '[' && bare.back() == ']')
    bare = bare.substr(1, bare.size() - 2);
  if (inet_pton(AF_INET6, bare.c_str(), &a6) == 1) return true;
  for (char c : h) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') return false;
  }
  return true;
}

}  // namespace esg::accounts::detail
