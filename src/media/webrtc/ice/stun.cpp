#include "media/webrtc/ice/stun.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <cstring>

namespace esg::media::ice::stun {
namespace {

constexpr uint32_t kFingerprintXor = 0x5354554e;
constexpr size_t kIntegritySize = 20;

uint16_t rd16(const char* p) {
  return uint16_t((uint8_t(p[0]) << 8) | uint8_t(p[1]));
}
uint32_t rd32(const char* p) {
  return (uint32_t(uint8_t(p[0])) << 24) | (uint32_t(uint8_t(p[1])) << 16) |
         (uint32_t(uint8_t(p[2])) << 8) | uint32_t(uint8_t(p[3]));
}
void put16(std::string& s, uint16_t v) {
  s.push_back(char(v >> 8));
  s.push_back(char(v));
}
void put32(std::string& s, uint32_t v) {
  put16(s, uint16_t(v >> 16));
  put16(s, uint16_t(v));
}
void set16(std::string& s, size_t at, uint16_t v) {
  s[at] = char(v >> 8);
  s[at + 1] = char(v);
}

// CRC-32 (ISO-HDLC, the one zlib computes), as FINGERPRINT wants, over several pieces.
const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k)
        c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}
uint32_t crc_update(uint32_t crc, std::string_view data) {
  const auto& t = crc_table();
  for (char ch : data)
    crc = t[(crc ^ uint8_t(ch)) & 0xFF] ^ (crc >> 8);
  return crc;
}

// The HMAC and the CRC cover the message up to the attribute, with the header's length as if
// the attribute were the last one (RFC 8489 §14.5, §14.7). Computed over the original header
// with the length patched in a copy of the first 20 bytes, so no copy of the message is made.
std::array<char, kHeaderSize> patched_header(std::string_view msg, size_t attr_offset,
                                             size_t attr_size) {
  std::array<char, kHeaderSize> h{};
  std::memcpy(h.data(), msg.data(), kHeaderSize);
  const size_t len = attr_offset - kHeaderSize + attr_size;
  h[2] = char(len >> 8);
  h[3] = char(len);
  return h;
}

bool hmac_sha1(std::string_view key, std::string_view head, std::string_view rest,
               uint8_t out[kIntegritySize]) {
  // Fetched once: a fetch walks OpenSSL's provider tables under a lock.
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (!mac) return false;
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  bool ok = false;
  if (ctx) {
    char digest[] = "SHA1";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                           OSSL_PARAM_construct_end()};
    size_t n = 0;
    ok = EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(key.data()), key.size(),
                      params) == 1 &&
         EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(head.data()), head.size()) ==
             1 &&
         EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(rest.data()), rest.size()) ==
             1 &&
         EVP_MAC_final(ctx, out, &n, kIntegritySize) == 1 && n == kIntegritySize;
    EVP_MAC_CTX_free(ctx);
  }
  return ok;
}

// Attributes esg understands (whether or not it uses them): a comprehension-required type not
// in this list gets a 420 from the ICE agent.
bool known_required(uint16_t type) {
  switch (type) {
    case attr::kMappedAddress:
    case attr::kUsername:
    case attr::kMessageIntegrity:
    case attr::kErrorCode:
    case attr::kUnknownAttributes:
    case attr::kChannelNumber:
    case attr::kLifetime:
    case attr::kXorPeerAddress:
    case attr::kData:
    case attr::kRealm:
    case attr::kNonce:
    case attr::kXorRelayedAddress:
    case attr::kRequestedAddressFamily:
    case attr::kEvenPort:
    case attr::kRequestedTransport:
    case attr::kDontFragment:
    case attr::kMessageIntegritySha256:
    case attr::kPasswordAlgorithm:
    case attr::kUserhash:
    case attr::kXorMappedAddress:
    case attr::kReservationToken:
    case attr::kPriority:
    case attr::kUseCandidate:
      return true;
    default:
      return false;
  }
}

}  // namespace

bool looks_like_stun(std::string_view data) {
  return data.size() >= kHeaderSize && uint8_t(data[0]) < 4 &&
         rd32(data.data() + 4) == kMagicCookie;
}

std::string long_term_key(std::string_view username, std::string_view realm,
                          std::string_view password) {
  std::string input;
  input.reserve(username.size() + realm.size() + password.size() + 2);
  input.append(username).append(":").append(realm).append(":").append(password);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(input.data(), input.size(), md, &n, EVP_md5(), nullptr) != 1) return {};
  return std::string(reinterpret_cast<const char*>(md), n);
}

