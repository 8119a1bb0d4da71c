#include "sip/response.hpp"

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace esg::sip {
namespace {

TEST(BuildResponse, CopiesTransactionHeadersAndAddsTheToTag_8_2_6) {
  auto req = parse_message(
      test::crlf("INVITE sip:100@127.0.0.1 SIP/2.0\n"
                 "Via: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bK1;rport=5062;received=127.0.0.2\n"
                 "Via: SIP/2.0/TCP 127.0.0.3;branch=z9hG4bK0\n"
                 "From: \"A\" <sip:a@127.0.0.2>;tag=f\nTo: <sip:100@127.0.0.1>\n"
                 "Call-ID: r1\nCSeq: 5 INVITE\nContact: <sip:a@127.0.0.2>\n"
                 "Content-Type: application/sdp\nContent-Length: 4\n\nv=0\n"));
  ASSERT_TRUE(req);
  auto resp = parse_message(build_response(*req, 486, {}, "esg-1", "Retry-After: 30\r\n"));
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status(), 486);
  EXPECT_EQ(resp->reason(), "Busy Here");
  auto vias = resp->vias();
  ASSERT_TRUE(vias);
  ASSERT_EQ(vias->size(), 2u);
  EXPECT_EQ((*vias)[0].received, "127.0.0.2");
  EXPECT_EQ(resp->from_tag(), "f");
  EXPECT_EQ(resp->to_tag(), "esg-1");
  EXPECT_EQ(resp->call_id(), "r1");
  EXPECT_EQ(resp->cseq().number, 5u);
  EXPECT_FALSE(resp->header(HeaderId::Contact));
  EXPECT_TRUE(resp->body().empty());
  EXPECT_EQ((*resp->retry_after())->seconds, 30u);
}

TEST(BuildResponse, KeepsAnExistingToTagAndTakesACustomReason) {
  auto req = parse_message(
      test::crlf("BYE sip:a@h SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK2\nFrom: <sip:a@h>;tag=1\n"
                 "To: <sip:b@h>;tag=2\nCall-ID: c\nCSeq: 9 BYE\n\n"));
  auto resp = parse_message(build_response(*req, 200, "Fine", "other"));
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->to_tag(), "2");
  EXPECT_EQ(resp->reason(), "Fine");
  EXPECT_EQ(reason_phrase(487), "Request Terminated");
  EXPECT_EQ(reason_phrase(299), "");
}

TEST(BuildResponse, StampsReceivedAndRportFromTheSource_Rfc3581) {
  auto req = parse_message(
      test::crlf("OPTIONS sip:x SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bK3\n"
                 "From: <sip:a@h>;tag=1\nTo: <sip:x>\nCall-ID: c\nCSeq: 1 OPTIONS\n\n"));
  ASSERT_TRUE(req);
  req->set_source("127.0.0.9", 40000);
  auto resp = parse_message(build_response(*req, 200));
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->top_via().received, "127.0.0.9");
  EXPECT_EQ(resp->top_via().rport_value, 40000);
  EXPECT_EQ(resp->top_via().branch, "z9hG4bK3");
}

TEST(BuildErrorResponse, AnswersAMalformedRequestFromItsReadableLines) {
  const std::string bad = test::torture("mismatch01");
  auto parsed = parse_message(bad);
  ASSERT_FALSE(parsed);
  const std::string resp = build_error_response(bad, parsed.error(), {"127.0.0.2", 5070});
  auto m = parse_message(resp);
  ASSERT_TRUE(m) << resp;
  EXPECT_EQ(m->status(), 400);
  EXPECT_EQ(m->reason(), "CSeq Method Mismatch");
  EXPECT_EQ(m->top_via().received, "127.0.0.2");
  EXPECT_EQ(m->call_id(), "mismatch01.dj0234sxdfl3");
}

TEST(BuildErrorResponse, NothingForDiscardsResponsesOrWithoutVia) {
  ParseError discard;
  discard.status = 0;
  EXPECT_EQ(build_error_response("INVITE sip:x SIP/2.0\r\nVia: a\r\n\r\n", discard), "");
  ParseError bad;
  bad.status = 400;
  bad.reason = "Bad";
  EXPECT_EQ(build_error_response("SIP/2.0 200 OK\r\nVia: a\r\n\r\n", bad), "");
  EXPECT_EQ(build_error_response("INVITE sip:x SIP/2.0\r\nTo: a\r\n\r\n", bad), "");
}

}  // namespace
}  // namespace esg::sip
