#pragma once
// name-addr / addr-spec with header parameters: From, To, Contact, Route, Record-Route,
// Refer-To, P-Asserted-Identity... (RFC 3261 §20.10, §25.1).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "sip/error.hpp"
#include "sip/uri.hpp"

namespace esg::sip {

struct NameAddr {
  std::string_view text;          // the whole value
  std::string_view display_name;  // as written: a quoted-string with its quotes, or tokens
  Uri uri;
  bool angle_brackets = false;  // the URI was written inside <...>
  std::string_view params;      // header parameters, raw (`;tag=..;expires=..`)

  std::optional<std::string_view> param(std::string_view name) const;
  std::string_view tag() const { return param("tag").value_or(std::string_view{}); }
  std::string display_name_unquoted() const;

  // Contact parameters (RFC 3261 §20.10), nullopt when absent.
  // expires: delta-seconds, saturating at 2^32-1 (RFC 4475 §3.1.2.4).
  std::optional<Result<uint32_t, ValueError>> expires() const;
  // q: qvalue = ("0" ["." 0*3DIGIT]) / ("1" ["." 0*3("0")]), in thousandths ("0.5" is 500).
  std::optional<Result<uint16_t, ValueError>> q() const;
};

Result<NameAddr, ValueError> parse_name_addr(std::string_view value);

// Splits a header value on the commas that separate values (outside quotes and <...>).
// Returns false on an unterminated quoted string. Empty elements are reported as empty views.
template <typename F>
bool for_each_value(std::string_view value, F&& f);

// Parses each comma-separated value of `value` with `parse` (which returns Result<T, ValueError>);
// empty values and unterminated quotes are errors, offsets are relative to `value`.
template <typename T, typename ParseFn>
Result<std::vector<T>, ValueError> parse_list(std::string_view value, ParseFn parse);

// Contact: "*" or a list of name-addr values.
struct ContactList {
  bool star = false;
  std::vector<NameAddr> items;
};
Result<ContactList, ValueError> parse_contacts(std::string_view value);
// Route, Record-Route, Path...: one or more name-addr values.
Result<std::vector<NameAddr>, ValueError> parse_name_addr_list(std::string_view value);

}  // namespace esg::sip

#include "sip/detail/lex.hpp"

namespace esg::sip {

template <typename F>
bool for_each_value(std::string_view value, F&& f) {
  // Fast path: no comma and no quote means one value.
  if (value.find(',') == std::string_view::npos && value.find('"') == std::string_view::npos) {
    f(text::trim(value), size_t(0));
    return true;
  }
  size_t start = 0;
  while (true) {
    size_t comma = detail::find_top_level(value, ',', start);
    if (comma == std::string_view::npos) {
      // find_top_level also stops at an unterminated quote: tell that apart from the end.
      size_t q = start;
      bool in_angle = false;
      for (; q < value.size(); ++q) {
        if (value[q] == '<') in_angle = true;
        if (value[q] == '>') in_angle = false;
        if (value[q] == '"' && !in_angle) {
          q = detail::skip_quoted(value, q);
          if (q == std::string_view::npos) return false;
          --q;
        }
      }
      f(text::trim(value.substr(start)), start);
      return true;
    }
    f(text::trim(value.substr(start, comma - start)), start);
    start = comma + 1;
  }
}

template <typename T, typename ParseFn>
Result<std::vector<T>, ValueError> parse_list(std::string_view value, ParseFn parse) {
  std::vector<T> out;
  ValueError error{};
  bool ok = true;
  const bool well_formed = for_each_value(value, [&](std::string_view item, size_t offset) {
    if (!ok) return;
    if (item.empty()) {
      ok = false;
      error = ValueError{"empty value in list", offset};
      return;
    }
    auto r = parse(item);
    if (!r) {
      ok = false;
      error = r.error();
      error.offset += offset;
      return;
    }
    out.push_back(std::move(*r));
  });
  if (!well_formed) return unexpected(ValueError{"unterminated quoted string", 0});
  if (!ok) return unexpected(error);
  return out;
}

}  // namespace esg::sip
