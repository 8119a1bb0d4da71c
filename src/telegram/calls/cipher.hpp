#pragma once
// The signaling cipher of Telegram's private calls (TELEGRAM-CALLS.md §2.1): MTProto-style
// msg_key (16 bytes of a SHA-256 over part of the key and the plaintext), AES-256-CTR with a key
// and IV derived from msg_key and the call key. Each direction uses its own part of the key, so
// the caller and the callee each decrypt only what the other encrypted.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace esg::telegram::calls {

// Blobs outside these limits are refused before any decryption (tgcalls' kMaxIncomingPacketSize;
// the smallest packet is msg_key plus one record header).
inline constexpr size_t kMsgKeySize = 16;
inline constexpr size_t kMinIncomingPacketSize = 21;
inline constexpr size_t kMaxIncomingPacketSize = size_t{128} * 1024;
inline constexpr size_t kCallKeySize = 256;

class SignalingCipher {
 public:
  // `key`: the 256-byte callStateReady.encryption_key (raw bytes, already base64-decoded);
  // `is_outgoing`: TDLib's call.is_outgoing. Precondition key.size() == 256; another size (the
  // key comes from the network, so no assert) makes a cipher that encrypts to "" and decrypts
  // nothing (valid() is false).
  SignalingCipher(std::string_view key, bool is_outgoing);

  bool valid() const { return valid_; }
  // msg_key || AES-256-CTR(plaintext), with the sending half of the key. Deterministic: the same
  // plaintext gives the same bytes (the counters inside the plaintext make every packet unique).
  std::string encrypt(std::string_view plaintext) const;
  // The plaintext, or none when `wire` is shorter than 21 or longer than 128 KiB bytes or its
  // msg_key does not match the decrypted plaintext (wrong key, wrong direction, altered bytes).
  std::optional<std::string> decrypt(std::string_view wire) const;

 private:
  std::string key_;
  size_t send_x_ = 0;
  size_t receive_x_ = 0;
  bool valid_ = false;
};

}  // namespace esg::telegram::calls
