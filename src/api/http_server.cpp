#include "api/http_server.hpp"

#include <malloc.h>
#include <openssl/crypto.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/version.hpp>
#include <stdexcept>

#include "base/json_text.hpp"

namespace esg::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string::npos) end = path.size();
    if (end > pos) parts.push_back(path.substr(pos, end - pos));
    pos = end + 1;
  }
  return parts;
}

// A path segment as sent, %XX decoded (a Call-ID's '@' arrives as %40 from a browser).
std::string percent_decoded(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += char(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

constexpr size_t kTrimAfter = 1 << 20;

// Compares in constant time: the token is a secret.
bool same_secret(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

std::string Request::query_param(const std::string& name) const {
  size_t pos = 0;
  while (pos < query.size()) {
    size_t end = query.find('&', pos);
    if (end == std::string::npos) end = query.size();
    const std::string kv = query.substr(pos, end - pos);
    const size_t eq = kv.find('=');
    if (kv.substr(0, eq) == name) {
      if (eq == std::string::npos) return "";
      // %XX a byte; '+' stays a plus (a number such as +7916...), as RFC 3986 has it.
      return percent_decoded(kv.substr(eq + 1));
    }
    pos = end + 1;
  }
  return {};
}

Response Response::json(int status, const nlohmann::json& j) {
  return Response{status, json_text(j), "application/json", {}};
}

Response Response::error(int status, const std::string& message, const std::string& field) {
  nlohmann::json j = {{"error", message}};
  if (!field.empty()) j["field"] = field;
  return json(status, j);
}

struct HttpServer::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread thread;
  uint16_t port = 0;
};

HttpServer::HttpServer(Options options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {}

HttpServer::~HttpServer() {
  stop();
}

void HttpServer::route(const std::string& method, const std::string& pattern, Handler h) {
  routes_.push_back({method, split_path(pattern), std::move(h)});
}

void HttpServer::set_auth(const std::string& token, bool public_metrics, bool public_fw) {
  std::lock_guard lock(auth_mu_);
  options_.token = token;
  options_.public_metrics = public_metrics;
  options_.public_fw = public_fw;
}

Response HttpServer::dispatch(const Request& r) const {
  std::string token;
  bool public_metrics = false, public_fw = false;
  {
    std::lock_guard lock(auth_mu_);
    token = options_.token;
    public_metrics = options_.public_metrics;
    public_fw = options_.public_fw;
  }
  const bool protected_path = r.path.rfind("/rest/", 0) == 0 || r.path.rfind("/api/", 0) == 0 ||
                              (r.path == "/metrics" && !public_metrics) ||
                              (r.path == "/fw.txt" && !public_fw);
  if (protected_path) {
    const std::string prefix = "Bearer ";
    const bool bearer = !token.empty() && r.authorization.rfind(prefix, 0) == 0 &&
                        same_secret(r.authorization.substr(prefix.size()), token);
    const bool session = !bearer && !r.cookie.empty() && session_check_ && session_check_(r.cookie);
    if (!bearer && !session) {
      return Response::error(401, "a valid bearer token (or a signed-in session) is required");
    }
  }
  auto parts = split_path(r.path);
  for (auto& p : parts)
    p = percent_decoded(p);
  bool path_known = false;
  for (const auto& route : routes_) {
    if (route.parts.size() != parts.size()) continue;
    std::vector<std::string> args;
    bool match = true;
    for (size_t i = 0; i < parts.size() && match; ++i) {
      if (route.parts[i] == "{}") {
        args.push_back(parts[i]);
      } else if (route.parts[i] != parts[i]) {
        match = false;
      }
    }
    if (!match) continue;
    path_known = true;
    if (route.method != r.method) continue;
    try {
      return route.handler(r, args);
    } catch (const std::exception& e) {
      return Response::error(500, std::string("internal error: ") + e.what());
    }
  }
  return path_known ? Response::error(405, "method not allowed")
                    : Response::error(404, "no such resource");
}

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const HttpServer& server, size_t max_body)
      : stream_(std::move(socket)), server_(server), max_body_(max_body) {}

  void start() { read(); }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(max_body_);
    parser_->header_limit(16 * 1024);
    stream_.expires_after(std::chrono::seconds(30));  // a silent client is let go
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec) {
      if (ec == http::error::body_limit) {
        write(Response::error(413, "the body is too large"), false);
        return;
      }
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      return;
    }
    const auto& req = parser_->get();
    Request r;
    r.method = std::string(req.method_string());
    const std::string target(req.target());
    const size_t q = target.find('?');
    r.path = target.substr(0, q);
    if (q != std::string::npos) r.query = target.substr(q + 1);
    r.body = req.body();
    r.authorization = std::string(req[http::field::authorization]);
    r.cookie = std::string(req[http::field::cookie]);
    write(server_.dispatch(r), req.keep_alive());
  }

  void write(const Response& resp, bool keep_alive) {
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(11);
    res->result(static_cast<http::status>(resp.status));
    res->set(http::field::server, "esg");
    if (!resp.body.empty()) res->set(http::field::content_type, resp.content_type);
    res->set(http::field::cache_control, "no-store");
    for (const auto& [name, value] : resp.headers)
      res->insert(name, value);
    res->body() = resp.body;
    res->keep_alive(keep_alive);
    res->prepare_payload();
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res, keep_alive](beast::error_code ec, size_t n) {
                        // A monitoring answer for thousands of accounts is megabytes built and
                        // freed on this thread: hand the memory back rather than let the
                        // allocator keep it as the process's high-water mark.
                        if (n > kTrimAfter) malloc_trim(0);
                        if (ec) return;
                        if (keep_alive) {
                          self->read();
                        } else {
                          self->stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
                        }
                      });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  const HttpServer& server_;
  size_t max_body_;
};

void accept_loop(tcp::acceptor& acceptor, const HttpServer& server, size_t max_body) {
  acceptor.async_accept([&acceptor, &server, max_body](beast::error_code ec, tcp::socket s) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) std::make_shared<Session>(std::move(s), server, max_body)->start();
    accept_loop(acceptor, server, max_body);
  });
}

}  // namespace

void HttpServer::start() {
  const size_t colon = options_.listen.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("http.listen: must be host:port");
  std::string host = options_.listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  const int port = std::stoi(options_.listen.substr(colon + 1));
  boost::system::error_code ec;
  const auto addr = asio::ip::make_address(host, ec);
  if (ec) throw std::runtime_error("http.listen: " + host + " is not an IP address");
  tcp::endpoint ep(addr, uint16_t(port));
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error("http.listen: cannot listen on " + options_.listen + ": " +
                             ec.message());
  impl_->port = impl_->acceptor.local_endpoint().port();
  accept_loop(impl_->acceptor, *this, options_.max_body);
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

void HttpServer::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  asio::post(impl_->io, [this] {
    boost::system::error_code ec;
    impl_->acceptor.close(ec);
    impl_->io.stop();
  });
  impl_->thread.join();
}

uint16_t HttpServer::port() const {
  return impl_->port;
}

}  // namespace esg::api
