#include "sip/message.hpp"

namespace esg::sip {

const HeaderField* Message::header(HeaderId id) const {
  for (const auto& h : headers_) {
    if (h.id == id) return &h;
  }
  return nullptr;
}

const HeaderField* Message::header(std::string_view name) const {
  const HeaderId id = header_id(name);
  if (id != HeaderId::Other) return header(id);
  for (const auto& h : headers_) {
    if (h.id == HeaderId::Other && text::iequals(h.name, name)) return &h;
  }
  return nullptr;
}

size_t Message::count(HeaderId id) const {
  size_t n = 0;
  for (const auto& h : headers_)
    n += h.id == id;
  return n;
}

namespace {

// Parses every instance of a list header and appends the values in order.
template <typename T, typename ParseFn>
Result<std::vector<T>, ValueError> collect(const Message& m, HeaderId id, ParseFn parse) {
  std::vector<T> out;
  for (const auto& h : m.headers()) {
    if (h.id != id) continue;
    auto r = parse(h.value);
    if (!r) return unexpected(r.error());
    for (auto& v : *r)
      out.push_back(v);
  }
  return out;
}

template <typename T, typename ParseFn>
std::optional<Result<T, ValueError>> single(const Message& m, HeaderId id, ParseFn parse) {
  const HeaderField* h = m.header(id);
  if (!h) return std::nullopt;
  return parse(h->value);
}

}  // namespace

Result<std::vector<Via>, ValueError> Message::vias() const {
  return collect<Via>(*this, HeaderId::Via, parse_via_list);
}

Result<ContactList, ValueError> Message::contacts() const {
  ContactList all;
  for (const auto& h : headers_) {
    if (h.id != HeaderId::Contact) continue;
    auto r = parse_contacts(h.value);
    if (!r) return unexpected(r.error());
    all.star = all.star || r->star;
    for (auto& c : r->items)
      all.items.push_back(c);
  }
  return all;
}

Result<std::vector<NameAddr>, ValueError> Message::routes() const {
  return collect<NameAddr>(*this, HeaderId::Route, parse_name_addr_list);
}

Result<std::vector<NameAddr>, ValueError> Message::record_routes() const {
  return collect<NameAddr>(*this, HeaderId::RecordRoute, parse_name_addr_list);
}

std::optional<Result<uint32_t, ValueError>> Message::expires() const {
  return single<uint32_t>(*this, HeaderId::Expires, parse_delta_seconds);
}

std::optional<Result<RetryAfter, ValueError>> Message::retry_after() const {
  return single<RetryAfter>(*this, HeaderId::RetryAfter, parse_retry_after);
}

std::optional<Result<Reason, ValueError>> Message::reason_header() const {
  return single<Reason>(*this, HeaderId::Reason, parse_reason);
}

std::optional<Result<MediaType, ValueError>> Message::content_type() const {
  return single<MediaType>(*this, HeaderId::ContentType, parse_media_type);
}

Result<std::vector<std::string_view>, ValueError> Message::tokens(HeaderId id) const {
  return collect<std::string_view>(*this, id, parse_token_list);
}

}  // namespace esg::sip
