#pragma once
// The patterns operators write in accounts, rules and filters (CONTRACTS.md "Field shapes"):
// an exact value, a mask (`?` one character, `*` any run), `/reg/<RE2>` matched against the
// whole value (linear time: these run on attacker-controlled input), and for addresses a CIDR.
// Compiled once when the configuration changes, matched per call.

#include <memory>
#include <string>
#include <string_view>

namespace re2 {
class RE2;
}

namespace esg::edge {

class Pattern {
 public:
  Pattern() = default;
  // Compiles `text`; a bad /reg/ expression compiles to a pattern that matches nothing and sets
  // `error` (REST validation rejects those before they get here).
  explicit Pattern(std::string_view text, bool address = false, std::string* error = nullptr);
  ~Pattern();
  Pattern(Pattern&&) noexcept;
  Pattern& operator=(Pattern&&) noexcept;
  Pattern(const Pattern&) = delete;
  Pattern& operator=(const Pattern&) = delete;

  bool matches(std::string_view value) const;
  const std::string& text() const { return text_; }
  bool empty() const { return kind_ == Kind::None; }

 private:
  enum class Kind : uint8_t { None, Exact, Glob, Regex, Cidr4, Cidr6 };
  Kind kind_ = Kind::None;
  std::string text_;
  std::unique_ptr<re2::RE2> re_;
  unsigned char net_[16] = {};
  int bits_ = 0;
};

// A `?`/`*` mask against a value, case-insensitively (hosts, codes).
bool glob_match(std::string_view mask, std::string_view value);
// Is `pattern` a valid mask or /reg/ expression; `why` says what is wrong.
bool valid_pattern(const std::string& pattern, std::string* why = nullptr);

}  // namespace esg::edge
