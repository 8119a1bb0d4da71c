#include "accounts/pbx.hpp"

#include "accounts/json_reader.hpp"

namespace esg::accounts {

using nlohmann::json;

Result<PbxConnection, FieldError> pbx_from_json(const json& j) {
  if (!j.is_object()) return unexpected(FieldError{"", "a PBX connection must be a JSON object"});
  PbxConnection p;
  detail::Reader r{j, {}, {}};
  r.integer("id", p.id, 0, INT64_MAX);
  r.str("code", p.code);
  r.one_of("mode", p.mode, {"register-in", "register-out", "ip"});
  r.str("address", p.address);
  r.integer("port", p.port, 1, 65535);
  r.one_of("transport", p.transport, {"udp", "tcp", "tls"});
  r.str("username", p.username);
  r.str("pwd", p.pwd);
  r.str("domain", p.domain);
  r.integer("expires", p.expires, 10, 604800);
  r.str("number", p.number);
  if (const json* h = r.get("headers")) {
    if (!h->is_object()) {
      r.fail("headers", "must be an object of \"Field\": \"Value\"");
    } else {
      for (auto it = h->begin(); it != h->end(); ++it) {
        const std::string& name = it.key();
        if (name.empty() || !std::all_of(name.begin(), name.end(), detail::is_token_char)) {
          r.fail("headers." + name, "is not a header name");
        } else if (!it.value().is_string()) {
          r.fail("headers." + name, "must be a string");
        } else {
          const std::string v = it.value().get<std::string>();
          if (v.find_first_of("\r\n") != std::string::npos)
            r.fail("headers." + name, "must be one line");
          p.headers.emplace_back(name, v);
        }
      }
    }
  }
  r.strings("codecs", p.codecs);
  r.one_of("dtmf", p.dtmf, {"rfc2833", "info", "inband"});
  r.one_of("srtp", p.srtp, {"off", "optional", "required"});
  r.integer("trunks", p.trunks, 0, 100000);
  r.strings("passheaders", p.passheaders);
  r.boolean("media", p.media);
  r.boolean("reinvite", p.reinvite);
  r.boolean("enabled", p.enabled);
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!r.seen.count(it.key())) r.fail(it.key(), "unknown field");
  }
  if (r.error) return unexpected(*r.error);

  auto bad = [](std::string f, std::string m) {
    return unexpected(FieldError{std::move(f), std::move(m)});
  };
  if (p.code.empty()) return bad("code", "is required");
  if (!detail::valid_code(p.code)) return bad("code", detail::kCodeRule);
  if (p.mode == "ip" && !detail::valid_host(p.address))
    return bad("address",
               p.address.empty() ? "is required for mode ip" : "must be a host name or IP address");
  if (p.mode == "register-out" && !detail::valid_host(p.domain))
    return bad("domain", p.domain.empty() ? "is required for mode register-out"
                                          : "must be a host name or IP address");
  if (p.mode != "ip" && p.username.empty())
    return bad("username", "is required for mode " + p.mode);
  if (p.mode != "ip" && p.pwd.empty()) return bad("pwd", "is required for mode " + p.mode);
  for (char c : p.username) {
    if (c <= ' ' || c == '@' || c == ':' || c == '<' || c == '>' || c == '"')
      return bad("username", "must not contain spaces, '@', ':', '<', '>' or quotes");
  }
  for (char c : p.number) {
    if (c <= ' ' || c == '@' || c == ':' || c == '<' || c == '>' || c == '"' || c == ';')
      return bad("number", "must be a plain number or user part");
  }
  if (!p.media && !p.reinvite)
    return bad("reinvite", "at least one of media and reinvite must be true");
  static const std::set<std::string> kCodecs{"PCMA", "PCMU", "G722", "opus"};
  std::set<std::string> seen;
  for (size_t i = 0; i < p.codecs.size(); ++i) {
    if (!kCodecs.count(p.codecs[i]))
      return bad("codecs[" + std::to_string(i) + "]", "must be one of PCMA, PCMU, G722, opus");
    if (!seen.insert(p.codecs[i]).second)
      return bad("codecs[" + std::to_string(i) + "]", "is listed twice");
  }
  for (size_t i = 0; i < p.passheaders.size(); ++i) {
    const auto& h = p.passheaders[i];
    if (h.empty() || !std::all_of(h.begin(), h.end(), detail::is_token_char))
      return bad("passheaders[" + std::to_string(i) + "]", "must be a header name");
  }
  return p;
}

json to_json(const PbxConnection& p) {
  json headers = json::object();
  for (const auto& [k, v] : p.headers)
    headers[k] = v;
  return {{"id", p.id},
          {"code", p.code},
          {"mode", p.mode},
          {"address", p.address},
          {"port", p.port},
          {"transport", p.transport},
          {"username", p.username},
          {"domain", p.domain},
          {"expires", p.expires},
          {"number", p.number},
          {"headers", headers},
          {"codecs", p.codecs},
          {"dtmf", p.dtmf},
          {"srtp", p.srtp},
          {"trunks", p.trunks},
          {"passheaders", p.passheaders},
          {"media", p.media},
          {"reinvite", p.reinvite},
          {"enabled", p.enabled}};
}

json to_stored_json(const PbxConnection& p) {
  json j = to_json(p);
  j["pwd"] = p.pwd;
  return j;
}

Account PbxConnection::as_account() const {
  Account a;
  a.id = -id;  // apart from provider ids in the account manager
  a.code = "pbx:" + code;
  a.username = username;
  a.pwd = pwd;
  a.domain = domain;
  // The registrar's own address when given (like a provider's proxy), else the domain's.
  a.proxyaddr = address;
  a.proxyport = port;
  a.reg = true;
  if (auto t = Transport::parse(transport)) a.transport = *t;  // pbx_from_json checked it
  a.expires = expires;
  a.enabled = enabled;
  return a;
}

}  // namespace esg::accounts
