#include "media/webrtc/ice/ice.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <functional>

#include "base/random.hpp"
#include "log/log.hpp"

namespace esg::media::ice {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

// RFC 8445 §14.3 leaves the check RTO to the agent: 200 ms doubled up to 1.6 s, seven tries
// (~8 s): a pair that has not answered by then is taken as failed.
constexpr milliseconds kCheckRto{200};
constexpr milliseconds kCheckRtoMax{1600};
constexpr int kMaxCheckTries = 7;
// Gathering from a STUN server: RFC 8489's 500 ms RTO, five tries.
constexpr milliseconds kGatherRto{500};
constexpr int kMaxGatherTries = 5;
// The controlling agent waits this long after the first success for a better pair before it
// nominates the best one it has.
constexpr milliseconds kNominationWait{500};
// While disconnected, every pair is checked again this often.
constexpr milliseconds kRecheckInterval{5000};

spdlog::logger& logger() {
  return esg::log::get("media");
}

std::string foundation_of(std::string_view type, const boost::asio::ip::address& base,
                          const std::string& server) {
  std::string key(type);
  key.append("|").append(base.to_string()).append("|").append(server);
  return std::to_string(uint32_t(std::hash<std::string>{}(key)));
}

std::string random_string(size_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), int(n)) != 1) {
    for (char& c : bytes)
      c = char(esg::random::between(0, 255));
  }
  std::string out(n, 'A');
  for (size_t i = 0; i < n; ++i)
    out[i] = kAlphabet[uint8_t(bytes[i]) % 64];  // 64 | 256
  return out;
}

// RFC 6666's discard-only prefix 100::/64: what a reflector candidate's synthetic endpoint is
// made of (and what no real candidate may use).
bool in_discard_prefix(const boost::asio::ip::address& a) {
  if (!a.is_v6()) return false;
  const auto b = a.to_v6().to_bytes();
  return b[0] == 0x01 && std::all_of(b.begin() + 1, b.begin() + 8, [](uint8_t x) { return !x; });
}

bool same_family(const Endpoint& a, const Endpoint& b) {
  return a.address().is_v4() == b.address().is_v4();
}

milliseconds consent_interval() {
  // RFC 7675 §5.1 wants the interval randomised so checks of many calls do not line up.
  return milliseconds(esg::random::between(2000, 3000));
}

}  // namespace

const char* to_string(State s) {
  switch (s) {
    case State::New:
      return "new";
    case State::Checking:
      return "checking";
    case State::Connected:
      return "connected";
    case State::Disconnected:
      return "disconnected";
    case State::Failed:
      return "failed";
  }
  return "?";
}

std::string Agent::random_ufrag() {
  return random_string(4);
}

std::string Agent::random_pwd() {
  return random_string(24);
}

Agent::Agent(Options o) : o_(std::move(o)), controlling_(o_.controlling) {
  if (o_.ufrag.empty()) o_.ufrag = random_ufrag();
  if (o_.pwd.empty()) o_.pwd = random_pwd();
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&tie_breaker_), sizeof tie_breaker_) != 1) {
    tie_breaker_ = esg::random::generator()();
  }
}

Agent::~Agent() = default;

// --- candidates and pairs ----------------------------------------------------------------------

Endpoint Agent::reflector_endpoint(uint8_t server_id, uint32_t tag, uint16_t port) {
  boost::asio::ip::address_v6::bytes_type b{};
  b[0] = 0x01;
  b[11] = server_id;
  for (int i = 0; i < 4; ++i)
    b[size_t(15 - i)] = uint8_t(tag >> (8 * i));
  return Endpoint(boost::asio::ip::address_v6(b), port);
}

std::optional<reflector::Name> Agent::reflector_name_of(const Endpoint& e) {
  if (!in_discard_prefix(e.address())) return std::nullopt;
  const auto b = e.address().to_v6().to_bytes();
  uint32_t tag = 0;
  for (size_t i = 12; i < 16; ++i)
    tag = (tag << 8) | b[i];
  return reflector::Name{b[11], tag};
}

std::optional<size_t> Agent::host_of(int socket) const {
  for (size_t i = 0; i < locals_.size(); ++i) {
    if (locals_[i].socket == socket && locals_[i].kind == Kind::Host) return i;
  }
  return std::nullopt;
}

size_t Agent::add_local(Local l) {
  locals_.push_back(std::move(l));
  return locals_.size() - 1;
}

