#pragma once
// Telegram's reflectors (TELEGRAM-CALLS.md §5), sans-IO like the TURN client: the framing of
// their UDP packets, the names of their relay candidates, and a ReflectorPort per (reflector,
// local socket) that says hello, learns READY and frames the ICE layer's datagrams.
//
// Byte orders are mixed (§9.1): tags are little-endian (tgcalls writes the uint32's memory),
// the payload length and the hello's 123 are big-endian.

#include <boost/asio/ip/udp.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "media/webrtc/ice/candidate.hpp"

namespace esg::media::ice {

using TimePoint = std::chrono::steady_clock::time_point;
using Endpoint = boost::asio::ip::udp::endpoint;

// One address of a UDP reflector of callStateReady.servers.
struct ReflectorServer {
  uint8_t id = 0;        // §5.1: the rank of its callServer.id among the reflectors' ids, + 1
  Endpoint address;      // its IPv4 or IPv6 address (one entry per family, the same id)
  std::string peer_tag;  // 16 bytes; the first 12 go on the wire
  bool operator==(const ReflectorServer&) const = default;
};

namespace reflector {

inline constexpr size_t kCallTagSize = 12;
inline constexpr size_t kPeerTagSize = 16;
inline constexpr size_t kHelloSize = 40;
inline constexpr size_t kHeaderSize = 24;  // call tag, destination tag, sender tag, length
// Datagrams larger than this are not framed (a reflector packet stays within one UDP datagram).
inline constexpr size_t kMaxPayload = 1500;

// §5.3 hello: call_tag12 | my_tag LE | FF x12 | FE FF FF FF | uint64 BE 123.
std::string hello(std::string_view call_tag12, uint32_t my_tag);
// §5.3 data: call_tag12 | dst LE | src LE | length BE | payload | zero pad to 4. Empty when the
// call tag is not 12 bytes or the payload is too large.
std::string data(std::string_view call_tag12, uint32_t dst_tag, uint32_t src_tag,
                 std::string_view payload);
// The same into `out` (its capacity reused: one per port, no allocation per packet); false and
// `out` empty when it cannot be framed.
bool data_into(std::string& out, std::string_view call_tag12, uint32_t dst_tag, uint32_t src_tag,
               std::string_view payload);

struct Received {
  // Overlong: a length past the packet's end (accepted, so READY, but nothing delivered).
  enum class Kind { Short, Special, Data, Overlong } kind = Kind::Short;
  uint32_t sender = 0;       // Data: the peer port's tag
  std::string_view payload;  // Data: a view into the packet given
};
// §5.3 receive rules (the source address is the port's business): nothing for a packet to drop
// (shorter than 16 bytes, another call's tag); Short for <= 24 bytes (it only marks the port
// READY); Special for FF x12 at 16..28 (a hello's answer); Overlong; else Data.
std::optional<Received> parse(std::string_view packet, std::string_view call_tag12);

// "reflector-<id>-<tag decimal>.reflector" (§5.4).
std::string candidate_name(uint8_t server_id, uint32_t tag);
struct Name {
  uint8_t server_id = 0;
  uint32_t tag = 0;
  bool operator==(const Name&) const = default;
};
// Exactly that shape, decimals without sign or leading zeros (tag 0 is never a port's); nothing
// for anything else.
std::optional<Name> parse_name(std::string_view host);

}  // namespace reflector

class ReflectorPort {
 public:
  static constexpr std::chrono::milliseconds kHelloBeforeReady{500};
  static constexpr std::chrono::milliseconds kHelloAfterReady{10000};

  struct Options {
    ReflectorServer server;
    uint32_t my_tag = 0;  // 0: a random non-zero one
  };
  explicit ReflectorPort(Options o);

  // A datagram to the reflector's address (the only place a port ever sends to).
  std::function<void(std::string_view bytes)> send;
  // The first accepted packet: the local relay candidate to publish.
  std::function<void(const Candidate&)> on_ready;

  void start(TimePoint now);  // the first hello
  // One ICE-layer datagram to the peer port `dest_tag`. False when it cannot be framed.
  bool send_to(uint32_t dest_tag, std::string_view payload);

  struct Inbound {
    uint32_t sender = 0;
    std::string_view data;  // a view into the datagram given
  };
  // A datagram on the port's socket. Only one from the reflector's exact address is looked at;
  // the payload of a data packet comes back, nothing for everything else.
  std::optional<Inbound> on_datagram(const Endpoint& from, std::string_view data, TimePoint now);

  void tick(TimePoint now);
  TimePoint next_tick() const { return next_hello_; }
  void stop() { next_hello_ = TimePoint::max(); }

  bool ready() const { return ready_; }
  uint32_t tag() const { return my_tag_; }
  const ReflectorServer& server() const { return o_.server; }
  // The relay candidate (§5.4): hostname address, the reflector's port, no related address.
  Candidate candidate(uint32_t local_preference) const;

  struct Counters {
    uint64_t hellos_sent = 0, replies = 0, data_in = 0, data_out = 0, dropped = 0;
  };
  const Counters& counters() const { return counters_; }

 private:
  void send_hello(TimePoint now);

  Options o_;
  std::string call_tag_;
  std::string out_;  // the data packet being sent
  uint32_t my_tag_ = 0;
  bool ready_ = false;
  TimePoint next_hello_ = TimePoint::max();
  Counters counters_;
};

}  // namespace esg::media::ice
