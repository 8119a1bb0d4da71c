#pragma once
// A full ICE agent (RFC 8445) for one component, sans-IO: the leg owns the UDP sockets and the
// timer, feeds every received datagram to on_datagram() and calls tick() at next_tick(); the
// agent sends through `send` and reports through its callbacks. STUN checks carry
// MESSAGE-INTEGRITY (short-term credentials "remote-ufrag:local-ufrag") and FINGERPRINT.
//
// Pairs are local (host, relay) x remote candidates of the same address family; a local
// server-reflexive candidate is only signalled (its base, the host candidate, is what checks
// are sent from: RFC 8445 §6.1.2.4). One component means every foundation group holds one
// pair, so the frozen algorithm puts every pair in Waiting at once; checks are paced at Ta
// (25 ms), triggered checks first. The controlling agent nominates with USE-CANDIDATE (regular
// nomination, RFC 8445 §8.1.1) once the best pair has succeeded and no better one is still
// pending, or 500 ms after the first success; the controlled agent selects a pair on a
// USE-CANDIDATE it has validated. Consent (RFC 7675): a check on the selected pair every 2-3 s;
// no answer for 5 s -> Disconnected (the other pairs are checked again, and the controlling
// agent nominates one that works; the controlled one follows the nomination); an answer again
// -> Connected.
//
// Telegram's reflectors (TELEGRAM-CALLS.md §5): a ReflectorPort per (reflector address, socket
// of its family); once READY its relay candidate "reflector-<id>-<tag>.reflector" is signalled.
// Such names are never resolved: a remote reflector candidate is given a synthetic endpoint in
// the IPv6 discard prefix 100::/64 (RFC 6666) that encodes its server id and tag, so the
// Endpoint-keyed tables (pairs, checks, prflx learning) work unchanged; only the reflector port
// of the same server id ever sends to one, framing the datagram for the peer's tag. A datagram
// is never sent to a synthetic address (send_from refuses it), and real candidates in 100::/64
// are refused, so the two cannot be confused.
//
// Failed is only ever set by the owner (fail()): candidates can keep coming (continual
// gathering on the peer's side), so the agent never knows that nothing new can come; the 20 s
// rule of the Telegram engine decides.

#include <boost/asio/ip/udp.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "media/webrtc/ice/candidate.hpp"
#include "media/webrtc/ice/reflector.hpp"
#include "media/webrtc/ice/stun.hpp"
#include "media/webrtc/ice/turn.hpp"

namespace esg::media::ice {

using TimePoint = std::chrono::steady_clock::time_point;
using Endpoint = boost::asio::ip::udp::endpoint;

enum class State { New, Checking, Connected, Disconnected, Failed };
const char* to_string(State s);

// A STUN server, or a TURN/UDP server with long-term credentials.
struct Server {
  Endpoint address;
  bool turn = false;
  std::string username, password;
};

class Agent {
 public:
  static constexpr size_t kMaxSockets = 16;
  static constexpr size_t kMaxLocalCandidates = 32;
  static constexpr size_t kMaxRemoteCandidates = 64;
  static constexpr size_t kMaxPairs = 256;
  static constexpr size_t kMaxChecksInFlight = 64;
  static constexpr size_t kMaxReflectorPorts = 16;
  static constexpr std::chrono::milliseconds kTa{25};
  static constexpr std::chrono::milliseconds kConsentTimeout{5000};

  struct Options {
    bool controlling = false;
    std::string ufrag, pwd;  // empty: random ones are made
    // allow_p2p false: only relay candidates are gathered, signalled and paired.
    bool relay_only = false;
  };
  explicit Agent(Options o);  // generates the tie-breaker
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // 4 and 24 characters of the base64 alphabet, as libwebrtc makes them.
  static std::string random_ufrag();
  static std::string random_pwd();

  // A datagram on one of the leg's sockets.
  std::function<void(int socket, const Endpoint& to, std::string_view bytes)> send;
  // A local candidate to signal (host at once, srflx/relay when learnt).
  std::function<void(const Candidate&)> on_candidate;
  std::function<void(State)> on_state;

  // A host candidate (the leg binds one UDP socket per local address).
  void add_socket(int socket, const Endpoint& local, TimePoint now);
  // Gathers srflx (STUN binding) or relay (TURN allocate) on every socket of the server's family.
  void add_server(const Server& s, TimePoint now);
  // A reflector port (its own random tag) on every socket of the reflector address's family;
  // hellos start at once and go on while the agent lives.
  void add_reflector(const ReflectorServer& r, TimePoint now);
  void set_remote_credentials(std::string ufrag, std::string pwd, TimePoint now);
  // Hostnames are never resolved: "reflector-<id>-<tag>.reflector" is taken when a reflector of
  // that id was added (and paired only with its ports, same port, §5.4); other names are skipped
  // and logged, as are non-UDP ones, other components and ones whose ufrag is not the remote one.
  void add_remote_candidate(const Candidate& c, TimePoint now);

  // Every datagram the leg's sockets receive. Returns the application payload (DTLS/SRTP,
  // first byte 20..63 or 128..191; unwrapped from TURN Data/ChannelData when relayed) or
  // nothing when the agent consumed it (STUN, TURN control) or it is not from a known peer.
  std::optional<std::string_view> on_datagram(int socket, const Endpoint& from,
                                              std::string_view data, TimePoint now);
  // On the selected pair (through TURN when it is relayed); false: no pair yet.
  bool send_data(std::string_view bytes);