void Agent::add_socket(int socket, const Endpoint& local, TimePoint now) {
  if (host_of(socket)) return;
  const size_t hosts = size_t(std::count_if(locals_.begin(), locals_.end(),
                                            [](const Local& l) { return l.kind == Kind::Host; }));
  if (hosts >= kMaxSockets || locals_.size() >= kMaxLocalCandidates) {
    logger().warn("ice: socket {} ({}) not used: {} sockets already", socket,
                  local.address().to_string(), hosts);
    return;
  }
  Local l;
  l.socket = socket;
  l.address = local;
  l.local_preference = uint32_t(65535 - hosts);
  l.c.foundation = foundation_of("host", local.address(), {});
  l.c.priority = candidate_priority(kTypePreferenceHost, l.local_preference);
  l.c.address = local.address().to_string();
  l.c.port = local.port();
  l.c.type = "host";
  l.kind = Kind::Host;
  l.c.ufrag = o_.ufrag;
  l.pairable = l.signalled = !o_.relay_only;
  const size_t i = add_local(std::move(l));
  if (locals_[i].signalled && on_candidate) on_candidate(locals_[i].c);
  if (locals_[i].pairable) pair_local(i, now);
}

void Agent::add_server(const Server& s, TimePoint now) {
  if (state_ == State::Failed) return;
  const size_t n = locals_.size();
  for (size_t i = 0; i < n; ++i) {
    if (locals_[i].kind != Kind::Host || !same_family(locals_[i].address, s.address)) continue;
    const int socket = locals_[i].socket;
    if (s.turn) {
      if (turns_.size() >= kMaxSockets * 2) return;
      const size_t t = turns_.size();
      TurnClient::Options to;
      to.server = s.address;
      to.username = s.username;
      to.password = s.password;
      Turn turn;
      turn.client = std::make_unique<TurnClient>(std::move(to));
      turn.socket = socket;
      const Endpoint server = s.address;
      turn.client->send = [this, socket, server](std::string_view bytes) {
        if (send) send(socket, server, bytes);
      };
      turn.client->on_allocated = [this, t](const Endpoint& relayed, const Endpoint& mapped) {
        on_allocated(t, relayed, mapped);
      };
      turn.client->on_failed = [server](int code) {
        logger().info("ice: TURN allocation at {}:{} failed ({})", server.address().to_string(),
                      server.port(), code);
      };
      turns_.push_back(std::move(turn));
      turns_.back().client->start(now);
    } else if (!o_.relay_only) {
      if (gathers_.size() >= kMaxSockets * 2) return;
      Gather g;
      g.id = stun::new_transaction();
      g.socket = socket;
      g.server = s.address;
      g.bytes = stun::Builder(stun::method::kBinding, stun::Class::Request, g.id).finish({}, true);
      g.next = now + kGatherRto;
      if (send) send(socket, s.address, g.bytes);
      gathers_.push_back(std::move(g));
    }
  }
}

void Agent::on_allocated(size_t t, const Endpoint& relayed, const Endpoint& mapped) {
  const auto host = host_of(turns_[t].socket);
  if (!host || locals_.size() >= kMaxLocalCandidates) return;
  Local l;
  l.socket = turns_[t].socket;
  l.address = relayed;
  l.turn = int(t);
  // Below the reflectors' candidates of the same socket: a reflector needs no allocation,
  // permission or channel that can lapse mid-call, and it is the relay Telegram hands every
  // call (TURN servers only some), so the peer has a candidate on it too; TURN stays the
  // fallback.
  l.local_preference = locals_[*host].local_preference - uint32_t(kMaxSockets);
  l.c.foundation = foundation_of("relay", locals_[*host].address.address(),
                                 turns_[t].client->server().address().to_string());
  l.c.priority = candidate_priority(kTypePreferenceRelay, l.local_preference);
  l.c.address = relayed.address().to_string();
  l.c.port = relayed.port();
  l.c.type = "relay";
  l.kind = Kind::Relay;
  if (mapped.port() != 0) {
    l.c.related_address = mapped.address().to_string();
    l.c.related_port = mapped.port();
  }
  l.c.ufrag = o_.ufrag;
  l.pairable = l.signalled = true;
  const size_t i = add_local(std::move(l));
  turns_[t].local = int(i);
  logger().info("ice: relayed address {}:{} from {}:{}", locals_[i].c.address, locals_[i].c.port,
                turns_[t].client->server().address().to_string(),
                turns_[t].client->server().port());
  if (on_candidate) on_candidate(locals_[i].c);
  // Called from inside on_datagram or tick, whose time last_now_ holds.
  pair_local(i, last_now_);
}

