#include "accounts/registrar.hpp"

#include "base/text.hpp"

namespace esg::accounts {

namespace {

sip::auth::DigestServer::Options digest_options(const std::string& realm) {
  sip::auth::DigestServer::Options o;
  o.realm = realm;
  return o;
}

}  // namespace

Registrar::Registrar(Options options)
    : options_(std::move(options)), digest_(digest_options(options_.realm)) {}

std::chrono::steady_clock::time_point Registrar::now() const {
  return options_.now ? options_.now() : std::chrono::steady_clock::now();
}

void Registrar::set_connections(const std::vector<std::shared_ptr<const PbxConnection>>& pbxs) {
  std::lock_guard lock(mu_);
  std::unordered_map<std::string, std::shared_ptr<const PbxConnection>> next;
  for (const auto& p : pbxs) {
    if (p->mode == "register-in" && p->enabled) next[p->username] = p;
  }
  for (auto it = bindings_.begin(); it != bindings_.end();) {
    bool keep = false;
    for (const auto& [user, p] : next) {
      if (p->code != it->first) continue;
      auto old = by_username_.find(user);
      keep =
          old != by_username_.end() && old->second->pwd == p->pwd && old->second->code == p->code;
    }
    it = keep ? std::next(it) : bindings_.erase(it);
  }
  by_username_ = std::move(next);
}

Registrar::Answer Registrar::on_register(const sip::Message& req, const std::string& transport,
                                         const std::string& addr, uint16_t port) {
  Answer a;
  std::lock_guard lock(mu_);
  const std::string aor_user = req.to().uri.user_unescaped();
  // A malformed Contact is the request's fault whoever sends it (RFC 4475 §3.1.2.19).
  auto contacts = req.contacts();
  if (!contacts) {
    a.status = 400;
    a.reason = "Malformed Contact";
    return a;
  }
  const auto* auth = req.header(sip::HeaderId::Authorization);
  // Credentials of another scheme are no credentials for us (RFC 4475 §3.3.8): challenge.
  if (auth && !text::starts_with_icase(auth->value, "Digest ")) auth = nullptr;
  if (!auth) {
    a.status = 401;
    a.extra = "WWW-Authenticate: " + digest_.challenge() + "\r\n";
    a.why = "challenged";
    return a;
  }
  auto creds = sip::auth::parse_credentials(auth->value);
  if (!creds) {
    a.status = 400;
    a.reason = "Malformed Authorization";
    a.auth_failure = true;
    a.why = "malformed Authorization";
    return a;
  }
  auto it = by_username_.find(creds->username);
  if (it == by_username_.end() || (!aor_user.empty() && aor_user != creds->username)) {
    a.status = 403;
    a.auth_failure = true;
    a.why = "no register-in connection for user '" + creds->username + "'";
    // The same answer as a wrong password: a scanner must not tell users that exist.
    a.extra = "Reason: SIP;cause=403;text=\"EB2B. Authentication failed\"\r\n";
    return a;
  }
  const auto& pbx = *it->second;
  const auto verdict = digest_.verify(*creds, "REGISTER", pbx.pwd, req.body());
  if (verdict == sip::auth::Verdict::Stale) {
    a.status = 401;
    a.extra = "WWW-Authenticate: " + digest_.challenge(true) + "\r\n";
    a.why = "stale nonce";
    return a;
  }
  if (verdict != sip::auth::Verdict::Ok) {
    a.status = 403;
    a.auth_failure = true;
    a.why = "authentication of '" + creds->username +
            "' failed: " + std::string(sip::auth::verdict_name(verdict));
    a.extra = "Reason: SIP;cause=403;text=\"EB2B. Authentication failed\"\r\n";
    return a;
  }
  int header_expires = 3600;
  if (auto e = req.expires()) {
    if (!*e) {
      a.status = 400;
      a.reason = "Malformed Expires";
      return a;
    }
    header_expires = int(std::min<uint32_t>(**e, 1u << 30));
  }
  if (contacts->star) {
    // RFC 3261 §10.3 step 6: `*` only with Expires: 0, and alone.
    if (header_expires != 0 || !contacts->items.empty()) {
      a.status = 400;
      a.reason = "Contact * needs Expires: 0";
      return a;
    }
    bindings_.erase(pbx.code);
    a.why = pbx.code + " removed its binding";
    return a;
  }
  if (contacts->items.empty()) {  // a query: answer with the current binding
    auto b = bindings_.find(pbx.code);
    if (b != bindings_.end() && b->second.expires > now()) {
      const auto left = std::chrono::duration_cast<std::chrono::seconds>(b->second.expires - now());
      a.extra =
          "Contact: <" + b->second.contact + ">;expires=" + std::to_string(left.count()) + "\r\n";
    }
    return a;
  }
  const auto& c = contacts->items.front();
  int expires = header_expires;
  if (auto p = c.param("expires")) {
    expires = 0;
    for (char ch : *p) {
      if (ch < '0' || ch > '9') break;
      expires = std::min(expires * 10 + (ch - '0'), 1 << 30);
    }
  }
  if (expires == 0) {
    bindings_.erase(pbx.code);
    a.why = pbx.code + " un-registered";
    return a;
  }
  if (expires < options_.min_expires) {
    a.status = 423;
    a.extra = "Min-Expires: " + std::to_string(options_.min_expires) + "\r\n";
    return a;
  }
  expires = std::min(expires, options_.max_expires);
  Binding b;
  b.pbx = pbx.code;
  b.contact = std::string(c.uri.text);
  b.transport = transport;
  b.addr = addr;
  b.port = port;
  b.expires = now() + std::chrono::seconds(expires);
  bindings_[pbx.code] = b;
  a.extra = "Contact: <" + b.contact + ">;expires=" + std::to_string(expires) + "\r\n";
  a.why = pbx.code + " registered from " + transport + " " + addr + ":" + std::to_string(port);
  return a;
}

std::optional<std::string> Registrar::authenticate(const sip::Message& req, bool* failed) {
  *failed = false;
  const auto* h = req.header(sip::HeaderId::ProxyAuthorization);
  if (!h) h = req.header(sip::HeaderId::Authorization);
  if (!h || !text::starts_with_icase(h->value, "Digest ")) return std::nullopt;
  auto creds = sip::auth::parse_credentials(h->value);
  std::lock_guard lock(mu_);
  if (!creds) {
    *failed = true;
    return std::nullopt;
  }
  auto it = by_username_.find(creds->username);
  if (it == by_username_.end()) return std::nullopt;  // perhaps a provider's business
  if (digest_.verify(*creds, req.method_text(), it->second->pwd, req.body()) !=
      sip::auth::Verdict::Ok) {
    *failed = true;
    return std::nullopt;
  }
  return it->second->code;
}

std::optional<Binding> Registrar::binding(const std::string& pbx_code) {
  std::lock_guard lock(mu_);
  auto it = bindings_.find(pbx_code);
  if (it == bindings_.end() || it->second.expires <= now()) return std::nullopt;
  return it->second;
}

std::optional<std::string> Registrar::pbx_at(const std::string& addr) {
  std::lock_guard lock(mu_);
  const auto t = now();
  for (const auto& [code, b] : bindings_) {
    if (b.addr == addr && b.expires > t) return code;
  }
  return std::nullopt;
}

std::vector<Binding> Registrar::bindings() {
  std::lock_guard lock(mu_);
  std::vector<Binding> out;
  for (const auto& [code, b] : bindings_)
    out.push_back(b);
  return out;
}

}  // namespace esg::accounts
