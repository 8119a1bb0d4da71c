#include "media/webrtc/ice/stun.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <string>

namespace esg::media::ice::stun {
namespace {

std::string hex(std::string_view s) {
  std::string digits;
  for (char c : s) {
    if (std::isxdigit(static_cast<unsigned char>(c))) digits.push_back(c);
  }
  std::string out;
  for (size_t i = 0; i + 1 < digits.size(); i += 2) {
    out.push_back(char(std::stoi(digits.substr(i, 2), nullptr, 16)));
  }
  return out;
}

// RFC 5769 §2.1-2.4 test vectors, as the RFC prints them (the 0x20 padding of USERNAME and
// SOFTWARE in 2.1-2.3 is deliberate: padding is covered by the HMAC and the CRC).
const std::string kRequest = hex(R"(
  00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
  00 24 00 04 6e 00 01 ff
  80 29 00 08 93 2f f9 b1 51 26 3b 36
  00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
  00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
  80 28 00 04 e5 7a 3b cf)");
const std::string kIpv4Response = hex(R"(
  01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
  00 20 00 08 00 01 a1 47 e1 12 a6 43
  00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
  80 28 00 04 c0 7d 4c 96)");
const std::string kIpv6Response = hex(R"(
  01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
  00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
  00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
  80 28 00 04 c8 fb 0b 4c)");
const std::string kLongTermRequest = hex(R"(
  00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
  00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00
  00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46 53 54 76 79 36 34 73 41
  00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
  00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66)");
constexpr std::string_view kPassword = "VOkJxbRl1RmTxUk/WvJxBt";
const TransactionId kTid = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};

TEST(Stun, Rfc5769SampleRequestDecodesAndVerifies) {
  auto m = Message::parse(kRequest);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->method(), method::kBinding);
  EXPECT_EQ(m->cls(), Class::Request);
  EXPECT_EQ(m->transaction(), kTid);
  EXPECT_EQ(m->get(attr::kSoftware), "STUN test client");
  EXPECT_EQ(m->get(attr::kUsername), "evtj:h6vY");
  EXPECT_EQ(m->get_u32(attr::kPriority), 0x6e0001ffu);
  EXPECT_EQ(m->get_u64(attr::kIceControlled), 0x932ff9b151263b36ull);
  EXPECT_TRUE(m->check_integrity(kPassword));
  EXPECT_TRUE(m->check_fingerprint());
  EXPECT_EQ(m->unknown_required(), 0);
}

TEST(Stun, Rfc5769SampleRequestWithWrongPasswordFailsIntegrity) {
  auto m = Message::parse(kRequest);
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->check_integrity("VOkJxbRl1RmTxUk/WvJxBu"));
  EXPECT_FALSE(m->check_integrity(""));
}

TEST(Stun, Rfc5769TamperedRequestFailsIntegrityAndFingerprint) {
  std::string bad = kRequest;
  bad[30] ^= 0x01;  // a byte of SOFTWARE
  auto m = Message::parse(bad);
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->check_integrity(kPassword));
  EXPECT_FALSE(m->check_fingerprint());
}

TEST(Stun, Rfc5769Ipv4ResponseXorMappedAddress) {
  auto m = Message::parse(kIpv4Response);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->cls(), Class::Success);
  EXPECT_EQ(m->get(attr::kSoftware), "test vector");
  auto a = m->get_xor_address(attr::kXorMappedAddress);
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, Endpoint(boost::asio::ip::make_address("192.0.2.1"), 32853));
  EXPECT_TRUE(m->check_integrity(kPassword));
  EXPECT_TRUE(m->check_fingerprint());
  EXPECT_EQ(xor_address_value(*a, kTid), *m->get(attr::kXorMappedAddress));
}

TEST(Stun, Rfc5769Ipv6ResponseXorMappedAddress) {
  auto m = Message::parse(kIpv6Response);
  ASSERT_TRUE(m);
  auto a = m->get_xor_address(attr::kXorMappedAddress);
  ASSERT_TRUE(a);
  EXPECT_EQ(*a,
            Endpoint(boost::asio::ip::make_address("2001:db8:1234:5678:11:2233:4455:6677"), 32853));
  EXPECT_TRUE(m->check_integrity(kPassword));
  EXPECT_TRUE(m->check_fingerprint());
  EXPECT_EQ(xor_address_value(*a, kTid), *m->get(attr::kXorMappedAddress));
}

