#include "sip/params.hpp"

#include <string>

#include "sip/detail/lex.hpp"

namespace esg::sip {

using detail::skip_quoted;
using detail::skip_ws;

bool ParamCursor::next(Param& out) {
  if (!ok_) return false;
  size_t i = skip_ws(raw_, pos_);
  if (i >= raw_.size()) {
    pos_ = i;
    return false;
  }
  if (raw_[i] != ';') {
    pos_ = i;
    ok_ = false;
    return false;
  }
  i = skip_ws(raw_, i + 1);
  const size_t name_start = i;
  // URI parameters may carry %-escapes and a few more marks than a token; accept those too.
  while (i < raw_.size() && detail::has_class(raw_[i], detail::kParamName))
    ++i;
  if (i == name_start) {
    pos_ = i;
    ok_ = false;
    return false;
  }
  out.name = raw_.substr(name_start, i - name_start);
  out.value = {};
  out.has_value = false;
  i = skip_ws(raw_, i);
  if (i < raw_.size() && raw_[i] == '=') {
    i = skip_ws(raw_, i + 1);
    const size_t value_start = i;
    if (i < raw_.size() && raw_[i] == '"') {
      i = skip_quoted(raw_, i);
      if (i == std::string_view::npos) {
        pos_ = value_start;
        ok_ = false;
        return false;
      }
    } else {
      while (i < raw_.size() && !detail::has_class(raw_[i], detail::kValueStop))
        ++i;
    }
    if (i == value_start) {
      pos_ = i;
      ok_ = false;
      return false;
    }
    out.value = raw_.substr(value_start, i - value_start);
    out.has_value = true;
  }
  pos_ = i;
  return true;
}

bool params_valid(std::string_view raw, size_t* error_offset) {
  ParamCursor cursor(raw);
  Param p;
  while (cursor.next(p)) {
  }
  if (!cursor.ok() && error_offset) *error_offset = cursor.offset();
  return cursor.ok();
}

std::optional<std::string_view> find_param(std::string_view raw, std::string_view name) {
  ParamCursor cursor(raw);
  Param p;
  while (cursor.next(p)) {
    if (text::iequals(p.name, name)) return p.value;
  }
  return std::nullopt;
}

std::string unquote(std::string_view s) {
  if (s.size() < 2 || s.front() != '"' || s.back() != '"') return std::string(s);
  std::string out;
  out.reserve(s.size() - 2);
  for (size_t i = 1; i + 1 < s.size(); ++i) {
    if (s[i] == '\\' && i + 2 < s.size()) ++i;
    out.push_back(s[i]);
  }
  return out;
}

}  // namespace esg::sip
