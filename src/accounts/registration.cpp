#include "accounts/registration.hpp"

#include <arpa/inet.h>

#include <array>

#include "base/random.hpp"
#include "sip/headers.hpp"
#include "sip/name_addr.hpp"

namespace esg::accounts {

namespace {

std::string host_port(const std::string& host, uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos && host.front() != '[';
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string transport_param(const std::string& t) {
  return t == "udp" ? "" : ";transport=" + t;
}

std::string upper(std::string s) {
  for (auto& c : s)
    c = char(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string_view reg_state_name(RegState s) {
  switch (s) {
    case RegState::None:
      return "none";
    case RegState::Unregistered:
      return "unregistered";
    case RegState::Registering:
      return "registering";
    case RegState::Registered:
      return "registered";
    case RegState::Failed:
      return "failed";
    case RegState::AuthFailed:
      return "auth_failed";
    case RegState::Disabled:
      return "disabled";
  }
  return "";
}

std::string_view ping_state_name(PingState s) {
  switch (s) {
    case PingState::Disabled:
      return "disabled";
    case PingState::Ok:
      return "ok";
    case PingState::Failed:
      return "failed";
  }
  return "";
}

SharedStatus initial_status(RegState state) {
  static const auto kStates = [] {
    std::array<RegistrationStatus, size_t(RegState::Disabled) + 1> states;
    for (size_t i = 0; i < states.size(); ++i)
      states[i].regstate = RegState(i);
    return states;
  }();
  // Aliasing an empty owner: a pointer to the constant with no count to keep.
  return SharedStatus(SharedStatus(), &kStates[size_t(state)]);
}

bool is_private_address(const std::string& addr) {
  in_addr a4;
  if (inet_pton(AF_INET, addr.c_str(), &a4) == 1) {
    const uint32_t v = ntohl(a4.s_addr);
    return (v >> 24) == 10 || (v >> 20) == (172u << 4 | 1) || (v >> 16) == (192u << 8 | 168) ||
           (v >> 22) == (100u << 2 | 1) || (v >> 24) == 127 || (v >> 16) == (169u << 8 | 254);
  }
  in6_addr a6;
  if (inet_pton(AF_INET6, addr.c_str(), &a6) == 1) {
    return (a6.s6_addr[0] & 0xfe) == 0xfc ||
           (a6.s6_addr[0] == 0xfe && (a6.s6_addr[1] & 0xc0) == 0x80) || IN6_IS_ADDR_LOOPBACK(&a6);
  }
  return false;
}

RegistrationClient::RegistrationClient(std::shared_ptr<const Account> account, txn::Layer& layer,
                                       txn::Timers& timers, Link& link, RegistrationOptions options,
                                       OnChange on_change)
    : account_(std::move(account)),
      layer_(layer),
      timers_(timers),
      link_(link),
      options_{options.retry_min, options.retry_max, options.start_delay,
               std::move(options.user_agent), options.allow},
      on_change_(std::move(on_change)),
      // Moved, not copied: with 10,000 accounts every string kept twice is ~0.5 MiB.
      call_id_(options.call_id.empty() ? "reg-" + random::hex(16) + "@esg"
                                       : std::move(options.call_id)),
      ping_call_id_(account_->pingmode != "options" ? std::string()
                    : options.ping_call_id.empty()  ? "ping-" + random::hex(16) + "@esg"
                                                    : std::move(options.ping_call_id)),
      from_tag_(random::hex(10)),
      expires_(uint32_t(account_->expires)),
      retry_(options_.retry_min),
      clearing_(options.clear_bindings_first) {
  status_ =
      std::make_shared<RegistrationStatus>(*initial_status(!account_->enabled ? RegState::Disabled
                                                           : account_->reg ? RegState::Unregistered
                                                                           : RegState::None));
}

RegistrationClient::~RegistrationClient() {
  *alive_ = false;
  if (timer_) timers_.stop(timer_);
  if (ping_timer_) timers_.stop(ping_timer_);
}

RegistrationStatus& RegistrationClient::edit() {
  if (status_shared_) {
    status_ = std::make_shared<RegistrationStatus>(*status_);
    status_shared_ = false;
  }
  return *status_;
}

void RegistrationClient::publish() {
  status_shared_ = true;
  if (on_change_) on_change_(status_);
}

void RegistrationClient::set_state(RegState s, std::string reason) {
  RegistrationStatus& st = edit();
  st.regstate = s;
  st.reason = std::move(reason);
  publish();
}

void RegistrationClient::schedule(txn::Millis after, Next next) {
  if (timer_) timers_.stop(timer_);
  timer_ = timers_.start(after, [this, next] {
    timer_ = 0;
    if (next == Next::Refresh) {
      refresh();
    } else {
      begin_register();
    }
  });
}

void RegistrationClient::refresh() {
  challenges_ = 0;
  authorization_.clear();
  send_register(expires_);
}

void RegistrationClient::start() {
  if (!account_->enabled) return;
  if (account_->pingmode == "options") {
    ping_timer_ = timers_.start(options_.start_delay, [this] {
      ping_timer_ = 0;
      ping();
    });
  }
  if (!account_->reg) return;
  schedule(options_.start_delay, Next::Register);
}

// Resolves the next hop afresh (names move; RFC 3263 results carry TTLs), then registers.
void RegistrationClient::begin_register() {
  Destination hop{account_->transport, account_->next_hop_host(), account_->lookup_port()};
  auto alive = alive_;
  link_.resolve(hop, [this, alive](std::vector<Destination> targets) {
    if (!*alive || stopping_) return;
    if (targets.empty()) {
      fail(RegState::Failed, "cannot resolve " + account_->next_hop_host(), false);
      return;
    }
    targets_ = std::move(targets);
    target_ = 0;
    challenges_ = 0;
    authorization_.clear();
    send_register(clearing_ ? 0 : expires_);
  });
}

void RegistrationClient::send_register(uint32_t expires) {
  if (targets_.empty()) return;
  const Destination& to = targets_[target_ % targets_.size()];
  local_ = link_.local(to);
  const std::string contact_uri = "sip:" + account_->username + "@" +
                                  host_port(local_.host, local_.port) +
                                  transport_param(to.transport);
  std::string warning;
  if (is_private_address(local_.host) && !is_private_address(to.host)) {
    warning = "Contact and Via carry the private address " + local_.host +
              " towards the public address " + to.host +
              ": set instance.extaddrs or sip_alg, or calls may never arrive";
  }
  if (warning != status_->warning) edit().warning = std::move(warning);
  const std::string ruri = "sip:" + account_->domain;
  std::string m = "REGISTER " + ruri + " SIP/2.0\r\n";
  m += "Via: SIP/2.0/" + upper(to.transport) + " " + host_port(local_.host, local_.port) +
       ";rport;branch=z9hG4bK" + random::hex(16) + "\r\n";
  if (!account_->proxyaddr.empty()) {
    // The field manual's trace: REGISTER to the domain, routed through the proxy.
    m += "Route: <sip:" + host_port(account_->proxyaddr, account_->proxyport) +
         transport_param(account_->transport) + ";lr>\r\n";
  }
  m += "Max-Forwards: 70\r\n";
  const std::string aor = "<sip:" + account_->username + "@" + account_->domain + ">";
  m += "From: " + aor + ";tag=" + from_tag_ + "\r\n";
  m += "To: " + aor + "\r\n";
  m += "Call-ID: " + call_id_ + "\r\n";
  m += "CSeq: " + std::to_string(++cseq_) + " REGISTER\r\n";
  if (clearing_) {
    m += "Contact: *\r\nExpires: 0\r\n";
    expires = 0;
  } else {
    m += "Contact: <" + contact_uri + ">\r\n";
    m += "Expires: " + std::to_string(expires) + "\r\n";
  }
  m.append("Allow: ").append(options_.allow).append("\r\n");
  m += "Supported: path\r\n";
  m += "User-Agent: " + options_.user_agent + "\r\n";
  m += authorization_;
  m += "Content-Length: 0\r\n\r\n";
  auto parsed = sip::parse_message(m);
  if (!parsed) {
    fail(RegState::Failed, std::string("cannot build REGISTER: ") + parsed.error().reason, false);
    return;
  }
  sent_expires_ = expires;
  if (!stopping_ && status_->regstate != RegState::Registered) {
    set_state(RegState::Registering, status_->reason);
  }
  txn::ClientUser user;
  auto alive = alive_;
  user.on_response = [this, alive](const sip::Message& r) {
    if (*alive) on_response(r);
  };
  user.on_failure = [this, alive](uint16_t status, std::string_view why) {
    if (*alive) on_failure(status, why);
  };
  layer_.send_request(std::move(*parsed), link_.channel(to, account_->tls_verify), std::move(user));
}

void RegistrationClient::on_response(const sip::Message& r) {
  if (r.status() < 200) return;
  edit().last_response = r.bytes();
  const uint16_t code = r.status();
  const std::string why = std::to_string(code) + " " + std::string(r.reason());
  if (stopping_) {
    if ((code == 401 || code == 407) && challenges_ == 0) {
      // Un-registering needs credentials too.
    } else {
      set_state(RegState::Unregistered, "un-registered: " + why);
      if (auto done = std::move(on_stopped_)) done();
      return;
    }
  }
  if (clearing_ && code != 401 && code != 407) {
    // The old bindings are gone (or the registrar refused the wildcard: register anyway, the
    // dead instance's binding then runs out by itself). Now our own binding.
    clearing_ = false;
    challenges_ = 0;
    authorization_.clear();
    send_register(expires_);
    return;
  }
  if (code >= 200 && code < 300) {
    registered(r);
    return;
  }
  if (code == 401 || code == 407) {
    const auto* h =
        r.header(code == 401 ? sip::HeaderId::WwwAuthenticate : sip::HeaderId::ProxyAuthenticate);
    auto challenge = h ? sip::auth::parse_challenge(h->value)
                       : Result<sip::auth::Challenge, sip::ValueError>(
                             unexpected(sip::ValueError{"no challenge"}));
    if (!challenge) {
      fail(RegState::Failed, why + " without a usable challenge", false);
      return;
    }
    // A second challenge after we answered one means the credentials are wrong, unless the
    // registrar says the nonce merely went stale.
    if (challenges_ > 0 && !challenge->stale) {
      fail(RegState::AuthFailed, why + " (credentials rejected)", false);
      return;
    }
    ++challenges_;
    // Nonce counts matter only for the nonce being answered: a registrar that challenges every
    // refresh with a fresh nonce would otherwise leave one entry per refresh in the client's
    // table (up to its bound of 1,024, per account).
    if (challenge->nonce != nonce_) {
      digest_ = sip::auth::DigestClient{};
      nonce_ = challenge->nonce;
    }
    auto answer = digest_.answer(
        *challenge, {account_->username, account_->pwd, "REGISTER", "sip:" + account_->domain, {}});
    if (!answer) {
      fail(RegState::Failed, why + " with a challenge we cannot answer", false);
      return;
    }
    authorization_ =
        std::string(code == 401 ? "Authorization: " : "Proxy-Authorization: ") + *answer + "\r\n";
    send_register(sent_expires_);
    return;
  }
  if (code == 423) {
    // RFC 3261 §10.2.8: retry with at least Min-Expires.
    const auto* h = r.header(sip::HeaderId::MinExpires);
    auto min = h ? sip::parse_delta_seconds(h->value)
                 : Result<uint32_t, sip::ValueError>(unexpected(sip::ValueError{}));
    if (!min || *min <= sent_expires_) {
      fail(RegState::Failed, why + " without a usable Min-Expires", false);
      return;
    }
    expires_ = *min;
    send_register(expires_);
    return;
  }
  if (code == 403) {
    fail(RegState::AuthFailed, why, false);
    return;
  }
  fail(RegState::Failed, why, code == 503);
}

void RegistrationClient::on_failure(uint16_t status, std::string_view error) {
  // A transport error names itself: "transport error: TCP connect to ... refused".
  const std::string why = status == 408   ? "no answer (timeout)"
                          : error.empty() ? "transport error"
                                          : "transport error: " + std::string(error);
  if (stopping_) {
    set_state(RegState::Unregistered, "un-register got " + why);
    if (auto done = std::move(on_stopped_)) done();
    return;
  }
  fail(RegState::Failed, why, true);
}

uint32_t RegistrationClient::granted_expires(const sip::Message& r) const {
  // §10.2.4: the expiry of our binding is in our Contact's expires parameter, else Expires.
  if (auto contacts = r.contacts(); contacts && !contacts->star) {
    const std::string mine = host_port(local_.host, local_.port);
    for (const auto& c : contacts->items) {
      if (c.uri.text.find(mine) == std::string_view::npos) continue;
      if (auto e = c.expires(); e && *e) return **e;
    }
  }
  if (auto e = r.expires(); e && *e) return **e;
  return sent_expires_;
}

void RegistrationClient::registered(const sip::Message& r) {
  const uint32_t granted = granted_expires(r);
  edit().expires = granted;
  challenges_ = 0;
  // The answer to the challenge (a few hundred bytes) is not needed until the next one: the
  // refresh starts without it. Given back, not kept by each registered account.
  std::string().swap(authorization_);
  retry_ = options_.retry_min;
  set_state(RegState::Registered, std::to_string(r.status()) + " " + std::string(r.reason()));
  // Refresh before the binding runs out: at ~85% of the granted time, with a little jitter so
  // that many accounts registered together drift apart instead of refreshing in one burst.
  const double share = random::real_between(0.80, 0.90);
  const auto ms = std::max<int64_t>(1000, int64_t(double(granted) * 1000.0 * share));
  schedule(txn::Millis(ms), Next::Refresh);
}

void RegistrationClient::fail(RegState state, std::string reason, bool next_target) {
  authorization_.clear();
  challenges_ = 0;
  if (stopping_) {  // un-registering: whatever went wrong, we are done
    set_state(RegState::Unregistered, "un-register failed: " + reason);
    if (auto done = std::move(on_stopped_)) done();
    return;
  }
  set_state(state, std::move(reason));
  // RFC 3263 §4.3: a timeout, a transport error or a 503 moves on to the next target at once.
  if (next_target && target_ + 1 < targets_.size()) {
    ++target_;
    send_register(expires_);
    return;
  }
  const txn::Millis pause = retry_;
  retry_ = std::min(retry_ * 2, options_.retry_max);
  schedule(pause, Next::Register);
}

void RegistrationClient::stop(std::function<void()> done) {
  stopping_ = true;
  if (timer_) timers_.stop(timer_);
  timer_ = 0;
  if (ping_timer_) timers_.stop(ping_timer_);
  ping_timer_ = 0;
  if (status_->regstate != RegState::Registered || targets_.empty()) {
    if (account_->reg)
      set_state(account_->enabled ? RegState::Unregistered : RegState::Disabled, "stopped");
    if (done) done();
    return;
  }
  on_stopped_ = std::move(done);
  challenges_ = 0;
  authorization_.clear();
  send_register(0);
}

void RegistrationClient::ping() {
  Destination hop{account_->transport,
                  account_->pingsrv.empty() ? account_->next_hop_host() : account_->pingsrv,
                  account_->pingsrv.empty() ? account_->lookup_port() : uint16_t(0)};
  auto alive = alive_;
  auto again = [this] {
    ping_timer_ = timers_.start(std::chrono::seconds(account_->pingtimeout), [this] {
      ping_timer_ = 0;
      ping();
    });
  };
  link_.resolve(hop, [this, alive, again, hop](std::vector<Destination> targets) {
    if (!*alive || stopping_) return;
    auto set = [this](PingState s) {
      if (status_->pingstate == s) return;
      edit().pingstate = s;
      publish();
    };
    if (targets.empty()) {
      set(PingState::Failed);
      again();
      return;
    }
    const Destination& to = targets.front();
    const Link::Local local = link_.local(to);
    const std::string target = "sip:" + hop.host;
    std::string m = "OPTIONS " + target + " SIP/2.0\r\n";
    m += "Via: SIP/2.0/" + upper(to.transport) + " " + host_port(local.host, local.port) +
         ";rport;branch=z9hG4bK" + random::hex(16) + "\r\n";
    m += "Max-Forwards: 70\r\n";
    m += "From: <sip:" + (account_->username.empty() ? std::string("esg") : account_->username) +
         "@" + account_->domain + ">;tag=" + random::hex(10) + "\r\n";
    m += "To: <" + target + ">\r\n";
    m += "Call-ID: " + ping_call_id_ + "\r\n";
    m += "CSeq: " + std::to_string(++ping_cseq_) +
         " OPTIONS\r\nUser-Agent: " + options_.user_agent + "\r\nContent-Length: 0\r\n\r\n";
    auto parsed = sip::parse_message(m);
    if (!parsed) return;
    txn::ClientUser user;
    // Any final response means the provider is there and the NAT binding is fresh.
    user.on_response = [this, alive, set, again](const sip::Message& r) {
      if (!*alive || r.status() < 200) return;
      set(PingState::Ok);
      if (!stopping_) again();
    };
    user.on_failure = [this, alive, set, again](uint16_t) {
      if (!*alive) return;
      set(PingState::Failed);
      if (!stopping_) again();
    };
    layer_.send_request(std::move(*parsed), link_.channel(to, account_->tls_verify),
                        std::move(user));
  });
}

}  // namespace esg::accounts
