#include "api/ui.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace esg::api {

namespace {

std::string base64(const unsigned char* p, size_t n) {
  std::string out(4 * ((n + 2) / 3), '\0');
  const int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), p, int(n));
  out.resize(size_t(len));
  return out;
}

std::optional<std::string> unbase64(std::string_view s) {
  if (s.empty() || s.size() % 4) return std::nullopt;
  std::string out(3 * s.size() / 4, '\0');
  const int len = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(s.data()), int(s.size()));
  if (len < 0) return std::nullopt;
  size_t pad = 0;
  while (pad < 2 && s[s.size() - 1 - pad] == '=')
    ++pad;
  out.resize(size_t(len) - pad);
  return out;
}

std::string pbkdf2(std::string_view password, std::string_view salt, int iterations) {
  unsigned char key[32];
  PKCS5_PBKDF2_HMAC(password.data(), int(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()), int(salt.size()),
                    iterations, EVP_sha256(), sizeof key, key);
  return std::string(reinterpret_cast<const char*>(key), sizeof key);
}

std::string random_hex(size_t bytes) {
  std::string raw(bytes, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), int(bytes));
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

// The page's files: names of letters, digits, '.', '-', '_' only (no way out of the folder).
bool safe_name(std::string_view s) {
  if (s.empty() || s[0] == '.') return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_')
      return false;
  }
  return true;
}

std::string content_type(std::string_view name) {
  auto ends = [&](std::string_view e) {
    return name.size() >= e.size() && name.substr(name.size() - e.size()) == e;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  if (ends(".json")) return "application/json";
  return "application/octet-stream";
}

}  // namespace

std::string hash_password(std::string_view password, int iterations) {
  unsigned char salt[16];
  RAND_bytes(salt, sizeof salt);
  const std::string s(reinterpret_cast<const char*>(salt), sizeof salt);
  const std::string key = pbkdf2(password, s, iterations);
  return "pbkdf2-sha256$" + std::to_string(iterations) + "$" + base64(salt, sizeof salt) + "$" +
         base64(reinterpret_cast<const unsigned char*>(key.data()), key.size());
}

bool verify_password(std::string_view password, std::string_view stored) {
  const std::string_view kPrefix = "pbkdf2-sha256$";
  if (stored.substr(0, kPrefix.size()) != kPrefix) return false;
  stored.remove_prefix(kPrefix.size());
  const size_t a = stored.find('$');
  const size_t b = a == std::string_view::npos ? a : stored.find('$', a + 1);
  if (b == std::string_view::npos) return false;
  int iterations = 0;
  for (char c : stored.substr(0, a)) {
    if (c < '0' || c > '9' || iterations > 10000000) return false;
    iterations = iterations * 10 + (c - '0');
  }
  const auto salt = unbase64(stored.substr(a + 1, b - a - 1));
  const auto key = unbase64(stored.substr(b + 1));
  if (iterations < 1 || !salt || !key || key->size() != 32) return false;
  const std::string got = pbkdf2(password, *salt, iterations);
  return CRYPTO_memcmp(got.data(), key->data(), 32) == 0;
}

Result<std::string, std::string> UiSessions::sign_in(std::string_view user,
                                                     std::string_view password) {
  if (options_.password_hash.empty())
    return unexpected(std::string("sign-in is not configured (http.admin.password_hash)"));
  // Both checked, whichever fails: the answer does not tell which was wrong.
  const bool user_ok = user.size() == options_.user.size() &&
                       CRYPTO_memcmp(user.data(), options_.user.data(), user.size()) == 0;
  const bool password_ok = verify_password(password, options_.password_hash);
  if (!user_ok || !password_ok) return unexpected(std::string("wrong user or password"));
  const std::string id = random_hex(32);
  std::lock_guard lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    it = now - it->second.used > options_.idle ? sessions_.erase(it) : std::next(it);
  }
  if (sessions_.size() >= options_.max_sessions) {
    // The least recently used one goes.
    auto oldest = sessions_.begin();
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it)
      if (it->second.used < oldest->second.used) oldest = it;
    sessions_.erase(oldest);
  }
  sessions_[id] = {std::string(user), now};
  return id;
}

std::string UiSessions::id_in(std::string_view header) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = header.find(';', pos);
    if (end == std::string_view::npos) end = header.size();
    std::string_view part = header.substr(pos, end - pos);
    while (!part.empty() && part.front() == ' ')
      part.remove_prefix(1);
    if (part.substr(0, kCookie.size()) == kCookie && part.size() > kCookie.size() &&
        part[kCookie.size()] == '=')
      return std::string(part.substr(kCookie.size() + 1));
    pos = end + 1;
  }
  return {};
}

void UiSessions::sign_out(std::string_view cookie_header) {
  const std::string id = id_in(cookie_header);
  std::lock_guard lock(mu_);
  sessions_.erase(id);
}

std::optional<std::string> UiSessions::user_of(std::string_view cookie_header) {
  const std::string id = id_in(cookie_header);
  if (id.empty()) return std::nullopt;
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return std::nullopt;
  const auto now = std::chrono::steady_clock::now();
  if (now - it->second.used > options_.idle) {
    sessions_.erase(it);
    return std::nullopt;
  }
  it->second.used = now;
  return it->second.user;
}

void add_ui_routes(HttpServer& http, UiSessions& sessions, std::string ui_dir) {
  http.set_session_check(
      [&sessions](const std::string& cookie) { return sessions.user_of(cookie).has_value(); });
  http.route("POST", "/ui/api/login", [&sessions](const Request& r, const auto&) {
    const auto body = nlohmann::json::parse(r.body, nullptr, false);
    if (!body.is_object() || !body.contains("user") || !body["user"].is_string())
      return Response::error(400, "send {\"user\": ..., \"password\": ...}", "user");
    if (!body.contains("password") || !body["password"].is_string())
      return Response::error(400, "send {\"user\": ..., \"password\": ...}", "password");
    auto id =
        sessions.sign_in(body["user"].get<std::string>(), body["password"].get<std::string>());
    if (!id) return Response::error(401, id.error());
    Response res = Response::json(200, {{"user", body["user"]}});
    res.headers.emplace_back("Set-Cookie", std::string(UiSessions::kCookie) + "=" + *id +
                                               "; Path=/; HttpOnly; SameSite=Strict");
    return res;
  });
  http.route("POST", "/ui/api/logout", [&sessions](const Request& r, const auto&) {
    sessions.sign_out(r.cookie);
    Response res = Response::json(200, {{"signed_out", true}});
    res.headers.emplace_back("Set-Cookie", std::string(UiSessions::kCookie) +
                                               "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    return res;
  });
  http.route("GET", "/ui/api/session", [&sessions](const Request& r, const auto&) {
    auto user = sessions.user_of(r.cookie);
    if (!user) return Response::error(401, "not signed in");
    return Response::json(200, {{"user", *user}});
  });
  auto file = [ui_dir](const std::string& name) {
    if (!safe_name(name)) return Response::error(404, "no such file");
    std::ifstream in(ui_dir + "/" + name, std::ios::binary);
    if (!in) return Response::error(404, "no such file");
    std::ostringstream s;
    s << in.rdbuf();
    Response r;
    r.body = s.str();
    r.content_type = content_type(name);
    return r;
  };
  for (const char* root : {"/ui", "/"}) {
    http.route("GET", root, [file](const Request&, const auto&) { return file("index.html"); });
  }
  http.route("GET", "/ui/{}",
             [file](const Request&, const std::vector<std::string>& a) { return file(a[0]); });
}

}  // namespace esg::api
