#include "media/webrtc/ice/turn.hpp"

#include <algorithm>

namespace esg::media::ice {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// RFC 8489 §6.2.1: RTO 500 ms, doubled on each retransmission; given up after the sixth try
// (~31 s), not Rc = 7's 39.5 s: a call that waits that long for its relay has already failed.
constexpr milliseconds kRto{500};
constexpr int kMaxTries = 6;
// RFC 8656 §9: permissions last 300 s, channels 600 s; renewed a minute before.
constexpr seconds kPermissionRefresh{240};
constexpr seconds kChannelRefresh{540};
constexpr seconds kRetryAfterError{30};
constexpr uint32_t kTransportUdp = 17u << 24;  // REQUESTED-TRANSPORT: protocol in the top byte

uint16_t rd16(const char* p) {
  return uint16_t((uint8_t(p[0]) << 8) | uint8_t(p[1]));
}

milliseconds rto(int tries) {
  return kRto * (1 << std::min(tries - 1, 6));
}

}  // namespace

TurnClient::TurnClient(Options o) : o_(std::move(o)) {}

void TurnClient::emit(std::string_view bytes) {
  if (send) send(bytes);
}

void TurnClient::start(TimePoint now) {
  if (state_ != State::Idle) return;
  state_ = State::Allocating;
  request(stun::method::kAllocate, {}, 0, 0, 0, now);
}

std::string TurnClient::build(const Transaction& t) const {
  stun::Builder b(t.method, stun::Class::Request, t.id);
  switch (t.method) {
    case stun::method::kAllocate:
      b.add_u32(stun::attr::kRequestedTransport, kTransportUdp);
      break;
    case stun::method::kRefresh:
      b.add_u32(stun::attr::kLifetime, t.lifetime);
      break;
    case stun::method::kCreatePermission:
      b.add_xor_address(stun::attr::kXorPeerAddress, t.peer);
      break;
    case stun::method::kChannelBind:
      b.add_u32(stun::attr::kChannelNumber, uint32_t(t.channel) << 16);
      b.add_xor_address(stun::attr::kXorPeerAddress, t.peer);
      break;
    default:
      break;
  }
  if (!o_.software.empty()) b.add(stun::attr::kSoftware, o_.software);
  // RFC 8489 §9.2.3: once the server has sent its realm and nonce, every request carries them
  // with the long-term credentials.
  if (!key_.empty()) {
    b.add(stun::attr::kUsername, o_.username);
    b.add(stun::attr::kRealm, realm_);
    b.add(stun::attr::kNonce, nonce_);
  }
  return std::move(b).finish(key_, true);
}

void TurnClient::request(uint16_t method, const Endpoint& peer, uint16_t channel, uint32_t lifetime,
                         int auth_retries, TimePoint now) {
  if (in_flight_.size() >= kMaxInFlight) return;  // the refresh timers try again later
  Transaction t;
  t.id = stun::new_transaction();
  t.method = method;
  t.peer = peer;
  t.channel = channel;
  t.lifetime = lifetime;
  t.auth_retries = auth_retries;
  t.bytes = build(t);
  t.next = now + rto(1);
  ++counters_.requests_sent;
  emit(t.bytes);
  in_flight_.push_back(std::move(t));
}

void TurnClient::add_peer(const Endpoint& peer, TimePoint now) {
  if (find_peer(peer) || state_ == State::Failed) return;
  if (peers_.size() >= kMaxPeers || next_channel_ > 0x4FFF) return;
  Peer p;
  p.endpoint = peer;
  p.channel = next_channel_++;
  peers_.push_back(p);
  if (state_ != State::Allocated) return;  // installed when the allocation succeeds
  Peer& added = peers_.back();
  added.permission_pending = added.bind_pending = true;
  request(stun::method::kCreatePermission, peer, 0, 0, 0, now);
  request(stun::method::kChannelBind, peer, added.channel, 0, 0, now);
}

TurnClient::Peer* TurnClient::find_peer(const Endpoint& peer) {
  for (Peer& p : peers_) {
    if (p.endpoint == peer) return &p;
  }
  return nullptr;
}

const TurnClient::Peer* TurnClient::find_peer(const Endpoint& peer) const {
  for (const Peer& p : peers_) {
    if (p.endpoint == peer) return &p;
  }
  return nullptr;
}

// Permissions are per IP address (RFC 8656 §9): any peer entry of that address that holds one
// lets Send indications through to every port of it.
bool TurnClient::permitted(const boost::asio::ip::address& address) const {
  return std::any_of(peers_.begin(), peers_.end(),
                     [&](const Peer& p) { return p.permitted && p.endpoint.address() == address; });
}

bool TurnClient::can_send(const Endpoint& peer) const {
  if (state_ != State::Allocated) return false;
  const Peer* p = find_peer(peer);
  return (p && p->bound) || permitted(peer.address());
}

