#include "media/webrtc/dtls/dtls.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/srtp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/time.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>
#include <vector>

namespace esg::media::dtls {

namespace {

using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};

// WebRTC peers (libwebrtc/BoringSSL) use ECDSA certificates, so only ECDHE-ECDSA suites can be
// agreed; AEAD only.
constexpr const char* kCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305";
constexpr const char* kExporterLabel = "EXTRACTOR-dtls_srtp";  // RFC 5764 §4.2
constexpr size_t kMaxRecord = 16384 + 2048;  // a plaintext record and then some (RFC 6347 §4.1)

const EVP_MD* digest_by_name(std::string_view hash) {
  std::string lower(hash);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  if (lower == "sha-256") return EVP_sha256();
  if (lower == "sha-1") return EVP_sha1();
  if (lower == "sha-384") return EVP_sha384();
  if (lower == "sha-512") return EVP_sha512();
  return nullptr;
}

std::string hex_with_colons(const unsigned char* bytes, size_t n) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(n * 3);
  for (size_t i = 0; i < n; ++i) {
    if (i) out.push_back(':');
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 15]);
  }
  return out;
}

std::optional<std::string> fingerprint_of(const EVP_MD* md, X509* cert) {
  unsigned char buf[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!md || !cert || X509_digest(cert, md, buf, &len) != 1) return std::nullopt;
  return hex_with_colons(buf, len);
}

// The reason OpenSSL gives for the last error on this thread ("sslv3 alert bad certificate").
std::string ssl_reason(std::string_view fallback) {
  const unsigned long e = ERR_peek_last_error();
  const char* reason = e ? ERR_reason_error_string(e) : nullptr;
  ERR_clear_error();
  return reason ? std::string(reason) : std::string(fallback);
}

struct Profile {
  unsigned long id;
  const char* name;
  size_t key;
  size_t salt;
};
// RFC 5764 §4.1.2 and RFC 7714 §14.2: master key and salt lengths per profile.
constexpr std::array<Profile, 3> kProfiles{{
    {SRTP_AES128_CM_SHA1_80, "AES_CM_128_HMAC_SHA1_80", 16, 14},
    {SRTP_AEAD_AES_128_GCM, "AEAD_AES_128_GCM", 16, 12},
    {SRTP_AEAD_AES_256_GCM, "AEAD_AES_256_GCM", 32, 12},
}};

int verify_certificate(X509_STORE_CTX* store, void*);
unsigned int retransmit_timer(SSL* ssl, unsigned int timer_us);
BIO_METHOD* datagram_bio_method();

// One context for every session of the process: OpenSSL 3's SSL_CTX_new fetches its
// algorithms from the providers, which costs more than the handshake's own work; what differs
// per call (certificate, key, profiles, timer) is set on the SSL. The context is never changed
// after it is made, so workers share it without locks.
SSL_CTX* shared_context() {
  static SSL_CTX* ctx = [] {
    SSL_CTX* c = SSL_CTX_new(DTLS_method());
    if (!c) return c;
    bool ok = SSL_CTX_set_min_proto_version(c, DTLS1_2_VERSION) == 1 &&
              SSL_CTX_set_max_proto_version(c, DTLS1_2_VERSION) == 1 &&
              SSL_CTX_set_cipher_list(c, kCiphers) == 1 &&
              SSL_CTX_set1_groups_list(c, "X25519:P-256") == 1 &&
              // (returns 0 on success)
              SSL_CTX_set_tlsext_use_srtp(c, DtlsSession::kSrtpProfiles) == 0;
    if (!ok) {
      SSL_CTX_free(c);
      return static_cast<SSL_CTX*>(nullptr);
    }
    // The MTU is ours (kMtu), not the kernel's: there is no socket under the BIO. One handshake
    // per call: no tickets, no renegotiation.
    SSL_CTX_set_options(c, SSL_OP_NO_QUERY_MTU | SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    // Both sides present a self-signed certificate; it is trusted by its fingerprint only.
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    SSL_CTX_set_cert_verify_callback(c, verify_certificate, nullptr);
    return c;
  }();
  return ctx;
}

}  // namespace

// ---- certificate ----------------------------------------------------------------------------

struct DtlsCertificate::Impl {
  std::unique_ptr<X509, X509Free> cert;
  std::unique_ptr<EVP_PKEY, PkeyFree> key;
};

