#include "media/webrtc/dtls/dtls.hpp"

#include <gtest/gtest.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cctype>
#include <thread>

#include "link.hpp"

namespace {

using namespace esg::media::dtls;
using esg::media::dtls::test::Link;
using esg::media::dtls::test::Side;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

// The first byte of a DTLS handshake record and its handshake type (RFC 6347 §4.1, §4.2.2).
bool is_handshake(const std::string& d, int type) {
  return d.size() > 13 && d[0] == 22 && uint8_t(d[13]) == type;
}
constexpr int kClientHello = 1;
constexpr int kServerHello = 2;

// Drives both sides' timers with the real clock (OpenSSL times retransmissions by the wall
// clock) until both are connected or failed, for at most `limit`.
void run_timers(Link& l, milliseconds limit) {
  const auto end = steady_clock::now() + limit;
  while (!(l.both_connected() || l.client.failed || l.server.failed) && steady_clock::now() < end) {
    auto next = steady_clock::now() + milliseconds(20);
    for (auto* s : {&l.client, &l.server})
      if (auto t = s->session->next_tick()) next = std::min(next, *t);
    std::this_thread::sleep_until(next);
    l.now = steady_clock::now();
    l.client.session->tick(l.now);
    l.server.session->tick(l.now);
    l.pump();
  }
}

TEST(DtlsCertificate, FingerprintIsUpperCaseSha256HexWithColonsRfc4572) {
  auto a = DtlsCertificate::generate();
  auto b = DtlsCertificate::generate();
  ASSERT_TRUE(a && b);
  // 32 bytes: "XX:" 31 times and "XX", X in 0-9A-F.
  const std::string& f = a->fingerprint();
  ASSERT_EQ(f.size(), 95u);
  for (size_t i = 0; i < f.size(); ++i) {
    if (i % 3 == 2)
      EXPECT_EQ(f[i], ':') << f;
    else
      EXPECT_TRUE(std::isdigit(uint8_t(f[i])) || (f[i] >= 'A' && f[i] <= 'F')) << f;
  }
  EXPECT_NE(a->fingerprint(), b->fingerprint());  // fresh per call
}

TEST(DtlsCertificate, FingerprintOfBytesByHashName) {
  // SHA-256("abc") and SHA-1("abc") (FIPS 180-2 test vectors).
  EXPECT_EQ(certificate_fingerprint("sha-256", "abc"),
            "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:"
            "F2:00:15:AD");
  EXPECT_EQ(certificate_fingerprint("SHA-1", "abc"),
            "A9:99:3E:36:47:06:81:6A:BA:3E:25:71:78:50:C2:6C:9C:D0:D8:9D");
  EXPECT_FALSE(certificate_fingerprint("md5", "abc"));
}

TEST(DtlsSession, ClientAndServerConnectWithMatchingSha1_80KeysByDefault) {
  Link l;
  l.start();
  ASSERT_TRUE(l.both_connected()) << l.client.failed.value_or("") << l.server.failed.value_or("");
  EXPECT_TRUE(l.client.session->connected());
  EXPECT_TRUE(l.server.session->connected());
  const auto& c = *l.client.keys;
  const auto& s = *l.server.keys;
  EXPECT_EQ(c.profile, "AES_CM_128_HMAC_SHA1_80");
  EXPECT_EQ(s.profile, c.profile);
  EXPECT_EQ(c.local.size(), 30u);  // 16-byte key, 14-byte salt
  EXPECT_EQ(c.remote.size(), 30u);
  EXPECT_EQ(c.local, s.remote);
  EXPECT_EQ(c.remote, s.local);
  EXPECT_NE(c.local, c.remote);
  EXPECT_FALSE(l.client.failed || l.server.failed);
  // A full handshake: the client's two flights and the server's two, no more.
  EXPECT_LE(l.largest_datagram(), DtlsSession::kMtu);
  EXPECT_TRUE(is_handshake(l.client.sent.front(), kClientHello));
  EXPECT_TRUE(is_handshake(l.server.sent.front(), kServerHello));
  // The handshake is over: no retransmission is pending on either side.
  EXPECT_FALSE(l.client.session->next_tick());
}

TEST(DtlsSession, ServerThatAcceptsOnlyGcmGetsGcmKeysOfItsLength) {
  for (const auto& [openssl, profile, length] :
       {std::tuple{"SRTP_AEAD_AES_128_GCM", "AEAD_AES_128_GCM", 28u},
        std::tuple{"SRTP_AEAD_AES_256_GCM", "AEAD_AES_256_GCM", 44u}}) {
    Link l;
    l.server.session->set_srtp_profiles(openssl);
    l.start();
    ASSERT_TRUE(l.both_connected()) << profile;
    EXPECT_EQ(l.client.keys->profile, profile);
    EXPECT_EQ(l.server.keys->profile, profile);
    EXPECT_EQ(l.client.keys->local.size(), length);
    EXPECT_EQ(l.client.keys->local, l.server.keys->remote);
    EXPECT_EQ(l.client.keys->remote, l.server.keys->local);
  }
}

TEST(DtlsSession, NoCommonSrtpProfileFailsBothSides) {
  Link l;
  l.client.session->set_srtp_profiles("SRTP_AES128_CM_SHA1_80");
  l.server.session->set_srtp_profiles("SRTP_AEAD_AES_256_GCM");
  l.start();
  EXPECT_FALSE(l.client.keys || l.server.keys);
  ASSERT_TRUE(l.client.failed && l.server.failed);
  EXPECT_EQ(*l.client.failed, "no SRTP profile");
}

TEST(DtlsSession, ServerCertificateOtherThanSignaledFailsBothRfc8122) {
  auto other = DtlsCertificate::generate();
  Link l(other->fingerprint(), "");
  l.start();
  EXPECT_FALSE(l.client.keys || l.server.keys);
  ASSERT_TRUE(l.client.failed && l.server.failed);
  EXPECT_EQ(*l.client.failed, "fingerprint mismatch");
  EXPECT_FALSE(l.client.session->connected());
  EXPECT_FALSE(l.client.session->next_tick());  // nothing left to retransmit
}

TEST(DtlsSession, ClientCertificateOtherThanSignaledFailsBoth) {
  auto other = DtlsCertificate::generate();
  Link l("", other->fingerprint());
  l.start();
  EXPECT_FALSE(l.client.keys || l.server.keys);
  ASSERT_TRUE(l.client.failed && l.server.failed);
  EXPECT_EQ(*l.server.failed, "fingerprint mismatch");
  EXPECT_FALSE(l.client.session->connected());
}

TEST(DtlsSession, FingerprintFromSignalingIsComparedCaseInsensitively) {
  Link l;
  std::string lower = l.server_cert->fingerprint();
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  l.client.session =
      std::make_unique<DtlsSession>(DtlsRole::Client, l.client_cert, "SHA-256", lower);
  l.wire(l.client);
  l.start();
  EXPECT_TRUE(l.both_connected()) << l.client.failed.value_or("");
}

TEST(DtlsSession, UnknownFingerprintHashFails) {
  Link l;
  l.client.session = std::make_unique<DtlsSession>(DtlsRole::Client, l.client_cert, "md5",
                                                   l.server_cert->fingerprint());
  l.wire(l.client);
  l.start();
  EXPECT_FALSE(l.both_connected());
  EXPECT_EQ(l.client.failed.value_or(""), "fingerprint mismatch");
}

// The retransmission timers below are long enough that no retransmission can happen inside
// start(): OpenSSL also retransmits from within a read once its wall-clock timer has run out,
// and a loaded CI machine (sanitizers, twice as many tests as cores) once stalled start() for
// longer than 20 ms, which connected both sides before the test looked.
constexpr milliseconds kRetransmit{200};

TEST(DtlsSession, LostClientHelloIsRetransmittedRfc6347_4_2_4) {
  Link l;
  l.lose = [&l](const Side& from, size_t index) { return &from == &l.client && index == 0; };
  l.client.session->set_retransmit_timeout(kRetransmit, 2 * kRetransmit);
  l.start();
  EXPECT_EQ(l.client.lost, 1u);
  EXPECT_FALSE(l.both_connected());
  ASSERT_TRUE(l.client.session->next_tick());
  EXPECT_LE(*l.client.session->next_tick(), l.now + kRetransmit);
  run_timers(l, milliseconds(3000));
  ASSERT_TRUE(l.both_connected()) << l.client.failed.value_or("");
  ASSERT_GE(l.client.sent.size(), 2u);
  EXPECT_TRUE(is_handshake(l.client.sent[0], kClientHello));
  // The same ClientHello again, in a record of its own sequence number (RFC 6347 §4.1).
  EXPECT_EQ(l.client.sent[1].substr(13), l.client.sent[0].substr(13));
  EXPECT_EQ(l.client.keys->local, l.server.keys->remote);
}

TEST(DtlsSession, LostFinalServerFlightIsRecoveredByTheClientsRetransmission) {
  Link l;
  // The server's last flight (ChangeCipherSpec, Finished) answers the client's second one; the
  // server is connected once it has sent it.
  l.lose = [&l](const Side& from, size_t) {
    return &from == &l.server && !l.server.keys && l.client.sent.size() > 1;
  };
  l.client.session->set_retransmit_timeout(kRetransmit, 2 * kRetransmit);
  l.server.session->set_retransmit_timeout(kRetransmit, 2 * kRetransmit);
  l.start();
  EXPECT_TRUE(l.server.keys);   // the server is done when it sends its Finished
  EXPECT_FALSE(l.client.keys);  // which the client never got
  EXPECT_GE(l.server.lost, 1u);
  const size_t server_sent = l.server.sent.size();
  run_timers(l, milliseconds(3000));
  ASSERT_TRUE(l.both_connected()) << l.client.failed.value_or("");
  EXPECT_GT(l.server.sent.size(), server_sent);  // the connected server repeated its flight
  EXPECT_EQ(l.client.keys->local, l.server.keys->remote);
}

TEST(DtlsSession, HandshakeGivesUpAfterThirtySeconds) {
  Link l;
  l.lose = [](const Side&, size_t) { return true; };
  const auto t0 = l.now;
  l.start();
  auto next = l.client.session->next_tick();
  ASSERT_TRUE(next);
  EXPECT_LE(*next, t0 + std::chrono::seconds(1));  // the first retransmission, RFC default
  l.client.session->tick(t0 + std::chrono::seconds(29));
  EXPECT_FALSE(l.client.failed);
  l.client.session->tick(t0 + DtlsSession::kHandshakeTimeout);
  EXPECT_EQ(l.client.failed.value_or(""), "handshake timeout");
  // The server that never heard a ClientHello gives up as well.
  ASSERT_TRUE(l.server.session->next_tick());
  EXPECT_LE(*l.server.session->next_tick(), t0 + DtlsSession::kHandshakeTimeout);
  l.server.session->tick(t0 + DtlsSession::kHandshakeTimeout);
  EXPECT_EQ(l.server.failed.value_or(""), "handshake timeout");
  EXPECT_FALSE(l.client.session->next_tick());
}

TEST(DtlsSession, ApplicationDataBothWaysAfterConnected) {
  Link l;
  EXPECT_FALSE(l.client.session->write("early"));  // before the handshake
  EXPECT_EQ(l.client.session->max_data(), 0u);
  l.start();
  ASSERT_TRUE(l.both_connected());
  const size_t max = l.client.session->max_data();
  EXPECT_GT(max, 1100u);
  EXPECT_LT(max, DtlsSession::kMtu);
  ASSERT_TRUE(l.client.session->write("to the server"));
  const std::string big(max, 'x');
  ASSERT_TRUE(l.server.session->write(big));
  ASSERT_TRUE(l.server.session->write(std::string("\0\1binary", 8)));
  l.pump();
  EXPECT_LE(l.largest_datagram(), DtlsSession::kMtu);
  // More than max_data() still goes, in a longer datagram; more than a record does not.
  const std::string bigger(DtlsSession::kMaxWrite, 'y');
  ASSERT_TRUE(l.server.session->write(bigger));
  EXPECT_GT(l.server.sent.back().size(), DtlsSession::kMtu);
  EXPECT_FALSE(l.server.session->write(std::string(DtlsSession::kMaxWrite + 1, 'z')));
  EXPECT_FALSE(l.server.session->write(""));
  l.pump();
  ASSERT_EQ(l.server.data.size(), 1u);
  EXPECT_EQ(l.server.data[0], "to the server");
  ASSERT_EQ(l.client.data.size(), 3u);
  EXPECT_EQ(l.client.data[0], big);
  EXPECT_EQ(l.client.data[1], std::string("\0\1binary", 8));
  EXPECT_EQ(l.client.data[2], bigger);
  // What is on the wire is not the plaintext.
  EXPECT_EQ(l.client.sent.back().find("to the server"), std::string::npos);
}

TEST(DtlsSession, CloseSendsCloseNotifyAndThePeerEnds) {
  Link l;
  l.start();
  ASSERT_TRUE(l.both_connected());
  const size_t before = l.client.sent.size();
  l.client.session->close();
  EXPECT_EQ(l.client.sent.size(), before + 1);  // the alert
  l.pump();
  EXPECT_EQ(l.server.failed.value_or(""), "closed by peer");
  EXPECT_FALSE(l.client.failed);  // the closer hears nothing
  EXPECT_FALSE(l.client.session->write("after"));
  EXPECT_FALSE(l.server.session->write("after"));
  EXPECT_FALSE(l.client.session->connected());
}

TEST(DtlsSession, DatagramsThatAreNotDtlsAreIgnoredRfc7983) {
  Link l;
  l.server.session->start(l.now);
  l.server.session->on_packet(std::string("\x80\x00\x01\x02", 4), l.now);  // RTP
  l.server.session->on_packet(std::string("\x00\x01\x00\x00", 4), l.now);  // STUN
  l.server.session->on_packet("", l.now);
  // A record-shaped datagram of garbage is dropped by OpenSSL without an end.
  l.server.session->on_packet(std::string("\x16\xfe\xfd garbage that is not a record"), l.now);
  EXPECT_FALSE(l.server.failed);
  EXPECT_TRUE(l.server.sent.empty());
  l.client.session->start(l.now);
  l.pump();
  EXPECT_TRUE(l.both_connected());
}

// ---- the key layout against a peer that is plain OpenSSL ------------------------------------

struct Reference {
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  BIO* in = nullptr;
  BIO* out = nullptr;
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  std::string fingerprint;