void Agent::add_reflector(const ReflectorServer& r, TimePoint now) {
  last_now_ = now;
  if (state_ == State::Failed) return;
  if (r.peer_tag.size() < reflector::kCallTagSize || r.id == 0) {
    logger().warn("ice: reflector {} at {}:{} not used: no peer tag", int(r.id),
                  r.address.address().to_string(), r.address.port());
    return;
  }
  const size_t n = locals_.size();
  for (size_t i = 0; i < n; ++i) {
    if (locals_[i].kind != Kind::Host || !same_family(locals_[i].address, r.address)) continue;
    const int socket = locals_[i].socket;
    const bool known = std::any_of(reflectors_.begin(), reflectors_.end(), [&](const Reflector& x) {
      return x.socket == socket && x.port->server().address == r.address;
    });
    if (known) continue;
    if (reflectors_.size() >= kMaxReflectorPorts) {
      logger().warn("ice: reflector {} at {}:{} not used on socket {}: {} ports already", int(r.id),
                    r.address.address().to_string(), r.address.port(), socket, reflectors_.size());
      return;
    }
    const size_t k = reflectors_.size();
    Reflector ref;
    ref.port = std::make_unique<ReflectorPort>(ReflectorPort::Options{r, 0});
    ref.socket = socket;
    const Endpoint server = r.address;
    ref.port->send = [this, socket, server](std::string_view bytes) {
      if (send) send(socket, server, bytes);
    };
    ref.port->on_ready = [this, k](const Candidate&) { on_reflector_ready(k); };
    reflectors_.push_back(std::move(ref));
    reflectors_.back().port->start(now);
  }
}

void Agent::on_reflector_ready(size_t k) {
  Reflector& ref = reflectors_[k];
  const auto host = host_of(ref.socket);
  if (!host || ref.local >= 0 || locals_.size() >= kMaxLocalCandidates) return;
  const ReflectorServer& server = ref.port->server();
  Local l;
  l.socket = ref.socket;
  l.kind = Kind::Reflector;
  l.reflector = int(k);
  l.local_preference = locals_[*host].local_preference;
  l.c = ref.port->candidate(l.local_preference);
  l.c.ufrag = o_.ufrag;
  l.address = reflector_endpoint(server.id, ref.port->tag(), server.address.port());
  l.pairable = l.signalled = true;
  const size_t i = add_local(std::move(l));
  ref.local = int(i);
  if (on_candidate) on_candidate(locals_[i].c);
  // Called from inside on_datagram, whose time last_now_ holds.
  pair_local(i, last_now_);
}

std::vector<Agent::ReflectorInfo> Agent::reflectors() const {
  std::vector<ReflectorInfo> out;
  for (const Reflector& r : reflectors_)
    out.push_back({r.port->server(), r.socket, r.port->tag(), r.port->ready(), r.port->counters()});
  return out;
}

void Agent::set_remote_credentials(std::string ufrag, std::string pwd, TimePoint now) {
  remote_ufrag_ = std::move(ufrag);
  remote_pwd_ = std::move(pwd);
  if (state_ == State::New) set_state(State::Checking);
  next_check_ = std::min(next_check_, now);
}

std::optional<size_t> Agent::find_remote(const Endpoint& e) const {
  for (size_t i = 0; i < remotes_.size(); ++i) {
    if (remotes_[i].endpoint == e) return i;
  }
  return std::nullopt;
}

void Agent::add_remote_candidate(const Candidate& c, TimePoint now) {
  last_now_ = now;
  if (state_ == State::Failed) return;
  auto skip = [&](std::string_view why) {
    ++counters_.remote_skipped;
    logger().info("ice: remote candidate {} skipped: {}", c.to_sdp(), why);
  };
  if (c.component != 1) return skip("not component 1");
  if (c.protocol != "udp") return skip("not UDP");
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(c.address, ec);
  if (c.port == 0) return skip("port 0");
  if (!remote_ufrag_.empty() && !c.ufrag.empty() && c.ufrag != remote_ufrag_) {
    return skip("ufrag of other credentials");
  }
  Endpoint e;
  if (ec) {
    // Hostnames are never resolved (mDNS .local names, and resolving would leak); a reflector
    // name stands for the peer's port on one of our reflectors, reached only through it.
    const auto name = reflector::parse_name(c.address);
    if (!name) return skip("a hostname");
    const bool ours = std::any_of(reflectors_.begin(), reflectors_.end(), [&](const Reflector& r) {
      return r.port->server().id == name->server_id;
    });
    if (!ours) return skip("a reflector this call was not given");
    e = reflector_endpoint(name->server_id, name->tag, c.port);
  } else {
    if (in_discard_prefix(address)) return skip("in the discard prefix 100::/64");
    e = Endpoint(address, c.port);
  }
  if (auto known = find_remote(e)) {
    // A signalled candidate replaces the peer-reflexive one learnt from its checks (RFC 8445
    // §7.3.1.3); its priority changes the pairs'.
    Remote& r = remotes_[*known];
    if (r.c.type == "prflx" && c.type != "prflx") {
      r.c = c;
      for (Pair& p : pairs_) {
        if (p.remote == *known) p.priority = priority_of(p.local, p.remote);
      }
    }
    return;
  }
  if (remotes_.size() >= kMaxRemoteCandidates) return skip("too many remote candidates");
  remotes_.push_back(Remote{c, e});
  pair_remote(remotes_.size() - 1, now);
}

