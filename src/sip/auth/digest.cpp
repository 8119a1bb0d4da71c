#include "sip/auth/digest.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <chrono>
#include <cstdio>

#include "sip/detail/lex.hpp"
#include "sip/params.hpp"

namespace esg::sip::auth {

using detail::is_token_char;
using detail::skip_quoted;
using detail::skip_ws;
using text::iequals;

namespace {

const EVP_MD* md_of(Algorithm a) {
  switch (a) {
    case Algorithm::Md5:
    case Algorithm::Md5Sess:
      return EVP_md5();
    case Algorithm::Sha256:
    case Algorithm::Sha256Sess:
      return EVP_sha256();
    case Algorithm::Sha512Trunc256:
    case Algorithm::Sha512Trunc256Sess:
      return EVP_sha512_256();
  }
  return EVP_md5();
}

std::string to_hex(const unsigned char* p, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kHex[p[i] >> 4];
    out[2 * i + 1] = kHex[p[i] & 15];
  }
  return out;
}

std::string random_hex(size_t bytes) {
  unsigned char buf[32];
  if (bytes > sizeof buf) bytes = sizeof buf;
  if (RAND_bytes(buf, int(bytes)) != 1) {
    // The system RNG failed: fall back to the clock so we never emit a constant.
    auto t = std::chrono::steady_clock::now().time_since_epoch().count();
    for (size_t i = 0; i < bytes; ++i)
      buf[i] = static_cast<unsigned char>(t >> (8 * (i % 8)));
  }
  return to_hex(buf, bytes);
}

// auth-param list: name=token / name="quoted", separated by commas (LWS allowed).
template <typename F>
Result<void, ValueError> for_each_auth_param(std::string_view value, F&& f) {
  size_t i = skip_ws(value, 0);
  size_t scheme_start = i;
  while (i < value.size() && is_token_char(value[i]))
    ++i;
  if (!iequals(value.substr(scheme_start, i - scheme_start), "Digest")) {
    return unexpected(ValueError{"not a Digest scheme", scheme_start});
  }
  while (true) {
    i = skip_ws(value, i);
    while (i < value.size() && value[i] == ',')
      i = skip_ws(value, i + 1);
    if (i >= value.size()) return {};
    size_t name_start = i;
    while (i < value.size() && is_token_char(value[i]))
      ++i;
    if (i == name_start) return unexpected(ValueError{"expected a parameter name", i});
    std::string_view name = value.substr(name_start, i - name_start);
    i = skip_ws(value, i);
    if (i >= value.size() || value[i] != '=') return unexpected(ValueError{"expected '='", i});
    i = skip_ws(value, i + 1);
    std::string val;
    if (i < value.size() && value[i] == '"') {
      size_t end = skip_quoted(value, i);
      if (end == std::string_view::npos) {
        return unexpected(ValueError{"unterminated quoted string", i});
      }
      val = unquote(value.substr(i, end - i));
      i = end;
    } else {
      size_t start = i;
      while (i < value.size() && value[i] != ',' && !detail::is_ws(value[i]))
        ++i;
      val = std::string(value.substr(start, i - start));
    }
    f(name, std::move(val));
  }
}

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

}  // namespace

std::optional<Algorithm> algorithm_from(std::string_view name) {
  if (name.empty() || iequals(name, "MD5")) return Algorithm::Md5;
  if (iequals(name, "MD5-sess")) return Algorithm::Md5Sess;
  if (iequals(name, "SHA-256")) return Algorithm::Sha256;
  if (iequals(name, "SHA-256-sess")) return Algorithm::Sha256Sess;
  if (iequals(name, "SHA-512-256")) return Algorithm::Sha512Trunc256;
  if (iequals(name, "SHA-512-256-sess")) return Algorithm::Sha512Trunc256Sess;
  return std::nullopt;
}

