#include "media/webrtc/leg.hpp"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <algorithm>

#include "log/log.hpp"
#include "media/srtp.hpp"
#include "media/webrtc/dtls/dtls.hpp"
#include "media/webrtc/sctp/sctp.hpp"

namespace esg::media {

namespace asio = boost::asio;
using asio::ip::udp;
using Clock = std::chrono::steady_clock;
using dtls::DtlsCertificate;
using dtls::DtlsRole;
using dtls::DtlsSession;
using dtls::SrtpKeys;

namespace {

constexpr size_t kMaxBacklog = 16;  // DTLS records kept until ICE has a pair
constexpr size_t kDatagram = 4096;  // TURN adds 36 bytes to WebRTC's 1200-byte packets

// Every up interface's addresses but loopback and IPv6 link-local (which need a scope that a
// candidate does not carry).
std::vector<asio::ip::address> interface_addresses() {
  std::vector<asio::ip::address> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || !(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK)) continue;
    if (i->ifa_addr->sa_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
      out.push_back(asio::ip::address_v4(ntohl(sin->sin_addr.s_addr)));
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
      asio::ip::address_v6::bytes_type b;
      std::copy(sin6->sin6_addr.s6_addr, sin6->sin6_addr.s6_addr + 16, b.begin());
      const asio::ip::address_v6 a(b);
      if (!a.is_link_local() && !a.is_loopback()) out.push_back(a);
    }
  }
  freeifaddrs(list);
  return out;
}

bool is_rtcp_packet(std::string_view p) {
  // RFC 5761 §4: with rtcp-mux, payload types 64-95 (second byte 192-223) are RTCP.
  return p.size() >= 2 && uint8_t(p[1]) >= 192 && uint8_t(p[1]) <= 223;
}

// "a:p", "[v6]:p": an address the operator reads in status().
std::string endpoint_text(const udp::endpoint& e) {
  const std::string a = e.address().to_string();
  return (e.address().is_v6() ? "[" + a + "]" : a) + ":" + std::to_string(e.port());
}

}  // namespace

struct WebRtcLeg::Socket {
  explicit Socket(asio::io_context& io) : sock(io) {}
  int id = 0;
  udp::socket sock;
  udp::endpoint local, from;
  uint16_t pooled = 0;  // the port taken from media.ports, given back on close
  std::array<char, kDatagram> buf{};
};

WebRtcLeg::WebRtcLeg(asio::io_context& io, Options options)
    : io_(io),
      options_(std::move(options)),
      ufrag_(ice::Agent::random_ufrag()),
      pwd_(ice::Agent::random_pwd()),
      cert_(DtlsCertificate::generate()),
      agent_(ice::Agent::Options{options_.controlling, ufrag_, pwd_, options_.relay_only}),
      timer_(io) {
  agent_.send = [this](int socket, const udp::endpoint& to, std::string_view bytes) {
    if (socket < 0 || size_t(socket) >= sockets_.size()) return;
    boost::system::error_code ec;
    sockets_[size_t(socket)]->sock.send_to(asio::buffer(bytes.data(), bytes.size()), to, 0, ec);
  };
  agent_.on_candidate = [this](const ice::Candidate& c) {
    if (on_candidate) on_candidate(c);
  };
  agent_.on_state = [this](ice::State s) {
    ice_state_ = s;
    if (s == ice::State::Connected) {
      ice_up_ = true;
      // The records an early ClientHello's answer wrote before a pair was chosen.
      while (!dtls_backlog_.empty()) {
        agent_.send_data(dtls_backlog_.front());
        dtls_backlog_.pop_front();
      }
      start_dtls();
      if (srtp_out_) set_state(State::Connected);
    } else if (s == ice::State::Disconnected) {
      if (state_ == State::Connected) set_state(State::Disconnected);
    } else if (s == ice::State::Failed) {
      set_state(State::Failed);
    }
  };
}