uint64_t Agent::priority_of(size_t local, size_t remote) const {
  const uint32_t l = locals_[local].c.priority, r = remotes_[remote].c.priority;
  return controlling_ ? pair_priority(l, r) : pair_priority(r, l);
}

uint32_t Agent::prflx_priority(size_t local) const {
  return candidate_priority(kTypePreferencePrflx, locals_[local].local_preference);
}

std::optional<size_t> Agent::make_pair(size_t local, size_t remote, TimePoint now) {
  const Local& l = locals_[local];
  if (!l.pairable) return std::nullopt;
  const Endpoint& re = remotes_[remote].endpoint;
  if (const auto name = reflector_name_of(re); name || l.kind == Kind::Reflector) {
    // §5.4: reflector to reflector on the same server and port (tgcalls' CreateConnection).
    if (!name || l.kind != Kind::Reflector) return std::nullopt;
    const ReflectorServer& server = reflectors_[size_t(l.reflector)].port->server();
    if (name->server_id != server.id || re.port() != server.address.port()) return std::nullopt;
  } else if (!same_family(l.address, re)) {
    return std::nullopt;
  }
  if (o_.relay_only && l.kind != Kind::Relay && l.kind != Kind::Reflector) return std::nullopt;
  for (size_t i = 0; i < pairs_.size(); ++i) {
    if (pairs_[i].local == local && pairs_[i].remote == remote) return i;
  }
  if (pairs_.size() >= kMaxPairs) {
    ++counters_.pairs_refused;
    return std::nullopt;
  }
  Pair p;
  p.local = local;
  p.remote = remote;
  p.priority = priority_of(local, remote);
  pairs_.push_back(p);
  if (l.turn >= 0) turns_[size_t(l.turn)].client->add_peer(remotes_[remote].endpoint, now);
  return pairs_.size() - 1;
}

void Agent::pair_local(size_t local, TimePoint now) {
  for (size_t r = 0; r < remotes_.size(); ++r)
    make_pair(local, r, now);
}

void Agent::pair_remote(size_t remote, TimePoint now) {
  for (size_t l = 0; l < locals_.size(); ++l)
    make_pair(l, remote, now);
}

std::optional<size_t> Agent::find_pair(size_t local, const Endpoint& remote) const {
  for (size_t i = 0; i < pairs_.size(); ++i) {
    if (pairs_[i].local == local && remotes_[pairs_[i].remote].endpoint == remote) return i;
  }
  return std::nullopt;
}

std::vector<Candidate> Agent::local_candidates() const {
  std::vector<Candidate> out;
  for (const Local& l : locals_) {
    if (l.signalled) out.push_back(l.c);
  }
  return out;
}

// --- datagrams ---------------------------------------------------------------------------------

bool Agent::send_from(size_t local, const Endpoint& to, std::string_view bytes) {
  const Local& l = locals_[local];
  const auto name = reflector_name_of(to);
  if (l.reflector >= 0) {
    if (!name) return false;
    return reflectors_[size_t(l.reflector)].port->send_to(name->tag, bytes);
  }
  // A synthetic endpoint is no destination: only its reflector port can reach that peer.
  if (name) return false;
  if (l.turn >= 0) return turns_[size_t(l.turn)].client->send_to(to, bytes);
  if (!send) return false;
  send(l.socket, to, bytes);
  return true;
}

std::optional<std::string_view> Agent::on_datagram(int socket, const Endpoint& from,
                                                   std::string_view data, TimePoint now) {
  last_now_ = now;
  if (state_ == State::Failed) return std::nullopt;
  for (Reflector& r : reflectors_) {
    if (r.socket != socket || r.port->server().address != from) continue;
    auto in = r.port->on_datagram(from, data, now);
    if (!in || r.local < 0) return std::nullopt;
    const ReflectorServer& server = r.port->server();
    return on_peer_datagram(size_t(r.local),
                            reflector_endpoint(server.id, in->sender, server.address.port()),
                            in->data, now);
  }
  for (Turn& t : turns_) {
    if (t.socket != socket || t.client->server() != from) continue;
    // One server is often both (Telegram's supports_stun and supports_turn): the answer to a
    // gathering Binding request is ours, not the TURN client's.
    if (!gathers_.empty() && stun::looks_like_stun(data)) {
      if (auto m = stun::Message::parse(data);
          m && m->method() == stun::method::kBinding && m->cls() != stun::Class::Request) {
        on_gather_response(*m, now);
        return std::nullopt;
      }
    }
    auto in = t.client->on_datagram(data, now);
    if (!in || t.local < 0) return std::nullopt;
    return on_peer_datagram(size_t(t.local), in->peer, in->data, now);
  }
  const auto host = host_of(socket);
  if (!host) return std::nullopt;
  return on_peer_datagram(*host, from, data, now);
}