DtlsCertificate::~DtlsCertificate() = default;

std::shared_ptr<const DtlsCertificate> DtlsCertificate::generate() {
  auto impl = std::make_unique<Impl>();
  impl->key.reset(EVP_EC_gen("P-256"));
  impl->cert.reset(X509_new());
  if (!impl->key || !impl->cert) return nullptr;
  X509* x = impl->cert.get();
  // A random 64-bit serial, as peers keep no state about us: two calls' certificates differ.
  BIGNUM* serial = BN_new();
  bool ok = serial && BN_rand(serial, 64, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
            BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) != nullptr;
  BN_free(serial);
  X509_NAME* name = X509_get_subject_name(x);
  ok = ok && X509_set_version(x, 2) == 1 &&
       // A day back for peers whose clock is behind; the certificate lives as long as a call.
       X509_gmtime_adj(X509_getm_notBefore(x), -86400) != nullptr &&
       X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400) != nullptr &&
       X509_set_pubkey(x, impl->key.get()) == 1 &&
       X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                  reinterpret_cast<const unsigned char*>("esg"), -1, -1, 0) == 1 &&
       X509_set_issuer_name(x, name) == 1 && X509_sign(x, impl->key.get(), EVP_sha256()) > 0;
  if (!ok) return nullptr;
  auto fingerprint = fingerprint_of(EVP_sha256(), x);
  if (!fingerprint) return nullptr;
  std::shared_ptr<DtlsCertificate> out(new DtlsCertificate());
  out->impl_ = std::move(impl);
  out->fingerprint_ = std::move(*fingerprint);
  return out;
}

std::optional<std::string> certificate_fingerprint(std::string_view hash, std::string_view der) {
  const EVP_MD* md = digest_by_name(hash);
  if (!md) return std::nullopt;
  unsigned char buf[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(der.data(), der.size(), buf, &len, md, nullptr) != 1) return std::nullopt;
  return hex_with_colons(buf, len);
}

// ---- session --------------------------------------------------------------------------------

struct DtlsSession::Impl {
  enum class State { New, Handshaking, Connected, Done };

  DtlsSession& owner;
  DtlsRole role;
  std::shared_ptr<const DtlsCertificate> cert;
  const EVP_MD* remote_md = nullptr;
  std::string remote_fingerprint;  // upper case
  std::unique_ptr<SSL, SslFree> ssl;
  State state = State::New;
  bool fingerprint_ok = false;
  bool fingerprint_bad = false;
  unsigned int initial_timer_us = 1'000'000;
  unsigned int max_timer_us = 4'000'000;
  std::optional<TimePoint> deadline;       // handshake timeout
  std::optional<TimePoint> retransmit_at;  // OpenSSL's timer, on the caller's clock

  // The datagram being read: the BIO hands it to OpenSSL whole, once.
  std::string_view in;
  // Datagrams written by OpenSSL, sent when the call into OpenSSL returns. `open` is the one
  // records are still added to: a flight's records share datagrams up to kMtu (RFC 6347 §4.1.1
  // allows several records per datagram), which OpenSSL plans for through BIO_wpending.
  std::vector<std::string> out;
  std::string open;

  Impl(DtlsSession& o, DtlsRole r) : owner(o), role(r) {}

  bool fingerprint_matches(X509* peer) const {
    const auto got = fingerprint_of(remote_md, peer);
    return got && got->size() == remote_fingerprint.size() &&
           CRYPTO_memcmp(got->data(), remote_fingerprint.data(), got->size()) == 0;
  }

  void bio_write(const char* data, size_t len) {
    if (!open.empty() && open.size() + len > kMtu) bio_flush();
    open.append(data, len);
  }
  void bio_flush() {
    if (open.empty()) return;
    out.push_back(std::move(open));
    open.clear();
  }
  void flush_out() {
    bio_flush();
    if (out.empty()) return;
    std::vector<std::string> batch;
    batch.swap(out);
    for (const auto& d : batch)
      if (owner.send) owner.send(d);
  }

  void update_timer(TimePoint now) {
    struct timeval tv {};
    if (ssl && state != State::Done && DTLSv1_get_timeout(ssl.get(), &tv) == 1) {
      retransmit_at = now + std::chrono::seconds(tv.tv_sec) + microseconds(tv.tv_usec);
    } else {
      retransmit_at.reset();
    }
  }

