#include "media/webrtc/sctp/dcep.hpp"

#include <gtest/gtest.h>

#include <string>

namespace esg::media::dcep {
namespace {

using namespace std::string_literals;

TEST(Dcep, OpenIsTheRfc8832Layout) {
  Open open;
  open.label = "data";
  // RFC 8832 §5.1: type 0x03, channel type, priority (2), reliability (4), label length (2),
  // protocol length (2), label, protocol; all in network byte order.
  EXPECT_EQ(encode_open(open),
            "\x03\x00\x01\x00\x00\x00\x00\x00\x00\x04\x00\x00"
            "data"s);
}

TEST(Dcep, OpenCarriesEveryField) {
  Open open;
  open.channel_type = kReliableUnordered;
  open.priority = 512;
  open.reliability = 0x01020304;
  open.label = "chat";
  open.protocol = "proto";
  const std::string bytes = encode_open(open);
  ASSERT_EQ(bytes.size(), 12u + 4u + 5u);
  EXPECT_EQ(bytes.substr(0, 12), "\x03\x80\x02\x00\x01\x02\x03\x04\x00\x04\x00\x05"s);
  auto back = parse_open(bytes);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->channel_type, kReliableUnordered);
  EXPECT_EQ(back->priority, 512);
  EXPECT_EQ(back->reliability, 0x01020304u);
  EXPECT_EQ(back->label, "chat");
  EXPECT_EQ(back->protocol, "proto");
}

TEST(Dcep, AckIsOneByte) {
  EXPECT_EQ(encode_ack(), "\x02"s);
}

TEST(Dcep, MessageTypeOfEmptyIsNone) {
  EXPECT_FALSE(message_type(""));
  EXPECT_EQ(message_type(encode_ack()), kAck);
  EXPECT_EQ(message_type(encode_open({})), kOpen);
}

TEST(Dcep, ParseOpenRefusesWhatIsNoOpen) {
  EXPECT_FALSE(parse_open(""));
  EXPECT_FALSE(parse_open(encode_ack()));
  // Eleven bytes: one short of the fixed part.
  EXPECT_FALSE(parse_open("\x03\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00"s));
  // The label length says 4, three bytes follow: lengths from the network are never trusted.
  EXPECT_FALSE(
      parse_open("\x03\x00\x01\x00\x00\x00\x00\x00\x00\x04\x00\x00"
                 "dat"s));
  // Protocol overruns the message.
  EXPECT_FALSE(
      parse_open("\x03\x00\x01\x00\x00\x00\x00\x00\x00\x00\xff\xff"
                 "x"s));
  // An empty label and protocol are a valid open.
  auto empty = parse_open("\x03\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00"s);
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->label, "");
}

}  // namespace
}  // namespace esg::media::dcep
