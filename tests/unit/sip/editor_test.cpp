#include "sip/editor.hpp"

#include <gtest/gtest.h>

#include "test_util.hpp"

namespace esg::sip {
namespace {

using test::crlf;

Message parsed(const std::string& s) {
  auto m = parse_message(s);
  EXPECT_TRUE(m) << (m ? "" : m.error().reason);
  return std::move(*m);
}

TEST(Editor, UntouchedMessageSerializesByteForByte) {
  const std::string invite = test::provider_invite();
  Message m = parsed(invite);
  EXPECT_EQ(Editor(m).serialize(), invite);
}

TEST(Editor, UntouchedBytesStayAsReceivedAroundAnEdit) {
  const std::string invite = test::provider_invite();
  Message m = parsed(invite);
  Editor e(m);
  e.set_request_uri("sip:100@127.0.0.1:5090");
  std::string out = e.serialize();
  EXPECT_EQ(out.substr(0, out.find("\r\n")), "INVITE sip:100@127.0.0.1:5090 SIP/2.0");
  // Everything after the start line is unchanged.
  EXPECT_EQ(out.substr(out.find("\r\n")), invite.substr(invite.find("\r\n")));
  Message again = parsed(out);
  EXPECT_EQ(again.request_uri().user, "100");
}

TEST(Editor, AddRemoveSetHeaders) {
  Message m = parsed(test::provider_invite());
  Editor e(m);
  e.add_front("Via", "SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKesg1");
  EXPECT_EQ(e.remove(HeaderId::UserAgent), 1u);
  e.remove("supported");
  e.add_back("X-Esg-Call", "42");
  e.set("Max-Forwards", "62");
  Message out = parsed(e.serialize());
  auto vias = out.vias();
  ASSERT_TRUE(vias);
  ASSERT_EQ(vias->size(), 2u);
  EXPECT_EQ(out.top_via().branch, "z9hG4bKesg1");
  EXPECT_FALSE(out.header(HeaderId::UserAgent));
  EXPECT_FALSE(out.header(HeaderId::Supported));
  EXPECT_EQ(out.header("X-Esg-Call")->value, "42");
  EXPECT_EQ(out.max_forwards(), 62);
  EXPECT_EQ(out.headers().back().name, "X-Esg-Call");
}

TEST(Editor, SetAndRemoveParameters) {
  Message m = parsed(test::provider_invite());
  Editor e(m);
  ASSERT_TRUE(e.set_param(HeaderId::Via, "received", "127.0.0.9"));
  ASSERT_TRUE(e.set_param(HeaderId::Via, "rport", "5062"));
  ASSERT_TRUE(e.remove_param(HeaderId::Via, "maddr"));
  ASSERT_TRUE(e.set_param(HeaderId::To, "tag", "esg-77"));
  EXPECT_FALSE(e.set_param(HeaderId::Route, "lr", std::nullopt));
  Message out = parsed(e.serialize());
  EXPECT_EQ(out.top_via().received, "127.0.0.9");
  EXPECT_EQ(out.top_via().rport_value, 5062);
  EXPECT_FALSE(out.top_via().maddr);
  EXPECT_EQ(out.top_via().branch, "z9hG4bK-14c4dd7e-210137c8-fc50302");
  EXPECT_EQ(out.to_tag(), "esg-77");
  EXPECT_EQ(out.to().uri.param("user"), "phone");  // URI parameters untouched
}

TEST(Editor, ParamEditingOnOneValue) {
  EXPECT_EQ(with_param("<sip:a@b;lr>;tag=1", "tag", "2"), "<sip:a@b;lr>;tag=2");
  EXPECT_EQ(with_param("<sip:a@b;lr>", "tag", "2"), "<sip:a@b;lr>;tag=2");
  EXPECT_EQ(with_param("sip:a@b", "expires", "60"), "sip:a@b;expires=60");
  EXPECT_EQ(with_param("SIP/2.0/UDP h;branch=x, SIP/2.0/UDP g", "rport", std::nullopt),
            "SIP/2.0/UDP h;branch=x;rport, SIP/2.0/UDP g");
  EXPECT_EQ(without_param("\"A;B\" <sip:a@b>;x=1;y", "x"), "\"A;B\" <sip:a@b>;y");
}

TEST(Editor, SingleValuedHeadersAreNeverSplitOnCommas) {
  // Fuzzer finding (regressions/sip/to-comma-addr-spec.sip): a tag added to To must go after
  // the whole value, whatever commas it holds.
  EXPECT_EQ(with_param("\"Doe, J\" <sip:a@b>", "tag", "1", /*list=*/false),
            "\"Doe, J\" <sip:a@b>;tag=1");
  EXPECT_EQ(with_param("<sip:a@b;x=1>", "tag", "1", /*list=*/false), "<sip:a@b;x=1>;tag=1");
  EXPECT_TRUE(is_list_header(HeaderId::Via));
  EXPECT_FALSE(is_list_header(HeaderId::To));
}

TEST(Editor, SetUriForSipAlg) {
  Message m = parsed(test::provider_invite());
  Editor e(m);
  ASSERT_TRUE(e.set_uri(HeaderId::Contact, "sip:127.0.0.1:5080;transport=udp"));
  ASSERT_TRUE(e.set_uri(HeaderId::From, "sip:8430000000@127.0.0.1"));
  Message out = parsed(e.serialize());
  auto c = out.contacts();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->items[0].uri.host, "127.0.0.1");
  EXPECT_EQ(out.from_tag(), "5026-14c4dd7e-1087cebd-14c4dd7e");
  EXPECT_EQ(out.from().uri.host, "127.0.0.1");
}

TEST(Editor, AddrSpecGetsBracketsWhenTheNewUriNeedsThem) {
  Message m =
      parsed(crlf("REGISTER sip:r SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\n"
                  "From: sip:u@r;tag=1\nTo: sip:u@r\nCall-ID: c\nCSeq: 1 REGISTER\n"
                  "Contact: sip:u@10.0.0.1;expires=60\nContent-Length: 0\n\n"));
  Editor e(m);
  ASSERT_TRUE(e.set_uri(HeaderId::Contact, "sip:u@127.0.0.1;transport=tcp"));
  Message out = parsed(e.serialize());
  auto c = out.contacts();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->items[0].uri.param("transport"), "tcp");
  EXPECT_EQ(c->items[0].param("expires"), "60");
}

