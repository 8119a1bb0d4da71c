#pragma once
// Small text helpers shared by the protocol parsers (SIP, SDP, config): ASCII only, no locale.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace esg::text {

constexpr char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? char(c + ('a' - 'A')) : c;
}

// ASCII case-insensitive equality. Equal bytes are the common case and cost one XOR; bytes that
// differ only in bit 0x20 are equal if they are letters.
constexpr bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const char x = char(a[i] ^ b[i]);
    if (x == 0) continue;
    if (x != 0x20) return false;
    const char l = char(a[i] | 0x20);
    if (l < 'a' || l > 'z') return false;
  }
  return true;
}

constexpr bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
constexpr bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
constexpr bool is_alnum(char c) {
  return is_digit(c) || is_alpha(c);
}
constexpr bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
constexpr int hex_value(char c) {
  return is_digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : c - 'A' + 10;
}
constexpr bool is_ws(char c) {
  return c == ' ' || c == '\t';
}

constexpr std::string_view trim(std::string_view s) {
  while (!s.empty() && (is_ws(s.front()) || s.front() == '\r' || s.front() == '\n')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (is_ws(s.back()) || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

constexpr bool starts_with_icase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// Decimal digits only, no sign; nullopt on anything else or on overflow past `max`.
constexpr std::optional<uint64_t> parse_uint(std::string_view s, uint64_t max = UINT64_MAX) {
  if (s.empty()) return std::nullopt;
  size_t i = 0;
  while (i + 1 < s.size() && s[i] == '0')
    ++i;  // leading zeros never overflow
  if (s.size() - i > 20) return std::nullopt;
  uint64_t v = 0;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (!is_digit(c)) return std::nullopt;
    // 19 digits always fit in 64 bits; only the 20th needs the overflow check.
    if (v > UINT64_MAX / 10 || (v == UINT64_MAX / 10 && uint64_t(c - '0') > UINT64_MAX % 10)) {
      return std::nullopt;
    }
    v = v * 10 + uint64_t(c - '0');
  }
  if (v > max) return std::nullopt;
  return v;
}

}  // namespace esg::text