std::optional<std::string_view> Agent::on_peer_datagram(size_t local, const Endpoint& from,
                                                        std::string_view data, TimePoint now) {
  if (data.empty()) return std::nullopt;
  const uint8_t first = uint8_t(data[0]);
  if (first < 4) {
    auto m = stun::Message::parse(data);
    if (!m || m->method() != stun::method::kBinding) return std::nullopt;
    if (m->has_fingerprint() && !m->check_fingerprint()) return std::nullopt;
    switch (m->cls()) {
      case stun::Class::Request:
        on_request(local, from, *m, now);
        break;
      case stun::Class::Success:
      case stun::Class::Error: {
        auto it = std::find_if(checks_.begin(), checks_.end(),
                               [&](const Check& c) { return c.id == m->transaction(); });
        if (it != checks_.end()) {
          on_response(size_t(it - checks_.begin()), from, *m, now);
        } else {
          on_gather_response(*m, now);
        }
        break;
      }
      case stun::Class::Indication:  // a keepalive (RFC 8445 §11): nothing to do
        break;
    }
    return std::nullopt;
  }
  // RFC 7983: 20..63 DTLS, 128..191 RTP/RTCP; only from an address a pair knows, so a
  // stranger cannot inject media before (or after) ICE.
  if ((first >= 20 && first <= 63) || (first >= 128 && first <= 191)) {
    // The selected pair first: that is where nearly all media comes from.
    if (selected_) {
      const Pair& p = pairs_[*selected_];
      if (p.local == local && remotes_[p.remote].endpoint == from) return data;
    }
    if (find_pair(local, from)) return data;
  }
  return std::nullopt;
}

void Agent::on_request(size_t local, const Endpoint& from, const stun::Message& m, TimePoint now) {
  auto reply_error = [&](int code, std::string_view reason, bool sign, uint16_t unknown = 0) {
    stun::Builder b(stun::method::kBinding, stun::Class::Error, m.transaction());
    b.add_error(code, reason);
    if (unknown)
      b.add(stun::attr::kUnknownAttributes, std::string{char(unknown >> 8), char(unknown)});
    send_from(local, from,
              std::move(b).finish(sign ? std::string_view(o_.pwd) : std::string_view{}));
  };
  // RFC 8489 §9.1.3: no USERNAME or MESSAGE-INTEGRITY -> 400; wrong ones -> 401.
  const auto username = m.get(stun::attr::kUsername);
  if (!username || !m.has_integrity()) return reply_error(400, "Bad Request", false);
  const size_t colon = username->find(':');
  const std::string_view mine = username->substr(0, colon);
  if (colon == std::string_view::npos || mine != o_.ufrag || !m.check_integrity(o_.pwd)) {
    ++counters_.bad_integrity;
    return reply_error(401, "Unauthorized", false);
  }
  if (const uint16_t unknown = m.unknown_required()) {
    return reply_error(420, "Unknown Attribute", true, unknown);
  }
  ++counters_.checks_received;
  // RFC 8445 §7.3.1.1: both sides think they control (or both that they are controlled): the
  // larger tie-breaker controls.
  const auto theirs_controlling = m.get_u64(stun::attr::kIceControlling);
  const auto theirs_controlled = m.get_u64(stun::attr::kIceControlled);
  if (controlling_ && theirs_controlling) {
    ++counters_.role_conflicts;
    if (tie_breaker_ >= *theirs_controlling) return reply_error(487, "Role Conflict", true);
    switch_role();
  } else if (!controlling_ && theirs_controlled) {
    ++counters_.role_conflicts;
    if (tie_breaker_ < *theirs_controlled) return reply_error(487, "Role Conflict", true);
    switch_role();
  }
  send_from(local, from,
            stun::Builder(stun::method::kBinding, stun::Class::Success, m.transaction())
                .add_xor_address(stun::attr::kXorMappedAddress, from)
                .finish(o_.pwd));
  if (!locals_[local].pairable) return;
  auto pair = find_pair(local, from);
  if (!pair) {
    // RFC 8445 §7.3.1.3: a check from an address no candidate names is a peer-reflexive
    // candidate, paired with the local candidate that received it.
    auto remote = find_remote(from);
    if (!remote) {
      if (remotes_.size() >= kMaxRemoteCandidates) return;
      Remote r;
      r.endpoint = from;
      r.c.foundation = foundation_of("prflx", from.address(), {});
      r.c.priority = m.get_u32(stun::attr::kPriority).value_or(0);
      const auto name = reflector_name_of(from);
      r.c.address =
          name ? reflector::candidate_name(name->server_id, name->tag) : from.address().to_string();
      r.c.port = from.port();
      r.c.type = "prflx";
      r.c.ufrag = std::string(username->substr(colon + 1));
      remotes_.push_back(std::move(r));
      remote = remotes_.size() - 1;
      logger().debug("ice: peer-reflexive remote {}:{}", remotes_.back().c.address, from.port());
    }
    pair = make_pair(local, *remote, now);
    if (!pair) return;
  }
  Pair& p = pairs_[*pair];
  const bool use_candidate = m.has(stun::attr::kUseCandidate) && !controlling_;
  if (p.state == PairState::Succeeded) {
    // RFC 8445 §7.3.1.5: a nomination of a pair already valid selects it.
    if (use_candidate && selected_ != *pair) select(*pair, now);
    return;
  }
  if (use_candidate) p.nominate_on_success = true;
  // RFC 8445 §7.3.1.4: a triggered check, unless one is already under way.
  if (p.state != PairState::InProgress) {
    p.state = PairState::Waiting;
    if (!p.triggered && triggered_.size() < kMaxPairs) {
      p.triggered = true;
      triggered_.push_back(*pair);
    }
  }
}