  Reference() {
    key = EVP_EC_gen("P-256");
    cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 7);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_set_issuer_name(cert, X509_get_subject_name(cert));
    X509_sign(cert, key, EVP_sha256());
    unsigned char* der = nullptr;
    const int len = i2d_X509(cert, &der);
    fingerprint = *certificate_fingerprint("sha-256", std::string_view((char*)der, size_t(len)));
    OPENSSL_free(der);
    ctx = SSL_CTX_new(DTLS_server_method());
    SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION);
    SSL_CTX_use_certificate(ctx, cert);
    SSL_CTX_use_PrivateKey(ctx, key);
    SSL_CTX_set_tlsext_use_srtp(ctx, "SRTP_AES128_CM_SHA1_80");
    SSL_CTX_set_options(ctx, SSL_OP_NO_QUERY_MTU);
    ssl = SSL_new(ctx);
    in = BIO_new(BIO_s_mem());
    out = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in, -1);
    BIO_set_mem_eof_return(out, -1);
    SSL_set_bio(ssl, in, out);
    SSL_set_mtu(ssl, 1200);
    SSL_set_accept_state(ssl);
  }
  ~Reference() {
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    X509_free(cert);
    EVP_PKEY_free(key);
  }
  // Everything the reference wrote since the last call (records run together: one datagram
  // may hold several records).
  std::string take() {
    std::string d(size_t(BIO_ctrl_pending(out)), '\0');
    if (!d.empty()) BIO_read(out, d.data(), int(d.size()));
    return d;
  }
};

