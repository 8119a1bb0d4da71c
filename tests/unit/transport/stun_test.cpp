#include "transport/stun.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using esg::transport::stun_binding_request;
using esg::transport::stun_mapped_address;
using esg::transport::StunTxid;

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out += char(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

// A Binding success response captured from Debian's coturn 4.6.1 (--stun-only) on loopback:
// XOR-MAPPED-ADDRESS, MAPPED-ADDRESS, RESPONSE-ORIGIN and SOFTWARE.
const std::string kCoturnAnswer = from_hex(
    "0101003c2112a442a7818629895c233ddbe3e317002000080001ca8e5e12a443000100080001eb9c7f000001802b"
    "0008000187dc7f00000180220014436f7475726e2d342e362e312027476f72737427");
const StunTxid kTxid = {0xa7, 0x81, 0x86, 0x29, 0x89, 0x5c, 0x23, 0x3d, 0xdb, 0xe3, 0xe3, 0x17};

TEST(Stun, BindingRequestHeader) {
  const std::string r = stun_binding_request(kTxid);
  ASSERT_EQ(r.size(), 20u);
  EXPECT_EQ(r.substr(0, 8), from_hex("000100002112a442"));
  EXPECT_EQ(r.substr(8), std::string(kTxid.begin(), kTxid.end()));
}

TEST(Stun, TheXorMappedAddressOfARealAnswer) {
  auto e = stun_mapped_address(kCoturnAnswer, kTxid);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->address().to_string(), "127.0.0.1");
  EXPECT_EQ(e->port(), 60316);
}

TEST(Stun, AnswersToOtherTransactionsOrTruncatedOnesAreIgnored) {
  StunTxid other = kTxid;
  other[11] ^= 1;
  EXPECT_FALSE(stun_mapped_address(kCoturnAnswer, other));
  EXPECT_FALSE(stun_mapped_address(kCoturnAnswer.substr(0, 30), kTxid));
  EXPECT_FALSE(stun_mapped_address("not stun at all, but twenty bytes long", kTxid));
  std::string error = kCoturnAnswer;
  error[1] = 0x11;  // a Binding error response
  EXPECT_FALSE(stun_mapped_address(error, kTxid));
}

TEST(Stun, AnIpv6XorMappedAddress) {
  // The XOR-MAPPED-ADDRESS of RFC 5769 §2.3: 2001:db8:1234:5678:11:2233:4455:6677 port 32853.
  const StunTxid txid = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};
  const std::string m = from_hex(
      "010100182112a442b7e7a701bc34d686fa87dfae"
      "002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d9");
  auto e = stun_mapped_address(m, txid);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->address().to_string(), "2001:db8:1234:5678:11:2233:4455:6677");
  EXPECT_EQ(e->port(), 32853);
}

}  // namespace
