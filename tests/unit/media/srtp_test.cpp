#include "media/srtp.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using esg::media::Srtp;

std::string rtp_packet(uint16_t seq) {
  std::string p(12 + 160, '\x55');
  p[0] = char(0x80);
  p[1] = 8;
  p[2] = char(seq >> 8);
  p[3] = char(seq);
  p[8] = 0x12;
  p[9] = 0x34;
  return p;
}

TEST(Srtp, WhatOneSideProtectsTheOtherSideWithTheSameKeyReads) {
  const std::string key = esg::media::new_srtp_key();
  EXPECT_EQ(key.size(), 40u);  // 30 bytes in base64
  auto out = Srtp::create("AES_CM_128_HMAC_SHA1_80", key, true);
  auto in = Srtp::create("AES_CM_128_HMAC_SHA1_80", key, false);
  ASSERT_TRUE(out && in);
  const std::string plain = rtp_packet(1);
  std::string wire = plain;
  ASSERT_TRUE(out->protect(wire, false));
  EXPECT_EQ(wire.size(), plain.size() + 10);               // the 80-bit tag
  EXPECT_EQ(wire.substr(0, 12), plain.substr(0, 12));      // the header stays clear
  EXPECT_NE(wire.substr(12, 160), plain.substr(12, 160));  // the payload does not
  size_t len = wire.size();
  ASSERT_TRUE(in->unprotect(wire.data(), len, false));
  EXPECT_EQ(std::string(wire.data(), len), plain);
  // The same packet again is a replay.
  std::string again = plain;
  auto out2 = Srtp::create("AES_CM_128_HMAC_SHA1_80", key, true);
  ASSERT_TRUE(out2->protect(again, false));
  len = again.size();
  EXPECT_FALSE(in->unprotect(again.data(), len, false));
}

TEST(Srtp, TamperedPacketsAndOtherKeysAreRefused) {
  const std::string key = esg::media::new_srtp_key();
  auto out = Srtp::create("AES_CM_128_HMAC_SHA1_32", key, true);
  auto wrong = Srtp::create("AES_CM_128_HMAC_SHA1_32", esg::media::new_srtp_key(), false);
  auto in = Srtp::create("AES_CM_128_HMAC_SHA1_32", key, false);
  std::string wire = rtp_packet(7);
  ASSERT_TRUE(out->protect(wire, false));
  EXPECT_EQ(wire.size(), 172u + 4);  // the 32-bit tag
  std::string copy = wire;
  size_t len = copy.size();
  EXPECT_FALSE(wrong->unprotect(copy.data(), len, false));
  wire[20] ^= 1;
  len = wire.size();
  EXPECT_FALSE(in->unprotect(wire.data(), len, false));
}

TEST(Srtp, KeysAndSuites) {
  EXPECT_FALSE(Srtp::create("F8_128_HMAC_SHA1_80", esg::media::new_srtp_key(), true));
  EXPECT_FALSE(Srtp::create("AES_CM_128_HMAC_SHA1_80", "c2hvcnQ=", true));  // not 30 bytes
  EXPECT_EQ(*esg::media::inline_key("inline:QUJDREVG|2^20|1:32"), "QUJDREVG");
  EXPECT_FALSE(esg::media::inline_key("uri:http://keys"));
}

TEST(Srtp, ADescriptionIsKeyedWhenEveryLiveRtpStreamHasAnInlineKey) {
  const std::string head =
      "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n";
  const std::string key =
      "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + esg::media::new_srtp_key() + "\r\n";
  using esg::media::srtp_keyed;
  EXPECT_TRUE(srtp_keyed(head + "m=audio 4000 RTP/SAVP 8\r\n" + key));
  // Any suite counts: end to end, the peers' suites are theirs to agree on.
  EXPECT_TRUE(srtp_keyed(head +
                         "m=audio 4000 RTP/SAVP 8\r\n"
                         "a=crypto:1 AEAD_AES_256_GCM inline:" +
                         std::string(60, 'A') + "\r\n"));
  EXPECT_FALSE(srtp_keyed(head + "m=audio 4000 RTP/AVP 8\r\n"));   // plain RTP
  EXPECT_FALSE(srtp_keyed(head + "m=audio 4000 RTP/SAVP 8\r\n"));  // SAVP, yet no key
  EXPECT_FALSE(srtp_keyed(head + "m=audio 4000 RTP/SAVP 8\r\n"
                                 "a=crypto:1 AES_CM_128_HMAC_SHA1_80 uri:http://x\r\n"));
  // Every stream: a keyed audio and a plain video are not keyed.
  EXPECT_FALSE(
      srtp_keyed(head + "m=audio 4000 RTP/SAVP 8\r\n" + key + "m=video 4002 RTP/AVP 96\r\n"));
  // Refused streams and non-RTP ones (T.38) need none.
  EXPECT_TRUE(srtp_keyed(head + "m=audio 4000 RTP/SAVP 8\r\n" + key +
                         "m=video 0 RTP/AVP 96\r\nm=image 4004 udptl t38\r\n"));
  EXPECT_FALSE(srtp_keyed("not sdp"));
}

}  // namespace