WebRtcLeg::~WebRtcLeg() {
  *alive_ = false;
  // Nothing the parts do while closing reaches the owner (it is destroying us).
  on_candidate = nullptr;
  on_state = nullptr;
  on_rtp = nullptr;
  on_rtcp = nullptr;
  on_channel_open = nullptr;
  on_text = nullptr;
  agent_.on_state = nullptr;
  agent_.on_candidate = nullptr;
  // The data channel first: it writes into the DTLS session as it closes.
  sctp_.reset();
  if (dtls_) dtls_->close();
  agent_.close(Clock::now());  // releases TURN allocations rather than letting them expire
  for (auto& s : sockets_) {
    boost::system::error_code ec;
    s->sock.close(ec);
    if (s->pooled && options_.ports) options_.ports->give(s->pooled);
  }
}

const std::string& WebRtcLeg::fingerprint() const {
  return cert_->fingerprint();
}

bool WebRtcLeg::start(std::string* error) {
  auto addresses = options_.addresses.empty() ? interface_addresses() : options_.addresses;
  const auto now = Clock::now();
  std::string last_error = "no network interface but loopback";
  for (const auto& a : addresses) {
    auto s = std::make_unique<Socket>(io_);
    boost::system::error_code ec;
    s->sock.open(a.is_v4() ? udp::v4() : udp::v6(), ec);
    if (ec) {
      last_error = "cannot open a UDP socket: " + ec.message();
      continue;
    }
    // A port from the media range when there is one (its pair's odd port stays unused:
    // rtcp-mux), tried a few times if another program holds it.
    bool bound = false;
    for (int attempt = 0; attempt < 4 && !bound; ++attempt) {
      uint16_t port = 0;
      if (options_.ports) {
        auto p = options_.ports->take();
        if (!p) {
          last_error = "no free media ports";
          break;
        }
        port = *p;
      }
      s->sock.bind(udp::endpoint(a, port), ec);
      if (!ec) {
        bound = true;
        s->pooled = port;
      } else {
        if (port) options_.ports->give(port);
        last_error =
            "cannot bind " + a.to_string() + ":" + std::to_string(port) + ": " + ec.message();
        if (!options_.ports) break;
      }
    }
    if (!bound) continue;
    s->local = s->sock.local_endpoint();
    s->id = int(sockets_.size());
    sockets_.push_back(std::move(s));
  }
  if (sockets_.empty()) {
    *error = last_error;
    return false;
  }
  set_state(State::Connecting);
  for (auto& s : sockets_) {
    agent_.add_socket(s->id, s->local, now);
    receive(*s);
  }
  for (const auto& server : options_.servers)
    agent_.add_server(server, now);
  for (const auto& r : options_.reflectors)
    agent_.add_reflector(r, now);
  arm_timer();
  return true;
}

void WebRtcLeg::receive(Socket& s) {
  std::weak_ptr<bool> alive = alive_;
  s.sock.async_receive_from(asio::buffer(s.buf), s.from,
                            [this, &s, alive](boost::system::error_code ec, size_t n) {
                              if (ec || alive.expired()) return;
                              on_datagram(s.id, s.from, std::string_view(s.buf.data(), n));
                              if (!alive.expired()) receive(s);
                            });
}

void WebRtcLeg::on_datagram(int socket, const udp::endpoint& from, std::string_view data) {
  auto app = agent_.on_datagram(socket, from, data, Clock::now());
  if (app) on_app_datagram(*app);
  arm_timer();
}

