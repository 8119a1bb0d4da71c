#include "telegram/line.hpp"

#include "base/time.hpp"
#include "log/log.hpp"

#include <boost/asio/post.hpp>

#include <chrono>
#include <filesystem>
#include <optional>

namespace esg::telegram {

using timeutil::iso_time;
using timeutil::unix_ms;

using nlohmann::json;

namespace {

// TDLib's authorization state types, as the API names them.
std::string state_name(const std::string& type) {
  static const std::pair<const char*, const char*> kNames[] = {
      {"authorizationStateWaitTdlibParameters", "starting"},
      {"authorizationStateWaitPhoneNumber", "wait_phone"},
      {"authorizationStateWaitCode", "wait_code"},
      {"authorizationStateWaitPassword", "wait_password"},
      {"authorizationStateReady", "ready"},
      {"authorizationStateLoggingOut", "logging_out"},
      {"authorizationStateClosing", "closing"},
      {"authorizationStateClosed", "closed"},
      {"authorizationStateWaitOtherDeviceConfirmation", "wait_other_device"},
      {"authorizationStateWaitRegistration", "wait_registration"},
      {"authorizationStateWaitEmailAddress", "wait_email"},
      {"authorizationStateWaitEmailCode", "wait_email_code"},
  };
  for (const auto& [t, n] : kNames) {
    if (type == t) return n;
  }
  return type;
}

std::string connection_name(const std::string& type) {
  if (type == "connectionStateWaitingForNetwork") return "waiting_for_network";
  if (type == "connectionStateConnectingToProxy") return "connecting_to_proxy";
  if (type == "connectionStateConnecting") return "connecting";
  if (type == "connectionStateUpdating") return "updating";
  if (type == "connectionStateReady") return "ready";
  return type;
}

}  // namespace

Line::Line(std::shared_ptr<td::Hub> hub, boost::asio::io_context& io, LineConfig config,
           std::string dir, BridgeOptions bridge, PublishLine publish)
    : hub_holder_(std::move(hub)),
      hub_(*hub_holder_),
      io_(io),
      config_(std::move(config)),
      dir_(std::move(dir)),
      timer_(io),
      session_timer_(io),
      bridge_options_(std::move(bridge)),
      publish_(std::move(publish)) {
  bridge_options_.dir = dir_;
}

Line::~Line() {
  if (client_) hub_.forget_client(client_);
}

void Line::set_session_save(std::function<void(const char*)> save, std::chrono::seconds every) {
  save_session_ = std::move(save);
  session_every_ = std::max(std::chrono::seconds(1), every);
}

void Line::save_session(const char* why) {
  if (save_session_) save_session_(why);
}

// While ready: the folder is looked at every session_every_ (stored only if it changed).
void Line::arm_session_timer() {
  if (!save_session_ || closing_) return;
  session_timer_.expires_after(session_every_);
  session_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (!self || ec || self->closing_) return;
    bool ready = false;
    {
      std::lock_guard lock(self->mu_);
      ready = self->state_ == "ready";
    }
    if (ready) self->save_session("periodic");
    self->arm_session_timer();
  });
}

void Line::start() {
  boost::asio::post(io_, [self = shared_from_this()] { self->open_client(); });
}

void Line::open_client() {
  std::weak_ptr<Line> weak = shared_from_this();
  if (!bridge_) {
    auto b = std::make_shared<CallBridge>(
        io_, config_,
        [weak](json request, td::Hub::Answer answer) {
          auto self = weak.lock();
          if (self && self->client_) {
            self->hub_.send(self->client_, std::move(request), std::move(answer));
          } else if (answer) {
            answer(unexpected(td::TdError{401, "the line's TDLib client is not running", 0}));
          }
        },
        bridge_options_);
    std::string error;
    if (b->open(&error)) {
      std::lock_guard lock(mu_);
      bridge_ = b;
    } else {
      std::lock_guard lock(mu_);
      last_error_ = error;
    }
  }
  client_ = hub_.create_client(io_, [weak](const json& u) {
    auto self = weak.lock();
    if (!self) return;
    // TDLib's JSON is read with nlohmann's typed accessors: a field of another type than the
    // documented one throws. One odd update is logged and skipped; it must not take the
    // worker (and every call on it) down.
    try {
      self->handle(u);
    } catch (const json::exception& e) {
      log::get("telegram")
          .warn("line {}: a TDLib update not understood ({}): {}", self->config_.code,
                u.value("@type", "?"), e.what());
    }
  });
  // TDLib starts a client with its first request; its first update asks for the parameters.
  hub_.send(client_, {{"@type", "getOption"}, {"name", "version"}});
}

void Line::set_state(const std::string& state) {
  {
    std::lock_guard lock(mu_);
    if (state_ != state) log::get("telegram").info("line {}: {}", config_.code, state);
    state_ = state;
    ++state_seq_;
  }
  cv_.notify_all();
  if (bridge_) bridge_->set_account(state == "ready" ? user_id_ : 0);
  publish();
  if (state == "ready" && save_session_) {
    save_session("ready");
    arm_session_timer();
  }
}

