#include "sip/name_addr.hpp"

#include "sip/detail/lex.hpp"
#include "sip/headers.hpp"
#include "sip/params.hpp"

namespace esg::sip {

using detail::fail;

using detail::is_token_char;
using detail::skip_quoted;
using detail::skip_ws;

namespace {}  // namespace

std::optional<std::string_view> NameAddr::param(std::string_view name) const {
  return find_param(params, name);
}

std::string NameAddr::display_name_unquoted() const {
  return unquote(display_name);
}

std::optional<Result<uint32_t, ValueError>> NameAddr::expires() const {
  auto v = param("expires");
  if (!v) return std::nullopt;
  return parse_delta_seconds(*v);
}

std::optional<Result<uint16_t, ValueError>> NameAddr::q() const {
  auto v = param("q");
  if (!v) return std::nullopt;
  const std::string_view s = *v;
  if (s.empty() || (s[0] != '0' && s[0] != '1')) {
    return unexpected(ValueError{"q must be between 0 and 1", 0});
  }
  const bool zero = s[0] == '0';
  uint16_t thousandths = zero ? 0 : 1000;
  if (s.size() > 1) {
    if (s[1] != '.' || s.size() > 5) return unexpected(ValueError{"q has at most 3 decimals", 1});
    uint16_t scale = 100;
    for (size_t i = 2; i < s.size(); ++i, scale /= 10) {
      if (!text::is_digit(s[i]) || (!zero && s[i] != '0')) {
        return unexpected(ValueError{"q must be between 0 and 1", i});
      }
      thousandths = static_cast<uint16_t>(thousandths + (s[i] - '0') * scale);
    }
  }
  return thousandths;
}

Result<NameAddr, ValueError> parse_name_addr(std::string_view value) {
  NameAddr na;
  na.text = value;
  size_t i = skip_ws(value, 0);
  if (i == value.size()) return fail("empty value", i);
  size_t uri_start = 0;
  size_t uri_end = 0;
  if (value[i] == '"') {
    // display-name as quoted-string, then LAQUOT
    size_t end = skip_quoted(value, i);
    if (end == std::string_view::npos) return fail("unterminated quoted string", i);
    na.display_name = value.substr(i, end - i);
    i = skip_ws(value, end);
    if (i == value.size() || value[i] != '<') return fail("expected '<' after display name", i);
  } else {
    // Either `tokens <uri>` or a bare addr-spec. A '<' before any ';' means name-addr.
    size_t lt = value.find('<', i);
    size_t semi = value.find(';', i);
    if (lt != std::string_view::npos && (semi == std::string_view::npos || lt < semi)) {
      // display-name = *(token LWS); RFC 4475 §3.1.1.6: no LWS before '<' is tolerated.
      for (size_t k = i; k < lt; ++k) {
        if (!is_token_char(value[k]) && !detail::is_ws(value[k])) {
          return fail("character not allowed in an unquoted display name", k);
        }
      }
      na.display_name = text::trim(value.substr(i, lt - i));
      i = lt;
    }
  }
  if (i < value.size() && value[i] == '<') {
    na.angle_brackets = true;
    uri_start = i + 1;
    uri_end = value.find('>', uri_start);
    if (uri_end == std::string_view::npos) return fail("missing '>'", i);
    i = uri_end + 1;
  } else {
    // addr-spec: a URI with ',', ';' or '?' must be enclosed in <> (§20.10), so it ends at the
    // first ';' or whitespace, and what follows are header parameters.
    uri_start = i;
    while (i < value.size() && value[i] != ';' && !detail::is_ws(value[i]))
      ++i;
    uri_end = i;
  }
  std::string_view uri_text = value.substr(uri_start, uri_end - uri_start);
  auto uri = parse_uri(uri_text);
  if (!uri) return fail(uri.error().what, uri_start + uri.error().offset);
  // §20.10: a URI containing a comma, semicolon or question mark must be enclosed in <>.
  if (!na.angle_brackets && uri_text.find_first_of(",?") != std::string_view::npos) {
    return fail("URI with ',' or '?' must be enclosed in <>", uri_start);
  }
  na.uri = *uri;
  i = skip_ws(value, i);
  na.params = value.substr(i);
  size_t bad = 0;
  if (!na.params.empty() && !params_valid(na.params, &bad)) {
    return fail("bad header parameter", i + bad);
  }
  return na;
}

Result<ContactList, ValueError> parse_contacts(std::string_view value) {
  ContactList list;
  if (text::trim(value) == "*") {
    list.star = true;
    return list;
  }
  auto items = parse_list<NameAddr>(value, parse_name_addr);
  if (!items) return unexpected(items.error());
  list.items = std::move(*items);
  return list;
}

Result<std::vector<NameAddr>, ValueError> parse_name_addr_list(std::string_view value) {
  auto contacts = parse_contacts(value);
  if (!contacts) return unexpected(contacts.error());
  if (contacts->star) return fail("'*' is not a URI", 0);
  return std::move(contacts->items);
}

}  // namespace esg::sip