std::optional<Message> Message::parse(std::string_view data) {
  if (!looks_like_stun(data)) return std::nullopt;
  const uint16_t type = rd16(data.data());
  const size_t length = rd16(data.data() + 2);
  if (length % 4 != 0 || kHeaderSize + length > data.size()) return std::nullopt;
  Message m;
  m.data_ = data.substr(0, kHeaderSize + length);
  // The type's 14 bits interleave the class (bits 4 and 8) with the method (RFC 8489 §5).
  m.cls_ = Class(((type >> 4) & 1) | ((type >> 7) & 2));
  m.method_ = uint16_t((type & 0x000F) | ((type >> 1) & 0x0070) | ((type >> 2) & 0x0F80));
  std::memcpy(m.transaction_.data(), data.data() + 8, 12);
  size_t at = kHeaderSize;
  while (at < m.data_.size()) {
    if (at + 4 > m.data_.size()) return std::nullopt;
    const uint16_t t = rd16(data.data() + at);
    const size_t len = rd16(data.data() + at + 2);
    const size_t padded = (len + 3) & ~size_t(3);
    if (at + 4 + padded > m.data_.size()) return std::nullopt;
    const bool after_integrity = m.integrity_offset_ != kNone;
    const bool after_fingerprint = m.fingerprint_offset_ != kNone;
    if (!after_fingerprint && (!after_integrity || t == attr::kFingerprint)) {
      if (m.count_ == kMaxAttributes) return std::nullopt;
      m.attributes_[m.count_++] = Attribute{t, data.substr(at + 4, len), at};
      if (t == attr::kMessageIntegrity) m.integrity_offset_ = at;
      if (t == attr::kFingerprint) m.fingerprint_offset_ = at;
    }
    at += 4 + padded;
  }
  return m;
}

std::optional<std::string_view> Message::get(uint16_t type) const {
  for (const Attribute& a : *this) {
    if (a.type == type) return a.value;
  }
  return std::nullopt;
}

std::optional<uint32_t> Message::get_u32(uint16_t type) const {
  auto v = get(type);
  if (!v || v->size() != 4) return std::nullopt;
  return rd32(v->data());
}

std::optional<uint64_t> Message::get_u64(uint16_t type) const {
  auto v = get(type);
  if (!v || v->size() != 8) return std::nullopt;
  return (uint64_t(rd32(v->data())) << 32) | rd32(v->data() + 4);
}

std::optional<Endpoint> Message::get_xor_address(uint16_t type) const {
  auto v = get(type);
  if (!v) return std::nullopt;
  return parse_xor_address(*v, transaction_);
}

std::optional<ErrorCode> Message::error() const {
  auto v = get(attr::kErrorCode);
  if (!v || v->size() < 4) return std::nullopt;
  const int cls = uint8_t((*v)[2]) & 0x07;
  const int number = uint8_t((*v)[3]);
  if (cls < 3 || cls > 6 || number > 99) return std::nullopt;
  return ErrorCode{cls * 100 + number, v->substr(4)};
}

bool Message::check_integrity(std::string_view key) const {
  if (integrity_offset_ == kNone) return false;
  const Attribute* mi = nullptr;
  for (const Attribute& a : *this) {
    if (a.type == attr::kMessageIntegrity) mi = &a;
  }
  if (!mi || mi->value.size() != kIntegritySize) return false;
  const auto head = patched_header(data_, integrity_offset_, 4 + kIntegritySize);
  uint8_t out[kIntegritySize];
  if (!hmac_sha1(key, std::string_view(head.data(), head.size()),
                 data_.substr(kHeaderSize, integrity_offset_ - kHeaderSize), out)) {
    return false;
  }
  // Constant time, so the comparison tells an attacker nothing about how much matched.
  return CRYPTO_memcmp(out, mi->value.data(), kIntegritySize) == 0;
}

bool Message::check_fingerprint() const {
  if (fingerprint_offset_ == kNone) return false;
  const std::string_view value = data_.substr(fingerprint_offset_ + 4);
  if (value.size() < 4 || rd16(data_.data() + fingerprint_offset_ + 2) != 4) return false;
  const auto head = patched_header(data_, fingerprint_offset_, 8);
  uint32_t crc = crc_update(0xFFFFFFFFu, std::string_view(head.data(), head.size()));
  crc = crc_update(crc, data_.substr(kHeaderSize, fingerprint_offset_ - kHeaderSize));
  return ((crc ^ 0xFFFFFFFFu) ^ kFingerprintXor) == rd32(value.data());
}

uint16_t Message::unknown_required() const {
  for (const Attribute& a : *this) {
    if (a.type < 0x8000 && !known_required(a.type)) return a.type;
  }
  return 0;
}

Builder::Builder(uint16_t method, Class cls, const TransactionId& transaction)
    : transaction_(transaction) {
  buf_.reserve(128);
  const uint16_t c = uint16_t(cls);
  const uint16_t type = uint16_t((method & 0x000F) | ((method & 0x0070) << 1) |
                                 ((method & 0x0F80) << 2) | ((c & 1) << 4) | ((c & 2) << 7));
  put16(buf_, type);
  put16(buf_, 0);
  put32(buf_, kMagicCookie);
  buf_.append(reinterpret_cast<const char*>(transaction.data()), transaction.size());
}

