#pragma once
// DTLS 1.2 with DTLS-SRTP keying (RFC 6347, RFC 5764) for the WebRTC-style media leg, sans-IO:
// datagrams and a `now` come in, datagrams, keys and application data go out through callbacks.
// OpenSSL does the protocol over an in-memory datagram BIO; nothing here owns a socket, a timer
// or a thread. The leg that owns the 5-tuple feeds it the datagrams whose first byte is 20..63
// (RFC 7983) and calls tick() at next_tick().
//
// Callbacks run inside on_packet/start/tick/write/close. A callback must not destroy the session
// it was called from (STYLE.md: an object that ends in its own callback is deleted later by its
// event loop); after on_failed the session is inert.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace esg::media::dtls {

using TimePoint = std::chrono::steady_clock::time_point;

// A self-signed ECDSA P-256 certificate and its key, fresh per call (TELEGRAM-CALLS.md §4.2).
// Shared by the session(s) of one call; immutable once made.
class DtlsCertificate {
 public:
  // None only if OpenSSL cannot make a key or sign (out of memory).
  static std::shared_ptr<const DtlsCertificate> generate();
  ~DtlsCertificate();
  DtlsCertificate(const DtlsCertificate&) = delete;
  DtlsCertificate& operator=(const DtlsCertificate&) = delete;

  // The sha-256 fingerprint for a=fingerprint / InitialSetup: upper-case hex bytes joined by
  // colons (RFC 4572 §5), "AB:CD:...", 95 characters.
  const std::string& fingerprint() const { return fingerprint_; }

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  DtlsCertificate() = default;
  std::unique_ptr<Impl> impl_;
  std::string fingerprint_;
};

// The fingerprint of a DER certificate with the named hash ("sha-256", "sha-1", "sha-384",
// "sha-512"; RFC 4572 names, any case), formatted as above; none for another hash name.
std::optional<std::string> certificate_fingerprint(std::string_view hash, std::string_view der);

// What the handshake agreed for SRTP: the use_srtp profile by its SDES/libsrtp name and each
// direction's master key followed by its master salt (RFC 5764 §4.2).
struct SrtpKeys {
  std::string profile;  // "AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM", "AEAD_AES_256_GCM"
  std::string local;    // what we send
  std::string remote;   // what we receive
};

enum class DtlsRole { Client, Server };

class DtlsSession {
 public:
  // The use_srtp profiles we offer (client) and accept (server), in our order of preference:
  // AES_CM_128_HMAC_SHA1_80 first, then GCM (§4.3).
  static constexpr const char* kSrtpProfiles =
      "SRTP_AES128_CM_SHA1_80:SRTP_AEAD_AES_128_GCM:SRTP_AEAD_AES_256_GCM";
  // Each datagram sent is at most this long (a path through TURN and reflectors).
  static constexpr size_t kMtu = 1200;
  // The handshake gives up this long after start() (or the first packet for a server).
  static constexpr std::chrono::seconds kHandshakeTimeout{30};
  // The largest write(): a TLS plaintext record (RFC 6347 §4.1 via RFC 5246 §6.2.1).
  static constexpr size_t kMaxWrite = 16384;

  // `remote_hash` and `remote_fingerprint` come from signaling (a=fingerprint, InitialSetup);
  // the peer's certificate must have that fingerprint.
  DtlsSession(DtlsRole role, std::shared_ptr<const DtlsCertificate> cert, std::string remote_hash,
              std::string remote_fingerprint);
  ~DtlsSession();
  DtlsSession(const DtlsSession&) = delete;
  DtlsSession& operator=(const DtlsSession&) = delete;

  // DTLS records for the peer: one call a datagram, each <= kMtu bytes.
  std::function<void(std::string_view datagram)> send;
  // The handshake is done, the peer's certificate has the fingerprint and a profile was chosen.
  std::function<void(const SrtpKeys&)> on_connected;
  // The session is over: an alert, "fingerprint mismatch", "no SRTP profile", "handshake
  // timeout", "closed by peer". Called once; nothing is called after it.
  std::function<void(std::string_view why)> on_failed;
  // Application data from the peer (SCTP packets), one record each.
  std::function<void(std::string_view data)> on_data;

  // Retransmission timer of the handshake flights: first timeout, doubling up to `max`
  // (RFC 6347 §4.2.4.1; default 1 s up to 4 s, so a lossy path gets several tries within the
  // 20 s a Telegram peer waits). Call before start(); tests use a few milliseconds.
  void set_retransmit_timeout(std::chrono::milliseconds initial, std::chrono::milliseconds max);
  // Only for tests: the use_srtp profiles this side offers or accepts instead of kSrtpProfiles.
  void set_srtp_profiles(const char* profiles);

  // The client sends its ClientHello; the server waits for one.
  void start(TimePoint now);
  // A datagram from the peer whose first byte is 20..63; anything else is ignored.
  void on_packet(std::string_view datagram, TimePoint now);
  // Sends application data in one record; false before connected, after the end, or when
  // `data` is empty or longer than kMaxWrite.
  bool write(std::string_view data);
  // The most application data whose record still fits kMtu (1163 with the AES-GCM suites):
  // a caller that keeps its packets this small (the SCTP path MTU) keeps every datagram within
  // kMtu. Longer writes are sent, in a datagram of their own that is longer than kMtu, rather
  // than lost. 0 before connected.
  size_t max_data() const;
  // Retransmits a flight whose timer ran out; fails the handshake after kHandshakeTimeout.
  // OpenSSL times its retransmissions by the wall clock, so tick() at next_tick() on a steady
  // clock may find the flight not yet due; it then asks again a little later.
  void tick(TimePoint now);
  std::optional<TimePoint> next_tick() const;
  bool connected() const;
  // Sends close_notify; the session is inert afterwards (no callback is called).
  void close();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace esg::media::dtls
