#pragma once
// The WebRTC data channel of a Telegram call (TELEGRAM-CALLS.md §4.6): one SCTP association
// over the DTLS session (RFC 8261), SCTP ports 5000/5000, carrying one channel, label "data" on
// stream 0, ordered and reliable, opened in band with DCEP (RFC 8832): the caller sends
// DATA_CHANNEL_OPEN, the callee answers DATA_CHANNEL_ACK. Text messages (PPID 51, 56 for the
// empty string) carry MediaState JSON; binary messages are counted and ignored.
//
// SCTP itself is libusrsctp on AF_CONN sockets: packets come in through on_packet() and go out
// through `send`, so the channel never sees a socket (sans-IO as far as usrsctp allows; its
// timers run on real time, driven from the channel's io_context, see sctp.cpp).
//
// Threads: a channel is created, used and destroyed on the thread that runs its io_context
// (esg's worker of the call). usrsctp is one stack per process and may produce a channel's
// packets or notifications on another worker's thread (its timers are global); they are posted
// to the channel's io_context and dropped there if the channel is gone. Every callback runs
// from the io_context, never inside a call into the channel, so a callback may call back into
// the channel or destroy it. No callback runs after the destructor has begun.

#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct socket;  // usrsctp's socket (usrsctp.h), kept out of this header

namespace esg::media {

inline constexpr uint16_t kSctpPort = 5000;        // local and remote (§4.6)
inline constexpr size_t kSctpMaxMessage = 262144;  // a=max-message-size of both sides
inline constexpr uint16_t kDataChannelStream = 0;  // Telegram's fixed stream (§4.6)
inline constexpr const char* kDataChannelLabel = "data";

namespace detail {
class SctpTicker;
struct SctpCallbacks;
}  // namespace detail

class SctpDataChannel {
 public:
  // opener: sends DATA_CHANNEL_OPEN once the association is up (the Telegram caller).
  SctpDataChannel(boost::asio::io_context& io, bool opener);
  // Aborts the association (the ABORT is not sent: `send` is not called any more; use close()
  // first to tell the peer). No callback after this, from any thread.
  ~SctpDataChannel();
  SctpDataChannel(const SctpDataChannel&) = delete;
  SctpDataChannel& operator=(const SctpDataChannel&) = delete;

  std::function<void(std::string_view packet)> send;   // an SCTP packet for the DTLS session
  std::function<void()> on_open;                       // the channel is open (after OPEN/ACK)
  std::function<void(std::string_view text)> on_text;  // a text message (PPID 51 or 56)
  // The association or the channel ended after the association had come up: the peer's ABORT
  // or SHUTDOWN, retransmissions given up, the peer reset stream 0. Once, and not for close();
  // nothing opens again on this object.
  std::function<void()> on_close;

  // After DTLS is connected, on both sides: both connect to port 5000 at once (SCTP's INIT
  // collision makes one association of the two, RFC 9260 §5.2.1). Packets that arrive before
  // start() are kept (up to kEarlyPackets) and fed in here.
  void start();
  // DTLS application data from the peer: one SCTP packet.
  void on_packet(std::string_view packet);
  // One text message on the channel (PPID 51; the empty string as PPID 56 with one zero byte,
  // RFC 8831 §6.6). False, counted in send_failed, before open, after close, for more than
  // kSctpMaxMessage bytes, or when SCTP's send buffer is full.
  bool send_text(std::string_view text);
  // One binary message (PPID 53, the empty one as 57), under the same rules. Telegram's peers
  // ignore binary messages (and so does this channel on receipt); for completeness and tests.
  bool send_binary(std::string_view data);
  // Aborts the association; the ABORT goes out through `send` (posted like every packet, so the
  // channel must live until the io_context has run it). No on_close for it; send_text() fails
  // from here on.
  void close();
  // Closes the channel as RFC 8831 §6.7 does: resets outgoing stream 0; the peer resets its own
  // and reports the channel closed (its on_close). The association stays (until destruction or
  // close()); no on_close here either.
  void close_channel();

  bool open() const { return state_ == State::Open; }
  bool opener() const { return opener_; }

  struct Counters {
    uint64_t sent = 0;              // messages handed to SCTP
    uint64_t received = 0;          // text messages given to on_text
    uint64_t dropped = 0;           // messages received and not delivered: binary, before open,
                                    // larger than kSctpMaxMessage, unknown PPID or stream, bad DCEP
    uint64_t send_failed = 0;       // send_text()/send_binary() calls that returned false
    uint64_t packets_sent = 0;      // SCTP packets given to `send`
    uint64_t packets_received = 0;  // SCTP packets given to usrsctp
    uint64_t packets_dropped = 0;   // early packets past kEarlyPackets, packets after close
  };
  const Counters& counters() const { return counters_; }

  static constexpr size_t kEarlyPackets = 16;

  // Process-wide: usrsctp callbacks that ran on another thread than their channel's (a timer
  // driven by another worker's tick) and were posted over to the channel's io_context.
  static uint64_t handed_over();

 private:
  friend struct detail::SctpCallbacks;
  enum class State { Idle, Connecting, Opening, Open, Closed };

  // What usrsctp's callbacks produced for this channel, on its own thread (posted).
  void deliver_packet(std::string_view packet);
  void deliver_message(std::string_view data, uint16_t stream, uint32_t ppid, int flags);

  void on_notification(std::string_view data);
  void on_dcep(std::string_view message);
  void on_complete_message(std::string_view data, uint16_t stream, uint32_t ppid);
  bool send_message(std::string_view payload, uint32_t ppid);
  bool send_user_message(std::string_view data, uint32_t ppid, uint32_t empty_ppid);
  void send_open();
  void reset_outgoing_stream();
  void configure_after_connect();
  void end(bool notify);

  const bool opener_;
  const uintptr_t id_;  // usrsctp's AF_CONN address and ulp_info for this channel
  struct socket* sock_ = nullptr;
  std::shared_ptr<detail::SctpTicker> ticker_;
  State state_ = State::Idle;
  bool started_ = false;
  bool open_sent_ = false;
  bool began_ = false;  // the association came up: on_close is owed when it ends
  std::vector<std::string> early_;
  std::string partial_;      // a message usrsctp hands over in pieces (partial delivery)
  bool discarding_ = false;  // the rest of a message past kSctpMaxMessage
  Counters counters_;
};

}  // namespace esg::media
