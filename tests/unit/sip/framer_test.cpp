#include "sip/framer.hpp"

#include <gtest/gtest.h>

#include "sip/message.hpp"
#include "test_util.hpp"

namespace esg::sip {
namespace {

using Kind = StreamFramer::Kind;

TEST(Framer, MessagesSplitAcrossAndWithinReads) {
  const std::string invite = test::provider_invite();
  const std::string two = invite + invite;
  StreamFramer f;
  // Byte by byte: nothing until a whole message is there.
  size_t messages = 0;
  for (char c : two) {
    f.feed(std::string_view(&c, 1));
    for (auto e = f.next(); e.kind != Kind::NeedMore; e = f.next()) {
      ASSERT_EQ(e.kind, Kind::Message);
      EXPECT_EQ(e.bytes, invite);
      ParseOptions o;
      o.framing = Framing::Stream;
      EXPECT_TRUE(parse_message(e.bytes, o));
      ++messages;
    }
  }
  EXPECT_EQ(messages, 2u);
  EXPECT_EQ(f.buffered(), 0u);
}

TEST(Framer, KeepAlivePingAndPong_Rfc5626) {
  StreamFramer f;
  f.feed("\r\n\r\n");
  EXPECT_EQ(f.next().kind, Kind::KeepAlive);
  f.feed("\r\n");
  EXPECT_EQ(f.next().kind, Kind::Pong);
  f.feed("\r\n\r\n" + test::provider_invite());
  EXPECT_EQ(f.next().kind, Kind::KeepAlive);
  EXPECT_EQ(f.next().kind, Kind::Message);
  EXPECT_EQ(f.next().kind, Kind::NeedMore);
}

TEST(Framer, CompactContentLengthAndMissingLength) {
  StreamFramer f;
  std::string msg = test::crlf("MESSAGE sip:a@h SIP/2.0\nl: 5\n\nhello");
  std::string bare = test::crlf("OPTIONS sip:a@h SIP/2.0\nVia: x\n\n");
  f.feed(msg + bare);
  auto e = f.next();
  ASSERT_EQ(e.kind, Kind::Message);
  EXPECT_EQ(e.bytes, msg);
  e = f.next();
  ASSERT_EQ(e.kind, Kind::Message);
  EXPECT_EQ(e.bytes, bare);
}

TEST(Framer, NegativeOrConflictingLengthLosesFraming_Rfc4475) {
  StreamFramer f;
  f.feed(test::torture("ncl"));
  auto e = f.next();
  ASSERT_EQ(e.kind, Kind::Error);
  EXPECT_EQ(e.error.status, 400);
  EXPECT_EQ(f.next().kind, Kind::Error);  // the connection is done
  StreamFramer g;
  g.feed(test::torture("mcl01"));
  EXPECT_EQ(g.next().kind, Kind::Error);
}

TEST(Framer, LengthBeyondDataWaits_Rfc4475Clerr) {
  StreamFramer f;
  f.feed(test::torture("clerr"));
  EXPECT_EQ(f.next().kind, Kind::NeedMore);  // the transport's idle timer closes it
}

TEST(Framer, OversizedHeadersOrBodyGive513) {
  StreamFramer f(1024);
  f.feed("INVITE sip:a@h SIP/2.0\r\nX: " + std::string(2000, 'a'));
  auto e = f.next();
  ASSERT_EQ(e.kind, Kind::Error);
  EXPECT_EQ(e.error.status, 513);
  StreamFramer g(1024);
  g.feed("INVITE sip:a@h SIP/2.0\r\nContent-Length: 5000\r\n\r\n");
  EXPECT_EQ(g.next().error.status, 513);
}

}  // namespace
}  // namespace esg::sip
