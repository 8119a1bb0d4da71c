#pragma once
// SRTP with keys exchanged in SDP (RFC 3711, RFC 4568 SDES) through libsrtp2: one context per
// direction and leg. Keys are per hop: esg makes its own for what it sends to a leg and takes
// the leg's for what it receives.

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace esg::media {

// The suites esg offers and accepts, best first.
bool srtp_suite_supported(std::string_view suite);
inline constexpr const char* kSrtpSuite = "AES_CM_128_HMAC_SHA1_80";
// A fresh master key and salt (30 random bytes), base64 as in `inline:`.
std::string new_srtp_key();
// The key of an `inline:<key>[|lifetime][|MKI]` parameter.
std::optional<std::string> inline_key(std::string_view key_params);
// Whether every RTP stream of the description `sdp` that is not refused (port 0) carries an
// SDES key (a=crypto with an `inline:` key): what a leg whose `srtp` is required must send and
// be sent. For descriptions that cross without the relay: the keys then go end to end between
// the peers, so any suite counts (the relay checks its own suites). A description that does not
// parse has no keys.
bool srtp_keyed(std::string_view sdp);

class Srtp {
 public:
  // Outbound protects what esg sends; inbound checks and decrypts what it receives. None for
  // an unknown suite or a key that is not 30 bytes of base64.
  static std::unique_ptr<Srtp> create(std::string_view suite, std::string_view key_base64,
                                      bool outbound);
  // An SRTP context keyed by DTLS-SRTP (RFC 5764): `profile` is "AES_CM_128_HMAC_SHA1_80",
  // "AEAD_AES_128_GCM" or "AEAD_AES_256_GCM" (RFC 7714) and `key_salt` the raw master key
  // followed by the master salt (30, 28 or 44 bytes). RTCP uses the same key (rtcp-mux, one
  // context for both). None for another profile or length.
  static std::unique_ptr<Srtp> create_keyed(std::string_view profile, std::string_view key_salt,
                                            bool outbound);
  ~Srtp();
  Srtp(const Srtp&) = delete;
  Srtp& operator=(const Srtp&) = delete;
  // Protects `packet` (RTP, or RTCP when `rtcp`) in place, growing it by the auth tag.
  bool protect(std::string& packet, bool rtcp);
  // Checks and decrypts `len` bytes at `data` in place; `len` shrinks. False: not authentic
  // (or replayed): the packet is dropped.
  bool unprotect(char* data, size_t& len, bool rtcp);

 private:
  Srtp() = default;
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

}  // namespace esg::media
