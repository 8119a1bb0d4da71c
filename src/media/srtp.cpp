#include "media/srtp.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <srtp2/srtp.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include "sdp/session.hpp"

namespace esg::media {

namespace {

constexpr size_t kKeyLength = 30;  // 128-bit master key and 112-bit salt

void init_once() {
  static std::once_flag once;
  std::call_once(once, [] { srtp_init(); });
}

std::optional<std::string> from_base64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::vector<unsigned char> out(text.size() / 4 * 3 + 1);
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                int(text.size()));
  if (n < 0) return std::nullopt;
  size_t len = size_t(n);
  for (size_t i = text.size(); i > 0 && text[i - 1] == '='; --i)
    --len;  // EVP_DecodeBlock counts the padding as bytes
  return std::string(reinterpret_cast<char*>(out.data()), len);
}

}  // namespace

bool srtp_suite_supported(std::string_view suite) {
  return suite == "AES_CM_128_HMAC_SHA1_80" || suite == "AES_CM_128_HMAC_SHA1_32";
}

std::string new_srtp_key() {
  unsigned char key[kKeyLength];
  RAND_bytes(key, sizeof key);
  unsigned char out[64];
  const int n = EVP_EncodeBlock(out, key, sizeof key);
  return std::string(reinterpret_cast<char*>(out), size_t(n));
}

std::optional<std::string> inline_key(std::string_view key_params) {
  if (key_params.substr(0, 7) != "inline:") return std::nullopt;
  std::string_view key = key_params.substr(7);
  key = key.substr(0, key.find('|'));
  return std::string(key);
}

bool srtp_keyed(std::string_view sdp) {
  auto parsed = sdp::parse(sdp);
  if (!parsed) return false;
  for (const auto& m : parsed->media) {
    if (m.port == 0 || m.proto.find("RTP/") == std::string::npos) continue;
    const auto keys = m.crypto();
    if (std::none_of(keys.begin(), keys.end(),
                     [](const sdp::Crypto& c) { return inline_key(c.key_params).has_value(); }))
      return false;
  }
  return true;
}

struct Srtp::Ctx {
  srtp_t session = nullptr;
};

std::unique_ptr<Srtp> Srtp::create(std::string_view suite, std::string_view key_base64,
                                   bool outbound) {
  init_once();
  auto key = from_base64(key_base64);
  if (!key || key->size() != kKeyLength || !srtp_suite_supported(suite)) return nullptr;
  srtp_policy_t policy{};
  if (suite == "AES_CM_128_HMAC_SHA1_32") {
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&policy.rtp);
  } else {
    srtp_crypto_policy_set_rtp_default(&policy.rtp);
  }
  srtp_crypto_policy_set_rtcp_default(&policy.rtcp);  // SRTCP is always 80-bit (RFC 4568 §6.2)
  policy.ssrc.type = outbound ? ssrc_any_outbound : ssrc_any_inbound;
  policy.key = reinterpret_cast<unsigned char*>(key->data());
  policy.window_size = 1024;
  policy.allow_repeat_tx = 1;
  std::unique_ptr<Srtp> s(new Srtp());
  s->ctx_ = std::make_unique<Ctx>();
  if (srtp_create(&s->ctx_->session, &policy) != srtp_err_status_ok) return nullptr;
  return s;
}

std::unique_ptr<Srtp> Srtp::create_keyed(std::string_view profile, std::string_view key_salt,
                                         bool outbound) {
  init_once();
  srtp_policy_t policy{};
  size_t length = 0;
  if (profile == "AES_CM_128_HMAC_SHA1_80") {
    srtp_crypto_policy_set_rtp_default(&policy.rtp);
    srtp_crypto_policy_set_rtcp_default(&policy.rtcp);
    length = 30;
  } else if (profile == "AEAD_AES_128_GCM") {
    srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp);
    srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp);
    length = 28;  // 128-bit key, 96-bit salt (RFC 7714 §12)
  } else if (profile == "AEAD_AES_256_GCM") {
    srtp_crypto_policy_set_aes_gcm_256_16_auth(&policy.rtp);
    srtp_crypto_policy_set_aes_gcm_256_16_auth(&policy.rtcp);
    length = 44;
  }
  if (length == 0 || key_salt.size() != length) return nullptr;
  std::string key(key_salt);  // libsrtp takes a non-const pointer
  policy.ssrc.type = outbound ? ssrc_any_outbound : ssrc_any_inbound;
  policy.key = reinterpret_cast<unsigned char*>(key.data());
  policy.window_size = 1024;  // as create(): the relay's replay window
  policy.allow_repeat_tx = 1;
  std::unique_ptr<Srtp> s(new Srtp());
  s->ctx_ = std::make_unique<Ctx>();
  const auto status = srtp_create(&s->ctx_->session, &policy);
  OPENSSL_cleanse(key.data(), key.size());
  if (status != srtp_err_status_ok) return nullptr;
  return s;
}

Srtp::~Srtp() {
  if (ctx_ && ctx_->session) srtp_dealloc(ctx_->session);
}

bool Srtp::protect(std::string& packet, bool rtcp) {
  const size_t len = packet.size();
  packet.resize(len + SRTP_MAX_TRAILER_LEN + 4);
  int n = int(len);
  const auto status = rtcp ? srtp_protect_rtcp(ctx_->session, packet.data(), &n)
                           : srtp_protect(ctx_->session, packet.data(), &n);
  if (status != srtp_err_status_ok) {
    packet.resize(len);
    return false;
  }
  packet.resize(size_t(n));
  return true;
}

bool Srtp::unprotect(char* data, size_t& len, bool rtcp) {
  int n = int(len);
  const auto status =
      rtcp ? srtp_unprotect_rtcp(ctx_->session, data, &n) : srtp_unprotect(ctx_->session, data, &n);
  if (status != srtp_err_status_ok) return false;
  len = size_t(n);
  return true;
}

}  // namespace esg::media
