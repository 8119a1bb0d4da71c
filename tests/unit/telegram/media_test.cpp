// The Telegram side of call audio without Telegram: a UDP socket in the test plays the
// simulator's reflector, and another the relay's RTP endpoint.
#include "telegram/media.hpp"

#include <gtest/gtest.h>

#include <boost/asio/ip/address.hpp>

#include <chrono>
#include <string>

#include "telegram/answers.hpp"

namespace {

namespace asio = boost::asio;
using asio::ip::udp;

const std::string kTag = "0123456789abcdef";

struct Fixture {
  asio::io_context io;
  udp::socket reflector{io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  udp::socket relay{io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  std::unique_ptr<esg::telegram::TelegramMedia> media = esg::telegram::make_reflector_media(io);

  nlohmann::json ready() const {
    return {{"servers",
             {{{"@type", "callServer"},
               {"id", 1},
               {"ip_address", "127.0.0.1"},
               {"port", reflector.local_endpoint().port()},
               {"type",
                {{"@type", "callServerTypeTelegramReflector"},
                 {"peer_tag", "MDEyMzQ1Njc4OWFiY2RlZg=="},  // kTag
                 {"is_tcp", false}}}}}}};
  }
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

TEST(RtpBridge, CarriesOpusFramesBetweenTheRelayAndTheReflector) {
  Fixture f;
  ASSERT_TRUE(f.media->start(f.ready(), false, nullptr));
  esg::telegram::RtpBridge bridge(f.io, *f.media, 111, 101);
  const udp::endpoint bridge_at(asio::ip::make_address("127.0.0.1"), bridge.port());
  // Relay -> Telegram: the RTP payload becomes one tagged, numbered datagram.
  f.relay.send_to(asio::buffer(rtp(111, 7, "opus-frame-1")), bridge_at);
  udp::endpoint media_at;
  const std::string d = f.receive(f.reflector, &media_at);
  ASSERT_EQ(d.size(), 20u + 12u);
  EXPECT_EQ(d.substr(0, 16), kTag);
  EXPECT_EQ(d.substr(16, 4), std::string("\0\0\0\0", 4));
  EXPECT_EQ(d.substr(20), "opus-frame-1");
  // Other payload types (and garbage) do not reach Telegram.
  f.relay.send_to(asio::buffer(rtp(0, 8, "pcmu")), bridge_at);
  EXPECT_EQ(f.receive(f.reflector), "");
  // Telegram -> relay: a frame with the right tag becomes RTP to where the relay sent from.
  f.reflector.send_to(asio::buffer(kTag + std::string("\0\0\0\1", 4) + "opus-back"), media_at);
  const std::string back = f.receive(f.relay);
  ASSERT_EQ(back.size(), 12u + 9u);
  EXPECT_EQ(uint8_t(back[1]) & 0x7F, 111);
  EXPECT_EQ(back.substr(12), "opus-back");
  // A datagram with another tag is not this call's.
  f.reflector.send_to(asio::buffer(std::string(16, 'x') + "seq0" + "intruder"), media_at);
  EXPECT_EQ(f.receive(f.relay), "");
  EXPECT_EQ(bridge.frames_in(), 1u);
  EXPECT_EQ(bridge.frames_out(), 1u);
}

TEST(RtpBridge, ChatDigitsGoOutAsTelephoneEvents) {
  Fixture f;
  ASSERT_TRUE(f.media->start(f.ready(), false, nullptr));
  esg::telegram::RtpBridge bridge(f.io, *f.media, 111, 101);
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

TEST(ReflectorMedia, NeedsAReflectorItCanUse) {
  Fixture f;
  EXPECT_FALSE(f.media->start({{"servers", nlohmann::json::array()}}, false, nullptr));
  nlohmann::json webrtc = f.ready();
  webrtc["servers"][0]["type"] = {{"@type", "callServerTypeWebrtc"}};
  EXPECT_FALSE(f.media->start(webrtc, false, nullptr));
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
