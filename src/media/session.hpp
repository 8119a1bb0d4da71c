#pragma once
// One call's media through esg (issue 7): per m= line a stream with an endpoint for each leg,
// each endpoint an RTP and an RTCP socket from the port range, on the call's worker. What
// arrives from one leg's peer leaves towards the other leg's peer: symmetric RTP sends to where
// packets come from (latching; a new SSRC or a silent source moves the latch), or, with
// latching off, accepts only the signaled address. The descriptions each leg sends are
// rewritten to point at esg. Without latching, media goes to the signaled address, and packets
// arriving from elsewhere (a NAT) flag the call as one-way. No locks per packet;
// recvmmsg/sendmmsg per batch.

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "media/ports.hpp"

namespace esg::sdp {
struct Media;
}

namespace esg::media {

struct Options {
  std::string bind_address = "0.0.0.0";  // where the relay's sockets listen
  bool latching = true;           // symmetric RTP: send to where the peer's packets come from
  bool strict_source = false;     // accept media only from the signaled address
  int relatch_silence_ms = 2000;  // a latched source silent this long may be replaced
};

// What all calls' media add up to (rare events only: no shared counter per packet).
struct Counters {
  std::atomic<uint64_t> sessions{0};
  std::atomic<uint64_t> no_ports{0};
  std::atomic<uint64_t> timeouts{0};
  std::atomic<uint64_t> packets{0};  // added when a session ends
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> lost{0};  // packets lost on the way to esg (sequence numbers), at the end
  // Each ended stream side's interarrival jitter, in a histogram for /metrics: counts at or
  // below 5, 10, 20, 40, 80 ms and above, with the sum in microseconds.
  static constexpr double kJitterBucketsMs[5] = {5, 10, 20, 40, 80};
  std::atomic<uint64_t> jitter_buckets[6] = {};
  std::atomic<uint64_t> jitter_sum_us{0};
};

// The media sockets of one worker, watched with an epoll set of their own (edge-triggered,
// registered once per socket): the worker's io_context waits on that set, and one wake-up
// serves every socket that has packets. Watching each socket through asio would cost an
// epoll_ctl per packet (asio re-arms a wait with EPOLL_CTL_MOD).
class Poller {
 public:
  explicit Poller(boost::asio::io_context& io);
  ~Poller();
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;
  // `tag` comes back to the relay when `fd` has packets.
  bool add(int fd, void* tag);
  boost::asio::io_context& io() { return io_; }

 private:
  void arm();
  boost::asio::io_context& io_;
  int epfd_ = -1;
  boost::asio::posix::stream_descriptor watch_;
};

// The error relay_description() gives when the port range is used up (a 503, not a 488).
inline constexpr const char* kNoPorts = "no free media ports";
// The error for a description without SRTP keys from a leg whose `srtp` is required.
inline constexpr const char* kSrtpMissing = "SRTP required, but no usable a=crypto key";

class Session {
 public:
  Session(Poller& poller, PortPool& pool, const Options& options, Counters& counters);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Side `from` (0: the A leg, 1: the B leg) sent `sdp`: from now on its media goes where it
  // says. Returns the description for the other side, pointing at esg's `advertise` address
  // and the other side's ports. Errors: a description that does not parse, no free ports.
  Result<std::string, std::string> relay_description(int from, std::string_view sdp,
                                                     const std::string& advertise);
  // A new peer takes over `side` (a transfer): latching starts over.
  void reset_side(int side);
  // The codecs `side`'s account or connection prefers (its `codecs`), for the negotiation
  // across the legs (media/negotiate.hpp); empty: whatever the peers agree on.
  void set_codecs(int side, std::vector<std::string> codecs);
  // Some stream is transcoded.
  bool transcoding() const;
  // How `side` takes DTMF: "rfc2833" (RTP events, the default), "info" or "inband". Key
  // presses from the other side in another form are turned into this side's: events and
  // in-band tones towards an "info" side are reported to `on_dtmf` (side to tell, digit,
  // milliseconds) once per key press; events towards an "inband" side become tones, and tones
  // towards an "rfc2833" side become events (see DtmfInjector).
  void set_dtmf(int side, std::string mode);
  // A key press that came as SIP INFO, for `side` as events or tones. False when `side` takes
  // INFO itself or no audio stream towards it is settled: relay the INFO instead.
  bool send_digit(int side, char key, int ms);
  // A key press for `side` in the form it takes (used by the relay).
  bool deliver(int side, char key, int ms);
  // SRTP towards `side` (its `srtp`): "off" (plain RTP, SAVP offers refused), "optional" (offers
  // carry keys over RTP/AVP, answers follow the offer), "required" (RTP/SAVP).
  void set_srtp(int side, std::string mode);
  std::function<void(int side, char digit, int ms)> on_dtmf;

  // Per stream and side: packets and bytes in and out, loss and jitter from sequence numbers
  // and from the peer's RTCP, latched and signaled addresses; and `one_way`.
  nlohmann::json stats() const;
  // Media flowed from one side and not the other, or (without latching) a side sends from
  // another address than it signaled: what we send it goes astray.
  bool one_way() const;
  // Some stream is held (sendonly, recvonly, inactive, or a 0.0.0.0 address).
  bool on_hold() const;
  // When the last packet arrived from either side (steady clock ms); 0: none yet.
  int64_t last_packet_ms() const;
  size_t streams() const { return streams_.size(); }

  struct Endpoint;
  struct Stream;

 private:
  Stream* open_stream();
  void negotiate(Stream& st, int from, sdp::Media& m, bool answer);
  // Empty, or why the description is refused (kSrtpMissing).
  std::optional<std::string> secure(Stream& st, int from, sdp::Media& m, bool answer);

  Poller& poller_;
  PortPool& pool_;
  const Options& options_;
  Counters& counters_;
  std::vector<std::shared_ptr<Stream>> streams_;
  std::string origin_id_[2];
  uint64_t origin_version_[2] = {0, 0};
  std::vector<std::string> codecs_[2];
  std::string dtmf_[2] = {"rfc2833", "rfc2833"};
  std::string srtp_[2] = {"off", "off"};
  int pending_offer_ = -1;  // the side whose offer awaits its answer
  // An answer sent again (a 200 after a reliable 18x with the same SDP) gets the same result.
  int last_answer_side_ = -1;
  std::string last_answer_text_, last_answer_result_;
};

int64_t steady_ms();

}  // namespace esg::media
