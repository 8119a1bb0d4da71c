#pragma once
// A TURN client over UDP (RFC 8656; RFC 5766's wire format), sans-IO: the owner hands it every
// datagram that came from the server and the time, and sends what `send` gives it from the
// socket the allocation lives on. One allocation per client.
//
//   Allocate (no credentials) -> 401 with REALM and NONCE -> Allocate with USERNAME, REALM,
//   NONCE and MESSAGE-INTEGRITY keyed with MD5(username:realm:password); 438 (stale nonce) ->
//   the same request again with the new nonce. Then, per peer: CreatePermission for its
//   address and ChannelBind for its address and port; data goes as ChannelData once the
//   channel is bound and as Send indications before. Refresh before the allocation's lifetime
//   ends; permissions (5 min) and channels (10 min) are renewed before they expire.

#include <boost/asio/ip/udp.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "media/webrtc/ice/stun.hpp"

namespace esg::media::ice {

using TimePoint = std::chrono::steady_clock::time_point;
using Endpoint = boost::asio::ip::udp::endpoint;

class TurnClient {
 public:
  static constexpr size_t kMaxPeers = 64;     // permissions/channels; more are refused
  static constexpr size_t kMaxInFlight = 32;  // requests awaiting an answer
  enum class State { Idle, Allocating, Allocated, Failed };

  struct Options {
    Endpoint server;
    std::string username, password;
    std::string software = "esg";
  };
  explicit TurnClient(Options o);

  // A datagram to the server.
  std::function<void(std::string_view bytes)> send;
  // The relayed transport address (and the server-reflexive one the server saw).
  std::function<void(const Endpoint& relayed, const Endpoint& mapped)> on_allocated;
  // The allocation failed or was lost (the STUN error code, 0 for a timeout).
  std::function<void(int code)> on_failed;

  void start(TimePoint now);
  // Permission and channel for `peer`; idempotent.
  void add_peer(const Endpoint& peer, TimePoint now);
  // Whether data to `peer` would be relayed (allocated and its permission installed).
  bool can_send(const Endpoint& peer) const;
  // `data` to `peer` through the relay: ChannelData when its channel is bound, else a Send
  // indication. False when it cannot be relayed yet.
  bool send_to(const Endpoint& peer, std::string_view data);

  struct Inbound {
    Endpoint peer;
    std::string_view data;  // a view into the datagram given to on_datagram
  };
  // A datagram from the server: the peer's data of a Data indication or ChannelData, nothing
  // for the answers the client consumes (or anything it does not expect).
  std::optional<Inbound> on_datagram(std::string_view data, TimePoint now);

  void tick(TimePoint now);
  TimePoint next_tick() const;
  // Deallocate (Refresh with LIFETIME 0), best effort: the answer is not awaited.
  void close(TimePoint now);

  State state() const { return state_; }
  const Endpoint& server() const { return o_.server; }
  std::optional<Endpoint> relayed() const { return relayed_; }

  struct Counters {
    uint64_t requests_sent = 0, retransmits = 0, auth_challenges = 0, stale_nonces = 0,
             bad_integrity = 0, refreshes = 0, data_in = 0, data_out = 0;
  };
  const Counters& counters() const { return counters_; }

 private:
  struct Transaction {
    stun::TransactionId id{};
    uint16_t method = 0;
    std::string bytes;
    Endpoint peer;            // CreatePermission / ChannelBind
    uint16_t channel = 0;     // ChannelBind
    uint32_t lifetime = 600;  // Refresh
    int tries = 1;
    int auth_retries = 0;
    TimePoint next;
  };
  struct Peer {
    Endpoint endpoint;
    uint16_t channel = 0;
    bool permitted = false, bound = false;
    bool permission_pending = false, bind_pending = false;
    TimePoint permission_refresh, channel_refresh;
  };

  void request(uint16_t method, const Endpoint& peer, uint16_t channel, uint32_t lifetime,
               int auth_retries, TimePoint now);
  std::string build(const Transaction& t) const;
  void on_response(const stun::Message& m, TimePoint now);
  void on_success(const Transaction& t, const stun::Message& m, TimePoint now);
  void on_error(Transaction t, const stun::Message& m, TimePoint now);
  void fail(int code);
  bool permitted(const boost::asio::ip::address& address) const;
  Peer* find_peer(const Endpoint& peer);
  const Peer* find_peer(const Endpoint& peer) const;
  void emit(std::string_view bytes);

  Options o_;
  State state_ = State::Idle;
  std::string realm_, nonce_, key_;
  std::optional<Endpoint> relayed_, mapped_;
  TimePoint refresh_at_{};
  std::vector<Transaction> in_flight_;
  std::vector<Peer> peers_;
  uint16_t next_channel_ = 0x4000;
  std::string out_;  // ChannelData being sent
  Counters counters_;
};

}  // namespace esg::media::ice
