#pragma once
// RFC 3261 §25.1 character classes and the small scanners the header parsers share.

#include <string_view>

#include "base/text.hpp"

namespace esg::sip::detail {

using text::is_alnum;
using text::is_digit;
using text::is_ws;

// token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
constexpr bool is_token_char(char c) {
  if (is_alnum(c)) return true;
  switch (c) {
    case '-': case '.': case '!': case '%': case '*': case '_':
    case '+': case '`': case '\'': case '~':
      return true;
    default:
      return false;
  }
}

constexpr bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_token_char(c)) return false;
  }
  return true;
}

// Skips SP/HTAB (header values are unfolded before they reach here, so CRLF never appears).
constexpr size_t skip_ws(std::string_view s, size_t i) {
  while (i < s.size() && is_ws(s[i])) ++i;
  return i;
}

// Index just past a quoted-string starting at s[i] == '"', or npos if it is not terminated.
constexpr size_t skip_quoted(std::string_view s, size_t i) {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

// Finds `c` at the top level of a header value: outside quoted strings and <...>.
constexpr size_t find_top_level(std::string_view s, char c, size_t from = 0) {
  bool in_angle = false;
  for (size_t i = from; i < s.size(); ++i) {
    const char x = s[i];
    if (x == '"' && !in_angle) {
      i = skip_quoted(s, i);
      if (i == std::string_view::npos) return i;
      --i;
    } else if (x == '<') {
      in_angle = true;
    } else if (x == '>') {
      in_angle = false;
    } else if (x == c && !in_angle) {
      return i;
    }
  }
  return std::string_view::npos;
}

}  // namespace esg::sip::detail
