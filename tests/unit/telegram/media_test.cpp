// The Telegram side of call audio without Telegram: a fake engine in the test, and a UDP socket
// that plays the relay's RTP endpoint.
#include "telegram/media.hpp"

#include <gtest/gtest.h>

#include <boost/asio/ip/address.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "telegram/answers.hpp"

namespace {

namespace asio = boost::asio;
using asio::ip::udp;

// What the relay's RTP becomes on the Telegram side, and what Telegram sends: the engine
// itself is tested in calls/engine_test.cpp and end to end against tgcalls.
class FakeMedia final : public esg::telegram::TelegramMedia {
 public:
  bool start(const nlohmann::json&, bool, std::string*) override { return true; }
  void send(std::string_view opus) override { sent.emplace_back(opus); }
  void stop() override {}
  std::vector<std::string> sent;
};

struct Fixture {
  asio::io_context io;
  udp::socket relay{io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  FakeMedia media;

  // One datagram on `s` within a second (the io_context runs meanwhile).
  std::string receive(udp::socket& s, udp::endpoint* from = nullptr) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    s.non_blocking(true);
    char buf[2048];
    while (std::chrono::steady_clock::now() < until) {
      io.run_for(std::chrono::milliseconds(5));
      io.restart();
      udp::endpoint f;
      boost::system::error_code ec;
      const size_t n = s.receive_from(asio::buffer(buf), f, 0, ec);
      if (!ec) {
        if (from) *from = f;
        return std::string(buf, n);
      }
    }
    return {};
  }
};

std::string rtp(uint8_t pt, uint16_t seq, const std::string& payload) {
  std::string p(12, '\0');
  p[0] = char(0x80);
  p[1] = char(pt);
  p[2] = char(seq >> 8);
  p[3] = char(seq);
  return p + payload;
}

uint32_t timestamp(const std::string& p) {
  return uint32_t(uint8_t(p[4])) << 24 | uint32_t(uint8_t(p[5])) << 16 |
         uint32_t(uint8_t(p[6])) << 8 | uint8_t(p[7]);
}

TEST(RtpBridge, CarriesOpusFramesBetweenTheRelayAndTelegram) {
  Fixture f;
  esg::telegram::RtpBridge bridge(f.io, f.media, 111, 101);
  const udp::endpoint bridge_at(asio::ip::make_address("127.0.0.1"), bridge.port());
  // Relay -> Telegram: the RTP payload is one frame for the engine.
  f.relay.send_to(asio::buffer(rtp(111, 7, "opus-frame-1")), bridge_at);
  // Other payload types (and garbage) do not reach Telegram.
  f.relay.send_to(asio::buffer(rtp(0, 8, "pcmu")), bridge_at);
  f.relay.send_to(asio::buffer(std::string("garbage")), bridge_at);
  for (int i = 0; i < 20 && f.media.sent.empty(); ++i) {
    f.io.run_for(std::chrono::milliseconds(10));
    f.io.restart();
  }
  f.io.run_for(std::chrono::milliseconds(30));
  ASSERT_EQ(f.media.sent, std::vector<std::string>{"opus-frame-1"});
  // Telegram -> relay: each frame becomes RTP to where the relay sent from, on the sender's
  // timeline (TOC 0xF8 | 3 with 3 frames: 60 ms, as tgcalls sends; 0xF8: 20 ms).
  const std::string sixty = std::string(1, char(0xFB)) + char(3) + "abc";
  f.media.on_frame({5000, 2880, sixty});
  const std::string first = f.receive(f.relay);
  ASSERT_EQ(first.size(), 12u + 5u);
  EXPECT_EQ(uint8_t(first[1]) & 0x7F, 111);
  EXPECT_TRUE(uint8_t(first[1]) & 0x80);  // the marker on the first
  const std::string back = std::string(1, char(0xF8)) + "back";
  f.media.on_frame({5000 + 2880, 960, back});
  const std::string second = f.receive(f.relay);
  ASSERT_EQ(second.size(), 12u + 5u);
  EXPECT_EQ(second.substr(12), back);
  EXPECT_EQ(timestamp(second) - timestamp(first), 2880u);  // after a 60 ms frame
  EXPECT_FALSE(uint8_t(second[1]) & 0x80);
  EXPECT_EQ(bridge.frames_in(), 2u);
  EXPECT_EQ(bridge.frames_out(), 1u);
}

uint16_t sequence(const std::string& p) {
  return uint16_t(uint8_t(p[2]) << 8 | uint8_t(p[3]));
}

// Issue 22: a missing frame is a gap in time (and sequence) that the relay conceals; where the
// timeline breaks (silence the engine made, a re-synchronised sender) the stream goes on after
// the last frame, never back and never with a hole.
TEST(RtpBridge, AMissingFrameIsAGapAndABrokenTimelineFollowsOn) {
  Fixture f;
  esg::telegram::RtpBridge bridge(f.io, f.media, 111, 101);
  bridge.set_peer(f.relay.local_endpoint());
  const std::string frame = std::string(1, char(0xFB)) + char(3) + "abc";  // 60 ms
  f.media.on_frame({1000, 2880, frame});
  const std::string a = f.receive(f.relay);
  f.media.on_frame({1000 + 2880, 2880, {}});  // missing
  f.media.on_frame({1000 + 2 * 2880, 2880, frame});
  const std::string b = f.receive(f.relay);
  EXPECT_EQ(timestamp(b) - timestamp(a), 2 * 2880u);
  EXPECT_EQ(uint16_t(sequence(b) - sequence(a)), 2);
  EXPECT_EQ(bridge.missing(), 1u);
  // The sender's timeline starts over far away: ours goes on right after the last frame.
  f.media.on_frame({777777, 960, std::string(1, char(0xF8)) + "new"});
  const std::string c = f.receive(f.relay);
  EXPECT_EQ(timestamp(c) - timestamp(b), 2880u);
  EXPECT_TRUE(uint8_t(c[1]) & 0x80);
  // And back to an earlier timestamp (a frame the jitter buffer re-inserted): after it too.
  f.media.on_frame({777777, 960, std::string(1, char(0xF8)) + "old"});
  EXPECT_EQ(timestamp(f.receive(f.relay)) - timestamp(c), 960u);
}

TEST(RtpBridge, ChatDigitsGoOutAsTelephoneEvents) {
  Fixture f;
  esg::telegram::RtpBridge bridge(f.io, f.media, 111, 101);
  bridge.set_peer(f.relay.local_endpoint());
  bridge.send_key('7');
  int updates = 0, ends = 0;
  for (int i = 0; i < 8; ++i) {
    const std::string p = f.receive(f.relay);
    ASSERT_EQ(p.size(), 16u) << i;
    EXPECT_EQ(uint8_t(p[1]) & 0x7F, 101);
    EXPECT_EQ(p[12], 7);
    (uint8_t(p[13]) & 0x80 ? ends : updates)++;
  }
  EXPECT_EQ(updates, 5);
  EXPECT_EQ(ends, 3);
}

TEST(Answers, TelegramSaysBecomeSipStatuses) {
  using esg::telegram::answer_for_discard;
  using esg::telegram::answer_for_error;
  using esg::telegram::td::TdError;
  EXPECT_EQ(answer_for_error(TdError{400, "USER_ID_INVALID", 0}).status, 404);
  EXPECT_EQ(answer_for_error(TdError{404, "Not Found", 0}).status, 404);
  EXPECT_EQ(answer_for_error(TdError{403, "USER_PRIVACY_RESTRICTED", 0}).status, 403);
  EXPECT_EQ(answer_for_error(TdError{403, "USER_IS_BLOCKED", 0}).status, 403);
  EXPECT_EQ(answer_for_error(TdError{400, "PARTICIPANT_VERSION_OUTDATED", 0}).status, 480);
  EXPECT_EQ(answer_for_error(TdError{4005000, "Call missed", 0}).status, 480);
  EXPECT_EQ(answer_for_error(TdError{400, "USER_BUSY", 0}).status, 486);
  const auto flood = answer_for_error(TdError{429, "Too Many Requests: retry after 30", 30});
  EXPECT_EQ(flood.status, 503);
  EXPECT_EQ(flood.retry_after, 30);
  const auto spam = answer_for_error(TdError{400, "PEER_FLOOD", 0});
  EXPECT_EQ(spam.status, 503);
  EXPECT_TRUE(spam.restricted);
  EXPECT_GT(spam.retry_after, 600);
  EXPECT_EQ(answer_for_discard("callDiscardReasonDeclined").status, 603);
  EXPECT_EQ(answer_for_discard("callDiscardReasonMissed").status, 480);
  EXPECT_NE(answer_for_error(TdError{403, "USER_PRIVACY_RESTRICTED", 0})
                .reason.find("USER_PRIVACY_RESTRICTED"),
            std::string::npos);
}

}  // namespace
