#pragma once
// RFC 3261 §25.1 character classes and the small scanners the header parsers share.

#include <array>
#include <cstdint>
#include <string_view>

#include "base/text.hpp"

namespace esg::sip::detail {

using text::is_alnum;
using text::is_digit;
using text::is_ws;

// Character classes as one table lookup each: these loops run over every byte we parse.
using CharClass = uint8_t;
// token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
inline constexpr CharClass kTokenChar = 1;
inline constexpr CharClass kNotInUri = 2;    // whitespace, controls, '<', '>', '"'
inline constexpr CharClass kHostChar = 4;    // alphanum / "-" / "." / "_"
inline constexpr CharClass kParamName = 8;   // token chars plus the marks URI parameters carry
inline constexpr CharClass kValueStop = 16;  // ends an unquoted parameter value: ; , SP HTAB " < >

constexpr std::array<uint8_t, 256> make_char_classes() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    const char ch = static_cast<char>(c);
    uint8_t v = 0;
    if (text::is_alnum(ch)) v |= kTokenChar | kHostChar;
    switch (ch) {
      case '-':
      case '.':
      case '_':
        v |= kTokenChar | kHostChar;
        break;
      case '!':
      case '%':
      case '*':
      case '+':
      case '`':
      case '\'':
      case '~':
        v |= kTokenChar;
        break;
      case '<':
      case '>':
      case '"':
      case ' ':
      case '\t':
        v |= kNotInUri;
        break;
      default:
        break;
    }
    if (c < 0x20 || c == 0x7f) v |= kNotInUri;
    if (v & kTokenChar) v |= kParamName;
    switch (ch) {
      case '[':
      case ']':
      case '/':
      case ':':
      case '&':
      case '$':
      case '(':
      case ')':
        v |= kParamName;
        break;
      case ';':
      case ',':
      case ' ':
      case '\t':
      case '"':
      case '<':
      case '>':
        v |= kValueStop;
        break;
      default:
        break;
    }
    t[size_t(c)] = v;
  }
  return t;
}
inline constexpr std::array<uint8_t, 256> kCharClasses = make_char_classes();

constexpr bool has_class(char c, CharClass k) {
  return (kCharClasses[static_cast<unsigned char>(c)] & k) != 0;
}
constexpr bool is_token_char(char c) {
  return has_class(c, kTokenChar);
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
  while (i < s.size() && is_ws(s[i]))
    ++i;
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
