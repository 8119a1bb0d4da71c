#pragma once
// The HTTP listener (CONTRACTS.md "REST and monitoring conventions"): Boost.Beast on a thread of
// its own, so a slow client never holds up a call. Every /rest/ and /api/ request needs the
// bearer token; errors are JSON `{"error": ..., "field": ...}`.

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace esg::api {

struct Request {
  std::string method;  // GET, POST, PUT, PATCH, DELETE
  std::string path;    // without the query
  std::string query;   // after '?', raw
  std::string body;
  std::string authorization;
  std::string cookie;  // the Cookie header (the web page's session)
  std::string query_param(const std::string& name) const;
};

struct Response {
  int status = 200;
  std::string body;  // JSON text ("" for 204)
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // more (Set-Cookie)
  static Response json(int status, const nlohmann::json& j);
  static Response error(int status, const std::string& message, const std::string& field = "");
};

using Handler = std::function<Response(const Request&, const std::vector<std::string>& args)>;

class HttpServer {
 public:
  struct Options {
    std::string listen = "127.0.0.1:8080";  // host:port; port 0 = any free one
    std::string token;                      // the bearer token (empty: every call refused)
    bool public_metrics = false;            // /metrics without the token
    bool public_fw = false;                 // /fw.txt (the firewall list) without the token
    size_t max_body = 1 << 20;
  };
  explicit HttpServer(Options options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // `pattern` with {} for a path segment passed in args: "/rest/v1/uc/providers/{}".
  void route(const std::string& method, const std::string& pattern, Handler h);
  // Binds (throws std::runtime_error naming the address) and starts the thread.
  void start();
  void stop();
  uint16_t port() const;

  Response dispatch(const Request& r) const;  // routing and auth, without the network
  // A new token, metrics and firewall list setting (SIGHUP), for the next request.
  void set_auth(const std::string& token, bool public_metrics, bool public_fw);
  // Whether a Cookie header names a live web page session: it authorizes like the token. Set
  // before start.
  void set_session_check(std::function<bool(const std::string& cookie)> check) {
    session_check_ = std::move(check);
  }

 private:
  struct Impl;
  Options options_;
  struct Route {
    std::string method;
    std::vector<std::string> parts;
    Handler handler;
  };
  std::vector<Route> routes_;
  mutable std::mutex auth_mu_;  // token, public_metrics and public_fw change on reload
  std::function<bool(const std::string& cookie)> session_check_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace esg::api
