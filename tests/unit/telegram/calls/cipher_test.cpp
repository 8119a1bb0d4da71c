#include "telegram/calls/cipher.hpp"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "capture.hpp"

namespace esg::telegram::calls {
namespace {

using test::Capture;
using test::capture_names;
using test::load_capture;

// The JSON bodies of the 0x7F records of a plaintext (§2.2 layout), for checking what a captured
// blob carried against what its sender logged.
std::vector<std::string> message_bodies(const std::string& p) {
  std::vector<std::string> out;
  size_t pos = 0;
  auto u32 = [&](size_t at) {
    return (uint32_t{static_cast<unsigned char>(p[at])} << 24) |
           (uint32_t{static_cast<unsigned char>(p[at + 1])} << 16) |
           (uint32_t{static_cast<unsigned char>(p[at + 2])} << 8) |
           uint32_t{static_cast<unsigned char>(p[at + 3])};
  };
  while (pos + 5 <= p.size()) {
    const auto type = static_cast<unsigned char>(p[pos + 4]);
    pos += 5;
    if (type == 0x7F) {
      const uint32_t len = u32(pos);
      out.push_back(p.substr(pos + 4, len));
      pos += 4 + len;
    }
  }
  return out;
}

std::string random_key(uint32_t seed) {
  std::mt19937 rng(seed);
  std::string key(kCallKeySize, '\0');
  for (char& c : key)
    c = static_cast<char>(rng());
  return key;
}

TEST(SignalingCipher, DecryptsEveryCapturedBlobToWhatItsSenderLogged) {
  for (const std::string& name : capture_names()) {
    SCOPED_TRACE(name);
    const Capture c = load_capture(name);
    // The receiver of A's blobs is B (not outgoing), and the other way round.
    const SignalingCipher at_a(c.key, true);
    const SignalingCipher at_b(c.key, false);
    std::set<std::string> seen_from_a;
    std::set<std::string> seen_from_b;
    for (const auto& b : c.blobs) {
      const SignalingCipher& receiver = b.from == 'A' ? at_b : at_a;
      std::optional<std::string> p = receiver.decrypt(b.blob);
      ASSERT_TRUE(p.has_value()) << "blob at " << b.t.count() << " ms from " << b.from;
      const auto& logged = c.sent_by(b.from);
      for (const std::string& body : message_bodies(*p)) {
        EXPECT_NE(std::find(logged.begin(), logged.end(), body), logged.end()) << body;
        (b.from == 'A' ? seen_from_a : seen_from_b).insert(body);
      }
    }
    // Every message either side logged went out in some blob.
    EXPECT_EQ(seen_from_a, std::set<std::string>(c.sent_a.begin(), c.sent_a.end()));
    EXPECT_EQ(seen_from_b, std::set<std::string>(c.sent_b.begin(), c.sent_b.end()));
  }
}

TEST(SignalingCipher, EncryptsTheCapturedPlaintextsToTheSameBytes) {
  // The cipher is deterministic: the sender's encryption of a decrypted blob is that blob.
  for (const std::string& name : capture_names()) {
    SCOPED_TRACE(name);
    const Capture c = load_capture(name);
    const SignalingCipher at_a(c.key, true);
    const SignalingCipher at_b(c.key, false);
    for (const auto& b : c.blobs) {
      const SignalingCipher& sender = b.from == 'A' ? at_a : at_b;
      const SignalingCipher& receiver = b.from == 'A' ? at_b : at_a;
      std::optional<std::string> p = receiver.decrypt(b.blob);
      ASSERT_TRUE(p.has_value());
      EXPECT_EQ(sender.encrypt(*p), b.blob);
    }
  }
}

TEST(SignalingCipher, SwappedDirectionDoesNotDecrypt) {
  // Trip-wire §9.4: a wrong is_outgoing reads with the sender's own x and the hash check fails.
  const Capture c = load_capture("tgpeer_9.0.0.json");
  const SignalingCipher at_a(c.key, true);
  const SignalingCipher at_b(c.key, false);
  for (const auto& b : c.blobs) {
    const SignalingCipher& sender = b.from == 'A' ? at_a : at_b;
    EXPECT_FALSE(sender.decrypt(b.blob).has_value());
  }
}

TEST(SignalingCipher, RoundTripsBothWaysWithTheSameKey) {
  const std::string key = random_key(1);
  const SignalingCipher caller(key, true);
  const SignalingCipher callee(key, false);
  const std::string p("\x40\x00\x00\x01\x7f\x00\x00\x00\x02{}", 11);
  const std::string wire = caller.encrypt(p);
  ASSERT_EQ(wire.size(), kMsgKeySize + p.size());
  EXPECT_NE(wire.substr(kMsgKeySize), p);
  EXPECT_EQ(callee.decrypt(wire), p);
  EXPECT_EQ(caller.decrypt(callee.encrypt(p)), p);
  // Another key does not decrypt.
  EXPECT_FALSE(SignalingCipher(random_key(2), false).decrypt(wire).has_value());
}

TEST(SignalingCipher, RefusesBlobsOutsideTheSizeLimits) {
  const std::string key = random_key(3);
  const SignalingCipher caller(key, true);
  const SignalingCipher callee(key, false);
  // 21 bytes (msg_key and one 5-byte record) is the smallest accepted blob.
  const std::string smallest = caller.encrypt(std::string("\x00\x00\x00\x01\xfe", 5));
  ASSERT_EQ(smallest.size(), kMinIncomingPacketSize);
  EXPECT_TRUE(callee.decrypt(smallest).has_value());
  EXPECT_FALSE(callee.decrypt(smallest.substr(0, 20)).has_value());
  EXPECT_FALSE(callee.decrypt("").has_value());
  // 128 KiB is the largest.
  const std::string largest =
      caller.encrypt(std::string(kMaxIncomingPacketSize - kMsgKeySize, 'x'));
  EXPECT_TRUE(callee.decrypt(largest).has_value());
  const std::string too_large =
      caller.encrypt(std::string(kMaxIncomingPacketSize - kMsgKeySize + 1, 'x'));
  EXPECT_FALSE(callee.decrypt(too_large).has_value());
}

TEST(SignalingCipher, AnyFlippedBitFailsTheHashCheck) {
  const std::string key = random_key(4);
  const SignalingCipher caller(key, true);
  const SignalingCipher callee(key, false);
  const std::string wire =
      caller.encrypt(std::string("\x40\x00\x00\x07\x7f\x00\x00\x00\x03"
                                 "abc",
                                 12));
  for (size_t i = 0; i < wire.size() * 8; ++i) {
    std::string bad = wire;
    bad[i / 8] = static_cast<char>(bad[i / 8] ^ (1 << (i % 8)));
    EXPECT_FALSE(callee.decrypt(bad).has_value()) << "bit " << i;
  }
}

}  // namespace
}  // namespace esg::telegram::calls
