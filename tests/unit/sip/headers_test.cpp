#include "sip/headers.hpp"

#include <gtest/gtest.h>

namespace esg::sip {
namespace {

TEST(HeaderNames, LongAndCompactFormsCaseInsensitive) {
  EXPECT_EQ(header_id("call-id"), HeaderId::CallId);
  EXPECT_EQ(header_id("WWW-Authenticate"), HeaderId::WwwAuthenticate);
  const std::pair<char, HeaderId> compact[] = {
      {'i', HeaderId::CallId},
      {'m', HeaderId::Contact},
      {'e', HeaderId::ContentEncoding},
      {'l', HeaderId::ContentLength},
      {'c', HeaderId::ContentType},
      {'f', HeaderId::From},
      {'s', HeaderId::Subject},
      {'k', HeaderId::Supported},
      {'t', HeaderId::To},
      {'v', HeaderId::Via},
      {'o', HeaderId::Event},
      {'r', HeaderId::ReferTo},
      {'b', HeaderId::ReferredBy},
      {'u', HeaderId::AllowEvents},
      {'x', HeaderId::SessionExpires},
      {'a', HeaderId::AcceptContact},
      {'j', HeaderId::RejectContact},
      {'d', HeaderId::RequestDisposition},
      {'y', HeaderId::Identity},
      {'n', HeaderId::IdentityInfo},
  };
  for (auto [c, id] : compact) {
    EXPECT_EQ(header_id(std::string(1, c)), id) << c;
    EXPECT_EQ(header_id(std::string(1, char(c - 32))), id) << c;
  }
  EXPECT_EQ(header_id("X-Custom"), HeaderId::Other);
  EXPECT_EQ(header_id("q"), HeaderId::Other);
  EXPECT_EQ(header_name(HeaderId::CallId), "Call-ID");
}

TEST(CSeq, ParsesAndBoundsTheNumber) {
  auto c = parse_cseq("4294967295 REGISTER");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->number, 4294967295u);
  EXPECT_EQ(c->method, "REGISTER");
  EXPECT_FALSE(parse_cseq("4294967296 REGISTER"));
  EXPECT_FALSE(parse_cseq("1"));
  EXPECT_FALSE(parse_cseq("x INVITE"));
  EXPECT_FALSE(parse_cseq("1 INVITE extra"));
}

TEST(DeltaSeconds, SaturatesAndRejectsNonDigits) {
  EXPECT_EQ(*parse_delta_seconds(" 3600 "), 3600u);
  EXPECT_EQ(*parse_delta_seconds("99999999999999"), UINT32_MAX);
  EXPECT_FALSE(parse_delta_seconds("-1"));
  EXPECT_FALSE(parse_delta_seconds(""));
}

TEST(RetryAfter, WithCommentAndParams) {
  auto r = parse_retry_after("120 (I'm in a meeting) ;duration=3600");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->seconds, 120u);
  EXPECT_EQ(r->comment, "I'm in a meeting");
  EXPECT_EQ(r->params, ";duration=3600");
  EXPECT_EQ(parse_retry_after("949302838503028349304023988")->seconds, UINT32_MAX);
  EXPECT_FALSE(parse_retry_after("5 (open"));
}

TEST(Reason, CauseAndText) {
  auto r = parse_reason("Q.850 ;cause=16 ;text=\"Terminated\"");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->protocol, "Q.850");
  EXPECT_EQ(r->cause, 16);
  EXPECT_EQ(r->text, "Terminated");
  EXPECT_FALSE(parse_reason("SIP;cause=abc"));
}

TEST(MediaType, TypeSubtypeParams) {
  auto mt = parse_media_type("multipart/mixed;boundary=7a9cbec02ceef655");
  ASSERT_TRUE(mt);
  EXPECT_TRUE(mt->is("Multipart", "MIXED"));
  EXPECT_EQ(mt->params, ";boundary=7a9cbec02ceef655");
  EXPECT_FALSE(parse_media_type("application"));
}

TEST(TokenList, SplitsOnCommas) {
  auto t = parse_token_list("100rel, timer ,replaces");
  ASSERT_TRUE(t);
  ASSERT_EQ(t->size(), 3u);
  EXPECT_EQ((*t)[1], "timer");
  EXPECT_FALSE(parse_token_list("a b"));
}

}  // namespace
}  // namespace esg::sip