std::string_view algorithm_name(Algorithm a) {
  switch (a) {
    case Algorithm::Md5:
      return "MD5";
    case Algorithm::Md5Sess:
      return "MD5-sess";
    case Algorithm::Sha256:
      return "SHA-256";
    case Algorithm::Sha256Sess:
      return "SHA-256-sess";
    case Algorithm::Sha512Trunc256:
      return "SHA-512-256";
    case Algorithm::Sha512Trunc256Sess:
      return "SHA-512-256-sess";
  }
  return "MD5";
}

bool is_sess(Algorithm a) {
  return a == Algorithm::Md5Sess || a == Algorithm::Sha256Sess ||
         a == Algorithm::Sha512Trunc256Sess;
}

std::string hash_hex(Algorithm a, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, md_of(a), nullptr);
  return to_hex(out, len);
}

Result<Challenge, ValueError> parse_challenge(std::string_view value) {
  Challenge c;
  bool algorithm_ok = true;
  auto r = for_each_auth_param(value, [&](std::string_view name, std::string v) {
    if (iequals(name, "realm")) {
      c.realm = std::move(v);
    } else if (iequals(name, "nonce")) {
      c.nonce = std::move(v);
    } else if (iequals(name, "opaque")) {
      c.opaque = std::move(v);
      c.has_opaque = true;
    } else if (iequals(name, "stale")) {
      c.stale = iequals(v, "true");
    } else if (iequals(name, "algorithm")) {
      auto a = algorithm_from(v);
      if (a) {
        c.algorithm = *a;
      } else {
        algorithm_ok = false;
      }
    } else if (iequals(name, "qop")) {
      // qop-options = "qop=" DQUOTE qop-value *("," qop-value) DQUOTE
      size_t start = 0;
      while (start <= v.size()) {
        size_t end = v.find(',', start);
        if (end == std::string::npos) end = v.size();
        std::string_view opt = text::trim(std::string_view(v).substr(start, end - start));
        if (iequals(opt, "auth")) c.qop_auth = true;
        if (iequals(opt, "auth-int")) c.qop_auth_int = true;
        start = end + 1;
      }
    }
  });
  if (!r) return unexpected(r.error());
  if (!algorithm_ok) return unexpected(ValueError{"unsupported algorithm", 0});
  if (c.nonce.empty()) return unexpected(ValueError{"challenge without nonce", 0});
  return c;
}

Result<Credentials, ValueError> parse_credentials(std::string_view value) {
  Credentials c;
  bool nc_ok = true;
  auto r = for_each_auth_param(value, [&](std::string_view name, std::string v) {
    if (iequals(name, "username"))
      c.username = std::move(v);
    else if (iequals(name, "realm"))
      c.realm = std::move(v);
    else if (iequals(name, "nonce"))
      c.nonce = std::move(v);
    else if (iequals(name, "uri"))
      c.uri = std::move(v);
    else if (iequals(name, "response"))
      c.response = std::move(v);
    else if (iequals(name, "cnonce"))
      c.cnonce = std::move(v);
    else if (iequals(name, "algorithm"))
      c.algorithm_text = std::move(v);
    else if (iequals(name, "opaque")) {
      c.opaque = std::move(v);
      c.has_opaque = true;
    } else if (iequals(name, "qop")) {
      c.qop = iequals(v, "auth") ? Qop::Auth : iequals(v, "auth-int") ? Qop::AuthInt : Qop::None;
    } else if (iequals(name, "nc")) {
      // nc = 8LHEX
      uint32_t n = 0;
      if (v.size() != 8) nc_ok = false;
      for (char ch : v) {
        if (!text::is_hex(ch))
          nc_ok = false;
        else
          n = n * 16 + uint32_t(text::hex_value(ch));
      }
      c.nc = n;
    }
  });
  if (!r) return unexpected(r.error());
  if (!nc_ok) return unexpected(ValueError{"nc must be 8 hex digits", 0});
  auto a = algorithm_from(c.algorithm_text);
  if (!a) return unexpected(ValueError{"unsupported algorithm", 0});
  c.algorithm = *a;
  if (c.username.empty() || c.nonce.empty() || c.response.empty()) {
    return unexpected(ValueError{"credentials need username, nonce and response", 0});
  }
  return c;
}