void Builder::set_length(size_t body) {
  set16(buf_, 2, uint16_t(body));
}

Builder& Builder::add(uint16_t type, std::string_view value) {
  put16(buf_, type);
  put16(buf_, uint16_t(value.size()));
  buf_.append(value);
  buf_.append((4 - value.size() % 4) % 4, '\0');
  set_length(buf_.size() - kHeaderSize);
  return *this;
}

Builder& Builder::add_u32(uint16_t type, uint32_t value) {
  std::string v;
  put32(v, value);
  return add(type, v);
}

Builder& Builder::add_u64(uint16_t type, uint64_t value) {
  std::string v;
  put32(v, uint32_t(value >> 32));
  put32(v, uint32_t(value));
  return add(type, v);
}

Builder& Builder::add_xor_address(uint16_t type, const Endpoint& endpoint) {
  return add(type, xor_address_value(endpoint, transaction_));
}

Builder& Builder::add_error(int code, std::string_view reason) {
  std::string v;
  put16(v, 0);
  v.push_back(char(code / 100));
  v.push_back(char(code % 100));
  v.append(reason);
  return add(attr::kErrorCode, v);
}

std::string Builder::finish(std::string_view integrity_key, bool fingerprint) {
  if (!integrity_key.empty()) {
    const size_t at = buf_.size();
    set_length(at - kHeaderSize + 4 + kIntegritySize);
    uint8_t out[kIntegritySize] = {};
    hmac_sha1(integrity_key, std::string_view(buf_).substr(0, kHeaderSize),
              std::string_view(buf_).substr(kHeaderSize), out);
    put16(buf_, attr::kMessageIntegrity);
    put16(buf_, kIntegritySize);
    buf_.append(reinterpret_cast<const char*>(out), kIntegritySize);
  }
  if (fingerprint) {
    set_length(buf_.size() - kHeaderSize + 8);
    const uint32_t crc = crc_update(0xFFFFFFFFu, buf_) ^ 0xFFFFFFFFu;
    put16(buf_, attr::kFingerprint);
    put16(buf_, 4);
    put32(buf_, crc ^ kFingerprintXor);
  }
  return std::move(buf_);
}

TransactionId new_transaction() {
  TransactionId id{};
  if (RAND_bytes(id.data(), int(id.size())) != 1) {
    // The generator failed (it does not, once seeded): a predictable id still works.
    static uint64_t counter = 0;
    ++counter;
    std::memcpy(id.data(), &counter, sizeof counter);
  }
  return id;
}

std::string xor_address_value(const Endpoint& endpoint, const TransactionId& transaction) {
  std::string v;
  v.push_back('\0');
  const auto addr = endpoint.address();
  v.push_back(addr.is_v4() ? 1 : 2);
  put16(v, uint16_t(endpoint.port() ^ (kMagicCookie >> 16)));
  uint8_t pad[16];
  pad[0] = uint8_t(kMagicCookie >> 24);
  pad[1] = uint8_t(kMagicCookie >> 16);
  pad[2] = uint8_t(kMagicCookie >> 8);
  pad[3] = uint8_t(kMagicCookie);
  std::memcpy(pad + 4, transaction.data(), 12);
  if (addr.is_v4()) {
    const auto b = addr.to_v4().to_bytes();
    for (size_t i = 0; i < 4; ++i)
      v.push_back(char(b[i] ^ pad[i]));
  } else {
    const auto b = addr.to_v6().to_bytes();
    for (size_t i = 0; i < 16; ++i)
      v.push_back(char(b[i] ^ pad[i]));
  }
  return v;
}

std::optional<Endpoint> parse_xor_address(std::string_view v, const TransactionId& transaction) {
  if (v.size() < 4) return std::nullopt;
  const uint8_t family = uint8_t(v[1]);
  const uint16_t port = uint16_t(rd16(v.data() + 2) ^ (kMagicCookie >> 16));
  uint8_t pad[16];
  pad[0] = uint8_t(kMagicCookie >> 24);
  pad[1] = uint8_t(kMagicCookie >> 16);
  pad[2] = uint8_t(kMagicCookie >> 8);
  pad[3] = uint8_t(kMagicCookie);
  std::memcpy(pad + 4, transaction.data(), 12);
  if (family == 1 && v.size() == 8) {
    boost::asio::ip::address_v4::bytes_type b;
    for (size_t i = 0; i < 4; ++i)
      b[i] = uint8_t(v[4 + i]) ^ pad[i];
    return Endpoint(boost::asio::ip::address_v4(b), port);
  }
  if (family == 2 && v.size() == 20) {
    boost::asio::ip::address_v6::bytes_type b;
    for (size_t i = 0; i < 16; ++i)
      b[i] = uint8_t(v[4 + i]) ^ pad[i];
    return Endpoint(boost::asio::ip::address_v6(b), port);
  }
  return std::nullopt;
}

}  // namespace esg::media::ice::stun
