#include "media/rtp.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using esg::media::parse_report;
using esg::media::parse_rtp;
using esg::media::ReceiveStats;
using esg::media::RtpHeader;

std::string rtp(uint8_t pt, uint16_t seq, uint32_t ts, uint32_t ssrc) {
  std::string p(12 + 160, '\xd5');
  p[0] = char(0x80);
  p[1] = char(pt);
  p[2] = char(seq >> 8);
  p[3] = char(seq);
  for (int i = 0; i < 4; ++i) {
    p[size_t(4 + i)] = char(ts >> (24 - 8 * i));
    p[size_t(8 + i)] = char(ssrc >> (24 - 8 * i));
  }
  return p;
}

TEST(Rtp, HeaderFieldsAndWhatIsNotRtp) {
  auto h = parse_rtp(rtp(8, 0xABCD, 0x01020304, 0xDEADBEEF));
  ASSERT_TRUE(h);
  EXPECT_EQ(h->payload_type, 8);
  EXPECT_EQ(h->seq, 0xABCD);
  EXPECT_EQ(h->timestamp, 0x01020304u);
  EXPECT_EQ(h->ssrc, 0xDEADBEEFu);
  EXPECT_FALSE(parse_rtp("short"));
  std::string v1 = rtp(8, 1, 1, 1);
  v1[0] = 0x40;  // version 1
  EXPECT_FALSE(parse_rtp(v1));
  std::string rr = rtp(8, 1, 1, 1);
  rr[1] = char(201);  // an RTCP receiver report multiplexed on the RTP port (RFC 5761)
  EXPECT_FALSE(parse_rtp(rr));
  EXPECT_TRUE(esg::media::is_rtcp(rr));
}

TEST(ReceiveStats, CountsLossFromSequenceNumbersAcrossTheWrap) {
  ReceiveStats s;
  for (uint32_t i = 0; i < 100; ++i) {
    const uint16_t seq = uint16_t(65500 + i);  // wraps at 65536
    if (i == 40 || i == 41 || i == 77) continue;
    s.on_packet({8, seq, i * 160, 7}, i * 160 + 1000);
  }
  EXPECT_EQ(s.expected(), 100u);
  EXPECT_EQ(s.lost(), 3);
  EXPECT_EQ(s.jitter_units(), 0.0);  // perfectly paced
}

TEST(ReceiveStats, JitterFollowsRfc3550) {
  ReceiveStats s;
  // Transit alternates by 80 units: J converges towards 80 (J += (|D| - J) / 16).
  for (uint32_t i = 0; i < 400; ++i)
    s.on_packet({0, uint16_t(i), i * 160, 1}, i * 160 + (i % 2 ? 80 : 0));
  EXPECT_NEAR(s.jitter_units(), 80.0, 1.0);
}

TEST(ReceiveStats, ANewSsrcStartsOver) {
  ReceiveStats s;
  for (uint16_t i = 0; i < 10; ++i)
    s.on_packet({0, i, i * 160u, 1}, i * 160u);
  s.on_packet({0, 5000, 0, 2}, 2000);
  EXPECT_EQ(s.expected(), 1u);
  EXPECT_EQ(s.lost(), 0);
  EXPECT_EQ(s.ssrc(), 2u);
}

TEST(RtcpReport, FirstReportBlockOfAReceiverReport) {
  // RR with one block: fraction 64/256, cumulative lost -2 (24-bit signed), jitter 123.
  const unsigned char rr[] = {0x81, 201, 0, 7,  0, 0, 0, 1,   0, 0, 0, 2, 64, 0xFF, 0xFF, 0xFE,
                              0,    0,   0, 10, 0, 0, 0, 123, 0, 0, 0, 0, 0,  0,    0,    0};
  auto r = parse_report(std::string_view(reinterpret_cast<const char*>(rr), sizeof rr));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->fraction_lost, 64);
  EXPECT_EQ(r->cumulative_lost, -2);
  EXPECT_EQ(r->jitter, 123u);
  EXPECT_FALSE(parse_report(std::string_view(reinterpret_cast<const char*>(rr), 20)));
}

}  // namespace