void Agent::on_response(size_t ci, const Endpoint& from, const stun::Message& m, TimePoint now) {
  // RFC 8445 §7.2.5: the answer is signed with the peer's password; a forged one is dropped and
  // the check goes on being retransmitted.
  if (!m.check_integrity(remote_pwd_)) {
    ++counters_.bad_integrity;
    return;
  }
  const Check c = std::move(checks_[ci]);
  checks_.erase(checks_.begin() + ptrdiff_t(ci));
  Pair& p = pairs_[c.pair];
  if (nominating_ == c.pair && c.use_candidate) nominating_.reset();
  // RFC 8445 §7.2.5.2.1: an answer from elsewhere than the check went to fails the pair.
  if (from != remotes_[p.remote].endpoint) {
    if (!c.consent) p.state = PairState::Failed;
    return;
  }
  if (m.cls() == stun::Class::Error) {
    const int code = m.error() ? m.error()->code : 0;
    if (code == 487) {
      // RFC 8445 §7.2.5.1: take the other role (unless a conflict already switched it) and
      // check again.
      ++counters_.role_conflicts;
      if (c.controlling == controlling_) switch_role();
      p.state = PairState::Waiting;
      if (!p.triggered) {
        p.triggered = true;
        triggered_.push_back(c.pair);
      }
    } else if (!c.consent) {
      p.state = PairState::Failed;
    }
    return;
  }
  p.state = PairState::Succeeded;
  p.last_success = now;
  // Karn: only an answer to a check sent once measures the round trip.
  if (c.tries == 1) p.rtt = duration_cast<milliseconds>(now - c.first_sent);
  first_success_ = std::min(first_success_, now);
  if (selected_ == c.pair) {
    last_consent_ = now;
    if (state_ == State::Disconnected) {
      next_recheck_ = TimePoint::max();
      set_state(State::Connected);
    }
  }
  if (controlling_ && c.use_candidate && selected_ != c.pair) {
    p.use_candidate = false;
    select(c.pair, now);
  } else if (!controlling_ && p.nominate_on_success) {
    p.nominate_on_success = false;
    if (selected_ != c.pair) select(c.pair, now);
  } else if (controlling_) {
    // At once, not at the next tick: with nothing else pending the next tick would be the end of
    // the nomination wait.
    nominate(now);
  }
}

void Agent::on_gather_response(const stun::Message& m, TimePoint now) {
  (void)now;
  auto it = std::find_if(gathers_.begin(), gathers_.end(),
                         [&](const Gather& g) { return !g.done && g.id == m.transaction(); });
  if (it == gathers_.end()) return;
  it->done = true;
  if (m.cls() != stun::Class::Success) return;
  const auto mapped = m.get_xor_address(stun::attr::kXorMappedAddress);
  const auto host = host_of(it->socket);
  if (!mapped || !host || *mapped == locals_[*host].address) return;
  for (const Local& l : locals_) {
    if (l.kind == Kind::Srflx && l.address == *mapped) return;
  }
  if (locals_.size() >= kMaxLocalCandidates) return;
  Local l;
  l.socket = it->socket;
  l.address = *mapped;
  l.local_preference = locals_[*host].local_preference;
  l.c.foundation =
      foundation_of("srflx", locals_[*host].address.address(), it->server.address().to_string());
  l.c.priority = candidate_priority(kTypePreferenceSrflx, l.local_preference);
  l.c.address = mapped->address().to_string();
  l.c.port = mapped->port();
  l.c.type = "srflx";
  l.kind = Kind::Srflx;
  l.c.related_address = locals_[*host].c.address;
  l.c.related_port = locals_[*host].c.port;
  l.c.ufrag = o_.ufrag;
  l.signalled = true;  // not pairable: its base (the host candidate) sends its checks
  const size_t i = add_local(std::move(l));
  if (on_candidate) on_candidate(locals_[i].c);
}

bool Agent::send_data(std::string_view bytes) {
  if (!selected_ || state_ == State::Failed) return false;
  const Pair& p = pairs_[*selected_];
  return send_from(p.local, remotes_[p.remote].endpoint, bytes);
}

// --- checks ------------------------------------------------------------------------------------

