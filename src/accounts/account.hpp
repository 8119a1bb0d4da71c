#pragma once
// A provider account (a SIP trunk), with the field names operators know (DESIGN.md "Names that
// come from the field"), and its validation: every error names the field.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace esg::accounts {

struct FieldError {
  std::string field;    // "proxyport", "opts.extusernames[2]"
  std::string message;  // what is wrong
};

struct Account {
  int64_t id = 0;
  std::string code;
  std::string username;
  std::string pwd;  // write-only: never in to_json(), never logged
  std::string domain;
  bool reg = true;
  int trunks = 0;  // concurrent sessions; 0 = no limit
  std::string proxyaddr;
  uint16_t proxyport = 5060;
  std::string transport = "udp";  // udp | tcp | tls
  std::string pingmode = "off";   // off | options
  std::string pingsrv;
  int pingtimeout = 30;  // seconds between pings
  int expires = 3600;
  std::vector<std::string> extusernames;  // opts.extusernames
  std::vector<std::string> extaddrs;
  std::vector<int> serveridxs;
  bool media = false;
  bool reinvite = true;
  std::vector<std::string> codecs{"PCMA", "PCMU"};
  std::string dtmf = "rfc2833";  // rfc2833 | info | inband
  std::string srtp = "off";      // off | optional | required
  bool tls_verify = true;
  std::vector<std::string> passheaders;
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
