#pragma once
// The admin web page's server side (issue 10, CONTRACTS.md "REST and monitoring conventions"):
// sign-in with the admin user and password from the instance config (`http.admin`), a session
// cookie that authorizes the page's API calls like the bearer token does, sign-out, and the
// page's files, served from `http.ui_dir`. An anonymous visitor gets the files (they hold no
// data: the page shows its sign-in form) and 401 from every API.

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "api/http_server.hpp"
#include "base/result.hpp"

namespace esg::api {

// PBKDF2-HMAC-SHA256 as "pbkdf2-sha256$<iterations>$<salt, base64>$<key, base64>".
std::string hash_password(std::string_view password, int iterations = 100000);
// False for a wrong password or a hash in another format.
bool verify_password(std::string_view password, std::string_view stored);

class UiSessions {
 public:
  struct Options {
    std::string user = "admin";
    std::string password_hash;                         // empty: nobody signs in
    std::chrono::seconds idle{std::chrono::hours(8)};  // a session unused this long ends
    size_t max_sessions = 1000;
  };
  explicit UiSessions(Options options) : options_(std::move(options)) {}

  // The new session's id, or why not ("wrong user or password", "sign-in is not configured").
  Result<std::string, std::string> sign_in(std::string_view user, std::string_view password);
  void sign_out(std::string_view cookie_header);
  // The user of the session named in a Cookie header (and its use noted), if it is live.
  std::optional<std::string> user_of(std::string_view cookie_header);

  static constexpr std::string_view kCookie = "esg_session";

 private:
  struct Session {
    std::string user;
    std::chrono::steady_clock::time_point used;
  };
  static std::string id_in(std::string_view cookie_header);
  Options options_;
  std::mutex mu_;
  std::map<std::string, Session> sessions_;
};

// /ui/api/login, /ui/api/logout, /ui/api/session and the page's files under /ui/.
void add_ui_routes(HttpServer& http, UiSessions& sessions, std::string ui_dir);

}  // namespace esg::api
