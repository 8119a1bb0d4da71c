#pragma once
// A provider account (a SIP trunk), with the field names operators know (DESIGN.md "Names that
// come from the field"), and its validation: every error names the field.

#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace esg::accounts {

struct FieldError {
  std::string field;    // "proxyport", "opts.extusernames[2]"
  std::string message;  // what is wrong
};

// A field that holds one of a few fixed values (transport, pingmode, dtmf, srtp): the value's
// place in its list, one byte, instead of a string of its own (32 bytes; four of them in each
// of tens of thousands of accounts). It reads like the string it names. A literal that is not
// in the list does not compile; text from outside goes through parse().
template <const auto& Values>
class Choice {
 public:
  consteval Choice(const char* v) : i_(index_of(v)) {}
  static std::optional<Choice> parse(std::string_view v) {
    for (size_t i = 0; i < Values.size(); ++i) {
      if (Values[i] == v) return Choice(uint8_t(i));
    }
    return std::nullopt;
  }
  static constexpr const auto& values() { return Values; }

  const std::string& str() const { return names()[i_]; }
  operator const std::string&() const { return str(); }
  operator std::string_view() const { return str(); }

  bool operator==(const Choice& o) const { return i_ == o.i_; }
  friend bool operator==(const Choice& a, const char* b) { return a.str() == b; }
  friend bool operator==(const Choice& a, std::string_view b) { return a.str() == b; }
  friend std::ostream& operator<<(std::ostream& os, const Choice& c) { return os << c.str(); }
  friend std::string operator+(const char* a, const Choice& b) { return a + b.str(); }
  friend std::string operator+(const std::string& a, const Choice& b) { return a + b.str(); }
  friend std::string operator+(const Choice& a, const char* b) { return a.str() + b; }
  friend std::string operator+(const Choice& a, const std::string& b) { return a.str() + b; }

 private:
  explicit Choice(uint8_t i) : i_(i) {}
  static consteval uint8_t index_of(std::string_view v) {
    for (size_t i = 0; i < Values.size(); ++i) {
      if (Values[i] == v) return uint8_t(i);
    }
    throw "not one of the field's values";  // only at compile time: the literal is wrong
  }
  // Strings, so that the field reads where a `const std::string&` is wanted.
  static const std::array<std::string, std::size(Values)>& names() {
    static const auto kNames = [] {
      std::array<std::string, std::size(Values)> n;
      for (size_t i = 0; i < n.size(); ++i)
        n[i] = std::string(Values[i]);
      return n;
    }();
    return kNames;
  }

  uint8_t i_;
};

inline constexpr std::array<std::string_view, 3> kTransports{"udp", "tcp", "tls"};
inline constexpr std::array<std::string_view, 2> kPingModes{"off", "options"};
inline constexpr std::array<std::string_view, 3> kDtmfModes{"rfc2833", "info", "inband"};
inline constexpr std::array<std::string_view, 3> kSrtpModes{"off", "optional", "required"};
using Transport = Choice<kTransports>;
using PingMode = Choice<kPingModes>;
using DtmfMode = Choice<kDtmfModes>;
using SrtpMode = Choice<kSrtpModes>;

// An account's codecs in order of preference, each of PCMA, PCMU, G722 and opus at most once:
// five bytes, not a vector of strings (~100 bytes an account with the default two). Reads as
// the vector of names where one is wanted (the call legs' policy).
class Codecs {
 public:
  static constexpr std::array<std::string_view, 4> kNames{"PCMA", "PCMU", "G722", "opus"};

  consteval Codecs(std::initializer_list<const char*> names) {
    for (const char* n : names) {
      size_t i = 0;
      while (i < kNames.size() && kNames[i] != n)
        ++i;
      if (i == kNames.size()) throw "not a codec name";
      for (size_t k = 0; k < size_; ++k) {
        if (ids_[k] == i) throw "a codec listed twice";
      }
      ids_[size_++] = uint8_t(i);
    }
  }
  // Names from outside: the field's error names the first bad entry (`codecs[1]`).
  static Result<Codecs, FieldError> parse(const std::vector<std::string>& names,
                                          const std::string& field);

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const std::string& operator[](size_t i) const;
  std::vector<std::string> names() const;
  operator std::vector<std::string>() const { return names(); }
  bool operator==(const Codecs&) const = default;

 private:
  Codecs() = default;
  std::array<uint8_t, 4> ids_{};
  uint8_t size_ = 0;
};

// Field order: the strings and vectors first, then the small fields packed together (no
// padding between a bool and the next string: 10,000 accounts pay for every hole).
struct Account {
  int64_t id = 0;
  std::string code;
  std::string username;
  std::string pwd;  // write-only: never in to_json(), never logged
  std::string domain;
  std::string proxyaddr;
  std::string pingsrv;
  std::vector<std::string> extusernames;  // opts.extusernames
  std::vector<std::string> extaddrs;
  std::vector<int> serveridxs;
  std::vector<std::string> passheaders;
  int trunks = 0;        // concurrent sessions; 0 = no limit
  int pingtimeout = 30;  // seconds between pings
  int expires = 3600;
  uint16_t proxyport = 5060;
  Transport transport = "udp";
  PingMode pingmode = "off";
  DtmfMode dtmf = "rfc2833";
  SrtpMode srtp = "off";
  Codecs codecs{"PCMA", "PCMU"};
  bool reg = true;
  bool media = false;
  bool reinvite = true;
  bool tls_verify = true;
  bool enabled = true;

  // Where REGISTER, INVITE and OPTIONS go: the proxy when set, else the domain.
  std::string next_hop_host() const { return proxyaddr.empty() ? domain : proxyaddr; }
  uint16_t next_hop_port() const { return proxyaddr.empty() ? 5060 : proxyport; }
  // What to resolve: the proxy's explicit port, or 0 for the domain, whose transport and port
  // RFC 3263 finds in DNS (NAPTR, SRV).
  uint16_t lookup_port() const { return proxyaddr.empty() ? 0 : proxyport; }

  bool operator==(const Account&) const = default;
};

// From JSON (config import, REST). Every field is optional but `code` and `domain` (and
// `username` with `reg`); unknown fields are errors (a typo must not pass silently).
Result<Account, FieldError> account_from_json(const nlohmann::json& j);
// To JSON without `pwd` (what every API returns).
nlohmann::json to_json(const Account& a);
// With `pwd`: what the store keeps.
nlohmann::json to_stored_json(const Account& a);

// Is `pattern` a valid address filter: an IP, a CIDR, a mask with ? and *, or /reg/<RE2>?
bool valid_address_filter(const std::string& pattern, std::string* why = nullptr);

}  // namespace esg::accounts