// RFC 7983: 20-63 DTLS, 128-191 RTP and RTCP; STUN (0-3) and TURN framing stay in the agent.
void WebRtcLeg::on_app_datagram(std::string_view data) {
  if (data.empty()) return;
  const uint8_t first = uint8_t(data[0]);
  if (first >= 20 && first <= 63) {
    ++counters_.dtls_in;
    if (!dtls_ && remote_set_ && !dtls_client_) start_dtls();
    if (dtls_) dtls_->on_packet(data, Clock::now());
    return;
  }
  if (first >= 128 && first <= 191) {
    if (!srtp_in_) return;
    // libsrtp works in place: a copy into a buffer of our own (the socket's buffer is reused
    // only after this returns, but the view may point into a TURN frame).
    std::array<char, kDatagram> buf;
    size_t len = std::min(data.size(), buf.size());
    std::copy_n(data.data(), len, buf.data());
    const bool rtcp = is_rtcp_packet(data);
    if (!srtp_in_->unprotect(buf.data(), len, rtcp)) {
      ++counters_.srtp_failed;
      return;
    }
    if (rtcp) {
      ++counters_.rtcp_in;
      if (on_rtcp) on_rtcp(std::string_view(buf.data(), len));
    } else {
      ++counters_.rtp_in;
      if (on_rtp) on_rtp(std::string_view(buf.data(), len));
    }
    return;
  }
  ++counters_.unknown;
}

std::optional<bool> WebRtcLeg::dtls_client_for(std::string_view remote_setup, bool controlling) {
  // RFC 8842 / the Telegram fact sheet §4.2: the peer active makes us the server, passive
  // the client, actpass leaves it to the ICE role (the controlling side is the client).
  if (remote_setup == "active") return false;
  if (remote_setup == "passive") return true;
  if (remote_setup == "actpass") return controlling;
  return std::nullopt;
}

bool WebRtcLeg::set_remote(std::string ufrag, std::string pwd, std::string hash,
                           std::string fingerprint, std::string_view setup) {
  if (remote_set_) return false;
  const auto client = dtls_client_for(setup, options_.controlling);
  if (!client) return false;
  dtls_client_ = *client;
  remote_set_ = true;
  remote_hash_ = std::move(hash);
  remote_fingerprint_ = std::move(fingerprint);
  agent_.set_remote_credentials(std::move(ufrag), std::move(pwd), Clock::now());
  // The server waits for the ClientHello, which may come before ICE settles on a pair.
  if (!dtls_client_) start_dtls();
  arm_timer();
  return true;
}

void WebRtcLeg::add_remote_candidate(const ice::Candidate& c) {
  agent_.add_remote_candidate(c, Clock::now());
  arm_timer();
}

void WebRtcLeg::start_dtls() {
  if (!remote_set_) return;
  if (!dtls_) {
    dtls_ = std::make_unique<DtlsSession>(dtls_client_ ? DtlsRole::Client : DtlsRole::Server, cert_,
                                          remote_hash_, remote_fingerprint_);
    dtls_->send = [this](std::string_view d) { send_dtls(d); };
    dtls_->on_connected = [this](const SrtpKeys& keys) {
      srtp_profile_ = keys.profile;
      srtp_out_ = Srtp::create_keyed(keys.profile, keys.local, true);
      srtp_in_ = Srtp::create_keyed(keys.profile, keys.remote, false);
      if (!srtp_out_ || !srtp_in_) {
        log::get("media").warn("webrtc: SRTP profile {} cannot be keyed", keys.profile);
        set_state(State::Failed);
        return;
      }
      dtls_up();
    };
    dtls_->on_failed = [this](std::string_view why) {
      log::get("media").warn("webrtc: DTLS failed: {}", why);
      set_state(State::Failed);
    };
    dtls_->on_data = [this](std::string_view d) {
      if (sctp_) sctp_->on_packet(d);
    };
  }
  // The client speaks first, once ICE has a pair to speak on.
  if (dtls_client_ && ice_up_ && !dtls_started_) {
    dtls_started_ = true;
    dtls_->start(Clock::now());
  } else if (!dtls_client_ && !dtls_started_) {
    dtls_started_ = true;
    dtls_->start(Clock::now());
  }
  arm_timer();
}

void WebRtcLeg::send_dtls(std::string_view datagram) {
  if (agent_.send_data(datagram)) return;
  if (dtls_backlog_.size() < kMaxBacklog) dtls_backlog_.emplace_back(datagram);
}

