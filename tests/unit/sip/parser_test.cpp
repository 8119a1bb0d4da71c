#include <gtest/gtest.h>

#include "sip/message.hpp"
#include "test_util.hpp"

namespace esg::sip {
namespace {

using test::crlf;

const std::string kOptions = crlf(
    "OPTIONS sip:esg.example SIP/2.0\n"
    "Via: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK1;rport\n"
    "From: <sip:probe@127.0.0.2>;tag=a\n"
    "To: <sip:esg.example>\n"
    "Call-ID: opt-1\n"
    "CSeq: 7 OPTIONS\n"
    "Max-Forwards: 70\n"
    "Content-Length: 0\n"
    "\n");

TEST(Parser, ProviderInviteEagerFields) {
  auto m = parse_message(test::provider_invite());
  ASSERT_TRUE(m) << m.error().reason;
  EXPECT_TRUE(m->is_request());
  EXPECT_EQ(m->method(), Method::Invite);
  const Uri& ruri = m->request_uri();
  EXPECT_EQ(ruri.scheme, Scheme::Sip);
  EXPECT_EQ(ruri.user, "1234567890");
  EXPECT_EQ(ruri.host, "172.27.103.90");
  EXPECT_EQ(ruri.port, 5080);
  EXPECT_EQ(ruri.param("transport"), "UDP");
  EXPECT_EQ(ruri.param("user"), "phone");
  const Via& via = m->top_via();
  EXPECT_EQ(via.transport, "UDP");
  EXPECT_EQ(via.host, "44.55.66.77");
  EXPECT_EQ(via.port, 5060);
  EXPECT_EQ(via.maddr, "89.232.125.56");
  EXPECT_EQ(via.branch, "z9hG4bK-14c4dd7e-210137c8-fc50302");
  EXPECT_TRUE(via.rfc3261_branch());
  EXPECT_EQ(m->from().uri.user, "8430000000");
  EXPECT_EQ(m->from_tag(), "5026-14c4dd7e-1087cebd-14c4dd7e");
  EXPECT_EQ(m->to().uri.user, "1234567890");
  EXPECT_EQ(m->to_tag(), "");
  EXPECT_EQ(m->call_id(), "40bb12f838738e5913c414c4dd7e210137c8da2fa8102e98aa28-0048-5988");
  EXPECT_EQ(m->cseq().number, 1u);
  EXPECT_EQ(m->cseq().method, "INVITE");
  EXPECT_EQ(m->max_forwards(), 63);
  EXPECT_EQ(m->body().size(), 200u);
  EXPECT_EQ(m->body().substr(0, 5), "v=0\r\n");
  // Header names are case-insensitive: "User-agent" is User-Agent.
  ASSERT_NE(m->header(HeaderId::UserAgent), nullptr);
  EXPECT_EQ(m->header(HeaderId::UserAgent)->value, "CS2000_NGSS/9.0");
  EXPECT_EQ(m->header("user-agent"), m->header(HeaderId::UserAgent));
}

TEST(Parser, ResponseStatusLine) {
  auto m =
      parse_message(crlf("SIP/2.0 486 Busy Here\n"
                         "Via: SIP/2.0/TCP 127.0.0.1:5080;branch=z9hG4bKx;received=127.0.0.3\n"
                         "From: <sip:a@127.0.0.1>;tag=1\nTo: <sip:b@127.0.0.1>;tag=2\n"
                         "Call-ID: c\nCSeq: 2 INVITE\nContent-Length: 0\n\n"));
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->is_response());
  EXPECT_EQ(m->status(), 486);
  EXPECT_EQ(m->reason(), "Busy Here");
  EXPECT_EQ(m->top_via().received, "127.0.0.3");
  EXPECT_EQ(m->to_tag(), "2");
}

TEST(Parser, LeadingCrlfAndBareLfTolerated) {
  std::string bare_lf =
      "\r\n\r\nOPTIONS sip:x SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK2\n"
      "From: <sip:a@h>;tag=1\nTo: <sip:x>\nCall-ID: c\nCSeq: 1 OPTIONS\n\n";
  auto m = parse_message(bare_lf);
  ASSERT_TRUE(m) << m.error().reason;
  EXPECT_EQ(m->call_id(), "c");
}

TEST(Parser, EmptyDatagramIsDiscarded) {
  auto m = parse_message("\r\n\r\n");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, Errc::Empty);
  EXPECT_TRUE(m.error().discard());
}

