#pragma once
// A Telegram line at run time (issue 8): its TDLib client, driven through TDLib's
// authorization states on the line's worker, with the login steps over REST (phone, code,
// two-step password), logout, and the state that monitoring shows. Its calls go through its
// CallBridge (issue 9), whose SIP side the line announces with `publish`.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "telegram/bridge.hpp"
#include "telegram/line_config.hpp"
#include "telegram/td/tdjson.hpp"

namespace esg::telegram {

// What a REST login step or logout answers: an HTTP status and its JSON body.
struct StepResult {
  int status = 200;
  nlohmann::json body;
};

// Where the line's SIP side is and whether it takes calls: on each change of state or
// settings; port 0 when the line is gone.
using PublishLine =
    std::function<void(const LineConfig& config, const std::string& state, uint16_t port)>;

class Line : public std::enable_shared_from_this<Line> {
 public:
  // `dir`: the line's session folder (TDLib's database and files), kept across restarts.
  // The line keeps the Hub alive: a handler still queued on a worker may hold the last Line.
  Line(std::shared_ptr<td::Hub> hub, boost::asio::io_context& io, LineConfig config,
       std::string dir, BridgeOptions bridge = {}, PublishLine publish = {});
  ~Line();

  void start();
  // Closes the TDLib client (TDLib saves its state); `done` on the line's worker once closed,
  // or after `timeout_ms` if TDLib does not confirm.
  void close(std::function<void()> done, int timeout_ms = 3000);
  // A login step from the HTTP thread: {"phone": ...} (or {} for the line's phone), then
  // {"code": ...}, then {"password": ...}, as the state asks. Waits (bounded) for TDLib's
  // answer and the next state.
  StepResult login(const nlohmann::json& body);
  StepResult logout();
  nlohmann::json status() const;
  LineConfig config() const;  // a copy: the worker may change it meanwhile
  // Settings that do not touch TDLib (numbers, caller ID, limits) change in place.
  void set_config(const LineConfig& c);
  // The session store (issue 23): `save` runs on the worker once the account is ready (after a
  // login), when TDLib has closed, and every `every` while ready. Before start().
  void set_session_save(std::function<void(const char* why)> save, std::chrono::seconds every);

 private:
  void publish();
  void open_client();
  void handle(const nlohmann::json& update);
  void on_authorization(const nlohmann::json& state);
  void set_state(const std::string& state);
  void save_session(const char* why);
  void arm_session_timer();
  StepResult step(const nlohmann::json& request, const char* expected_state);

  std::shared_ptr<td::Hub> hub_holder_;
  td::Hub& hub_;
  boost::asio::io_context& io_;
  LineConfig config_;  // changed on the worker under mu_
  std::string dir_;
  int client_ = 0;
  bool closing_ = false;
  std::function<void()> closed_;
  boost::asio::steady_timer timer_;
  std::function<void(const char*)> save_session_;
  std::chrono::seconds session_every_{60};
  boost::asio::steady_timer session_timer_;
  BridgeOptions bridge_options_;
  PublishLine publish_;
  std::shared_ptr<CallBridge> bridge_;  // set on the worker, read under mu_ elsewhere

  // Shared with the HTTP thread.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t state_seq_ = 0;
  std::string state_ = "starting";
  std::string connection_;
  std::string code_type_, password_hint_, last_error_;
  int64_t user_id_ = 0;
  std::string username_, user_phone_;
  int64_t flood_until_ms_ = 0;
};

}  // namespace esg::telegram
