#include "edge/sip_alg.hpp"

#include <gtest/gtest.h>

#include "sip/message.hpp"

namespace {

using esg::edge::SipAlg;

// What esg sends from behind the NAT (gray 172.16.0.14), and what the provider must see.
const std::string kInside =
    "INVITE sip:74951234567@44.55.66.77:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 172.16.0.14:5060;branch=z9hG4bK-1;rport\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:101@172.16.0.14>;tag=a1\r\n"
    "To: <sip:74951234567@44.55.66.77>\r\n"
    "Call-ID: alg-1@172.16.0.140\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:esg@172.16.0.14:5060>\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 149\r\n\r\n"
    "v=0\r\n"
    "o=esg 1 1 IN IP4 172.16.0.14\r\n"
    "s=-\r\n"
    "c=IN IP4 172.16.0.14\r\n"
    "t=0 0\r\n"
    "m=audio 20000 RTP/AVP 8\r\n"
    "a=rtcp:20001 IN IP4 172.16.0.14\r\n"
    "a=rtpmap:8 PCMA/8000\r\n";

const std::string kOutside =
    "INVITE sip:74951234567@44.55.66.77:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 62.85.12.4:5060;branch=z9hG4bK-1;rport\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:101@62.85.12.4>;tag=a1\r\n"
    "To: <sip:74951234567@44.55.66.77>\r\n"
    "Call-ID: alg-1@172.16.0.140\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:esg@62.85.12.4:5060>\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 146\r\n\r\n"
    "v=0\r\n"
    "o=esg 1 1 IN IP4 62.85.12.4\r\n"
    "s=-\r\n"
    "c=IN IP4 62.85.12.4\r\n"
    "t=0 0\r\n"
    "m=audio 20000 RTP/AVP 8\r\n"
    "a=rtcp:20001 IN IP4 62.85.12.4\r\n"
    "a=rtpmap:8 PCMA/8000\r\n";

SipAlg alg() {
  return SipAlg({{"172.16.0.14", "62.85.12.4"}, {"10.0.0.1", "198.51.100.1"}});
}

TEST(SipAlg, OutgoingGrayBecomesWhiteInHeadersAndSdpWithContentLength) {
  std::string m = kInside;
  ASSERT_TRUE(alg().outbound(m));
  EXPECT_EQ(m, kOutside);  // the Call-ID's 172.16.0.140 is another address: untouched
  auto parsed = esg::sip::parse_message(m);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->body().size(), 146u);
}

TEST(SipAlg, IncomingWhiteBecomesGrayAndTheRoundTripIsExact) {
  std::string m = kOutside;
  ASSERT_TRUE(alg().inbound(m));
  EXPECT_EQ(m, kInside);
}

TEST(SipAlg, OnlyWholeAddressesAndNothingElseChanges) {
  std::string m =
      "OPTIONS sip:x@110.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.12:5060\r\n"
      "Route: <sip:10.0.0.1.example.com>\r\nContact: <sip:10.0.0.1;lr>\r\nl: 0\r\n\r\n";
  ASSERT_TRUE(alg().outbound(m));
  EXPECT_EQ(m,
            "OPTIONS sip:x@110.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.12:5060\r\n"
            "Route: <sip:10.0.0.1.example.com>\r\nContact: <sip:198.51.100.1;lr>\r\nl: 0\r\n\r\n");
  std::string none = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1\r\nContent-Length: 0\r\n\r\n";
  EXPECT_FALSE(alg().outbound(none));
}

TEST(SipAlg, PairsSwapInOnePassAndIpv6StaysWhole) {
  // Chained pairs must not cascade: A->B, B->C turns A into B, not C.
  std::string m = "x 1.1.1.1 2.2.2.2 [2001:db8::1]:5060 2001:db8::10\r\n\r\n";
  esg::edge::swap_addresses(
      m, {{"1.1.1.1", "2.2.2.2"}, {"2.2.2.2", "3.3.3.3"}, {"2001:db8::1", "2001:db8::2"}});
  EXPECT_EQ(m, "x 2.2.2.2 3.3.3.3 [2001:db8::2]:5060 2001:db8::10\r\n\r\n");
}

}  // namespace
