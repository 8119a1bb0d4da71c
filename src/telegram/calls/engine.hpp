#pragma once
// esg's engine for Telegram's private-call media (issue 21): the protocol of tgcalls'
// InstanceV2Impl, 8.0.0 and 9.0.0 (TELEGRAM-CALLS.md). Signaling goes through TDLib as
// encrypted blobs (SignalingChannel); the media through a WebRTC-style leg (ICE, DTLS-SRTP, the
// SCTP data channel) on esg's own sockets and the line's worker. The engine does the call's
// part: who sends InitialSetup and offers when (§3.2), the offer/answer of one audio content
// (§3.3), Opus in RTP as the answer says, MediaState, RTCP reports, and the 20 s rule (§4.8).

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "media/ports.hpp"
#include "media/rtp.hpp"
#include "telegram/calls/connection.hpp"
#include "telegram/calls/jitter.hpp"
#include "telegram/media.hpp"

namespace esg::media {
class WebRtcLeg;
}

namespace esg::telegram::calls {

class SignalingChannel;
struct InitialSetup;
struct NegotiateChannels;

// What esg offers in createCall and acceptCall (the fact sheet §1.4).
nlohmann::json call_protocol();
// The version of a call from callStateReady.protocol (§1.2, read defensively): the list's one
// element, or the best one esg implements among several. None: the call must be refused; then
// `offered` names what the server chose.
std::optional<std::string> choose_version(const nlohmann::json& protocol, std::string* offered);
// The versions esg implements, best first.
const std::vector<std::string>& versions();

class CallEngine final : public TelegramMedia {
 public:
  struct Options {
    std::string call_id;  // for the log
    media::PortPool* ports = nullptr;
    std::vector<boost::asio::ip::address> addresses;   // empty: every interface but loopback
    std::chrono::milliseconds connect_timeout{20000};  // tgcalls' 20 s rule
  };
  CallEngine(boost::asio::io_context& io, Options options);
  ~CallEngine() override;

  bool start(const nlohmann::json& ready, bool outgoing, std::string* error) override;
  void signaling(std::string_view data) override;
  void send(std::string_view opus) override;
  void stop() override;
  nlohmann::json status() const override;

 private:
  void read_custom_parameters(const std::string& text);
  void on_message(const std::string& text);
  void on_initial_setup(const InitialSetup& m);
  void on_negotiate(const NegotiateChannels& m);
  void send_message(const std::string& json);
  void send_initial_setup();
  void send_offer();
  void send_media_state();
  void on_candidate(const std::string& sdp);
  void on_leg_state();
  void on_rtp(std::string_view rtp);
  void on_rtcp(std::string_view rtcp);
  void arm_signaling_timer();
  void second_tick();
  void silence_tick();
  void arm_playout();
  void playout_tick();
  void play(const JitterBuffer::Frame& f, std::chrono::steady_clock::time_point now);
  void send_silence(uint32_t timestamp, uint32_t samples);
  void send_report();
  void fail(const std::string& why);
  // The operator's view of the call (issue 22): an event for the diagram and the metrics.
  void emit(std::string_view event, const nlohmann::json& detail);
  void on_setup_exchanged();

  boost::asio::io_context& io_;
  Options options_;
  bool outgoing_ = false, started_ = false, stopped_ = false, failing_ = false;
  std::string version_;
  std::vector<std::string> emojis_;
  std::unique_ptr<SignalingChannel> signaling_;
  std::unique_ptr<media::WebRtcLeg> leg_;
  // Before the peer's InitialSetup: its candidates wait (§3.2), and so do ours until ours is
  // sent (the callee sends its own only after the caller's).
  bool remote_setup_ = false, setup_sent_ = false;
  std::vector<std::string> remote_candidates_, local_candidates_;
  // Offer/answer: our offer's exchange id while unanswered; what the answer says we send.
  uint32_t offer_id_ = 0;
  bool offer_sent_ = false, answered_ = false;
  int out_pt_ = -1;              // Opus' payload type in the peer's answer
  std::vector<uint8_t> in_pts_;  // what we answered: the payload types the peer sends
  uint32_t ssrc_ = 0;            // ours, in our offer
  uint16_t seq_ = 0;
  uint32_t ts_ = 0;
  uint64_t packets_out_ = 0, octets_out_ = 0;
  bool first_packet_ = true;
  media::ReceiveStats rx_;
  uint64_t frames_in_ = 0;
  std::optional<media::ReportBlock> remote_report_;
  bool remote_muted_ = false, media_state_sent_ = false;
  std::chrono::steady_clock::time_point started_at_{}, last_rtp_{};
  std::chrono::steady_clock::time_point last_heard_{};  // the last SRTP or SRTCP packet
  std::optional<std::chrono::steady_clock::time_point> lost_since_;  // no path since then
  std::optional<std::chrono::steady_clock::time_point> connected_at_;
  std::chrono::milliseconds first_audio_ms_{-1};
  // State, time to connect, reconnections, why it ended; the leg's last status, kept when the
  // leg goes so that the call's last values (path, candidates) stay shown and reach the CDR.
  ConnectionRecord connection_;
  nlohmann::json last_leg_status_;
  bool setup_exchanged_ = false;
  boost::asio::steady_timer signaling_timer_, second_timer_, silence_timer_;
  bool silence_on_ = false;
  // The received audio's playout (issue 22): the jitter buffer, its timer, what it conceals;
  // the silence before the first packet goes on from silence_ts_, paced from silence_at_.
  JitterBuffer jitter_;
  boost::asio::steady_timer playout_timer_;
  bool playout_armed_ = false;
  // Missing slots left to the relay's concealment, and those sent as silence because the gap
  // ran longer than it conceals; the samples of the current run of missing slots.
  uint64_t concealed_ = 0, silenced_ = 0;
  uint32_t missing_run_ = 0;
  uint32_t silence_ts_ = 0;
  std::chrono::steady_clock::time_point silence_at_{};
  uint64_t ignored_messages_ = 0, skipped_servers_ = 0;
  uint64_t skipped_tcp_reflectors_ = 0;
  nlohmann::json custom_parameters_;  // callStateReady's, parsed (§8)
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace esg::telegram::calls
