#pragma once
// JSON text written straight into a string, for records built on the hot path.

#include <fmt/format.h>

#include <cmath>
#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/json_text.hpp"

namespace esg {

// A call's record is written three times per call (routing, answered, ended); building a
// nlohmann tree for it and dumping that was an eighth of esg's CPU at 1,500 calls/s (issue 24).
// This writes the same text in one pass: members in the order given (the callers give them
// sorted, as nlohmann's objects are), strings escaped as nlohmann escapes them, and bytes that
// are not UTF-8 (from the wire) as U+FFFD, as json_text does.
class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  JsonWriter& begin_object() { return open('{'); }
  JsonWriter& end_object() { return close('}'); }
  JsonWriter& begin_array() { return open('['); }
  JsonWriter& end_array() { return close(']'); }

  JsonWriter& key(std::string_view k) {
    separate();
    string(k);
    out_ += ':';
    after_key_ = true;
    return *this;
  }

  JsonWriter& value(std::string_view s) {
    separate();
    string(s);
    return *this;
  }
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  JsonWriter& value(const std::string& s) { return value(std::string_view(s)); }
  JsonWriter& value(bool b) {
    separate();
    out_ += b ? "true" : "false";
    return *this;
  }
  template <std::integral T>
  requires(!std::same_as<T, bool>) JsonWriter& value(T n) {
    separate();
    fmt::format_to(std::back_inserter(out_), "{}", n);
    return *this;
  }
  // As nlohmann writes a double: the shortest text that reads back the same, with ".0" when it
  // would read as an integer; NaN and infinities, which JSON lacks, as null.
  JsonWriter& value(double d) {
    if (!std::isfinite(d)) return null();
    separate();
    const size_t at = out_.size();
    fmt::format_to(std::back_inserter(out_), "{}", d);
    if (out_.find_first_of(".e", at) == std::string::npos) out_ += ".0";
    return *this;
  }
  JsonWriter& null() {
    separate();
    out_ += "null";
    return *this;
  }
  // A value that is a tree already (a stream's statistics).
  JsonWriter& value(const nlohmann::json& j) {
    separate();
    out_ += json_text(j);
    return *this;
  }

 private:
  JsonWriter& open(char c) {
    separate();
    out_ += c;
    first_ = true;
    return *this;
  }
  JsonWriter& close(char c) {
    out_ += c;
    first_ = false;
    after_key_ = false;
    return *this;
  }
  // A comma before every member or element but the first of its object or array.
  void separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_) out_ += ',';
    first_ = false;
  }

  static bool plain(unsigned char c) { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; }

  void string(std::string_view s) {
    out_ += '"';
    for (size_t i = 0; i < s.size();) {
      // A run of what needs no escape goes in one append (most of a record's text).
      size_t run = i;
      while (run < s.size() && plain(static_cast<unsigned char>(s[run])))
        ++run;
      if (run > i) {
        out_.append(s.data() + i, run - i);
        i = run;
        continue;
      }
      const auto c = static_cast<unsigned char>(s[i]);
      if (c >= 0x80) {
        const size_t n = utf8_length(s, i);
        if (n) {
          out_.append(s.data() + i, n);
          i += n;
        } else {
          out_ += "\xEF\xBF\xBD";  // U+FFFD for the byte that starts no valid sequence
          ++i;
        }
        continue;
      }
      switch (c) {
        case '"':
          out_ += "\\\"";
          break;
        case '\\':
          out_ += "\\\\";
          break;
        case '\b':
          out_ += "\\b";
          break;
        case '\f':
          out_ += "\\f";
          break;
        case '\n':
          out_ += "\\n";
          break;
        case '\r':
          out_ += "\\r";
          break;
        case '\t':
          out_ += "\\t";
          break;
        default:
          if (c < 0x20) {
            fmt::format_to(std::back_inserter(out_), "\\u{:04x}", unsigned(c));
          } else {
            out_ += char(c);
          }
      }
      ++i;
    }
    out_ += '"';
  }

  // The length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlong forms, no
  // surrogates, nothing above U+10FFFF), 0 when there is none.
  static size_t utf8_length(std::string_view s, size_t i) {
    const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
    const auto cont = [&](size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
    const unsigned char c = b(0);
    if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
      if (!cont(1) || !cont(2)) return 0;
      if (c == 0xE0 && b(1) < 0xA0) return 0;  // overlong
      if (c == 0xED && b(1) > 0x9F) return 0;  // UTF-16 surrogates
      return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
      if (!cont(1) || !cont(2) || !cont(3)) return 0;
      if (c == 0xF0 && b(1) < 0x90) return 0;  // overlong
      if (c == 0xF4 && b(1) > 0x8F) return 0;  // above U+10FFFF
      return 4;
    }
    return 0;
  }

  std::string& out_;
  bool first_ = true;
  bool after_key_ = false;
};

}  // namespace esg