TEST(Stun, Rfc5769LongTermRequestVerifiesAndRebuildsByteForByte) {
  auto m = Message::parse(kLongTermRequest);
  ASSERT_TRUE(m);
  const std::string username =
      "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9";
  EXPECT_EQ(m->get(attr::kUsername), username);
  EXPECT_EQ(m->get(attr::kRealm), "example.org");
  EXPECT_EQ(m->get(attr::kNonce), "f//499k954d6OL34oL9FSTvy64sA");
  EXPECT_FALSE(m->has_fingerprint());
  // The password after SASLprep is "TheMatrIX" (RFC 5769 §2.4).
  const std::string key = long_term_key(username, "example.org", "TheMatrIX");
  EXPECT_EQ(key.size(), 16u);
  EXPECT_TRUE(m->check_integrity(key));
  EXPECT_FALSE(m->check_integrity(long_term_key(username, "example.org", "thematrix")));
  TransactionId tid{};
  std::copy(kLongTermRequest.begin() + 8, kLongTermRequest.begin() + 20, tid.begin());
  const std::string rebuilt = Builder(method::kBinding, Class::Request, tid)
                                  .add(attr::kUsername, username)
                                  .add(attr::kNonce, "f//499k954d6OL34oL9FSTvy64sA")
                                  .add(attr::kRealm, "example.org")
                                  .finish(key, false);
  EXPECT_EQ(rebuilt, kLongTermRequest);
}

TEST(Stun, BuilderRoundTripWithIntegrityAndFingerprint) {
  const TransactionId tid = new_transaction();
  const Endpoint peer(boost::asio::ip::make_address("10.1.2.3"), 4567);
  const std::string bytes = Builder(method::kChannelBind, Class::Error, tid)
                                .add_error(438, "Stale Nonce")
                                .add_xor_address(attr::kXorPeerAddress, peer)
                                .add(attr::kData, "abcde")
                                .finish("secret");
  ASSERT_TRUE(looks_like_stun(bytes));
  auto m = Message::parse(bytes);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->method(), method::kChannelBind);
  EXPECT_EQ(m->cls(), Class::Error);
  EXPECT_EQ(m->transaction(), tid);
  ASSERT_TRUE(m->error());
  EXPECT_EQ(m->error()->code, 438);
  EXPECT_EQ(m->error()->reason, "Stale Nonce");
  EXPECT_EQ(m->get_xor_address(attr::kXorPeerAddress), peer);
  EXPECT_EQ(m->get(attr::kData), "abcde");
  EXPECT_TRUE(m->check_integrity("secret"));
  EXPECT_FALSE(m->check_integrity("Secret"));
  EXPECT_TRUE(m->check_fingerprint());
}

TEST(Stun, AttributesAfterIntegrityOtherThanFingerprintAreIgnored) {
  const TransactionId tid = new_transaction();
  std::string bytes =
      Builder(method::kBinding, Class::Request, tid).add(attr::kUsername, "a:b").finish("k", false);
  // Append a PRIORITY after MESSAGE-INTEGRITY and fix up the length.
  bytes += std::string("\x00\x24\x00\x04\x01\x02\x03\x04", 8);
  const size_t len = bytes.size() - kHeaderSize;
  bytes[2] = char(len >> 8);
  bytes[3] = char(len);
  auto m = Message::parse(bytes);
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->has(attr::kPriority));
  EXPECT_TRUE(m->check_integrity("k"));
}

TEST(Stun, MalformedInputIsRefusedWithoutThrowing) {
  EXPECT_FALSE(Message::parse(""));
  EXPECT_FALSE(Message::parse(kRequest.substr(0, 19)));
  EXPECT_FALSE(Message::parse(kRequest.substr(0, kRequest.size() - 1)));  // length overruns
  std::string bad = kRequest;
  bad[4] ^= 1;  // magic cookie
  EXPECT_FALSE(Message::parse(bad));
  bad = kRequest;
  bad[0] = char(0x80);  // not STUN (RFC 7983)
  EXPECT_FALSE(Message::parse(bad));
  bad = kRequest;
  bad[23] = char(0x40);  // SOFTWARE's length runs past the message
  EXPECT_FALSE(Message::parse(bad));
  // Comprehension-optional attributes esg does not know (libwebrtc's GOOG ones) are fine;
  // an unknown comprehension-required one is reported for a 420.
  const TransactionId tid = new_transaction();
  auto m = Message::parse(Builder(method::kBinding, Class::Request, tid)
                              .add_u32(0xC057, 1)
                              .add_u32(0xC001, 7)
                              .finish("k"));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->unknown_required(), 0);
  m = Message::parse(Builder(method::kBinding, Class::Request, tid).add_u32(0x7777, 1).finish("k"));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->unknown_required(), 0x7777);
}

TEST(Stun, TooManyAttributesAreRefused) {
  Builder b(method::kBinding, Class::Request, new_transaction());
  for (size_t i = 0; i < Message::kMaxAttributes + 1; ++i)
    b.add_u32(0x8050, uint32_t(i));
  EXPECT_FALSE(Message::parse(std::move(b).finish({}, false)));
}

}  // namespace
}  // namespace esg::media::ice::stun