  void fail(std::string_view why) {
    if (state == State::Done) return;
    state = State::Done;
    retransmit_at.reset();
    deadline.reset();
    if (owner.on_failed) owner.on_failed(why);
  }

  void begin(TimePoint now) {
    if (state != State::New) return;
    state = State::Handshaking;
    deadline = now + kHandshakeTimeout;
  }

  void handshake() {
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl.get());
    const int err = r == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl.get(), r);
    // An alert we raise goes out before we report.
    flush_out();
    if (r == 1) return connect();
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return;
    if (fingerprint_bad) {
      ERR_clear_error();
      return fail("fingerprint mismatch");
    }
    const std::string why = ssl_reason("handshake failed");
    fail(why);
  }

  void connect() {
    // The verify callback passed, but check again that it ran at all: a handshake that ended
    // without the peer's certificate must not key SRTP.
    if (!fingerprint_ok) return refuse("fingerprint mismatch");
    const SRTP_PROTECTION_PROFILE* chosen = SSL_get_selected_srtp_profile(ssl.get());
    const Profile* p = nullptr;
    for (const auto& candidate : kProfiles)
      if (chosen && chosen->id == candidate.id) p = &candidate;
    if (!p) return refuse("no SRTP profile");
    // RFC 5764 §4.2: client_write_SRTP_master_key, server_write_SRTP_master_key,
    // client_write_SRTP_master_salt, server_write_SRTP_master_salt.
    std::array<unsigned char, 2 * (32 + 14)> km{};
    const size_t total = 2 * (p->key + p->salt);
    if (SSL_export_keying_material(ssl.get(), km.data(), total, kExporterLabel,
                                   std::char_traits<char>::length(kExporterLabel), nullptr, 0,
                                   0) != 1)
      return refuse("key export failed");
    const char* b = reinterpret_cast<const char*>(km.data());
    std::string client(b, p->key), server(b + p->key, p->key);
    client.append(b + 2 * p->key, p->salt);
    server.append(b + 2 * p->key + p->salt, p->salt);
    OPENSSL_cleanse(km.data(), km.size());
    SrtpKeys keys;
    keys.profile = p->name;
    keys.local = role == DtlsRole::Client ? std::move(client) : std::move(server);
    keys.remote = role == DtlsRole::Client ? std::move(server) : std::move(client);
    state = State::Connected;
    deadline.reset();
    if (owner.on_connected) owner.on_connected(keys);
    OPENSSL_cleanse(keys.local.data(), keys.local.size());
    OPENSSL_cleanse(keys.remote.data(), keys.remote.size());
  }

  // The handshake ended but we will not use it: tell the peer, then report.
  void refuse(std::string_view why) {
    SSL_shutdown(ssl.get());
    flush_out();
    fail(why);
  }

  void read_records() {
    std::array<char, kMaxRecord> buf;
    while (state == State::Connected) {
      ERR_clear_error();
      const int n = SSL_read(ssl.get(), buf.data(), int(buf.size()));
      if (n > 0) {
        if (owner.on_data) owner.on_data(std::string_view(buf.data(), size_t(n)));
        continue;
      }
      const int err = SSL_get_error(ssl.get(), n);
      flush_out();  // a flight OpenSSL repeated for the peer's repeated Finished, or an alert
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return;
      if (err == SSL_ERROR_ZERO_RETURN) return fail("closed by peer");
      const std::string why = ssl_reason("read failed");
      return fail(why);
    }
  }
};