  void tick(TimePoint now);
  TimePoint next_tick() const;
  // The owner gave up (the 20 s rule): Failed, and nothing more is sent.
  void fail();
  // Releases TURN allocations (best effort) and stops.
  void close(TimePoint now);

  State state() const { return state_; }
  bool controlling() const { return controlling_; }
  const std::string& ufrag() const { return o_.ufrag; }
  const std::string& pwd() const { return o_.pwd; }
  // The local candidates signalled so far.
  std::vector<Candidate> local_candidates() const;

  struct PathInfo {
    Candidate local, remote;
    std::optional<std::chrono::milliseconds> rtt;
  };
  std::optional<PathInfo> selected() const;

  struct Counters {
    uint64_t checks_sent = 0, checks_received = 0, bad_integrity = 0, role_conflicts = 0;
    uint64_t remote_skipped = 0, pairs_refused = 0, consent_sent = 0, selections = 0;
  };
  const Counters& counters() const { return counters_; }

  struct ReflectorInfo {
    ReflectorServer server;
    int socket = -1;
    uint32_t tag = 0;
    bool ready = false;
    ReflectorPort::Counters counters;
  };
  std::vector<ReflectorInfo> reflectors() const;
  // The synthetic endpoint of a reflector candidate, and back (nothing for any other endpoint).
  static Endpoint reflector_endpoint(uint8_t server_id, uint32_t tag, uint16_t port);
  static std::optional<reflector::Name> reflector_name_of(const Endpoint& e);

 private:
  enum class PairState { Frozen, Waiting, InProgress, Succeeded, Failed };
  enum class Kind { Host, Srflx, Relay, Reflector };
  struct Local {
    Candidate c;
    Kind kind = Kind::Host;
    int socket = -1;
    Endpoint address;    // host: the socket's; srflx: mapped; relay: relayed
    int turn = -1;       // index into turns_ for relay candidates
    int reflector = -1;  // index into reflectors_ for reflector candidates
    uint32_t local_preference = 0;
    bool pairable = false, signalled = false;
  };
  struct Remote {
    Candidate c;
    Endpoint endpoint;
  };
  struct Pair {
    size_t local = 0, remote = 0;
    uint64_t priority = 0;
    PairState state = PairState::Waiting;
    bool triggered = false;            // queued in triggered_
    bool nominate_on_success = false;  // controlled: USE-CANDIDATE seen before it succeeded
    bool use_candidate = false;        // controlling: its next check nominates
    std::optional<std::chrono::milliseconds> rtt;
    TimePoint last_success{};
  };
  struct Check {
    stun::TransactionId id{};
    size_t pair = 0;
    std::string bytes;
    bool use_candidate = false, consent = false, controlling = false;
    int tries = 1;
    TimePoint first_sent, next;
  };
  struct Gather {  // a binding request to a STUN server for a srflx candidate
    stun::TransactionId id{};
    int socket = -1;
    Endpoint server;
    std::string bytes;
    int tries = 1;
    TimePoint next;
    bool done = false;
  };
  struct Turn {
    std::unique_ptr<TurnClient> client;
    int socket = -1;
    int local = -1;  // the relay candidate, once allocated
  };
  struct Reflector {
    std::unique_ptr<ReflectorPort> port;
    int socket = -1;
    int local = -1;  // the reflector candidate, once READY
  };

  std::optional<std::string_view> on_peer_datagram(size_t local, const Endpoint& from,
                                                   std::string_view data, TimePoint now);
  void on_request(size_t local, const Endpoint& from, const stun::Message& m, TimePoint now);
  void on_response(size_t check, const Endpoint& from, const stun::Message& m, TimePoint now);
  void on_gather_response(const stun::Message& m, TimePoint now);
  void on_allocated(size_t turn, const Endpoint& relayed, const Endpoint& mapped);
  void on_reflector_ready(size_t reflector);

  bool send_from(size_t local, const Endpoint& to, std::string_view bytes);
  bool sendable(const Pair& p) const;
  bool send_check(size_t pair, bool consent, TimePoint now);
  void schedule_checks(TimePoint now);
  void nominate(TimePoint now);
  void select(size_t pair, TimePoint now);
  void switch_role();
  void set_state(State s);
  void recheck_pairs();

  size_t add_local(Local l);
  std::optional<size_t> find_remote(const Endpoint& e) const;
  void pair_local(size_t local, TimePoint now);
  void pair_remote(size_t remote, TimePoint now);
  std::optional<size_t> make_pair(size_t local, size_t remote, TimePoint now);
  std::optional<size_t> find_pair(size_t local, const Endpoint& remote) const;
  uint64_t priority_of(size_t local, size_t remote) const;
  uint32_t prflx_priority(size_t local) const;
  std::optional<size_t> host_of(int socket) const;

  Options o_;
  bool controlling_;
  uint64_t tie_breaker_;
  std::string remote_ufrag_, remote_pwd_;
  State state_ = State::New;
  std::vector<Local> locals_;
  std::vector<Remote> remotes_;
  std::vector<Pair> pairs_;
  std::vector<Check> checks_;
  std::vector<Gather> gathers_;
  std::vector<Turn> turns_;
  std::vector<Reflector> reflectors_;
  std::deque<size_t> triggered_;
  std::optional<size_t> selected_;
  std::optional<size_t> nominating_;
  TimePoint next_check_{};
  TimePoint first_success_ = TimePoint::max();
  TimePoint last_consent_{};
  TimePoint next_consent_ = TimePoint::max();
  TimePoint next_recheck_ = TimePoint::max();
  TimePoint last_now_{};  // the latest time given, for work started from TURN callbacks
  Counters counters_;
};

}  // namespace esg::media::ice
