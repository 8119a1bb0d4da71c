#include "media/negotiate.hpp"

#include <gtest/gtest.h>

namespace {

using esg::media::answer_for;
using esg::media::Format;
using esg::media::formats_of;
using esg::media::offer_for;

std::vector<Format> formats(const std::string& m_line_and_maps) {
  auto s = esg::sdp::parse(
      "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
      "t=0 0\r\n" +
      m_line_and_maps);
  EXPECT_TRUE(s) << m_line_and_maps;
  return formats_of(s->media.at(0));
}

std::string names(const std::vector<Format>& f) {
  std::string out;
  for (const auto& x : f)
    out += (out.empty() ? "" : " ") + std::to_string(x.pt) + ":" + x.name;
  return out;
}

TEST(Negotiate, AnOfferKeepsTheCodecsBothSidesHave) {
  auto offer = formats(
      "m=audio 4000 RTP/AVP 0 8 18 101\r\na=rtpmap:18 G729/8000\r\n"
      "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n");
  EXPECT_EQ(names(offer), "0:PCMU 8:PCMA 18:G729 101:telephone-event");
  EXPECT_EQ(*offer[3].fmtp, "0-15");
  EXPECT_EQ(names(offer_for(offer, {"PCMA"})), "8:PCMA 101:telephone-event");
  EXPECT_EQ(names(offer_for(offer, {})), names(offer));  // no preference: untouched
}

TEST(Negotiate, NoCodecInCommonOffersTheLegsOwnForTranscoding) {
  auto offer = formats("m=audio 4000 RTP/AVP 8 96\r\na=rtpmap:96 telephone-event/8000\r\n");
  auto out = offer_for(offer, {"opus", "G722"});
  EXPECT_EQ(names(out), "97:opus 9:G722 96:telephone-event");  // 96 is taken by the events
  EXPECT_EQ(out[0].clock, 48000u);
  EXPECT_EQ(out[0].channels, 2u);
  // Nothing esg can transcode either: the offer stays as it is, the leg decides.
  auto g729 = formats("m=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n");
  EXPECT_EQ(names(offer_for(g729, {"PCMA"})), "18:G729");
}

TEST(Negotiate, TheAnswerPicksTheSameCodecOrATranscodableOne) {
  auto offer = formats("m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n");
  // The same codec: pass-through, the offerer sees its own payload types.
  auto same = answer_for(offer,
                         formats("m=audio 5000 RTP/AVP 0 100\r\n"
                                 "a=rtpmap:100 telephone-event/8000\r\n"),
                         {"PCMA", "PCMU"});
  EXPECT_FALSE(same.transcode);
  EXPECT_EQ(names(same.formats), "0:PCMU 101:telephone-event");
  EXPECT_EQ(same.offerer_dtmf, 101);
  EXPECT_EQ(same.answerer_dtmf, 100);
  // Another codec: the first of the offer's (its order is the offerer's preference) that its
  // leg allows, transcoded; no events on one side: none.
  auto other = answer_for(
      offer, formats("m=audio 5000 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n"), {"PCMU"});
  EXPECT_TRUE(other.transcode);
  EXPECT_EQ(names(other.formats), "0:PCMU");
  EXPECT_EQ(other.answerer.name, "opus");
  EXPECT_EQ(other.offerer_dtmf, -1);
}

}  // namespace