std::string digest_response(Algorithm a, Qop qop, std::string_view username, std::string_view realm,
                            std::string_view password, std::string_view nonce,
                            std::string_view nc_hex, std::string_view cnonce,
                            std::string_view method, std::string_view uri, std::string_view body) {
  std::string a1;
  a1.append(username).append(":").append(realm).append(":").append(password);
  std::string ha1 = hash_hex(a, a1);
  // Every piece is appended to one string: GCC 12 at -O3 takes `":" + std::string` (an insert
  // at the front) for an overlapping memcpy and stops a Release build with -Werror=restrict.
  if (is_sess(a)) {
    std::string sess = ha1;
    sess.append(":").append(nonce).append(":").append(cnonce);
    ha1 = hash_hex(a, sess);
  }
  std::string a2;
  a2.append(method).append(":").append(uri);
  if (qop == Qop::AuthInt) a2.append(":").append(hash_hex(a, body));
  const std::string ha2 = hash_hex(a, a2);
  std::string kd = ha1;
  kd.append(":").append(nonce).append(":");
  if (qop != Qop::None) {
    kd.append(nc_hex).append(":").append(cnonce).append(":");
    kd.append(qop == Qop::Auth ? "auth" : "auth-int").append(":");
  }
  kd += ha2;
  return hash_hex(a, kd);
}

DigestClient::DigestClient(MakeCnonce make_cnonce)
    : make_cnonce_(make_cnonce ? make_cnonce : [] { return random_hex(8); }) {}

Result<std::string, ValueError> DigestClient::answer(const Challenge& ch,
                                                     const ClientRequest& req) {
  Qop qop = Qop::None;
  if (ch.qop_auth) {
    qop = Qop::Auth;
  } else if (ch.qop_auth_int) {
    qop = Qop::AuthInt;
  }
  std::string cnonce;
  char nc_hex[9] = "";
  if (qop != Qop::None || is_sess(ch.algorithm)) cnonce = make_cnonce_();
  if (qop != Qop::None) {
    if (nc_.size() > 1024) nc_.clear();  // bound: old nonces are dead anyway
    const uint32_t nc = ++nc_[ch.nonce];
    std::snprintf(nc_hex, sizeof nc_hex, "%08x", nc);
  }
  const std::string response =
      digest_response(ch.algorithm, qop, req.username, ch.realm, req.password, ch.nonce, nc_hex,
                      cnonce, req.method, req.uri, req.body);
  std::string out = "Digest username=" + quote(req.username) + ", realm=" + quote(ch.realm) +
                    ", nonce=" + quote(ch.nonce) + ", uri=" + quote(req.uri) +
                    ", response=" + quote(response) +
                    ", algorithm=" + std::string(algorithm_name(ch.algorithm));
  if (!cnonce.empty()) out += ", cnonce=" + quote(cnonce);
  if (ch.has_opaque) out += ", opaque=" + quote(ch.opaque);
  if (qop != Qop::None) {
    out += qop == Qop::Auth ? ", qop=auth" : ", qop=auth-int";
    out += ", nc=";
    out += nc_hex;
  }
  return out;
}

std::string_view verdict_name(Verdict v) {
  switch (v) {
    case Verdict::Ok:
      return "ok";
    case Verdict::Stale:
      return "stale";
    case Verdict::BadNonce:
      return "bad_nonce";
    case Verdict::Replay:
      return "replay";
    case Verdict::WrongRealm:
      return "wrong_realm";
    case Verdict::BadResponse:
      return "bad_response";
    case Verdict::Unsupported:
      return "unsupported";
  }
  return "unknown";
}

DigestServer::DigestServer(Options options) : options_(std::move(options)) {
  if (options_.secret.empty()) options_.secret = random_hex(32);
}

