#include <gtest/gtest.h>

#include "sdp/session.hpp"

namespace esg::sdp {
namespace {

TEST(SdpSerialize, RoundTripIsExactForCanonicalInput) {
  const std::string text =
      "v=0\r\n"
      "o=esg 1 2 IN IP4 127.0.0.1\r\n"
      "s=-\r\n"
      "c=IN IP4 127.0.0.1\r\n"
      "b=AS:80\r\n"
      "t=0 0\r\n"
      "a=sendrecv\r\n"
      "m=audio 20000 RTP/AVP 8 0 101\r\n"
      "a=rtpmap:8 PCMA/8000\r\n"
      "a=rtpmap:101 telephone-event/8000\r\n"
      "a=fmtp:101 0-16\r\n"
      "a=ptime:20\r\n"
      "m=image 0 udptl t38\r\n";
  auto s = parse(text);
  ASSERT_TRUE(s);
  EXPECT_EQ(serialize(*s), text);
}

TEST(SdpSerialize, EditedSessionReparses) {
  auto s = parse("v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\nm=audio 4000 RTP/AVP 0\n");
  ASSERT_TRUE(s);
  s->connection = Connection{"IN", "IP4", "127.0.0.1"};
  s->media[0].port = 20002;
  s->media[0].attributes.push_back({"rtcp", std::string("20003")});
  s->origin.session_version = "2";
  auto again = parse(serialize(*s));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->connection->address, "127.0.0.1");
  EXPECT_EQ(again->media[0].port, 20002);
  EXPECT_EQ(again->media[0].rtcp_port(), 20003);
  EXPECT_EQ(again->origin.session_version, "2");
}

}  // namespace
}  // namespace esg::sdp
