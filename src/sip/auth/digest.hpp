#pragma once
// HTTP Digest authentication as SIP uses it: RFC 2617, RFC 7616 (SHA-256, -sess, auth-int) and
// RFC 8760 (SHA-256 and SHA-512/256 in SIP). The client answers challenges from providers and
// PBXs; the server challenges PBXs that register to esg, with nonces that expire and cannot be
// forged, and refuses a replayed nonce count.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/result.hpp"
#include "sip/error.hpp"

namespace esg::sip::auth {

enum class Algorithm : uint8_t {
  Md5,
  Md5Sess,
  Sha256,
  Sha256Sess,
  Sha512Trunc256,
  Sha512Trunc256Sess
};
std::optional<Algorithm> algorithm_from(std::string_view name);  // absent name means MD5
std::string_view algorithm_name(Algorithm a);
bool is_sess(Algorithm a);

enum class Qop : uint8_t { None, Auth, AuthInt };

// WWW-Authenticate / Proxy-Authenticate: Digest ...
struct Challenge {
  std::string realm;
  std::string nonce;
  std::string opaque;
  bool has_opaque = false;
  Algorithm algorithm = Algorithm::Md5;
  bool stale = false;
  bool qop_auth = false;  // qop options offered
  bool qop_auth_int = false;
};
Result<Challenge, ValueError> parse_challenge(std::string_view value);

// Authorization / Proxy-Authorization: Digest ...
struct Credentials {
  std::string username;
  std::string realm;
  std::string nonce;
  std::string uri;
  std::string response;
  std::string algorithm_text;
  Algorithm algorithm = Algorithm::Md5;
  std::string cnonce;
  std::string opaque;
  bool has_opaque = false;
  Qop qop = Qop::None;
  uint32_t nc = 0;
};
Result<Credentials, ValueError> parse_credentials(std::string_view value);

// H(data) as lowercase hex for the algorithm's hash (MD5, SHA-256, SHA-512/256).
std::string hash_hex(Algorithm a, std::string_view data);

// What the client needs to answer one challenge.
struct ClientRequest {
  std::string_view username;
  std::string_view password;
  std::string_view method;
  std::string_view uri;   // digest-uri: the Request-URI
  std::string_view body;  // for qop=auth-int
};

// Answers challenges; keeps the nonce count per nonce so each answer uses the next nc.
class DigestClient {
 public:
  // `cnonce` generator: random by default; tests pass a fixed one. A plain function, not a
  // std::function: every registered account and every call towards a provider keeps a client.
  using MakeCnonce = std::string (*)();
  explicit DigestClient(MakeCnonce make_cnonce = nullptr);
  // The Authorization (or Proxy-Authorization) header value. Prefers auth-int when the
  // challenge offers only it, else auth, else the RFC 2069 form.
  Result<std::string, ValueError> answer(const Challenge& challenge, const ClientRequest& req);

 private:
  MakeCnonce make_cnonce_;
  std::unordered_map<std::string, uint32_t> nc_;  // nonce -> last nc used
};

// The response value of RFC 7616 §3.4.1, shared by both sides.
std::string digest_response(Algorithm a, Qop qop, std::string_view username, std::string_view realm,
                            std::string_view password, std::string_view nonce,
                            std::string_view nc_hex, std::string_view cnonce,
                            std::string_view method, std::string_view uri, std::string_view body);

enum class Verdict : uint8_t {
  Ok,
  Stale,     // the nonce was ours but has expired: challenge again with stale=true
  BadNonce,  // not a nonce we issued (forged or from another realm/secret)
  Replay,    // nonce count not above the last one seen for this nonce
  WrongRealm,
  BadResponse,  // wrong password (counts towards bans)
  Unsupported,  // algorithm or qop we did not offer
};
std::string_view verdict_name(Verdict v);

class DigestServer {
 public:
  struct Options {
    std::string realm;
    std::string secret;                 // HMAC key for nonces; random when empty
    int64_t nonce_lifetime = 300;       // seconds
    size_t max_tracked_nonces = 65536;  // bound of the replay table
    Algorithm algorithm = Algorithm::Md5;
    Qop qop = Qop::Auth;
    std::function<int64_t()> now;  // seconds; the system clock when empty
  };
  explicit DigestServer(Options options);

  // A WWW-Authenticate / Proxy-Authenticate value with a fresh nonce.
  std::string challenge(bool stale = false);
  Verdict verify(const Credentials& c, std::string_view method, std::string_view password,
                 std::string_view body = {});

 private:
  int64_t now() const;
  std::string make_nonce(int64_t issued);
  std::optional<int64_t> nonce_time(std::string_view nonce) const;  // nullopt if forged

  Options options_;
  std::unordered_map<std::string, uint32_t> last_nc_;
};

}  // namespace esg::sip::auth
