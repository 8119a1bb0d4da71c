#include "sip/message.hpp"

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace esg::sip {
namespace {

using test::crlf;

TEST(Message, LazyListHeadersCombineLinesInOrder) {
  auto m =
      parse_message(crlf("SIP/2.0 200 OK\n"
                         "Via: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2\n"
                         "Via: SIP/2.0/TCP c;branch=z9hG4bK3\n"
                         "Record-Route: <sip:p1;lr>, <sip:p2;lr>\n"
                         "Record-Route: <sip:p3;lr>\n"
                         "From: <sip:a@h>;tag=1\nTo: <sip:b@h>;tag=2\nCall-ID: x\nCSeq: 1 INVITE\n"
                         "Contact: <sip:b@10.0.0.1>;expires=30\n"
                         "Expires: 120\nRetry-After: 30\nReason: SIP;cause=480;text=\"Gone\"\n"
                         "Supported: timer, 100rel\nSupported: replaces\nAllow: INVITE, ACK\n"
                         "Content-Type: application/sdp\n"
                         "Content-Length: 0\n\n"));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->top_via().host, "a");
  EXPECT_EQ(m->vias()->size(), 3u);
  auto rr = m->record_routes();
  ASSERT_TRUE(rr);
  ASSERT_EQ(rr->size(), 3u);
  EXPECT_EQ((*rr)[2].uri.host, "p3");
  EXPECT_TRUE(m->routes()->empty());
  EXPECT_EQ(m->contacts()->items[0].param("expires"), "30");
  EXPECT_EQ(**m->expires(), 120u);
  EXPECT_EQ((*m->retry_after())->seconds, 30u);
  EXPECT_EQ((*m->reason_header())->cause, 480);
  EXPECT_TRUE((*m->content_type())->is("application", "sdp"));
  auto supported = m->tokens(HeaderId::Supported);
  ASSERT_TRUE(supported);
  EXPECT_EQ(supported->size(), 3u);
  EXPECT_EQ(m->count(HeaderId::Via), 2u);
  EXPECT_FALSE(m->header(HeaderId::Route));
}

TEST(Message, AbsentOptionalHeadersAreNullopt) {
  auto m = parse_message(
      crlf("BYE sip:a@h SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK9\nFrom: <sip:a@h>;tag=1\n"
           "To: <sip:b@h>;tag=2\nCall-ID: y\nCSeq: 2 BYE\n\n"));
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->expires());
  EXPECT_FALSE(m->retry_after());
  EXPECT_FALSE(m->content_type());
  EXPECT_FALSE(m->has_content_length());
}

TEST(Message, FoldedValuesAreUnfoldedAndRawKeepsTheBytes) {
  const std::string bytes = crlf(
      "OPTIONS sip:x SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK9\nFrom: <sip:a@h>;tag=1\n"
      "To: <sip:x>\nCall-ID: z\nCSeq: 3 OPTIONS\nSubject: one\n   two\n\tthree\n\n");
  auto m = parse_message(bytes);
  ASSERT_TRUE(m);
  const HeaderField* s = m->header(HeaderId::Subject);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->value, "one two three");
  EXPECT_EQ(s->raw, "Subject: one\r\n   two\r\n\tthree\r\n");
}

}  // namespace
}  // namespace esg::sip
