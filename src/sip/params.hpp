#pragma once
// Parameter lists: `;name=value;flag` after a URI (no LWS) or a header value (LWS allowed
// around ';' and '='; values may be quoted strings). Kept as the raw text and scanned on demand,
// so reading one parameter costs no allocation.

#include <optional>
#include <string_view>

namespace esg::sip {

struct Param {
  std::string_view name;
  std::string_view value;  // quoted strings keep their quotes
  bool has_value = false;
};

class ParamCursor {
 public:
  explicit ParamCursor(std::string_view raw) : raw_(raw) {}
  // Reads the next parameter; false at the end or on a syntax error (then ok() is false).
  bool next(Param& out);
  bool ok() const { return ok_; }
  size_t offset() const { return pos_; }

 private:
  std::string_view raw_;
  size_t pos_ = 0;
  bool ok_ = true;
};

// Every parameter has a non-empty token name and, after '=', a non-empty value.
bool params_valid(std::string_view raw, size_t* error_offset = nullptr);

// The value of parameter `name` (case-insensitive): "" for a flag, nullopt when absent.
std::optional<std::string_view> find_param(std::string_view raw, std::string_view name);

// Removes the quotes and backslash escapes of a quoted-string; other text is returned as is.
std::string unquote(std::string_view s);

}  // namespace esg::sip