bool TurnClient::send_to(const Endpoint& peer, std::string_view data) {
  if (data.size() > 0xFFFF || !can_send(peer)) return false;
  ++counters_.data_out;
  const Peer* p = find_peer(peer);
  if (p && p->bound) {
    // RFC 8656 §12.4: channel number, length, data; over UDP no padding is needed.
    // One buffer kept for every packet: this is the media path of a relayed call.
    out_.clear();
    out_.push_back(char(p->channel >> 8));
    out_.push_back(char(p->channel));
    out_.push_back(char(data.size() >> 8));
    out_.push_back(char(data.size()));
    out_.append(data);
    emit(out_);
    return true;
  }
  stun::Builder b(stun::method::kSend, stun::Class::Indication, stun::new_transaction());
  b.add_xor_address(stun::attr::kXorPeerAddress, peer).add(stun::attr::kData, data);
  emit(std::move(b).finish({}, false));
  return true;
}

std::optional<TurnClient::Inbound> TurnClient::on_datagram(std::string_view data, TimePoint now) {
  if (data.size() >= 4 && uint8_t(data[0]) >= 0x40 && uint8_t(data[0]) <= 0x4F) {
    const uint16_t channel = rd16(data.data());
    const size_t len = rd16(data.data() + 2);
    if (4 + len > data.size()) return std::nullopt;
    for (const Peer& p : peers_) {
      if (p.bound && p.channel == channel) {
        ++counters_.data_in;
        return Inbound{p.endpoint, data.substr(4, len)};
      }
    }
    return std::nullopt;
  }
  auto m = stun::Message::parse(data);
  if (!m) return std::nullopt;
  if (m->has_fingerprint() && !m->check_fingerprint()) return std::nullopt;
  if (m->cls() == stun::Class::Indication) {
    if (m->method() != stun::method::kData) return std::nullopt;
    auto peer = m->get_xor_address(stun::attr::kXorPeerAddress);
    auto payload = m->get(stun::attr::kData);
    if (!peer || !payload || !find_peer(*peer)) return std::nullopt;
    ++counters_.data_in;
    return Inbound{*peer, *payload};
  }
  if (m->cls() == stun::Class::Success || m->cls() == stun::Class::Error) on_response(*m, now);
  return std::nullopt;
}

void TurnClient::on_response(const stun::Message& m, TimePoint now) {
  auto it = std::find_if(in_flight_.begin(), in_flight_.end(),
                         [&](const Transaction& t) { return t.id == m.transaction(); });
  if (it == in_flight_.end() || it->method != m.method()) return;
  // A success must be signed with our key once we have one (RFC 8489 §9.2.4); a forged
  // answer is dropped and the request keeps being retransmitted.
  if (!key_.empty() && (m.cls() == stun::Class::Success || m.has_integrity()) &&
      !m.check_integrity(key_)) {
    ++counters_.bad_integrity;
    return;
  }
  Transaction t = std::move(*it);
  in_flight_.erase(it);
  if (m.cls() == stun::Class::Success) {
    on_success(t, m, now);
  } else {
    on_error(std::move(t), m, now);
  }
}

void TurnClient::on_success(const Transaction& t, const stun::Message& m, TimePoint now) {
  switch (t.method) {
    case stun::method::kAllocate: {
      auto relayed = m.get_xor_address(stun::attr::kXorRelayedAddress);
      if (!relayed) return fail(0);
      relayed_ = relayed;
      mapped_ = m.get_xor_address(stun::attr::kXorMappedAddress);
      const uint32_t lifetime = m.get_u32(stun::attr::kLifetime).value_or(600);
      refresh_at_ = now + std::max(seconds(lifetime / 2), seconds(lifetime) - seconds(60));
      state_ = State::Allocated;
      for (Peer& p : peers_) {
        p.permission_pending = p.bind_pending = true;
        request(stun::method::kCreatePermission, p.endpoint, 0, 0, 0, now);
        request(stun::method::kChannelBind, p.endpoint, p.channel, 0, 0, now);
      }
      if (on_allocated) on_allocated(*relayed_, mapped_.value_or(Endpoint{}));
      return;
    }
    case stun::method::kRefresh: {
      ++counters_.refreshes;
      const uint32_t lifetime = m.get_u32(stun::attr::kLifetime).value_or(t.lifetime);
      refresh_at_ = now + std::max(seconds(lifetime / 2), seconds(lifetime) - seconds(60));
      return;
    }
    case stun::method::kCreatePermission:
      if (Peer* p = find_peer(t.peer)) {
        p->permitted = true;
        p->permission_pending = false;
        p->permission_refresh = now + kPermissionRefresh;
      }
      return;
    case stun::method::kChannelBind:
      if (Peer* p = find_peer(t.peer)) {
        // A bound channel also installs (and refreshes) the permission (RFC 8656 §12.2).
        p->bound = p->permitted = true;
        p->bind_pending = false;
        p->channel_refresh = now + kChannelRefresh;
      }
      return;
    default:
      return;
  }
}

