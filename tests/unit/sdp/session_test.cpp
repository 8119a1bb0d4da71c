#include <gtest/gtest.h>

#include "sdp/session.hpp"

namespace esg::sdp {
namespace {

TEST(SdpMedia, RtpmapLooksUpDynamicAndStaticTypes) {
  Media m;
  m.attributes = {{"rtpmap", std::string("96 G722/8000")}, {"rtpmap", std::string("bad")}};
  EXPECT_EQ(m.rtpmap(96)->encoding, "G722");
  EXPECT_EQ(m.rtpmap(0)->encoding, "PCMU");
  EXPECT_EQ(m.rtpmap(9)->encoding, "G722");
  EXPECT_FALSE(m.rtpmap(97));
  EXPECT_FALSE(m.fmtp(96));
}

TEST(SdpMedia, DirectionPrecedence) {
  Session s;
  Media m;
  EXPECT_EQ(s.direction(m), Direction::SendRecv);
  s.attributes.push_back({"inactive", std::nullopt});
  EXPECT_EQ(s.direction(m), Direction::Inactive);
  m.attributes.push_back({"sendonly", std::nullopt});
  EXPECT_EQ(s.direction(m), Direction::SendOnly);
  EXPECT_EQ(direction_name(Direction::RecvOnly), "recvonly");
}

}  // namespace
}  // namespace esg::sdp