bool Agent::sendable(const Pair& p) const {
  const Local& l = locals_[p.local];
  if (l.turn < 0) return true;
  return turns_[size_t(l.turn)].client->can_send(remotes_[p.remote].endpoint);
}

bool Agent::send_check(size_t pi, bool consent, TimePoint now) {
  // Consent checks (a few in flight at most) pass a table full of connectivity checks: losing
  // one would end a working call's consent.
  if ((checks_.size() >= kMaxChecksInFlight && !consent) || remote_pwd_.empty()) return false;
  Pair& p = pairs_[pi];
  Check c;
  c.id = stun::new_transaction();
  c.pair = pi;
  c.consent = consent;
  c.controlling = controlling_;
  // The controlling agent keeps USE-CANDIDATE on its consent checks: a peer that missed the
  // first nomination (or lost its selection) gets it again.
  c.use_candidate = controlling_ && (p.use_candidate || (consent && selected_ == pi));
  stun::Builder b(stun::method::kBinding, stun::Class::Request, c.id);
  std::string username;
  username.reserve(remote_ufrag_.size() + 1 + o_.ufrag.size());
  username.append(remote_ufrag_).append(":").append(o_.ufrag);
  b.add(stun::attr::kUsername, username);
  b.add_u32(stun::attr::kPriority, prflx_priority(p.local));
  if (controlling_) {
    b.add_u64(stun::attr::kIceControlling, tie_breaker_);
  } else {
    b.add_u64(stun::attr::kIceControlled, tie_breaker_);
  }
  if (c.use_candidate) b.add_flag(stun::attr::kUseCandidate);
  c.bytes = std::move(b).finish(remote_pwd_);
  c.first_sent = now;
  c.next = now + kCheckRto;
  if (!consent && p.state != PairState::Succeeded) p.state = PairState::InProgress;
  ++counters_.checks_sent;
  if (consent) ++counters_.consent_sent;
  send_from(p.local, remotes_[p.remote].endpoint, c.bytes);
  checks_.push_back(std::move(c));
  return true;
}

void Agent::schedule_checks(TimePoint now) {
  if (remote_pwd_.empty() || now < next_check_) return;
  while (!triggered_.empty()) {
    const size_t i = triggered_.front();
    triggered_.pop_front();
    pairs_[i].triggered = false;
    if (pairs_[i].state == PairState::Waiting && sendable(pairs_[i])) {
      send_check(i, false, now);
      next_check_ = now + kTa;
      return;
    }
  }
  std::optional<size_t> best;
  for (size_t i = 0; i < pairs_.size(); ++i) {
    const Pair& p = pairs_[i];
    if (p.state != PairState::Waiting || !sendable(p)) continue;
    if (!best || p.priority > pairs_[*best].priority) best = i;
  }
  if (!best) return;
  send_check(*best, false, now);
  next_check_ = now + kTa;
}

void Agent::nominate(TimePoint now) {
  if (!controlling_ || nominating_ || remote_pwd_.empty()) return;
  const bool disconnected = selected_ && state_ == State::Disconnected;
  if (selected_ && !disconnected) return;
  std::optional<size_t> best;
  for (size_t i = 0; i < pairs_.size(); ++i) {
    const Pair& p = pairs_[i];
    if (p.state != PairState::Succeeded) continue;
    // Away from a dead selected pair, only to a pair that answered lately.
    if (disconnected && (i == *selected_ || now - p.last_success >= kConsentTimeout)) continue;
    if (!best || p.priority > pairs_[*best].priority) best = i;
  }
  if (!best) return;
  if (!disconnected && now < first_success_ + kNominationWait) {
    for (const Pair& p : pairs_) {
      const bool pending = p.state == PairState::Waiting || p.state == PairState::InProgress ||
                           p.state == PairState::Frozen;
      if (pending && p.priority > pairs_[*best].priority) return;  // a better one may work
    }
  }
  pairs_[*best].use_candidate = true;
  logger().debug("ice: nominating {} -> {}:{}", locals_[pairs_[*best].local].c.type,
                 remotes_[pairs_[*best].remote].c.address, remotes_[pairs_[*best].remote].c.port);
  if (send_check(*best, false, now)) nominating_ = best;  // else at a later tick
}

void Agent::select(size_t pair, TimePoint now) {
  const Pair& p = pairs_[pair];
  selected_ = pair;
  ++counters_.selections;
  last_consent_ = now;
  next_consent_ = now + consent_interval();
  next_recheck_ = TimePoint::max();
  logger().info("ice: selected {} {}:{} -> {} {}:{} ({})", locals_[p.local].c.type,
                locals_[p.local].c.address, locals_[p.local].c.port, remotes_[p.remote].c.type,
                remotes_[p.remote].c.address, remotes_[p.remote].c.port,
                controlling_ ? "controlling" : "controlled");
  set_state(State::Connected);
}