namespace {

DtlsSession::Impl* impl_of(SSL* ssl) {
  return ssl ? static_cast<DtlsSession::Impl*>(SSL_get_app_data(ssl)) : nullptr;
}

// Instead of a chain check: a self-signed certificate is what WebRTC peers present, and it is
// the one signaling named if its fingerprint matches (RFC 8122 §5, RFC 5763 §5).
int verify_certificate(X509_STORE_CTX* store, void*) {
  auto* ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* impl = impl_of(ssl);
  X509* peer = X509_STORE_CTX_get0_cert(store);
  if (impl && peer && impl->fingerprint_matches(peer)) {
    impl->fingerprint_ok = true;
    return 1;
  }
  if (impl) impl->fingerprint_bad = true;
  X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
  return 0;
}

// OpenSSL asks with 0 when it starts a flight's timer and with the last value when it ran out.
unsigned int retransmit_timer(SSL* ssl, unsigned int timer_us) {
  auto* impl = impl_of(ssl);
  if (!impl) return 1'000'000;
  if (timer_us == 0) return impl->initial_timer_us;
  return std::min(timer_us * 2, impl->max_timer_us);
}

// A BIO with datagram semantics over memory (OpenSSL 3.0 has no BIO_s_dgram_mem; a plain
// BIO_s_mem would run datagrams together): each read returns one whole received datagram,
// writes collect the records of a flight into datagrams of at most kMtu.
int bio_write(BIO* bio, const char* data, int len) {
  BIO_clear_retry_flags(bio);
  auto* impl = static_cast<DtlsSession::Impl*>(BIO_get_data(bio));
  if (!impl || len < 0) return -1;
  impl->bio_write(data, size_t(len));
  return len;
}

int bio_read(BIO* bio, char* out, int len) {
  BIO_clear_retry_flags(bio);
  auto* impl = static_cast<DtlsSession::Impl*>(BIO_get_data(bio));
  if (!impl || impl->in.empty()) {
    BIO_set_retry_read(bio);
    return -1;
  }
  // A datagram longer than OpenSSL's buffer is cut, as recv() would.
  const size_t n = std::min(impl->in.size(), size_t(std::max(len, 0)));
  std::copy_n(impl->in.data(), n, out);
  impl->in = {};
  return int(n);
}

long bio_ctrl(BIO* bio, int cmd, long, void*) {
  auto* impl = static_cast<DtlsSession::Impl*>(BIO_get_data(bio));
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      if (impl) impl->bio_flush();
      return 1;
    case BIO_CTRL_PENDING:
      return impl ? long(impl->in.size()) : 0;
    case BIO_CTRL_WPENDING:
      // What the open datagram holds: OpenSSL sizes the next fragment to the rest of kMtu.
      return impl ? long(impl->open.size()) : 0;
    case BIO_CTRL_DGRAM_QUERY_MTU:
    case BIO_CTRL_DGRAM_GET_FALLBACK_MTU:
      return long(DtlsSession::kMtu);
    case BIO_CTRL_DGRAM_GET_MTU_OVERHEAD:
      return 0;  // kMtu already is the room for DTLS (the leg's UDP/TURN headers are outside)
    default:
      return 0;
  }
}

int bio_create(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

int bio_destroy(BIO* bio) {
  BIO_set_data(bio, nullptr);
  return 1;
}

BIO_METHOD* datagram_bio_method() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "esg dtls datagram");
    if (!m) return m;
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
    BIO_meth_set_destroy(m, bio_destroy);
    return m;
  }();
  return method;
}

}  // namespace

DtlsSession::DtlsSession(DtlsRole role, std::shared_ptr<const DtlsCertificate> cert,
                         std::string remote_hash, std::string remote_fingerprint)
    : impl_(std::make_unique<Impl>(*this, role)) {
  Impl& s = *impl_;
  s.cert = std::move(cert);
  s.remote_md = digest_by_name(remote_hash);
  s.remote_fingerprint = std::move(remote_fingerprint);
  std::transform(s.remote_fingerprint.begin(), s.remote_fingerprint.end(),
                 s.remote_fingerprint.begin(),
                 [](unsigned char c) { return char(std::toupper(c)); });
  SSL_CTX* ctx = shared_context();
  BIO_METHOD* method = datagram_bio_method();
  if (!ctx || !method || !s.cert) return;  // start() or the first packet reports it
  std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx));
  BIO* bio = ssl ? BIO_new(method) : nullptr;
  if (!bio) return;
  BIO_set_data(bio, impl_.get());
  SSL_set_bio(ssl.get(), bio, bio);  // the SSL owns the BIO now
  SSL_set_app_data(ssl.get(), impl_.get());
  const auto& c = s.cert->impl();
  if (SSL_use_certificate(ssl.get(), c.cert.get()) != 1 ||
      SSL_use_PrivateKey(ssl.get(), c.key.get()) != 1 ||
      SSL_set_mtu(ssl.get(), kMtu) <= 0)  // (answers the MTU it took)
    return;
  DTLS_set_timer_cb(ssl.get(), retransmit_timer);
  if (role == DtlsRole::Client)
    SSL_set_connect_state(ssl.get());
  else
    SSL_set_accept_state(ssl.get());
  s.ssl = std::move(ssl);
}