int64_t DigestServer::now() const {
  if (options_.now) return options_.now();
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// nonce = hex(issued time, 16) hex(random, 8) hex(HMAC-SHA256(secret, time|random|realm), 32):
// the time lets it expire, the MAC makes it impossible to forge or to move between realms.
std::string DigestServer::make_nonce(int64_t issued) {
  char ts[17];
  std::snprintf(ts, sizeof ts, "%016llx", static_cast<unsigned long long>(issued));
  std::string body = std::string(ts) + random_hex(4);
  std::string mac_input = body + "|" + options_.realm;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), options_.secret.data(), int(options_.secret.size()),
       reinterpret_cast<const unsigned char*>(mac_input.data()), mac_input.size(), mac, &mac_len);
  return body + to_hex(mac, 16);
}

std::optional<int64_t> DigestServer::nonce_time(std::string_view nonce) const {
  if (nonce.size() != 16 + 8 + 32) return std::nullopt;
  std::string body(nonce.substr(0, 24));
  std::string mac_input = body + "|" + options_.realm;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), options_.secret.data(), int(options_.secret.size()),
       reinterpret_cast<const unsigned char*>(mac_input.data()), mac_input.size(), mac, &mac_len);
  const std::string expected = to_hex(mac, 16);
  if (CRYPTO_memcmp(expected.data(), nonce.data() + 24, expected.size()) != 0) return std::nullopt;
  uint64_t t = 0;
  for (char c : nonce.substr(0, 16)) {
    if (!text::is_hex(c)) return std::nullopt;
    t = t * 16 + uint64_t(text::hex_value(c));
  }
  return static_cast<int64_t>(t);
}

std::string DigestServer::challenge(bool stale) {
  std::string out = "Digest realm=" + quote(options_.realm) + ", nonce=\"" + make_nonce(now()) +
                    "\", algorithm=" + std::string(algorithm_name(options_.algorithm));
  if (options_.qop == Qop::Auth) out += ", qop=\"auth\"";
  if (options_.qop == Qop::AuthInt) out += ", qop=\"auth,auth-int\"";
  if (stale) out += ", stale=true";
  return out;
}

Verdict DigestServer::verify(const Credentials& c, std::string_view method,
                             std::string_view password, std::string_view body) {
  if (c.realm != options_.realm) return Verdict::WrongRealm;
  if (c.algorithm != options_.algorithm) return Verdict::Unsupported;
  if (options_.qop != Qop::None && c.qop == Qop::None) return Verdict::Unsupported;
  if (c.qop == Qop::AuthInt && options_.qop != Qop::AuthInt) return Verdict::Unsupported;
  auto issued = nonce_time(c.nonce);
  if (!issued) return Verdict::BadNonce;
  char nc_hex[9] = "";
  if (c.qop != Qop::None) std::snprintf(nc_hex, sizeof nc_hex, "%08x", c.nc);
  const std::string expected = digest_response(c.algorithm, c.qop, c.username, c.realm, password,
                                               c.nonce, nc_hex, c.cnonce, method, c.uri, body);
  if (expected.size() != c.response.size() ||
      CRYPTO_memcmp(expected.data(), c.response.data(), expected.size()) != 0) {
    return Verdict::BadResponse;
  }
  // Only a correct answer may report staleness (RFC 7616 §3.3), so a guesser learns nothing.
  if (now() - *issued > options_.nonce_lifetime) return Verdict::Stale;
  if (c.qop != Qop::None) {
    auto it = last_nc_.find(c.nonce);
    if (it != last_nc_.end() && c.nc <= it->second) return Verdict::Replay;
    if (it == last_nc_.end() && last_nc_.size() >= options_.max_tracked_nonces) {
      // At the bound, forget nonces that have expired; if none has, start over (a forgotten
      // nonce can then be replayed until it expires, which the lifetime limits).
      for (auto i = last_nc_.begin(); i != last_nc_.end();) {
        auto t = nonce_time(i->first);
        i = (!t || now() - *t > options_.nonce_lifetime) ? last_nc_.erase(i) : std::next(i);
      }
      if (last_nc_.size() >= options_.max_tracked_nonces) last_nc_.clear();
    }
    last_nc_[c.nonce] = c.nc;
  }
  return Verdict::Ok;
}

}  // namespace esg::sip::auth
