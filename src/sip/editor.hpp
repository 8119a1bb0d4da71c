#pragma once
// Edits a parsed message and serializes the result: the B2BUA, the SIP-ALG and the transport
// change the Request-URI, headers, parameters and body; every byte left alone is copied through
// exactly as it was received.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sip/message.hpp"

namespace esg::sip {

class Editor {
 public:
  explicit Editor(const Message& message);

  // Start line.
  void set_request_uri(std::string_view uri);
  void set_status(uint16_t code, std::string_view reason);

  // Headers. `name` may be any header name; HeaderId forms match compact names too.
  size_t remove(HeaderId id);
  size_t remove(std::string_view name);
  bool remove_first(HeaderId id);
  void add_front(std::string_view name, std::string_view value);  // before all headers
  void add_back(std::string_view name, std::string_view value);   // after all headers
  // Replaces every instance with one header at the place of the first (or adds it at the end).
  void set(std::string_view name, std::string_view value);

  // Parameters of the first value of the first `id` header (e.g. `received` on the top Via,
  // `tag` on To). `value` nullopt sets a flag parameter. False when there is no such header.
  bool set_param(HeaderId id, std::string_view name, std::optional<std::string_view> value);
  bool remove_param(HeaderId id, std::string_view name);
  // Replaces the URI of the first value of the first `id` header (Contact, From, To...),
  // adding <> when the new URI needs them.
  bool set_uri(HeaderId id, std::string_view uri);

  // Replaces the body; Content-Length follows, Content-Type is set (or removed with the body).
  void set_body(std::string_view body, std::string_view content_type);

  // The edited message. Content-Length always matches the body (added when it was absent).
  std::string serialize() const;

 private:
  struct Entry {
    HeaderId id = HeaderId::Other;
    std::string_view raw;  // original field with its line end, when untouched
    std::string text;      // "Name: value" when added or changed
    bool edited = false;
    bool removed = false;
    std::string_view value() const;
    std::string field_name() const;  // as written
  };
  Entry* first(HeaderId id);
  bool matches(const Entry& e, std::string_view name) const;

  const Message& msg_;
  std::optional<std::string> start_line_;
  std::vector<Entry> entries_;
  std::optional<std::string> body_;
};

// Parameter editing on the first value of a header value (`list`: values are comma-separated,
// as in Via or Contact; otherwise the whole value is one, as in From or To).
std::string with_param(std::string_view value, std::string_view name,
                       std::optional<std::string_view> param_value, bool list = true);
std::string without_param(std::string_view value, std::string_view name, bool list = true);
// Headers whose value is a comma-separated list (RFC 3261 §7.3.1).
bool is_list_header(HeaderId id);

}  // namespace esg::sip