// On the worker.
void Line::publish() {
  if (!publish_) return;
  std::string state;
  {
    std::lock_guard lock(mu_);
    state = state_;
  }
  publish_(config_, state, bridge_ && !closing_ ? bridge_->port() : 0);
}

void Line::handle(const json& u) {
  const std::string type = u.value("@type", "");
  if (type == "updateAuthorizationState" && u.contains("authorization_state")) {
    on_authorization(u["authorization_state"]);
  } else if (type == "updateConnectionState" && u.contains("state")) {
    std::lock_guard lock(mu_);
    connection_ = connection_name(u["state"].value("@type", ""));
  } else if (bridge_) {
    bridge_->on_update(u);
  }
}

void Line::on_authorization(const json& s) {
  const std::string type = s.value("@type", "");
  if (type == "authorizationStateWaitTdlibParameters") {
    std::error_code ec;
    std::filesystem::create_directories(dir_ + "/db", ec);
    std::filesystem::create_directories(dir_ + "/files", ec);
    hub_.send(client_,
              {{"@type", "setTdlibParameters"},
               {"use_test_dc", false},
               {"database_directory", dir_ + "/db"},
               {"files_directory", dir_ + "/files"},
               {"database_encryption_key", ""},
               {"use_file_database", false},
               {"use_chat_info_database", true},
               {"use_message_database", false},
               {"use_secret_chats", false},
               {"api_id", config_.api_id},
               {"api_hash", config_.api_hash},
               {"system_language_code", "en"},
               {"device_model", "esg"},
               {"system_version", "Linux"},
               {"application_version", ESG_VERSION}},
              [self = shared_from_this()](Result<json, td::TdError> r) {
                if (!r) {
                  std::lock_guard lock(self->mu_);
                  self->last_error_ = r.error().message;
                }
              });
  } else if (type == "authorizationStateWaitCode") {
    std::lock_guard lock(mu_);
    code_type_ = s.value(json::json_pointer("/code_info/type/@type"), "");
  } else if (type == "authorizationStateWaitPassword") {
    std::lock_guard lock(mu_);
    password_hint_ = s.value("password_hint", "");
  } else if (type == "authorizationStateReady") {
    // "ready" is shown once the account is known too (a login step answers with both).
    hub_.send(client_, {{"@type", "getMe"}},
              [self = shared_from_this()](Result<json, td::TdError> r) {
                {
                  std::lock_guard lock(self->mu_);
                  if (r) {
                    self->user_id_ = r->value("id", int64_t(0));
                    self->user_phone_ = r->value("phone_number", "");
                    const json* names = r->contains("usernames") ? &(*r)["usernames"] : nullptr;
                    if (names && names->contains("active_usernames") &&
                        !(*names)["active_usernames"].empty())
                      self->username_ = (*names)["active_usernames"][0].get<std::string>();
                  } else {
                    self->last_error_ = "getMe: " + r.error().message;
                  }
                }
                self->set_state("ready");
              });
    return;
  } else if (type == "authorizationStateClosed") {
    hub_.forget_client(client_);
    client_ = 0;
    set_state("closed");
    session_timer_.cancel();
    save_session("closed");  // TDLib has written everything: the cleanest snapshot
    if (closing_) {
      timer_.cancel();
      if (auto done = std::move(closed_)) done();
      return;
    }
    // Logged out (here or from another device): a new client waits for the next login.
    timer_.expires_after(std::chrono::milliseconds(500));
    timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      if (auto self = weak.lock(); self && !ec && !self->closing_) self->open_client();
    });
    return;
  }
  set_state(state_name(type));
}

void Line::close(std::function<void()> done, int timeout_ms) {
  boost::asio::post(io_, [self = shared_from_this(), done = std::move(done), timeout_ms]() mutable {
    self->closing_ = true;
    if (self->bridge_) {
      self->bridge_->shutdown("EB2B. The Telegram line closes");
      self->publish();
    }
    if (!self->client_) {
      if (done) done();
      return;
    }
    self->closed_ = std::move(done);
    self->hub_.send(self->client_, {{"@type", "close"}});
    self->timer_.expires_after(std::chrono::milliseconds(timeout_ms));
    self->timer_.async_wait([self](const boost::system::error_code& ec) {
      if (ec) return;
      if (auto d = std::move(self->closed_)) d();
    });
  });
}

void Line::set_config(const LineConfig& c) {
  // Written under the lock (the HTTP thread reads it); the worker reads it without.
  boost::asio::post(io_, [self = shared_from_this(), c] {
    {
      std::lock_guard lock(self->mu_);
      self->config_ = c;
    }
    self->publish();
  });
}

