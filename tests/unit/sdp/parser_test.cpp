#include <gtest/gtest.h>

#include "sdp/session.hpp"

namespace esg::sdp {
namespace {

// The provider INVITE's offer (addresses from the field; parsing only).
const char* kProviderOffer =
    "v=0\r\n"
    "o=PVG 1357911604 1357911604 IN IP4 44.55.66.88\r\n"
    "s=-\r\n"
    "p=+1 6135555555\r\n"
    "c=IN IP4 44.55.66.88\r\n"
    "t=0 0\r\n"
    "m=audio 48970 RTP/AVP 8 13 101\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\n"
    "a=ptime:20\r\n";

TEST(SdpParse, ProviderOffer) {
  auto s = parse(kProviderOffer);
  ASSERT_TRUE(s) << s.error().what;
  EXPECT_EQ(s->origin.username, "PVG");
  EXPECT_EQ(s->origin.address, "44.55.66.88");
  EXPECT_EQ(s->name, "-");
  ASSERT_EQ(s->phones.size(), 1u);
  ASSERT_TRUE(s->connection);
  EXPECT_EQ(s->connection->address, "44.55.66.88");
  ASSERT_EQ(s->timings.size(), 1u);
  ASSERT_EQ(s->media.size(), 1u);
  const Media& m = s->media[0];
  EXPECT_EQ(m.media, "audio");
  EXPECT_EQ(m.port, 48970);
  EXPECT_EQ(m.proto, "RTP/AVP");
  EXPECT_EQ(m.formats, (std::vector<std::string>{"8", "13", "101"}));
  EXPECT_EQ(m.rtpmap(8)->encoding, "PCMA");  // static payload type, no rtpmap line
  EXPECT_EQ(m.rtpmap(101)->encoding, "telephone-event");
  EXPECT_EQ(m.rtpmap(101)->clock_rate, 8000u);
  EXPECT_EQ(m.fmtp(101), "0-15");
  EXPECT_EQ(m.ptime(), 20u);
  EXPECT_EQ(s->direction(m), Direction::SendRecv);
  EXPECT_EQ(s->connection_for(m)->address, "44.55.66.88");
}

TEST(SdpParse, SeveralMediaWithLevelsAndAttributes) {
  auto s = parse(
      "v=0\r\no=- 1 2 IN IP6 ::1\r\ns= \r\ni=info\r\nu=http://x\r\ne=a@b\r\n"
      "c=IN IP6 ::1\r\nb=AS:64\r\nt=3149328700 0\r\nr=7d 1h 0 25h\r\nz=2882844526 -1h\r\n"
      "k=prompt\r\na=recvonly\r\na=tool:x\r\n"
      "m=audio 49170/2 RTP/SAVP 111 0\r\ni=voice\r\nc=IN IP4 127.0.0.1\r\nb=TIAS:64000\r\n"
      "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 useinbandfec=1\r\na=sendonly\r\n"
      "a=rtcp:49171 IN IP4 127.0.0.1\r\na=maxptime:40\r\n"
      "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR "
      "KDR=1\r\n"
      "m=video 0 RTP/AVP 31\r\na=x-unknown\r\n");
  ASSERT_TRUE(s) << s.error().what << " at line " << s.error().line;
  EXPECT_EQ(s->origin.addrtype, "IP6");
  EXPECT_EQ(s->timings[0].repeats.size(), 1u);
  EXPECT_EQ(s->zone, "2882844526 -1h");
  ASSERT_EQ(s->media.size(), 2u);
  const Media& a = s->media[0];
  EXPECT_EQ(a.port_count, 2);
  EXPECT_EQ(a.title, "voice");
  EXPECT_EQ(a.connection->address, "127.0.0.1");
  EXPECT_EQ(a.bandwidths[0].value, 64000u);
  auto opus = a.rtpmap(111);
  ASSERT_TRUE(opus);
  EXPECT_EQ(opus->clock_rate, 48000u);
  EXPECT_EQ(opus->channels, 2u);
  EXPECT_EQ(a.rtcp_port(), 49171);
  EXPECT_EQ(a.maxptime(), 40u);
  EXPECT_EQ(s->direction(a), Direction::SendOnly);
  auto crypto = a.crypto();
  ASSERT_EQ(crypto.size(), 1u);
  EXPECT_EQ(crypto[0].suite, "AES_CM_128_HMAC_SHA1_80");
  EXPECT_EQ(crypto[0].session_params, "KDR=1");
  const Media& v = s->media[1];
  EXPECT_EQ(v.port, 0);
  EXPECT_EQ(s->direction(v), Direction::RecvOnly);  // from the session level
  EXPECT_EQ(s->connection_for(v)->address, "::1");
  EXPECT_TRUE(v.attribute("x-unknown"));
}

TEST(SdpParse, BareLfAndTrailingBlankLinesTolerated) {
  auto s = parse("v=0\no=- 1 1 IN IP4 127.0.0.1\ns=-\nt=0 0\nm=audio 1 RTP/AVP 0\n\n\n");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->media.size(), 1u);
}

struct BadCase {
  const char* sdp;
  size_t line;
};

TEST(SdpParse, ErrorsNameTheLine) {
  const BadCase cases[] = {
      {"o=- 1 1 IN IP4 h\r\n", 1},
      {"v=1\r\n", 1},
      {"v=0\r\ns=-\r\n", 2},
      {"v=0\r\no=- 1 IN IP4 h\r\n", 2},
      {"v=0\r\no=- x 1 IN IP4 h\r\n", 2},
      {"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4\r\n", 4},
      {"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=XX IP4 h\r\n", 4},
      {"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0\r\n", 4},
      {"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nm=audio x RTP/AVP 0\r\n", 4},
      {"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nm=audio 99999 RTP/AVP 0\r\n", 4},
      {"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP\r\n", 4},
      {"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:0\r\n", 5},
      {"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:200 X/8000\r\n", 5},
      {"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n", 5},
      {"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=rtcp:abc\r\n", 5},
      {"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\nt=0 0\r\n", 5},
      {"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nx=unknown\r\n", 4},
      {"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nnot a line\r\n", 4},
      {"v=0\r\no=- 1 1 IN IP4 h\r\nc=IN IP4 h\r\ns=-\r\n", 4},
      {"v=0\r\no=- 1 1 IN IP4 h\r\n", 2},  // no s=: reported at the end
      {"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nb=AS\r\n", 4},
      {"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nr=1 2\r\n", 4},
      {"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\na=\r\n", 4},
      {"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\na=crypto:1 X\r\n", 5},
  };
  for (const auto& c : cases) {
    auto s = parse(c.sdp);
    ASSERT_FALSE(s) << c.sdp;
    EXPECT_EQ(s.error().line, c.line) << c.sdp << " -> " << s.error().what;
    EXPECT_FALSE(s.error().what.empty());
  }
}

}  // namespace
}  // namespace esg::sdp