void WebRtcLeg::dtls_up() {
  if (options_.data_channel && !sctp_) {
    sctp_ = std::make_unique<SctpDataChannel>(io_, options_.channel_opener);
    sctp_->send = [this](std::string_view p) {
      if (dtls_) dtls_->write(p);
    };
    sctp_->on_open = [this] {
      if (on_channel_open) on_channel_open();
    };
    sctp_->on_text = [this](std::string_view t) {
      if (on_text) on_text(t);
    };
    sctp_->start();
  }
  if (ice_state_ == ice::State::Connected) set_state(State::Connected);
}

bool WebRtcLeg::send_rtp(std::string& packet) {
  if (!srtp_out_ || !srtp_out_->protect(packet, false)) return false;
  if (!agent_.send_data(packet)) return false;
  ++counters_.rtp_out;
  return true;
}

bool WebRtcLeg::send_rtcp(std::string& packet) {
  if (!srtp_out_ || !srtp_out_->protect(packet, true)) return false;
  if (!agent_.send_data(packet)) return false;
  ++counters_.rtcp_out;
  return true;
}

bool WebRtcLeg::send_text(std::string_view text) {
  return sctp_ && sctp_->open() && sctp_->send_text(text);
}

void WebRtcLeg::set_state(State s) {
  if (s == state_ || state_ == State::Failed) return;
  state_ = s;
  if (on_state) on_state(s);
}

void WebRtcLeg::arm_timer() {
  auto at = agent_.next_tick();
  if (dtls_) {
    if (auto d = dtls_->next_tick(); d && *d < at) at = *d;
  }
  if (timer_armed_ && timer_at_ <= at) return;
  timer_armed_ = true;
  timer_at_ = at;
  timer_.expires_at(at);
  std::weak_ptr<bool> alive = alive_;
  timer_.async_wait([this, alive](boost::system::error_code ec) {
    if (ec || alive.expired()) return;
    timer_armed_ = false;
    on_timer();
  });
}

void WebRtcLeg::on_timer() {
  const auto now = Clock::now();
  agent_.tick(now);
  if (dtls_) dtls_->tick(now);
  arm_timer();
}

nlohmann::json WebRtcLeg::status() const {
  nlohmann::json j = {{"state", state_ == State::Connected      ? "connected"
                                : state_ == State::Disconnected ? "disconnected"
                                : state_ == State::Failed       ? "failed"
                                                                : "connecting"},
                      {"srtp", srtp_profile_},
                      {"data_channel", sctp_ && sctp_->open()}};
  if (auto p = agent_.selected()) {
    // A reflector pair is reflector to reflector on one server (§5.4): the local name says it.
    if (auto r = ice::reflector::parse_name(p->local.address)) {
      j["path"] = "reflector";
      j["reflector_id"] = r->server_id;
    } else {
      j["path"] = p->local.type == "relay" || p->remote.type == "relay" ? "relay"
                  : p->local.type == "srflx" || p->remote.type == "srflx" ||
                          p->local.type == "prflx" || p->remote.type == "prflx"
                      ? "srflx"
                      : "host";
    }
    j["local_candidate"] = p->local.to_sdp();
    j["remote_candidate"] = p->remote.to_sdp();
    if (p->rtt) j["rtt_ms"] = p->rtt->count();
  }
  // The reflector ports: whether each answered and what went through it.
  const auto reflectors = agent_.reflectors();
  if (!reflectors.empty()) {
    auto& list = j["reflectors"] = nlohmann::json::array();
    for (const auto& r : reflectors) {
      const bool bound = r.socket >= 0 && size_t(r.socket) < sockets_.size();
      list.push_back({{"id", r.server.id},
                      {"address", endpoint_text(r.server.address)},
                      {"local", bound ? endpoint_text(sockets_[size_t(r.socket)]->local) : ""},
                      {"tag", r.tag},
                      {"ready", r.ready},
                      {"hellos", r.counters.hellos_sent},
                      {"replies", r.counters.replies},
                      {"data_in", r.counters.data_in},
                      {"data_out", r.counters.data_out},
                      {"dropped", r.counters.dropped}});
    }
  }
  return j;
}

}  // namespace esg::media