StepResult Line::login(const json& body) {
  if (!body.is_object()) return {400, {{"error", "the body must be a JSON object"}}};
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (it.key() != "phone" && it.key() != "code" && it.key() != "password")
      return {400, {{"error", "unknown field"}, {"field", it.key()}}};
  }
  if (body.contains("code")) {
    if (!body["code"].is_string() || body["code"].get<std::string>().empty())
      return {400, {{"error", "must be the code Telegram sent, as a string"}, {"field", "code"}}};
    return step({{"@type", "checkAuthenticationCode"}, {"code", body["code"]}}, "wait_code");
  }
  if (body.contains("password")) {
    if (!body["password"].is_string())
      return {400, {{"error", "must be a string"}, {"field", "password"}}};
    return step({{"@type", "checkAuthenticationPassword"}, {"password", body["password"]}},
                "wait_password");
  }
  std::string phone = config().phone;
  if (body.contains("phone")) {
    if (!body["phone"].is_string())
      return {400, {{"error", "must be '+' and digits"}, {"field", "phone"}}};
    phone = body["phone"].get<std::string>();
  }
  if (phone.empty())
    return {400,
            {{"error", "the line has no phone: send {\"phone\": \"+...\"}"}, {"field", "phone"}}};
  return step({{"@type", "setAuthenticationPhoneNumber"}, {"phone_number", phone}}, "wait_phone");
}

StepResult Line::logout() {
  {
    std::lock_guard lock(mu_);
    if (state_ == "closed" || state_ == "wait_phone" || state_ == "starting")
      return {409, {{"error", "the line is not logged in"}, {"state", state_}}};
  }
  return step({{"@type", "logOut"}}, nullptr);
}

// Sends `request` when the line is in `expected_state` (any logged-in state for null), then
// waits for TDLib's answer and, when it is "ok", for the state it leads to.
StepResult Line::step(const json& request, const char* expected_state) {
  auto answer = std::make_shared<std::optional<Result<json, td::TdError>>>();
  uint64_t seq = 0;
  {
    std::lock_guard lock(mu_);
    if (expected_state && state_ != expected_state) {
      return {409,
              {{"error", "the line is in state " + state_ + ", not " + expected_state},
               {"state", state_}}};
    }
    seq = state_seq_;
  }
  boost::asio::post(io_, [self = shared_from_this(), request, answer] {
    if (!self->client_) {
      std::lock_guard lock(self->mu_);
      *answer = unexpected(td::TdError{500, "the TDLib client is not running", 0});
      self->cv_.notify_all();
      return;
    }
    self->hub_.send(self->client_, request, [self, answer](Result<json, td::TdError> r) {
      {
        std::lock_guard lock(self->mu_);
        *answer = std::move(r);
        if (!answer->value() && answer->value().error().flood())
          self->flood_until_ms_ = unix_ms() + int64_t(answer->value().error().retry_after) * 1000;
      }
      self->cv_.notify_all();
    });
  });
  std::unique_lock lock(mu_);
  // "ok" with no new state within the bound (a slow TDLib): the caller sees the current one.
  cv_.wait_for(lock, std::chrono::seconds(15),
               [&] { return answer->has_value() && (!answer->value() || state_seq_ != seq); });
  if (!answer->has_value())
    return {504, {{"error", "TDLib did not answer within 15 s"}, {"state", state_}}};
  if (!answer->value()) {
    const auto& e = answer->value().error();
    json body = {{"error", e.message}, {"code", e.code}, {"state", state_}};
    if (e.flood()) {
      body["retry_after"] = e.retry_after;
      return {429, body};
    }
    return {e.code >= 400 && e.code < 500 ? 400 : 502, body};
  }
  json body = {{"state", state_}};
  if (state_ == "wait_code" && !code_type_.empty()) body["code_type"] = code_type_;
  if (state_ == "wait_password") body["password_hint"] = password_hint_;
  return {200, body};
}

LineConfig Line::config() const {
  std::lock_guard lock(mu_);
  return config_;
}

json Line::status() const {
  std::lock_guard lock(mu_);
  json j = {{"id", config_.id},
            {"code", config_.code},
            {"enabled", config_.enabled},
            {"state", state_},
            {"connection", connection_.empty() ? json() : json(connection_)},
            {"calls_in_progress", 0},
            {"noncontact_calls_today", 0},
            {"noncontact_calls_per_day", config_.noncontact_calls_per_day}};
  if (bridge_) j.update(bridge_->status());
  j["user"] =
      user_id_ ? json{{"id", user_id_}, {"username", username_}, {"phone", user_phone_}} : json();
  j["flood_until"] = flood_until_ms_ > unix_ms() ? json(iso_time(flood_until_ms_)) : json();
  j["last_error"] = last_error_.empty() ? json() : json(last_error_);
  if (state_ == "wait_code") j["code_type"] = code_type_;
  if (state_ == "wait_password") j["password_hint"] = password_hint_;
  return j;
}

}  // namespace esg::telegram