void TurnClient::on_error(Transaction t, const stun::Message& m, TimePoint now) {
  const int code = m.error() ? m.error()->code : 0;
  auto realm = m.get(stun::attr::kRealm);
  auto nonce = m.get(stun::attr::kNonce);
  // 401: the first challenge gives the realm and nonce; a second one for a request already
  // signed means the credentials are wrong. 438: the nonce went stale; the same request again
  // with the new one (RFC 8489 §9.2.5).
  const bool challenge = code == 401 && realm && nonce && t.auth_retries < 2 &&
                         (key_.empty() || *nonce != nonce_ || *realm != realm_);
  const bool stale = code == 438 && nonce && t.auth_retries < 3;
  if (challenge || stale) {
    if (challenge) ++counters_.auth_challenges;
    if (stale) ++counters_.stale_nonces;
    if (realm) realm_ = std::string(*realm);
    nonce_ = std::string(*nonce);
    key_ = stun::long_term_key(o_.username, realm_, o_.password);
    request(t.method, t.peer, t.channel, t.lifetime, t.auth_retries + 1, now);
    return;
  }
  switch (t.method) {
    case stun::method::kAllocate:
    case stun::method::kRefresh:
      if (t.method == stun::method::kRefresh && t.lifetime == 0) return;
      return fail(code);
    case stun::method::kCreatePermission:
      if (Peer* p = find_peer(t.peer)) {
        p->permission_pending = false;
        p->permission_refresh = now + kRetryAfterError;
      }
      return;
    case stun::method::kChannelBind:
      if (Peer* p = find_peer(t.peer)) {
        p->bind_pending = false;
        p->channel_refresh = now + kRetryAfterError;
      }
      return;
    default:
      return;
  }
}

void TurnClient::fail(int code) {
  if (state_ == State::Failed) return;
  state_ = State::Failed;
  in_flight_.clear();
  if (on_failed) on_failed(code);
}

void TurnClient::tick(TimePoint now) {
  if (state_ == State::Failed || state_ == State::Idle) return;
  for (size_t i = 0; i < in_flight_.size();) {
    Transaction& t = in_flight_[i];
    if (now < t.next) {
      ++i;
      continue;
    }
    if (t.tries >= kMaxTries) {
      const Transaction gone = std::move(t);
      in_flight_.erase(in_flight_.begin() + i);
      if (gone.method == stun::method::kAllocate || gone.method == stun::method::kRefresh) {
        if (gone.lifetime != 0 || gone.method == stun::method::kAllocate) return fail(0);
      } else if (Peer* p = find_peer(gone.peer)) {
        if (gone.method == stun::method::kCreatePermission) {
          p->permission_pending = false;
          p->permission_refresh = now + kRetryAfterError;
        } else {
          p->bind_pending = false;
          p->channel_refresh = now + kRetryAfterError;
        }
      }
      continue;
    }
    ++t.tries;
    t.next = now + rto(t.tries);
    ++counters_.retransmits;
    emit(t.bytes);
    ++i;
  }
  if (state_ != State::Allocated) return;
  const bool refreshing =
      std::any_of(in_flight_.begin(), in_flight_.end(),
                  [](const Transaction& t) { return t.method == stun::method::kRefresh; });
  if (now >= refresh_at_ && !refreshing) {
    refresh_at_ = now + seconds(60);  // pushed on; the answer sets the real one
    request(stun::method::kRefresh, {}, 0, 600, 0, now);
  }
  for (Peer& p : peers_) {
    if (!p.permission_pending && now >= p.permission_refresh) {
      p.permission_pending = true;
      request(stun::method::kCreatePermission, p.endpoint, 0, 0, 0, now);
    }
    if (!p.bind_pending && now >= p.channel_refresh) {
      p.bind_pending = true;
      request(stun::method::kChannelBind, p.endpoint, p.channel, 0, 0, now);
    }
  }
}

TimePoint TurnClient::next_tick() const {
  TimePoint next = TimePoint::max();
  if (state_ == State::Failed || state_ == State::Idle) return next;
  for (const Transaction& t : in_flight_)
    next = std::min(next, t.next);
  if (state_ != State::Allocated) return next;
  next = std::min(next, refresh_at_);
  for (const Peer& p : peers_) {
    if (!p.permission_pending) next = std::min(next, p.permission_refresh);
    if (!p.bind_pending) next = std::min(next, p.channel_refresh);
  }
  return next;
}

void TurnClient::close(TimePoint now) {
  if (state_ != State::Allocated) return;
  request(stun::method::kRefresh, {}, 0, 0, 0, now);
  in_flight_.clear();  // nobody waits for the answer
  state_ = State::Failed;
}

}  // namespace esg::media::ice