void Agent::switch_role() {
  controlling_ = !controlling_;
  for (Pair& p : pairs_)
    p.priority = priority_of(p.local, p.remote);
  logger().info("ice: role conflict: now {}", controlling_ ? "controlling" : "controlled");
}

void Agent::set_state(State s) {
  if (s == state_) return;
  state_ = s;
  if (on_state) on_state(s);
}

void Agent::recheck_pairs() {
  for (size_t i = 0; i < pairs_.size(); ++i) {
    Pair& p = pairs_[i];
    if (selected_ == i || p.state == PairState::InProgress) continue;
    p.state = PairState::Waiting;
  }
}

void Agent::fail() {
  checks_.clear();
  triggered_.clear();
  set_state(State::Failed);
}

void Agent::close(TimePoint now) {
  for (Turn& t : turns_)
    t.client->close(now);
  for (Reflector& r : reflectors_)
    r.port->stop();
  fail();
}

void Agent::tick(TimePoint now) {
  last_now_ = now;
  if (state_ == State::Failed) return;
  for (Turn& t : turns_)
    t.client->tick(now);
  // Hellos go on while the call lives (§8): the reflector forgets idle ports.
  for (Reflector& r : reflectors_)
    r.port->tick(now);
  for (size_t i = 0; i < gathers_.size();) {
    Gather& g = gathers_[i];
    if (!g.done && now >= g.next) {
      if (g.tries >= kMaxGatherTries) {
        g.done = true;
      } else {
        ++g.tries;
        g.next = now + kGatherRto * (1 << (g.tries - 1));
        if (send) send(g.socket, g.server, g.bytes);
      }
    }
    if (g.done) {
      gathers_.erase(gathers_.begin() + ptrdiff_t(i));
    } else {
      ++i;
    }
  }
  for (size_t i = 0; i < checks_.size();) {
    Check& c = checks_[i];
    if (now < c.next) {
      ++i;
      continue;
    }
    if (c.tries >= kMaxCheckTries) {
      Pair& p = pairs_[c.pair];
      if (!c.consent && (p.state == PairState::InProgress || c.use_candidate)) {
        p.state = PairState::Failed;
      }
      if (c.use_candidate && nominating_ == c.pair) nominating_.reset();
      checks_.erase(checks_.begin() + ptrdiff_t(i));
      continue;
    }
    ++c.tries;
    c.next = now + std::min(kCheckRtoMax, kCheckRto * (1 << (c.tries - 1)));
    send_from(pairs_[c.pair].local, remotes_[pairs_[c.pair].remote].endpoint, c.bytes);
    ++i;
  }
  if (selected_) {
    if (state_ == State::Connected && now - last_consent_ >= kConsentTimeout) {
      logger().info("ice: no answer on the selected pair for {} ms: disconnected",
                    duration_cast<milliseconds>(now - last_consent_).count());
      set_state(State::Disconnected);
      recheck_pairs();
      next_recheck_ = now + kRecheckInterval;
    } else if (state_ == State::Disconnected && now >= next_recheck_) {
      recheck_pairs();
      next_recheck_ = now + kRecheckInterval;
    }
    if (now >= next_consent_) {
      send_check(*selected_, true, now);
      next_consent_ = now + consent_interval();
    }
  }
  if (state_ == State::Failed) return;  // the owner gave up from inside on_state
  nominate(now);
  schedule_checks(now);
}

TimePoint Agent::next_tick() const {
  TimePoint next = TimePoint::max();
  if (state_ == State::Failed) return next;
  for (const Turn& t : turns_)
    next = std::min(next, t.client->next_tick());
  for (const Reflector& r : reflectors_)
    next = std::min(next, r.port->next_tick());
  for (const Gather& g : gathers_) {
    if (!g.done) next = std::min(next, g.next);
  }
  for (const Check& c : checks_)
    next = std::min(next, c.next);
  if (selected_) {
    next = std::min(next, next_consent_);
    if (state_ == State::Connected) next = std::min(next, last_consent_ + kConsentTimeout);
    if (state_ == State::Disconnected) next = std::min(next, next_recheck_);
  }
  if (controlling_ && !selected_ && !nominating_ && first_success_ != TimePoint::max()) {
    next = std::min(next, first_success_ + kNominationWait);
  }
  if (!remote_pwd_.empty()) {
    const bool work =
        !triggered_.empty() || std::any_of(pairs_.begin(), pairs_.end(), [&](const Pair& p) {
          return p.state == PairState::Waiting && sendable(p);
        });
    if (work) next = std::min(next, next_check_);
  }
  return next;
}

std::optional<Agent::PathInfo> Agent::selected() const {
  if (!selected_) return std::nullopt;
  const Pair& p = pairs_[*selected_];
  return PathInfo{locals_[p.local].c, remotes_[p.remote].c, p.rtt};
}

}  // namespace esg::media::ice
