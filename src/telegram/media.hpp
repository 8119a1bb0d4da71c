#pragma once
// The Telegram side of a call's audio: Opus at 48 kHz. The engine that carries it sits behind
// TelegramMedia: esg's own implementation of Telegram's call protocol (src/telegram/calls/,
// issue 21); nothing else in esg depends on it. RtpBridge makes the Telegram side an ordinary
// RTP peer on loopback, so the media relay (src/media/) anchors and transcodes it like any
// other leg.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace esg::telegram {

// A frame of the Telegram user's audio as the engine plays it out (after its jitter buffer):
// the sender's RTP timestamp (48 kHz) and length, and the Opus payload, or none when the frame
// is missing (lost or late) and the next stage conceals `samples` of audio in its place.
struct AudioFrame {
  uint32_t timestamp = 0;
  uint32_t samples = 0;  // 0: as many as the payload says
  std::string_view opus;
  bool missing() const { return opus.empty(); }
};

class TelegramMedia {
 public:
  virtual ~TelegramMedia() = default;
  // callStateReady (its servers, key, version and parameters) of a call esg placed
  // (`outgoing`, TDLib's is_outgoing) or took: connects. False with `error`: nothing it can use.
  virtual bool start(const nlohmann::json& ready, bool outgoing, std::string* error) = 0;
  // One updateNewCallSignalingData blob (raw bytes, base64 undone).
  virtual void signaling(std::string_view) {}
  // One Opus frame (48 kHz) towards the Telegram user.
  virtual void send(std::string_view opus) = 0;
  virtual void stop() = 0;
  // For the calls API: version, path, candidates, round-trip time, loss...
  virtual nlohmann::json status() const { return nlohmann::json::object(); }
  // The Telegram user's audio, frame after frame at a steady pace.
  std::function<void(const AudioFrame&)> on_frame;
  // A blob for sendCallSignalingData (raw bytes).
  std::function<void(std::string blob)> on_signaling;
  // The call's media cannot go on (no path for 20 s...): the call ends on both sides.
  std::function<void(const std::string& why)> on_failed;
  // What the operator sees on the call's diagram and in the metrics (issue 22): "signaling"
  // (InitialSetup both ways, offer/answer done), "connected" (path, version, connect_ms),
  // "reconnecting", "reconnected" (duration_ms), "failed" (why, ended_by).
  std::function<void(std::string_view event, const nlohmann::json& detail)> on_event;
};

// An RTP endpoint on 127.0.0.1 between a TelegramMedia and esg's relay: RTP from the relay
// (Opus under payload type `opus_pt`) goes to Telegram frame by frame; frames from Telegram go
// back as RTP to where the relay sends from, on the sender's timeline (48 kHz): a missing frame
// is a gap in the timestamps and sequence numbers (the relay's transcoder fills it), and where
// the timeline breaks (silence made by the engine, a restarted or re-synchronised sender) the
// next frame follows the last one, so the stream never jumps back or leaves a hole.
// Key presses (chat digits) go out as RFC 4733 events under `event_pt`.
class RtpBridge {
 public:
  RtpBridge(boost::asio::io_context& io, TelegramMedia& media, uint8_t opus_pt, uint8_t event_pt);
  ~RtpBridge();
  uint16_t port() const { return port_; }
  // The relay's RTP address from its description (followed by where its packets come from).
  void set_peer(const boost::asio::ip::udp::endpoint& relay) { peer_ = relay; }
  // A new offer may number the formats anew (a re-INVITE through the relay).
  void set_payload_types(uint8_t opus_pt, uint8_t event_pt) {
    opus_pt_ = opus_pt;
    event_pt_ = event_pt;
  }
  // A key press as telephone events: 100 ms of updates, then the end three times.
  void send_key(char key);
  uint64_t frames_in() const { return frames_in_; }  // missing ones included
  uint64_t missing() const { return missing_; }
  uint64_t frames_out() const { return frames_out_; }

 private:
  void receive();
  void on_frame(const AudioFrame& frame);
  void send_rtp(uint8_t pt, bool marker, uint32_t ts, std::string_view payload);
  void event_tick();

  boost::asio::io_context& io_;
  TelegramMedia& media_;
  uint8_t opus_pt_, event_pt_;
  boost::asio::ip::udp::socket sock_;
  boost::asio::ip::udp::endpoint from_;
  std::optional<boost::asio::ip::udp::endpoint> peer_;
  std::array<char, 2048> buf_{};
  uint16_t port_ = 0;
  uint16_t seq_;
  uint32_t ts_, ssrc_;
  // The source timestamp that continues the timeline, and what it maps to in ours.
  bool timeline_ = false, marker_ = true;
  uint32_t src_next_ = 0, offset_ = 0;
  uint64_t frames_in_ = 0, frames_out_ = 0, missing_ = 0;
  // The key being sent: its event code, start timestamp and the packets sent so far.
  std::string keys_;
  int event_packets_ = -1;
  uint32_t event_ts_ = 0;
  boost::asio::steady_timer event_timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace esg::telegram
