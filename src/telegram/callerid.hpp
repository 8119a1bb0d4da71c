#pragma once
// How a line shows Telegram users to the PBX and how the PBX names them back (issues 8, 9):
// the caller ID (user id wrapped in the line's prefix and suffix, username, or phone, with
// fallbacks to the always-known user id), the caller name, and what a dialled number means.
// Every caller ID shown can be dialled back as shown. Pure functions.

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.hpp"
#include "telegram/line_config.hpp"

namespace esg::telegram {

// What Telegram tells about a user. `phone` is empty when the user hides it.
struct TgUser {
  int64_t id = 0;
  std::string first_name, last_name, username, phone;  // phone: digits, with or without '+'
};

// The From user part for `u` on `line`: per `callerid`, falling back to the user id.
std::string caller_id(const LineConfig& line, const TgUser& u);
// The display name from `callername`'s fields in order, the first present one first and the
// others in parentheses: "Ivan Petrov (@ivanp, +79991234567)"; ASCII when callername_ascii.
std::string caller_name(const LineConfig& line, const TgUser& u);
// Cyrillic, Greek and Latin letters with diacritics as ASCII ("Иван Петров" -> "Ivan Petrov");
// other characters that are not ASCII are left out.
std::string transliterate(std::string_view utf8);

// A dialled number (the Request-URI user after normalization), in the order the issue gives.
struct DialTarget {
  enum class Kind { UserId, Phone, Username } kind;
  int64_t user_id = 0;  // UserId
  std::string text;     // Phone: "+" and digits; Username: as dialled
};
// Error: the Reason text of a 484.
Result<DialTarget, std::string> parse_dialled(const LineConfig& line, std::string_view number);

}  // namespace esg::telegram