TEST(Editor, BodyReplacementUpdatesContentLengthAndType) {
  Message m = parsed(test::provider_invite());
  Editor e(m);
  e.set_body("v=0\r\n", "application/sdp");
  Message out = parsed(e.serialize());
  EXPECT_EQ(out.body(), "v=0\r\n");
  EXPECT_EQ(out.header(HeaderId::ContentLength)->value, "5");
  Editor none(m);
  none.set_body("", "");
  Message empty = parsed(none.serialize());
  EXPECT_TRUE(empty.body().empty());
  EXPECT_FALSE(empty.header(HeaderId::ContentType));
  EXPECT_EQ(empty.header(HeaderId::ContentLength)->value, "0");
}

TEST(Editor, AddsContentLengthWhenAbsentAndUnfoldsFoldedFields) {
  Message m =
      parsed(crlf("OPTIONS sip:x SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK9\n"
                  "From: <sip:a@h>;tag=1\nTo: <sip:x>\nCall-ID: z\n"
                  "CSeq: 3 OPTIONS\nSubject: one\n two\n\n"));
  std::string out = Editor(m).serialize();
  EXPECT_NE(out.find("Content-Length: 0\r\n"), std::string::npos);
  EXPECT_NE(out.find("Subject: one two\r\n"), std::string::npos);
  ParseOptions stream;
  stream.framing = Framing::Stream;
  EXPECT_TRUE(parse_message(out, stream));
}

TEST(Editor, ResponseStatus) {
  Message m = parsed(test::provider_invite());
  Editor e(m);
  e.set_status(180, "Ringing");
  std::string out = e.serialize();
  EXPECT_EQ(out.substr(0, 20), "SIP/2.0 180 Ringing\r");
}

}  // namespace
}  // namespace esg::sip