DtlsSession::~DtlsSession() {
  ERR_clear_error();
}

void DtlsSession::set_retransmit_timeout(std::chrono::milliseconds initial,
                                         std::chrono::milliseconds max) {
  impl_->initial_timer_us =
      unsigned(std::max<int64_t>(1, duration_cast<microseconds>(initial).count()));
  impl_->max_timer_us = unsigned(
      std::max<int64_t>(impl_->initial_timer_us, duration_cast<microseconds>(max).count()));
}

void DtlsSession::set_srtp_profiles(const char* profiles) {
  if (impl_->ssl) SSL_set_tlsext_use_srtp(impl_->ssl.get(), profiles);
}

void DtlsSession::start(TimePoint now) {
  Impl& s = *impl_;
  if (s.state != Impl::State::New) return;
  s.begin(now);
  if (!s.ssl) return s.fail("dtls setup failed");
  if (s.role == DtlsRole::Client) s.handshake();
  s.update_timer(now);
}

void DtlsSession::on_packet(std::string_view datagram, TimePoint now) {
  Impl& s = *impl_;
  if (datagram.empty() || uint8_t(datagram[0]) < 20 || uint8_t(datagram[0]) > 63) return;
  if (s.state == Impl::State::Done) return;
  if (s.state == Impl::State::New) {
    if (s.role == DtlsRole::Client) return;  // a client speaks first
    s.begin(now);
  }
  if (!s.ssl) return s.fail("dtls setup failed");
  s.in = datagram;
  if (s.state == Impl::State::Handshaking) s.handshake();
  // Records after the Finished in the same datagram, or application data.
  if (s.state == Impl::State::Connected) s.read_records();
  s.in = {};
  s.update_timer(now);
}

bool DtlsSession::write(std::string_view data) {
  Impl& s = *impl_;
  if (s.state != Impl::State::Connected || data.empty() || data.size() > kMaxWrite) return false;
  ERR_clear_error();
  const int n = SSL_write(s.ssl.get(), data.data(), int(data.size()));
  s.flush_out();
  if (n <= 0) {
    ERR_clear_error();
    return false;
  }
  return size_t(n) == data.size();
}

size_t DtlsSession::max_data() const {
  if (impl_->state != Impl::State::Connected) return 0;
  return DTLS_get_data_mtu(impl_->ssl.get());
}

void DtlsSession::tick(TimePoint now) {
  Impl& s = *impl_;
  if (s.state == Impl::State::Done || s.state == Impl::State::New) return;
  if (s.state == Impl::State::Handshaking && s.deadline && now >= *s.deadline)
    return s.fail("handshake timeout");
  if (s.retransmit_at && now >= *s.retransmit_at) {
    ERR_clear_error();
    const int r = DTLSv1_handle_timeout(s.ssl.get());
    s.flush_out();
    if (r < 0) {
      // Too many timeouts for OpenSSL (DTLS1_TMO_ALERT_COUNT) before ours.
      const std::string why = ssl_reason("handshake timeout");
      return s.fail(why);
    }
  }
  s.update_timer(now);
}

std::optional<TimePoint> DtlsSession::next_tick() const {
  const Impl& s = *impl_;
  if (s.state == Impl::State::Done) return std::nullopt;
  if (s.retransmit_at && s.deadline) return std::min(*s.retransmit_at, *s.deadline);
  return s.retransmit_at ? s.retransmit_at : s.deadline;
}

bool DtlsSession::connected() const {
  return impl_->state == Impl::State::Connected;
}

void DtlsSession::close() {
  Impl& s = *impl_;
  if (s.state == Impl::State::Done) return;
  const bool spoke = s.state != Impl::State::New;
  s.state = Impl::State::Done;
  s.retransmit_at.reset();
  s.deadline.reset();
  if (spoke && s.ssl) {
    ERR_clear_error();
    SSL_shutdown(s.ssl.get());
    s.flush_out();
    ERR_clear_error();
  }
}

}  // namespace esg::media::dtls
