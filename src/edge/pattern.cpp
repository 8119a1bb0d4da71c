#include "edge/pattern.hpp"

#include <arpa/inet.h>
#include <re2/re2.h>

#include <cstring>

#include "base/text.hpp"

namespace esg::edge {

namespace {

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
}

bool prefix_equal(const unsigned char* a, const unsigned char* b, int bits) {
  const int bytes = bits / 8;
  if (std::memcmp(a, b, size_t(bytes)) != 0) return false;
  const int rest = bits % 8;
  if (rest == 0) return true;
  const unsigned char mask = static_cast<unsigned char>(0xFF << (8 - rest));
  return (a[bytes] & mask) == (b[bytes] & mask);
}

}  // namespace

bool glob_match(std::string_view mask, std::string_view value) {
  // Iterative matching with one backtrack point: linear in practice, no recursion.
  size_t m = 0, v = 0, star = std::string_view::npos, mark = 0;
  while (v < value.size()) {
    if (m < mask.size() && (mask[m] == '?' || lower(mask[m]) == lower(value[v]))) {
      ++m;
      ++v;
    } else if (m < mask.size() && mask[m] == '*') {
      star = m++;
      mark = v;
    } else if (star != std::string_view::npos) {
      m = star + 1;
      v = ++mark;
    } else {
      return false;
    }
  }
  while (m < mask.size() && mask[m] == '*')
    ++m;
  return m == mask.size();
}

Pattern::Pattern(std::string_view text, bool address, std::string* error) : text_(text) {
  if (text.empty()) return;
  if (text.substr(0, 5) == "/reg/") {
    RE2::Options o;
    o.set_log_errors(false);
    re_ = std::make_unique<RE2>(std::string(text.substr(5)), o);
    if (!re_->ok()) {
      if (error) *error = "bad regular expression: " + re_->error();
      re_.reset();
      kind_ = Kind::None;
      return;
    }
    kind_ = Kind::Regex;
    return;
  }
  const size_t slash = text.find('/');
  if (address && slash != std::string_view::npos) {
    const std::string addr(text.substr(0, slash));
    const std::string bits(text.substr(slash + 1));
    const bool v4 = inet_pton(AF_INET, addr.c_str(), net_) == 1;
    const bool v6 = !v4 && inet_pton(AF_INET6, addr.c_str(), net_) == 1;
    const int max = v4 ? 32 : 128;
    if ((!v4 && !v6) || bits.empty() || bits.size() > 3 ||
        bits.find_first_not_of("0123456789") != std::string::npos || std::stoi(bits) > max) {
      if (error) *error = "not a CIDR";
      return;
    }
    bits_ = std::stoi(bits);
    kind_ = v4 ? Kind::Cidr4 : Kind::Cidr6;
    return;
  }
  kind_ = text.find_first_of("?*") == std::string_view::npos ? Kind::Exact : Kind::Glob;
}

Pattern::~Pattern() = default;
Pattern::Pattern(Pattern&&) noexcept = default;
Pattern& Pattern::operator=(Pattern&&) noexcept = default;

bool Pattern::matches(std::string_view value) const {
  switch (kind_) {
    case Kind::None:
      return false;
    case Kind::Exact:
      return text::iequals(text_, value);
    case Kind::Glob:
      return glob_match(text_, value);
    case Kind::Regex:
      return RE2::FullMatch(re2::StringPiece(value.data(), value.size()), *re_);
    case Kind::Cidr4:
    case Kind::Cidr6: {
      unsigned char a[16];
      const std::string v(value);
      const int family = kind_ == Kind::Cidr4 ? AF_INET : AF_INET6;
      if (inet_pton(family, v.c_str(), a) != 1) return false;
      return prefix_equal(a, net_, bits_);
    }
  }
  return false;
}

bool valid_pattern(const std::string& pattern, std::string* why) {
  if (pattern.rfind("/reg/", 0) == 0) {
    std::string error;
    Pattern p(pattern, false, &error);
    if (p.empty()) {
      if (why) *why = error;
      return false;
    }
  }
  return true;
}

}  // namespace esg::edge
