// SRTP keyed from what a DTLS handshake agreed (RFC 5764 §4.2), with rtcp-mux: what one side
// protects with its local keys the other side reads with its remote keys.

#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "link.hpp"
#include "media/srtp.hpp"

namespace {

using esg::media::Srtp;
using esg::media::dtls::SrtpKeys;
using esg::media::dtls::test::Link;

std::string rtp_packet(uint16_t seq, uint32_t ssrc) {
  std::string p(12 + 120, '\x5a');
  p[0] = char(0x80);
  p[1] = 111;  // Opus, as Telegram's peer sends it
  p[2] = char(seq >> 8);
  p[3] = char(seq);
  for (int i = 0; i < 4; ++i)
    p[8 + i] = char(ssrc >> (24 - 8 * i));
  return p;
}

void put32(std::string& p, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    p[at + size_t(i)] = char(v >> (24 - 8 * i));
}

// A compound RTCP packet: a sender report, then SDES with a CNAME (RFC 3550 §6.1).
std::string rtcp_compound(uint32_t ssrc) {
  std::string p(28 + 12, '\0');
  p[0] = char(0x80);
  p[1] = char(200);  // SR
  p[3] = 6;          // 7 words
  put32(p, 4, ssrc);
  p[28] = char(0x81);
  p[29] = char(202);  // SDES, one chunk
  p[31] = 2;
  put32(p, 32, ssrc);
  p[36] = 1;  // CNAME
  p[37] = 1;
  p[38] = 'x';
  return p;
}

// A lone transport-wide congestion control feedback (RTPFB FMT 15): reduced-size RTCP
// (RFC 5506) as libwebrtc sends it with set_rtcp_reduced_size(true).
std::string rtcp_lone_feedback(uint32_t ssrc) {
  std::string p(20, '\0');
  p[0] = char(0x8f);
  p[1] = char(205);
  p[3] = 4;
  put32(p, 4, ssrc);
  put32(p, 8, 0x01020304);
  p[12] = 0;  // base sequence 1, status count 1, reference time, feedback count
  p[13] = 1;
  p[15] = 1;
  p[19] = 7;
  return p;
}

SrtpKeys connect_with(const char* server_profiles, Link& l) {
  if (server_profiles) l.server.session->set_srtp_profiles(server_profiles);
  l.start();
  EXPECT_TRUE(l.both_connected());
  return l.client.keys.value_or(SrtpKeys{});
}

// Protects `plain` with `out` and checks that `in` gives it back; returns the wire size.
size_t round_trip(Srtp& out, Srtp& in, const std::string& plain, bool rtcp) {
  std::string wire = plain;
  EXPECT_TRUE(out.protect(wire, rtcp));
  EXPECT_NE(wire, plain);
  size_t len = wire.size();
  EXPECT_TRUE(in.unprotect(wire.data(), len, rtcp));
  EXPECT_EQ(std::string(wire.data(), len), plain);
  return wire.size();
}

struct Case {
  const char* server_profiles;  // what the server accepts (kSrtpProfiles when null)
  const char* profile;          // what is agreed
  size_t tag;                   // bytes of authentication tag
};
void PrintTo(const Case& c, std::ostream* os) {
  *os << c.profile;
}

class DtlsSrtp : public ::testing::TestWithParam<Case> {};

TEST_P(DtlsSrtp, EachSideReadsWhatTheOtherProtectsRtpAndRtcpOnOneContextPair) {
  const auto [server_profiles, profile, tag] = GetParam();
  Link l;
  connect_with(server_profiles, l);
  ASSERT_TRUE(l.both_connected());
  const SrtpKeys& c = *l.client.keys;
  const SrtpKeys& s = *l.server.keys;
  ASSERT_EQ(c.profile, profile);
  auto client_out = Srtp::create_keyed(c.profile, c.local, true);
  auto client_in = Srtp::create_keyed(c.profile, c.remote, false);
  auto server_out = Srtp::create_keyed(s.profile, s.local, true);
  auto server_in = Srtp::create_keyed(s.profile, s.remote, false);
  ASSERT_TRUE(client_out && client_in && server_out && server_in);

  const std::string rtp = rtp_packet(1, 0x11111111);
  EXPECT_EQ(round_trip(*client_out, *server_in, rtp, false), rtp.size() + tag);
  const std::string back = rtp_packet(9, 0x22222222);
  EXPECT_EQ(round_trip(*server_out, *client_in, back, false), back.size() + tag);
  // SRTCP adds the E flag and index word and the tag (RFC 3711 §3.4, RFC 7714 §9).
  const std::string sr = rtcp_compound(0x11111111);
  EXPECT_EQ(round_trip(*client_out, *server_in, sr, true), sr.size() + 4 + tag);
  const std::string fb = rtcp_lone_feedback(0x22222222);
  EXPECT_EQ(round_trip(*server_out, *client_in, fb, true), fb.size() + 4 + tag);
  const std::string fb2 = rtcp_lone_feedback(0x11111111);
  round_trip(*client_out, *server_in, fb2, true);
}

TEST_P(DtlsSrtp, KeysOfTheOtherDirectionDoNotRead) {
  const auto [server_profiles, profile, tag] = GetParam();
  Link l;
  connect_with(server_profiles, l);
  ASSERT_TRUE(l.both_connected());
  const SrtpKeys& c = *l.client.keys;
  auto client_out = Srtp::create_keyed(c.profile, c.local, true);
  // The client's own receive keys are the server's send keys, not its own.
  auto wrong_in = Srtp::create_keyed(c.profile, c.remote, false);
  std::string wire = rtp_packet(3, 0x33333333);
  ASSERT_TRUE(client_out->protect(wire, false));
  size_t len = wire.size();
  EXPECT_FALSE(wrong_in->unprotect(wire.data(), len, false));
  // A bit flipped in the payload is refused by the right keys.
  auto server_in = Srtp::create_keyed(c.profile, l.server.keys->remote, false);
  wire[20] ^= 1;
  len = wire.size();
  EXPECT_FALSE(server_in->unprotect(wire.data(), len, false));
}

INSTANTIATE_TEST_SUITE_P(Profiles, DtlsSrtp,
                         ::testing::Values(Case{nullptr, "AES_CM_128_HMAC_SHA1_80", 10},
                                           Case{"SRTP_AEAD_AES_128_GCM", "AEAD_AES_128_GCM", 16},
                                           Case{"SRTP_AEAD_AES_256_GCM", "AEAD_AES_256_GCM", 16}),
                         [](const auto& info) { return std::string(info.param.profile); });

TEST(SrtpKeyed, RefusesUnknownProfilesAndKeysOfTheWrongLength) {
  EXPECT_TRUE(Srtp::create_keyed("AES_CM_128_HMAC_SHA1_80", std::string(30, 'k'), true));
  EXPECT_TRUE(Srtp::create_keyed("AEAD_AES_128_GCM", std::string(28, 'k'), false));
  EXPECT_TRUE(Srtp::create_keyed("AEAD_AES_256_GCM", std::string(44, 'k'), true));
  EXPECT_FALSE(Srtp::create_keyed("AEAD_AES_128_GCM", std::string(30, 'k'), true));
  EXPECT_FALSE(Srtp::create_keyed("AEAD_AES_256_GCM", std::string(28, 'k'), true));
  EXPECT_FALSE(Srtp::create_keyed("AES_CM_128_HMAC_SHA1_32", std::string(30, 'k'), true));
  EXPECT_FALSE(Srtp::create_keyed("", "", true));
}

}  // namespace
