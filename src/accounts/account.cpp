#include "accounts/account.hpp"

#include <arpa/inet.h>
#include <re2/re2.h>

#include <set>

#include "accounts/json_reader.hpp"

namespace esg::accounts {

using nlohmann::json;

using detail::is_token_char;
using detail::kCodeRule;
using detail::Reader;
using detail::valid_code;
using detail::valid_host;

bool valid_address_filter(const std::string& pattern, std::string* why) {
  auto no = [&](const char* reason) {
    if (why) *why = reason;
    return false;
  };
  if (pattern.empty()) return no("must not be empty");
  if (pattern.rfind("/reg/", 0) == 0) {
    RE2 re(pattern.substr(5), RE2::Quiet);
    if (!re.ok()) {
      if (why) *why = "bad regular expression: " + re.error();
      return false;
    }
    return true;
  }
  const size_t slash = pattern.find('/');
  if (slash != std::string::npos) {  // CIDR
    const std::string addr = pattern.substr(0, slash);
    const std::string bits = pattern.substr(slash + 1);
    in_addr a4;
    in6_addr a6;
    int max = 0;
    if (inet_pton(AF_INET, addr.c_str(), &a4) == 1) {
      max = 32;
    } else if (inet_pton(AF_INET6, addr.c_str(), &a6) == 1) {
      max = 128;
    } else {
      return no("not a CIDR: the address before / is not an IP address");
    }
    if (bits.empty() || bits.size() > 3 ||
        bits.find_first_not_of("0123456789") != std::string::npos || std::stoi(bits) > max) {
      return no("not a CIDR: bad prefix length");
    }
    return true;
  }
  // An address, a name, or a mask: hex digits, letters, dots, colons, dashes, ? and *.
  for (char c : pattern) {
    if (!std::isalnum(static_cast<unsigned char>(c)) &&
        std::string_view(".:-?*[]").find(c) == std::string_view::npos) {
      return no("not an address, CIDR, mask or /reg/ expression");
    }
  }
  return true;
}

Result<Codecs, FieldError> Codecs::parse(const std::vector<std::string>& names,
                                         const std::string& field) {
  Codecs c;
  for (size_t i = 0; i < names.size(); ++i) {
    auto bad = [&](const char* why) {
      return unexpected(FieldError{field + "[" + std::to_string(i) + "]", why});
    };
    size_t id = 0;
    while (id < kNames.size() && kNames[id] != names[i])
      ++id;
    if (id == kNames.size()) return bad("must be one of PCMA, PCMU, G722, opus");
    for (size_t k = 0; k < c.size_; ++k) {
      if (c.ids_[k] == id) return bad("is listed twice");
    }
    c.ids_[c.size_++] = uint8_t(id);  // at most four: a fifth would repeat one
  }
  return c;
}

const std::string& Codecs::operator[](size_t i) const {
  static const std::array<std::string, kNames.size()> kStrings{
      std::string(kNames[0]), std::string(kNames[1]), std::string(kNames[2]),
      std::string(kNames[3])};
  return kStrings[ids_[i]];
}

std::vector<std::string> Codecs::names() const {
  std::vector<std::string> out;
  out.reserve(size_);
  for (size_t i = 0; i < size_; ++i)
    out.push_back((*this)[i]);
  return out;
}

Result<Account, FieldError> account_from_json(const json& j) {
  if (!j.is_object()) return unexpected(FieldError{"", "an account must be a JSON object"});
  Account a;
  Reader r{j, {}, {}};
  r.integer("id", a.id, 0, INT64_MAX);
  r.str("code", a.code);
  r.str("username", a.username);
  r.str("pwd", a.pwd);
  r.str("domain", a.domain);
  r.boolean("reg", a.reg);
  r.integer("trunks", a.trunks, 0, 100000);
  r.str("proxyaddr", a.proxyaddr);
  r.integer("proxyport", a.proxyport, 1, 65535);
  r.choice("transport", a.transport);
  r.choice("pingmode", a.pingmode);
  r.str("pingsrv", a.pingsrv);
  r.integer("pingtimeout", a.pingtimeout, 1, 3600);
  r.integer("expires", a.expires, 10, 604800);
  if (const json* opts = r.get("opts")) {
    if (!opts->is_object()) {
      r.fail("opts", "must be an object");
    } else {
      for (auto it = opts->begin(); it != opts->end(); ++it) {
        if (it.key() == "extusernames") {
          r.strings(&it.value(), "opts.extusernames", a.extusernames);
        } else {
          r.fail("opts." + it.key(), "unknown field");
        }
      }
    }
  }
  r.strings("extaddrs", a.extaddrs);
  if (const json* v = r.get("serveridxs")) {
    if (!v->is_array()) {
      r.fail("serveridxs", "must be an array of srvidx integers");
    } else {
      for (size_t i = 0; i < v->size(); ++i) {
        if (!(*v)[i].is_number_integer()) {
          r.fail("serveridxs[" + std::to_string(i) + "]", "must be an integer");
          break;
        }
        a.serveridxs.push_back((*v)[i].get<int>());
      }
    }
  }
  r.boolean("media", a.media);
  r.boolean("reinvite", a.reinvite);
  std::optional<std::vector<std::string>> codecs;
  if (const json* v = r.get("codecs")) r.strings(v, "codecs", codecs.emplace());
  r.choice("dtmf", a.dtmf);
  r.choice("srtp", a.srtp);
  r.boolean("tls_verify", a.tls_verify);
  r.strings("passheaders", a.passheaders);
  r.boolean("enabled", a.enabled);
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!r.seen.count(it.key())) r.fail(it.key(), "unknown field");
  }
  if (r.error) return unexpected(*r.error);

  // Cross-field rules and shapes.
  auto bad = [](std::string f, std::string m) {
    return unexpected(FieldError{std::move(f), std::move(m)});
  };
  if (a.code.empty()) return bad("code", "is required");
  if (!valid_code(a.code)) return bad("code", kCodeRule);
  if (!valid_host(a.domain))
    return bad("domain", a.domain.empty() ? "is required" : "must be a host name or IP address");
  if (!a.proxyaddr.empty() && !valid_host(a.proxyaddr))
    return bad("proxyaddr", "must be a host name or IP address");
  if (!a.pingsrv.empty() && !valid_host(a.pingsrv))
    return bad("pingsrv", "must be a host name or IP address");
  if (a.reg && a.username.empty()) return bad("username", "is required when reg is true");
  for (char c : a.username) {
    if (c <= ' ' || c == '@' || c == ':' || c == '<' || c == '>' || c == '"') {
      return bad("username", "must not contain spaces, '@', ':', '<', '>' or quotes");
    }
  }
  if (!a.media && !a.reinvite)
    return bad("reinvite", "at least one of media and reinvite must be true");
  for (size_t i = 0; i < a.extaddrs.size(); ++i) {
    std::string why;
    if (!valid_address_filter(a.extaddrs[i], &why))
      return bad("extaddrs[" + std::to_string(i) + "]", why);
  }
  if (codecs) {
    auto c = Codecs::parse(*codecs, "codecs");
    if (!c) return unexpected(c.error());
    a.codecs = *c;
  }
  for (size_t i = 0; i < a.passheaders.size(); ++i) {
    const auto& h = a.passheaders[i];
    if (h.empty() || !std::all_of(h.begin(), h.end(), is_token_char)) {
      return bad("passheaders[" + std::to_string(i) + "]", "must be a header name");
    }
  }
  for (size_t i = 0; i < a.extusernames.size(); ++i) {
    if (a.extusernames[i].empty())
      return bad("opts.extusernames[" + std::to_string(i) + "]", "must not be empty");
  }
  return a;
}

json to_stored_json(const Account& a) {
  json j = to_json(a);
  j["pwd"] = a.pwd;
  return j;
}

json to_json(const Account& a) {
  json j;
  j["id"] = a.id;
  j["code"] = a.code;
  j["username"] = a.username;
  j["domain"] = a.domain;
  j["reg"] = a.reg;
  j["trunks"] = a.trunks;
  j["proxyaddr"] = a.proxyaddr;
  j["proxyport"] = a.proxyport;
  j["transport"] = a.transport.str();
  j["pingmode"] = a.pingmode.str();
  j["pingsrv"] = a.pingsrv;
  j["pingtimeout"] = a.pingtimeout;
  j["expires"] = a.expires;
  j["opts"] = {{"extusernames", a.extusernames}};
  j["extaddrs"] = a.extaddrs;
  j["serveridxs"] = a.serveridxs;
  j["media"] = a.media;
  j["reinvite"] = a.reinvite;
  j["codecs"] = a.codecs.names();
  j["dtmf"] = a.dtmf.str();
  j["srtp"] = a.srtp.str();
  j["tls_verify"] = a.tls_verify;
  j["passheaders"] = a.passheaders;
  j["enabled"] = a.enabled;
  return j;
}

}  // namespace esg::accounts