TEST(DtlsSession, ClientKeysAreTheRfc5764ExporterLayoutOfAPlainOpenSslServer) {
  Reference ref;
  auto cert = DtlsCertificate::generate();
  DtlsSession client(DtlsRole::Client, cert, "sha-256", ref.fingerprint);
  std::optional<SrtpKeys> keys;
  std::optional<std::string> failed;
  client.send = [&](std::string_view d) { BIO_write(ref.in, d.data(), int(d.size())); };
  client.on_connected = [&](const SrtpKeys& k) { keys = k; };
  client.on_failed = [&](std::string_view why) { failed = std::string(why); };
  const auto now = steady_clock::now();
  client.start(now);
  for (int i = 0; i < 10 && !keys && !failed; ++i) {
    SSL_do_handshake(ref.ssl);
    ERR_clear_error();
    const std::string d = ref.take();
    if (!d.empty()) client.on_packet(d, now);
  }
  ASSERT_TRUE(keys) << failed.value_or("");
  ASSERT_EQ(SSL_is_init_finished(ref.ssl), 1);
  // client_write_key(16) server_write_key(16) client_write_salt(14) server_write_salt(14).
  unsigned char km[60];
  ASSERT_EQ(
      SSL_export_keying_material(ref.ssl, km, sizeof km, "EXTRACTOR-dtls_srtp", 19, nullptr, 0, 0),
      1);
  const std::string m(reinterpret_cast<char*>(km), sizeof km);
  EXPECT_EQ(keys->profile, "AES_CM_128_HMAC_SHA1_80");
  EXPECT_EQ(keys->local, m.substr(0, 16) + m.substr(32, 14));
  EXPECT_EQ(keys->remote, m.substr(16, 16) + m.substr(46, 14));
}

}  // namespace
