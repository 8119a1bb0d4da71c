#include "edge/b2bua/text.hpp"

#include <gtest/gtest.h>

#include <string>

#include "sip/message.hpp"

namespace {

using esg::edge::b2bua_text::dtmf_of_info;

esg::sip::Message info(const std::string& type, const std::string& body) {
  const std::string text =
      "INFO sip:pbx@127.0.0.1 SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n"
      "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>;tag=2\r\n"
      "Call-ID: x\r\nCSeq: 2 INFO\r\nMax-Forwards: 70\r\n"
      "Content-Type: " +
      type + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  auto m = esg::sip::parse_message(text);
  EXPECT_TRUE(m);
  return std::move(*m);
}

TEST(DtmfOfInfo, ReadsDtmfRelayBodies) {
  auto k = dtmf_of_info(info("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n"));
  ASSERT_TRUE(k);
  EXPECT_EQ(k->key, '5');
  EXPECT_EQ(k->ms, 160);
  k = dtmf_of_info(info("Application/DTMF-Relay", "signal= #\nduration = 250"));
  ASSERT_TRUE(k);
  EXPECT_EQ(k->key, '#');
  EXPECT_EQ(k->ms, 250);
  k = dtmf_of_info(info("application/dtmf-relay", "Signal=b"));
  ASSERT_TRUE(k);
  EXPECT_EQ(k->key, 'B');
  EXPECT_EQ(k->ms, 0) << "no Duration: the relay picks its default";
}

TEST(DtmfOfInfo, ReadsDtmfBodies) {
  auto k = dtmf_of_info(info("application/dtmf", "9"));
  ASSERT_TRUE(k);
  EXPECT_EQ(k->key, '9');
}

TEST(DtmfOfInfo, RefusesWhatIsNoKeyPress) {
  EXPECT_FALSE(dtmf_of_info(info("application/dtmf-relay", "Signal=16\r\nDuration=100")));
  EXPECT_FALSE(dtmf_of_info(info("application/dtmf-relay", "Duration=100")));
  EXPECT_FALSE(dtmf_of_info(info("application/dtmf", "12")));
  EXPECT_FALSE(dtmf_of_info(info("application/media_control+xml", "<x/>")));
  EXPECT_FALSE(dtmf_of_info(info("text/plain", "Signal=1")));
}

}  // namespace

namespace {

TEST(NameAddr, TheDisplayNameQuotedAndTheUserEscaped) {
  using esg::edge::b2bua_text::escaped_user;
  using esg::edge::b2bua_text::name_addr;
  EXPECT_EQ(name_addr("Ivan \"Vanya\"", "#123*", "h"), "\"Ivan \\\"Vanya\\\"\" <sip:%23123*@h>");
  EXPECT_EQ(escaped_user("+7 999"), "+7%20999");
  EXPECT_EQ(escaped_user("100%"), "100%25") << "a literal percent sign is escaped too";
  EXPECT_EQ(name_addr({}, {}, "h:5060"), "<sip:h:5060>");
}

}  // namespace
