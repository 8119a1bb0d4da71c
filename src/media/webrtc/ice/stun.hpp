#pragma once
// STUN messages (RFC 8489, with the RFC 5389 wire format both share) as ICE (RFC 8445) and TURN
// (RFC 8656) use them: a zero-copy view of a received message and a builder for the ones esg
// sends. MESSAGE-INTEGRITY is HMAC-SHA1 (short-term key: the password; long-term key:
// MD5(username:realm:password)); FINGERPRINT is CRC-32 xor 0x5354554e. No exceptions: parse()
// answers nothing for anything malformed.

#include <array>
#include <boost/asio/ip/udp.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace esg::media::ice::stun {

using Endpoint = boost::asio::ip::udp::endpoint;
using TransactionId = std::array<uint8_t, 12>;

inline constexpr uint32_t kMagicCookie = 0x2112A442;
inline constexpr size_t kHeaderSize = 20;

enum class Class : uint8_t { Request = 0, Indication = 1, Success = 2, Error = 3 };

namespace method {
inline constexpr uint16_t kBinding = 0x001;
inline constexpr uint16_t kAllocate = 0x003;
inline constexpr uint16_t kRefresh = 0x004;
inline constexpr uint16_t kSend = 0x006;
inline constexpr uint16_t kData = 0x007;
inline constexpr uint16_t kCreatePermission = 0x008;
inline constexpr uint16_t kChannelBind = 0x009;
}  // namespace method

namespace attr {
inline constexpr uint16_t kMappedAddress = 0x0001;
inline constexpr uint16_t kUsername = 0x0006;
inline constexpr uint16_t kMessageIntegrity = 0x0008;
inline constexpr uint16_t kErrorCode = 0x0009;
inline constexpr uint16_t kUnknownAttributes = 0x000A;
inline constexpr uint16_t kChannelNumber = 0x000C;
inline constexpr uint16_t kLifetime = 0x000D;
inline constexpr uint16_t kXorPeerAddress = 0x0012;
inline constexpr uint16_t kData = 0x0013;
inline constexpr uint16_t kRealm = 0x0014;
inline constexpr uint16_t kNonce = 0x0015;
inline constexpr uint16_t kXorRelayedAddress = 0x0016;
inline constexpr uint16_t kRequestedAddressFamily = 0x0017;
inline constexpr uint16_t kEvenPort = 0x0018;
inline constexpr uint16_t kRequestedTransport = 0x0019;
inline constexpr uint16_t kDontFragment = 0x001A;
inline constexpr uint16_t kMessageIntegritySha256 = 0x001C;
inline constexpr uint16_t kPasswordAlgorithm = 0x001D;
inline constexpr uint16_t kUserhash = 0x001E;
inline constexpr uint16_t kXorMappedAddress = 0x0020;
inline constexpr uint16_t kReservationToken = 0x0022;
inline constexpr uint16_t kPriority = 0x0024;
inline constexpr uint16_t kUseCandidate = 0x0025;
inline constexpr uint16_t kPasswordAlgorithms = 0x8002;
inline constexpr uint16_t kAlternateDomain = 0x8003;
inline constexpr uint16_t kSoftware = 0x8022;
inline constexpr uint16_t kAlternateServer = 0x8023;
inline constexpr uint16_t kFingerprint = 0x8028;
inline constexpr uint16_t kIceControlled = 0x8029;
inline constexpr uint16_t kIceControlling = 0x802A;
}  // namespace attr

// RFC 7983: a first byte 0..3 with the magic cookie at bytes 4..7 is STUN.
bool looks_like_stun(std::string_view data);

// HMAC-SHA1 keys: the short-term key is the password itself; the long-term key (TURN) is
// MD5(username ":" realm ":" password). SASLprep is not applied (ASCII credentials as TURN
// servers hand them out pass through it unchanged).
std::string long_term_key(std::string_view username, std::string_view realm,
                          std::string_view password);

struct Attribute {
  uint16_t type = 0;
  std::string_view value;
  size_t offset = 0;  // of the attribute's header in the message
};

struct ErrorCode {
  int code = 0;
  std::string_view reason;
};

// A received message: views into the caller's buffer, which must outlive it.
class Message {
 public:
  static constexpr size_t kMaxAttributes = 32;

  // Nothing for a message that is not well-formed STUN (bad length, cookie, attribute overrun,
  // more than kMaxAttributes). Bytes after the STUN length are ignored. Attributes after
  // MESSAGE-INTEGRITY other than FINGERPRINT, and any after FINGERPRINT, are ignored (RFC 8489
  // §14.5, §14.7).
  static std::optional<Message> parse(std::string_view data);

  uint16_t method() const { return method_; }
  Class cls() const { return cls_; }
  const TransactionId& transaction() const { return transaction_; }
  std::string_view raw() const { return data_; }

  std::optional<std::string_view> get(uint16_t type) const;
  bool has(uint16_t type) const { return get(type).has_value(); }
  std::optional<uint32_t> get_u32(uint16_t type) const;
  std::optional<uint64_t> get_u64(uint16_t type) const;
  // XOR-MAPPED-ADDRESS, XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS.
  std::optional<Endpoint> get_xor_address(uint16_t type) const;
  std::optional<ErrorCode> error() const;

  // MESSAGE-INTEGRITY present and valid for `key`.
  bool check_integrity(std::string_view key) const;
  bool has_integrity() const { return integrity_offset_ != kNone; }
  bool has_fingerprint() const { return fingerprint_offset_ != kNone; }
  bool check_fingerprint() const;
  // The first comprehension-required attribute (type < 0x8000) that esg does not know, for a
  // 420 answer; 0 when there is none.
  uint16_t unknown_required() const;

  const Attribute* begin() const { return attributes_.data(); }
  const Attribute* end() const { return attributes_.data() + count_; }

 private:
  static constexpr size_t kNone = size_t(-1);
  std::string_view data_;
  uint16_t method_ = 0;
  Class cls_ = Class::Request;
  TransactionId transaction_{};
  std::array<Attribute, kMaxAttributes> attributes_{};
  size_t count_ = 0;
  size_t integrity_offset_ = kNone;
  size_t fingerprint_offset_ = kNone;
};

// A message esg sends. Values are padded with zeros to 4 bytes.
class Builder {
 public:
  Builder(uint16_t method, Class cls, const TransactionId& transaction);
  Builder& add(uint16_t type, std::string_view value);
  Builder& add_flag(uint16_t type) { return add(type, {}); }
  Builder& add_u32(uint16_t type, uint32_t value);
  Builder& add_u64(uint16_t type, uint64_t value);
  Builder& add_xor_address(uint16_t type, const Endpoint& endpoint);
  Builder& add_error(int code, std::string_view reason);
  // Appends MESSAGE-INTEGRITY when `integrity_key` is not empty, then FINGERPRINT when asked.
  std::string finish(std::string_view integrity_key, bool fingerprint = true);  // once

 private:
  void set_length(size_t body);
  std::string buf_;
  TransactionId transaction_;
};

// A fresh random transaction id (OpenSSL's generator: ids must not be guessable, RFC 8489 §6).
TransactionId new_transaction();

// The value of an XOR-*-ADDRESS attribute, and back.
std::string xor_address_value(const Endpoint& endpoint, const TransactionId& transaction);
std::optional<Endpoint> parse_xor_address(std::string_view value, const TransactionId& transaction);

}  // namespace esg::media::ice::stun
