#include "telegram/callerid.hpp"

#include <algorithm>
#include <cctype>
#include <vector>

namespace esg::telegram {

namespace {

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string phone_of(const TgUser& u) {
  if (u.phone.empty()) return {};
  return u.phone[0] == '+' ? u.phone : "+" + u.phone;
}

std::string full_name(const TgUser& u) {
  std::string n = u.first_name;
  if (!u.last_name.empty()) n += (n.empty() ? "" : " ") + u.last_name;
  return n;
}

// One UTF-8 code point at `i` (advanced past it); 0xFFFD for a broken sequence.
char32_t next_code_point(std::string_view s, size_t& i) {
  const auto b = static_cast<unsigned char>(s[i]);
  size_t len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
  if (len == 0 || i + len > s.size()) {
    ++i;
    return 0xFFFD;
  }
  char32_t cp = len == 1 ? b : b & (0x7F >> len);
  for (size_t k = 1; k < len; ++k)
    cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += len;
  return cp;
}

const char* cyrillic(char32_t c) {
  // Russian, Ukrainian and Belarusian letters, upper case first (U+0410..U+042F), as in
  // passports (ICAO 9303 style, without diacritics).
  static const char* kUpper[] = {"A",  "B",  "V",  "G",    "D", "E", "Zh", "Z", "I",  "I", "K",
                                 "L",  "M",  "N",  "O",    "P", "R", "S",  "T", "U",  "F", "Kh",
                                 "Ts", "Ch", "Sh", "Shch", "",  "Y", "",   "E", "Iu", "Ia"};
  static const char* kLower[] = {"a",  "b",  "v",  "g",    "d", "e", "zh", "z", "i",  "i", "k",
                                 "l",  "m",  "n",  "o",    "p", "r", "s",  "t", "u",  "f", "kh",
                                 "ts", "ch", "sh", "shch", "",  "y", "",   "e", "iu", "ia"};
  if (c >= 0x410 && c <= 0x42F) return kUpper[c - 0x410];
  if (c >= 0x430 && c <= 0x44F) return kLower[c - 0x430];
  switch (c) {
    case 0x401:
      return "E";
    case 0x451:
      return "e";
    case 0x404:
      return "Ie";
    case 0x454:
      return "ie";
    case 0x406:
      return "I";
    case 0x456:
      return "i";
    case 0x407:
      return "I";
    case 0x457:
      return "i";
    case 0x490:
      return "G";
    case 0x491:
      return "g";
    case 0x40E:
      return "U";
    case 0x45E:
      return "u";
    default:
      return nullptr;
  }
}

const char* greek(char32_t c) {
  static const char* kUpper[] = {"A", "V", "G", "D", "E", "Z", "I", "Th", "I", "K",  "L",  "M", "N",
                                 "X", "O", "P", "R", "",  "S", "T", "Y",  "F", "Ch", "Ps", "O"};
  switch (c) {  // the accented lower-case vowels (tonos)
    case 0x3AC:
      return "a";
    case 0x3AD:
      return "e";
    case 0x3AE:
      return "i";
    case 0x3AF:
      return "i";
    case 0x3CC:
      return "o";
    case 0x3CD:
      return "y";
    case 0x3CE:
      return "o";
    default:
      break;
  }
  if (c >= 0x391 && c <= 0x3A9) return kUpper[c - 0x391];
  if (c >= 0x3B1 && c <= 0x3C9) {
    static thread_local std::string lower;
    lower = c == 0x3C2 ? "s" : kUpper[c - 0x3B1];
    for (char& ch : lower)
      ch = char(std::tolower(static_cast<unsigned char>(ch)));
    return lower.c_str();
  }
  return nullptr;
}

// Latin-1 and Latin Extended-A letters without their marks.
const char* latin(char32_t c) {
  static constexpr std::string_view kLatin1 =  // U+00C0..U+00FF
      "AAAAAAACEEEEIIIIDNOOOOO*OUUUUYTsaaaaaaaceeeeiiiidnooooo/ouuuuyty";
  static_assert(kLatin1.size() == 0x40);
  if (c >= 0xC0 && c <= 0xFF) {
    static thread_local char one[3];
    if (c == 0xC6) return "AE";
    if (c == 0xE6) return "ae";
    if (c == 0xDF) return "ss";
    if (c == 0xD7 || c == 0xF7) return "";
    one[0] = kLatin1[c - 0xC0];
    one[1] = 0;
    return one;
  }
  if (c >= 0x100 && c <= 0x17F) {
    static constexpr std::string_view kExtA =  // U+0100..U+017F
        "AaAaAaCcCcCcCcDdDdEeEeEeEeEeGgGgGgGgHhHhIiIiIiIiIiJjJjKkkLlLlLlLlLlNnNnNnnNnOoOoOoOoRrRrRr"
        "SsSs"
        "SsSsTtTtTtUuUuUuUuUuUuWwYyYZzZzZzs";
    static_assert(kExtA.size() == 0x80);
    static thread_local char one[2];
    one[0] = kExtA[c - 0x100];
    one[1] = 0;
    return one;
  }
  return nullptr;
}

bool username_like(std::string_view s) {
  if (s.size() < 5 || s.size() > 32 || !std::isalpha(static_cast<unsigned char>(s[0])) ||
      static_cast<unsigned char>(s[0]) > 0x7F)
    return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

}  // namespace

std::string transliterate(std::string_view utf8) {
  std::string out;
  size_t i = 0;
  while (i < utf8.size()) {
    const char32_t c = next_code_point(utf8, i);
    if (c < 0x80) {
      out += char(c);
    } else if (const char* t = cyrillic(c)) {
      out += t;
    } else if (const char* g = greek(c)) {
      out += g;
    } else if (const char* l = latin(c)) {
      out += l;
    }
  }
  return out;
}

std::string caller_id(const LineConfig& line, const TgUser& u) {
  if (line.callerid == "username" && !u.username.empty()) return u.username;
  if (line.callerid == "phone" && !u.phone.empty()) return phone_of(u);
  return line.callerid_prefix + std::to_string(u.id) + line.callerid_suffix;
}

std::string caller_name(const LineConfig& line, const TgUser& u) {
  std::vector<std::string> parts;
  for (const auto& field : line.callername) {
    std::string v;
    if (field == "name") v = full_name(u);
    if (field == "username" && !u.username.empty()) v = "@" + u.username;
    if (field == "phone") v = phone_of(u);
    if (line.callername_ascii) v = transliterate(v);
    while (!v.empty() && v.back() == ' ')
      v.pop_back();
    if (!v.empty()) parts.push_back(v);
  }
  if (parts.empty()) return {};
  std::string out = parts[0];
  for (size_t i = 1; i < parts.size(); ++i)
    out += (i == 1 ? " (" : ", ") + parts[i];
  if (parts.size() > 1) out += ")";
  return out;
}

Result<DialTarget, std::string> parse_dialled(const LineConfig& line, std::string_view n) {
  const auto& pre = line.callerid_prefix;
  const auto& suf = line.callerid_suffix;
  if (n.size() > pre.size() + suf.size() && n.substr(0, pre.size()) == pre &&
      n.substr(n.size() - suf.size()) == suf) {
    const std::string_view id = n.substr(pre.size(), n.size() - pre.size() - suf.size());
    if (all_digits(id) && id.size() >= 5 && id.size() <= 20) {
      // 20 digits overflow int64 only past 9.2e18; Telegram ids are far below.
      if (id.size() < 19 || id < std::string_view("9223372036854775807"))
        return DialTarget{DialTarget::Kind::UserId, std::stoll(std::string(id)), std::string(id)};
    }
  }
  if (n.size() >= 2 && n[0] == '+' && all_digits(n.substr(1)) && n.size() <= 16)
    return DialTarget{DialTarget::Kind::Phone, 0, std::string(n)};
  // Strings below are built by appending: GCC 12 at -O3 takes `"+" + std::string` (an insert
  // at the front) for an overlapping memcpy (-Werror=restrict in a Release build).
  if (all_digits(n) && n.size() >= 10 && n.size() <= 15) {
    std::string phone(1, '+');
    phone.append(n);
    return DialTarget{DialTarget::Kind::Phone, 0, std::move(phone)};
  }
  if (username_like(n)) return DialTarget{DialTarget::Kind::Username, 0, std::string(n)};
  std::string why = "Not a Telegram user: dial ";
  why.append(pre).append("<user id>").append(suf);
  why.append(
      ", +<phone>, 10 to 15 digits, or a username of 5 to 32 letters, digits and '_' "
      "starting with a letter");
  return unexpected(std::move(why));
}

}  // namespace esg::telegram
