#include "telegram/calls/cipher.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>

namespace esg::telegram::calls {
namespace {

using Digest = std::array<unsigned char, 32>;

// SHA-256 over the concatenation of `parts`. False only if OpenSSL fails (out of memory).
bool sha256(std::initializer_list<std::string_view> parts, Digest& out) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) return false;
  for (std::string_view part : parts) {
    if (EVP_DigestUpdate(ctx.get(), part.data(), part.size()) != 1) return false;
  }
  unsigned int len = 0;
  return EVP_DigestFinal_ex(ctx.get(), out.data(), &len) == 1 && len == out.size();
}

std::string_view view(const Digest& d, size_t from, size_t to) {
  return {reinterpret_cast<const char*>(d.data()) + from, to - from};
}

// msg_key = SHA256(K[88+x, 120+x) || P)[8, 24).
bool msg_key(const std::string& key, size_t x, std::string_view plaintext, std::string& out) {
  Digest d;
  if (!sha256({std::string_view(key).substr(88 + x, 32), plaintext}, d)) return false;
  out.assign(view(d, 8, 24));
  return true;
}

// AES-256-CTR in place with the key and IV that `mk` and the x-th part of the key give:
//   a = SHA256(msg_key || K[x, x+36)), b = SHA256(K[40+x, 76+x) || msg_key),
//   aes_key = a[0,8) || b[8,24) || a[24,32), aes_iv = b[0,4) || a[8,16) || b[24,28).
// CTR is its own inverse, so this both encrypts and decrypts.
bool aes_ctr(const std::string& key, size_t x, std::string_view mk, char* data, size_t len) {
  const std::string_view k(key);
  Digest a;
  Digest b;
  if (!sha256({mk, k.substr(x, 36)}, a) || !sha256({k.substr(40 + x, 36), mk}, b)) return false;
  std::array<unsigned char, 32> aes_key;
  std::array<unsigned char, 16> aes_iv;
  auto put = [](unsigned char* to, const Digest& from, size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i)
      *to++ = from[i];
    return to;
  };
  unsigned char* p = put(aes_key.data(), a, 0, 8);
  p = put(p, b, 8, 24);
  put(p, a, 24, 32);
  p = put(aes_iv.data(), b, 0, 4);
  p = put(p, a, 8, 16);
  put(p, b, 24, 28);

  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(),
                                                                      EVP_CIPHER_CTX_free);
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_ctr(), nullptr, aes_key.data(),
                                 aes_iv.data()) != 1) {
    return false;
  }
  auto* bytes = reinterpret_cast<unsigned char*>(data);
  // EVP lengths are int; packets are at most 128 KiB (decrypt) or what the caller builds.
  int out_len = 0;
  if (len > 0 && EVP_EncryptUpdate(ctx.get(), bytes, &out_len, bytes, static_cast<int>(len)) != 1) {
    return false;
  }
  return EVP_EncryptFinal_ex(ctx.get(), bytes + out_len, &out_len) == 1;
}

}  // namespace

SignalingCipher::SignalingCipher(std::string_view key, bool is_outgoing)
    : key_(key),
      // §2.1: the caller sends with x = 128 and the callee with 136; each receives with the
      // other's.
      send_x_(128 + (is_outgoing ? 0 : 8)),
      receive_x_(128 + (is_outgoing ? 8 : 0)),
      valid_(key.size() == kCallKeySize) {}

std::string SignalingCipher::encrypt(std::string_view plaintext) const {
  if (!valid_ || plaintext.size() > static_cast<size_t>(INT32_MAX)) return {};
  std::string wire;
  if (!msg_key(key_, send_x_, plaintext, wire)) return {};
  const std::string mk = wire;
  wire.append(plaintext);
  if (!aes_ctr(key_, send_x_, mk, wire.data() + kMsgKeySize, plaintext.size())) return {};
  return wire;
}

std::optional<std::string> SignalingCipher::decrypt(std::string_view wire) const {
  if (!valid_ || wire.size() < kMinIncomingPacketSize || wire.size() > kMaxIncomingPacketSize) {
    return std::nullopt;
  }
  const std::string_view mk = wire.substr(0, kMsgKeySize);
  std::string plaintext(wire.substr(kMsgKeySize));
  if (!aes_ctr(key_, receive_x_, mk, plaintext.data(), plaintext.size())) return std::nullopt;
  std::string check;
  if (!msg_key(key_, receive_x_, plaintext, check)) return std::nullopt;
  // Constant time, as for any MAC.
  if (CRYPTO_memcmp(check.data(), mk.data(), kMsgKeySize) != 0) return std::nullopt;
  return plaintext;
}

}  // namespace esg::telegram::calls
