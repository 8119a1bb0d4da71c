#include "app/telegram_command.hpp"

#include <termios.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <iostream>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "app/config.hpp"

namespace esg::app {

using nlohmann::json;
namespace http = boost::beast::http;

namespace {

struct Answer {
  int status = 0;
  json body;
};

class RestClient {
 public:
  RestClient(std::string host, std::string port, std::string token)
      : host_(std::move(host)), port_(std::move(port)), token_(std::move(token)) {}

  std::optional<Answer> call(http::verb method, const std::string& target,
                             const std::optional<json>& body, std::string& why) {
    try {
      boost::asio::io_context io;
      boost::asio::ip::tcp::resolver resolver(io);
      boost::beast::tcp_stream stream(io);
      stream.expires_after(std::chrono::seconds(30));  // a login step waits for Telegram
      stream.connect(resolver.resolve(host_, port_));
      http::request<http::string_body> req{method, target, 11};
      req.set(http::field::host, host_);
      req.set(http::field::authorization, "Bearer " + token_);
      if (body) {
        req.set(http::field::content_type, "application/json");
        req.body() = body->dump();
      }
      req.prepare_payload();
      http::write(stream, req);
      boost::beast::flat_buffer buffer;
      http::response<http::string_body> res;
      http::read(stream, buffer, res);
      Answer a;
      a.status = int(res.result_int());
      a.body = json::parse(res.body(), nullptr, false);
      return a;
    } catch (const std::exception& e) {
      why = "esg's HTTP API at " + host_ + ":" + port_ + ": " + e.what();
      return std::nullopt;
    }
  }

 private:
  std::string host_, port_, token_;
};

int usage(std::ostream& err) {
  err << "usage: esg telegram login CODE [--config FILE] [--http HOST:PORT]\n";
  return 2;
}

}  // namespace

// A line from `in`; with echo off when it is a terminal (the two-step password).
std::optional<std::string> read_line(std::istream& in, bool secret) {
  termios old{};
  const bool tty = secret && &in == &std::cin && isatty(STDIN_FILENO) && tcgetattr(0, &old) == 0;
  if (tty) {
    termios quiet = old;
    quiet.c_lflag &= ~tcflag_t(ECHO);
    tcsetattr(0, TCSANOW, &quiet);
  }
  std::string line;
  const bool got = bool(std::getline(in, line));
  if (tty) {
    tcsetattr(0, TCSANOW, &old);
    std::cout << "\n";
  }
  if (!got) return std::nullopt;
  while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
    line.pop_back();
  return line;
}

int run_telegram(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
                 std::ostream& err) {
  if (args.size() < 2 || args[0] != "login") return usage(err);
  const std::string code = args[1];
  std::string config_path = "config/esg.json", http_addr;
  for (size_t i = 2; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size()) {
      config_path = args[++i];
    } else if (args[i] == "--http" && i + 1 < args.size()) {
      http_addr = args[++i];
    } else {
      err << "esg telegram: unknown argument " << args[i] << "\n";
      return usage(err);
    }
  }
  Config config;
  try {
    config = load_config(config_path);
  } catch (const ConfigError& e) {
    err << "esg: config error: " << e.what() << "\n";
    return 2;
  }
  if (http_addr.empty()) http_addr = config.http.listen;
  const size_t colon = http_addr.rfind(':');
  if (colon == std::string::npos || http_addr.substr(colon + 1) == "0") {
    err << "esg telegram: esg's HTTP address " << http_addr
        << " has no port to reach: give --http HOST:PORT\n";
    return 2;
  }
  std::string host = http_addr.substr(0, colon);
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  RestClient rest(host, http_addr.substr(colon + 1), config.http.token);
  std::string why;
  auto lines = rest.call(http::verb::get, "/rest/v1/telegram/lines", std::nullopt, why);
  if (!lines || lines->status != 200) {
    err << "esg telegram: " << (lines ? lines->body.dump() : why) << "\n";
    return 1;
  }
  int64_t id = 0;
  std::string phone;
  for (const auto& l : lines->body.value("items", json::array())) {
    if (l.value("code", "") == code) {
      id = l.value("id", int64_t(0));
      phone = l.value("phone", "");
    }
  }
  if (!id) {
    err << "esg telegram: no Telegram line with code " << code << "\n";
    return 2;
  }
  const std::string login = "/rest/v1/telegram/lines/" + std::to_string(id) + "/login";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(10);
  while (std::chrono::steady_clock::now() < deadline) {
    auto mon = rest.call(http::verb::get, "/api/monitor/v1/telegram/lines", std::nullopt, why);
    if (!mon || mon->status != 200) {
      err << "esg telegram: " << (mon ? mon->body.dump() : why) << "\n";
      return 1;
    }
    json line;
    for (const auto& l : mon->body["data"].value("lines", json::array())) {
      if (l.value("id", int64_t(0)) == id) line = l;
    }
    const std::string state = line.is_object() ? line.value("state", "") : "";
    json step;
    if (state == "ready") {
      const json& user = line["user"];
      out << code << ": logged in";
      if (user.is_object()) {
        const std::string name = user.value("username", "");
        out << " as " << (name.empty() ? "" : "@" + name + ", ") << "user id "
            << user.value("id", int64_t(0));
      }
      out << "\n";
      return 0;
    } else if (state == "wait_phone") {
      out << "Phone number" << (phone.empty() ? "" : " [" + phone + "]") << ": " << std::flush;
      auto p = read_line(in, false);
      if (!p) return 1;
      step = p->empty() ? json::object() : json{{"phone", *p}};
    } else if (state == "wait_code") {
      out << "Code Telegram sent (" << line.value("code_type", std::string("to the app"))
          << "): " << std::flush;
      auto c = read_line(in, false);
      if (!c) return 1;
      step = {{"code", *c}};
    } else if (state == "wait_password") {
      const std::string hint = line.value("password_hint", "");
      out << "Two-step verification password" << (hint.empty() ? "" : " (hint: " + hint + ")")
          << ": " << std::flush;
      auto p = read_line(in, true);
      if (!p) return 1;
      step = {{"password", *p}};
    } else if (state == "disabled" || state == "error" || state.empty()) {
      err << "esg telegram: line " << code << " is " << (state.empty() ? "not running" : state);
      if (line.is_object() && line["last_error"].is_string())
        err << ": " << line["last_error"].get<std::string>();
      err << "\n";
      return 1;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));  // starting, closing...
      continue;
    }
    auto r = rest.call(http::verb::post, login, step, why);
    if (!r) {
      err << "esg telegram: " << why << "\n";
      return 1;
    }
    if (r->status == 429) {
      err << "esg telegram: Telegram asks to wait " << r->body.value("retry_after", 0)
          << " s before trying again (" << r->body.value("error", "") << ")\n";
      return 1;
    }
    if (r->status != 200) {
      // A wrong code or password: said, and asked again.
      err << "esg telegram: " << r->body.value("error", r->body.dump()) << "\n";
      if (r->status != 400) return 1;
    }
  }
  err << "esg telegram: gave up after 10 minutes\n";
  return 1;
}

}  // namespace esg::app
