#pragma once
// A WebRTC-style media leg (issue 21): one ICE transport (full ICE agent, host, server-reflexive
// and TURN candidates) carrying DTLS 1.2, DTLS-SRTP with rtcp-mux and an SCTP data channel, all
// on one 5-tuple demultiplexed by the first byte (RFC 7983). It knows nothing of Telegram: the
// owner signals the ICE and DTLS parameters and candidates however its protocol does, and gets
// decrypted RTP and RTCP and the data channel's text. One UDP socket per local address, on
// the owner's io_context (the call's worker): no thread of its own, no lock per packet.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "media/ports.hpp"
#include "media/webrtc/ice/ice.hpp"

namespace esg::media {

namespace dtls {
class DtlsCertificate;
class DtlsSession;
}  // namespace dtls
class Srtp;
class SctpDataChannel;

class WebRtcLeg {
 public:
  struct Options {
    bool controlling = false;  // ICE role (a Telegram caller controls)
    bool relay_only = false;   // no host or server-reflexive candidates (allow_p2p false)
    bool data_channel = true;  // open or accept the SCTP data channel once DTLS is up
    bool channel_opener = false;
    std::vector<ice::Server> servers;  // STUN and TURN
    // Telegram's UDP reflectors (a port per local address of the family, TELEGRAM-CALLS.md §5).
    std::vector<ice::ReflectorServer> reflectors;
    // Where host candidates are gathered: empty, every up interface but loopback (what WebRTC
    // peers gather too; loopback candidates would only be reachable from this machine).
    std::vector<boost::asio::ip::address> addresses;
    PortPool* ports = nullptr;  // media.ports; null: ports the system chooses
  };
  enum class State { New, Connecting, Connected, Disconnected, Failed };

  WebRtcLeg(boost::asio::io_context& io, Options options);
  ~WebRtcLeg();
  WebRtcLeg(const WebRtcLeg&) = delete;
  WebRtcLeg& operator=(const WebRtcLeg&) = delete;

  // Binds the sockets and starts gathering; false with `error` when no socket could be bound.
  bool start(std::string* error);
  const std::string& ufrag() const { return ufrag_; }
  const std::string& pwd() const { return pwd_; }
  const std::string& fingerprint() const;  // sha-256 of this leg's fresh certificate
  // The peer's ICE credentials and DTLS fingerprint with its setup attribute (RFC 8842:
  // "active", "passive", "actpass"). Once: the DTLS role follows from it and the ICE role.
  bool set_remote(std::string ufrag, std::string pwd, std::string hash, std::string fingerprint,
                  std::string_view setup);
  void add_remote_candidate(const ice::Candidate& c);
  // Whether this side is the DTLS client, from the peer's setup attribute and the ICE role;
  // none for a setup that is not one of the three.
  static std::optional<bool> dtls_client_for(std::string_view remote_setup, bool controlling);
  // SRTP-protects and sends one RTP or RTCP packet (grown in place by the tag). False: not
  // connected yet (nothing is queued: media is real time).
  bool send_rtp(std::string& packet);
  bool send_rtcp(std::string& packet);
  bool send_text(std::string_view text);  // on the data channel; false while it is not open
  State state() const { return state_; }
  bool connected() const { return state_ == State::Connected; }
  nlohmann::json status() const;

  std::function<void(const ice::Candidate&)> on_candidate;  // a local candidate to signal
  std::function<void(State)> on_state;
  std::function<void(std::string_view rtp)> on_rtp;  // decrypted
  std::function<void(std::string_view rtcp)> on_rtcp;
  std::function<void()> on_channel_open;
  std::function<void(std::string_view text)> on_text;

  struct Counters {
    uint64_t rtp_in = 0, rtp_out = 0, rtcp_in = 0, rtcp_out = 0, srtp_failed = 0, dtls_in = 0,
             unknown = 0;
  };
  const Counters& counters() const { return counters_; }

 private:
  struct Socket;
  void receive(Socket& s);
  void on_datagram(int socket, const boost::asio::ip::udp::endpoint& from, std::string_view data);
  void on_app_datagram(std::string_view data);
  void start_dtls();
  void dtls_up();
  void set_state(State s);
  void send_dtls(std::string_view datagram);
  void arm_timer();
  void on_timer();

  boost::asio::io_context& io_;
  Options options_;
  std::string ufrag_, pwd_;
  std::shared_ptr<const dtls::DtlsCertificate> cert_;
  ice::Agent agent_;
  std::vector<std::unique_ptr<Socket>> sockets_;
  std::unique_ptr<dtls::DtlsSession> dtls_;
  bool dtls_client_ = false, remote_set_ = false, ice_up_ = false, dtls_started_ = false;
  std::string remote_hash_, remote_fingerprint_;
  // DTLS records written before ICE has a pair (the server's answer to an early ClientHello).
  std::deque<std::string> dtls_backlog_;
  std::unique_ptr<Srtp> srtp_out_, srtp_in_;
  std::string srtp_profile_;
  std::unique_ptr<SctpDataChannel> sctp_;
  State state_ = State::New;
  ice::State ice_state_ = ice::State::New;
  boost::asio::steady_timer timer_;
  std::chrono::steady_clock::time_point timer_at_{};
  bool timer_armed_ = false;
  Counters counters_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace esg::media