TEST(Parser, TruncatedDatagramIsDiscarded) {
  auto m = parse_message(kOptions.substr(0, 60));
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, Errc::Truncated);
  EXPECT_TRUE(m.error().discard());
}

TEST(Parser, TooLargeRequestGets513) {
  std::string big = kOptions;
  big.insert(big.find("Content-Length"), "X-Pad: " + std::string(70000, 'a') + "\r\n");
  auto m = parse_message(big);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().status, 513);
  ParseOptions generous;
  generous.max_size = 1 << 20;
  EXPECT_TRUE(parse_message(big, generous));
}

TEST(Parser, MissingHeaderNamesIt) {
  std::string no_cseq = kOptions;
  no_cseq.erase(no_cseq.find("CSeq"), std::string("CSeq: 7 OPTIONS\r\n").size());
  auto m = parse_message(no_cseq);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().reason, "Missing CSeq");
  EXPECT_EQ(m.error().status, 400);
}

TEST(Parser, BadResponsesAreDiscardedNotAnswered) {
  auto m = parse_message(crlf("SIP/2.0 200 OK\nVia: SIP/2.0/UDP h;branch=z9hG4bK3\n\n"));
  ASSERT_FALSE(m);
  EXPECT_TRUE(m.error().discard());
}

TEST(Parser, HeaderLineWithoutColonIs400) {
  std::string bad = kOptions;
  bad.insert(bad.find("Max-Forwards"), "Foobar roobar\r\n");
  auto m = parse_message(bad);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, Errc::BadHeaderLine);
  EXPECT_EQ(m.error().status, 400);
}

TEST(Parser, MaxForwardsOutOfRangeIsTreatedAsAbsent) {
  std::string mf = kOptions;
  mf.replace(mf.find("Max-Forwards: 70"), 16, "Max-Forwards: 300");
  auto m = parse_message(mf);
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->max_forwards());
  mf.replace(mf.find("Max-Forwards: 300"), 17, "Max-Forwards: abc");
  EXPECT_FALSE(parse_message(mf));
}

TEST(Parser, SameContentLengthTwiceIsAccepted) {
  std::string twice = kOptions;
  twice.insert(twice.find("\r\n\r\n") + 2, "l: 0\r\n");
  EXPECT_TRUE(parse_message(twice));
}

TEST(Parser, StreamFramingTakesExactlyContentLength) {
  ParseOptions stream;
  stream.framing = Framing::Stream;
  auto m = parse_message(kOptions, stream);
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->body().empty());
}

TEST(Parser, OffsetsPointAtTheFault) {
  std::string bad = kOptions;
  bad.replace(bad.find("CSeq: 7"), 7, "CSeq: x");
  auto m = parse_message(bad);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().reason, "Malformed CSeq");
  EXPECT_EQ(bad.substr(m.error().offset, 1), "x");
}

TEST(Parser, MessageMovesKeepTheirViews) {
  auto m = parse_message(test::provider_invite());
  ASSERT_TRUE(m);
  Message moved = std::move(*m);
  std::vector<Message> many;
  many.push_back(std::move(moved));
  for (int i = 0; i < 20; ++i)
    many.push_back(*parse_message(kOptions));
  EXPECT_EQ(many[0].call_id(), "40bb12f838738e5913c414c4dd7e210137c8da2fa8102e98aa28-0048-5988");
  EXPECT_EQ(many[0].top_via().host, "44.55.66.77");
}

TEST(Methods, NamesRoundTrip) {
  for (auto m : {Method::Invite, Method::Ack, Method::Bye, Method::Cancel, Method::Options,
                 Method::Register, Method::Info, Method::Prack, Method::Update, Method::Subscribe,
                 Method::Notify, Method::Refer, Method::Message, Method::Publish}) {
    EXPECT_EQ(method_from(method_name(m)), m);
  }
  EXPECT_EQ(method_from("invite"), Method::Unknown);  // methods are case-sensitive
}

}  // namespace
}  // namespace esg::sip
