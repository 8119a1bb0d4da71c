#include "media/session.hpp"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>

#include <array>
#include <chrono>
#include <cstring>
#include <optional>

#include "base/random.hpp"
#include "media/codec.hpp"
#include "media/dtmf.hpp"
#include "media/negotiate.hpp"
#include "media/rtp.hpp"
#include "media/srtp.hpp"
#include "sdp/session.hpp"

namespace esg::media {

namespace asio = boost::asio;
using asio::ip::udp;

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

namespace {

int64_t steady_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string text_of(const udp::endpoint& e) {
  const std::string a = e.address().to_string();
  return (e.address().is_v6() ? "[" + a + "]" : a) + ":" + std::to_string(e.port());
}

// Attributes that would steer media around the relay (RFC 8445): esg is the only candidate.
bool is_ice(const std::string& name) {
  return name == "candidate" || name == "ice-ufrag" || name == "ice-pwd" || name == "ice-options" ||
         name == "ice-lite" || name == "remote-candidates" || name == "end-of-candidates" ||
         name == "ice-mismatch";
}

}  // namespace

struct Session::Endpoint : std::enable_shared_from_this<Session::Endpoint> {
  explicit Endpoint(asio::io_context& io) : io(io) {}
  ~Endpoint() { close(); }
  void close() {
    closed = true;
    for (int* fd : {&rtp, &rtcp}) {
      if (*fd >= 0) ::close(*fd);  // leaves the poller's epoll set with it
      *fd = -1;
    }
  }

  const Options* options = nullptr;
  Endpoint* other = nullptr;  // the same stream's endpoint on the other leg
  Session::Stream* stream = nullptr;
  int side = 0;
  asio::io_context& io;
  int rtp = -1, rtcp = -1;  // raw sockets: the poller watches them, not asio
  struct Watch {
    Endpoint* e;
    bool rtcp;
  } watch_rtp{this, false}, watch_rtcp{this, true};
  uint16_t port = 0;  // RTP; RTCP is port + 1
  bool closed = false;

  // What this side's description says.
  bool known = false;
  asio::ip::address sig_addr;
  uint16_t sig_rtp = 0, sig_rtcp = 0;
  sdp::Direction direction = sdp::Direction::SendRecv;
  uint32_t clock_rate = 8000;
  uint32_t ptime = 20;  // what this side asked for (a=ptime)

  // Where its packets really come from.
  bool latched = false, have_ssrc = false, rtcp_latched = false;
  udp::endpoint latch_rtp, latch_rtcp;
  uint32_t latch_ssrc = 0;
  int64_t latch_last = 0;

  uint64_t packets_in = 0, bytes_in = 0, packets_out = 0, bytes_out = 0, foreign = 0;
  uint64_t mismatch = 0;  // without latching: packets from elsewhere than signaled
  // SRTP: what this side's peer sends is checked with its key (srtp_in), what esg sends it is
  // protected with esg's own key for it (srtp_out).
  std::unique_ptr<Srtp> srtp_in, srtp_out;
  std::string our_key;
  struct Offered {
    bool crypto = false;
    uint32_t tag = 1;
    std::string suite, proto;
  } offered;  // what this side's last offer said about SRTP
  uint64_t srtp_failures = 0;
  int64_t last_in = 0;
  ReceiveStats rx;
  std::optional<ReportBlock> report;  // what the peer says about what we send it

  bool held() const {
    return known && (direction != sdp::Direction::SendRecv || sig_addr.is_unspecified());
  }
  std::optional<udp::endpoint> rtp_destination() const {
    if (options->latching && latched) return latch_rtp;
    if (known && sig_rtp && !sig_addr.is_unspecified()) return udp::endpoint(sig_addr, sig_rtp);
    return std::nullopt;
  }
  std::optional<udp::endpoint> rtcp_destination() const {
    if (options->latching && rtcp_latched) return latch_rtcp;
    if (options->latching && latched)
      return udp::endpoint(latch_rtp.address(), uint16_t(latch_rtp.port() + 1));
    if (known && sig_rtcp && !sig_addr.is_unspecified()) return udp::endpoint(sig_addr, sig_rtcp);
    return std::nullopt;
  }

  // Whether a packet from `src` belongs to this side's peer (and so is relayed).
  bool accept(const udp::endpoint& src, std::string_view bytes, bool on_rtcp, int64_t now) {
    const bool signaled = known && src.address() == sig_addr;
    if (on_rtcp) {
      const bool from_peer = !options->latching || signaled ||
                             (latched && src.address() == latch_rtp.address()) ||
                             (!latched && !known);
      if (!from_peer || (options->strict_source && !signaled)) {
        ++foreign;
        return false;
      }
      rtcp_latched = true;
      latch_rtcp = src;
      if (!srtp_in) {
        if (auto r = parse_report(bytes)) report = r;
      }
    } else {
      const auto h = parse_rtp(bytes);
      if (options->strict_source && !(signaled && src.port() == sig_rtp)) {
        ++foreign;
        return false;
      }
      if (!options->latching) {
        if (known && !(signaled && src.port() == sig_rtp)) ++mismatch;
      } else if (!latched || src != latch_rtp) {
        const bool new_ssrc = h && (!have_ssrc || h->ssrc != latch_ssrc);
        if (latched && !new_ssrc && now - latch_last < options->relatch_silence_ms) {
          ++foreign;  // someone else, while the latched source still talks
          return false;
        }
        latched = true;  // first packet, a new source (RFC 3550 SSRC), or the old one went quiet
        latch_rtp = src;
        rtcp_latched = false;
      }
      latch_last = now;
      if (h) {
        have_ssrc = true;
        latch_ssrc = h->ssrc;
        rx.on_packet(*h, uint32_t(uint64_t(steady_us()) * clock_rate / 1000000));
      } else if (is_rtcp(bytes) && !srtp_in) {
        if (auto r = parse_report(bytes)) report = r;  // RTCP multiplexed (RFC 5761)
      }
    }
    ++packets_in;
    bytes_in += bytes.size();
    last_in = now;
    return true;
  }

  nlohmann::json stats() const {
    nlohmann::json j = {{"local_port", port},
                        {"packets_in", packets_in},
                        {"bytes_in", bytes_in},
                        {"packets_out", packets_out},
                        {"bytes_out", bytes_out},
                        {"foreign", foreign},
                        {"mismatch", mismatch},
                        {"lost", rx.lost()},
                        {"jitter_ms", rx.jitter_units() * 1000.0 / clock_rate},
                        {"direction", std::string(sdp::direction_name(direction))}};
    j["signaled"] =
        known ? nlohmann::json(text_of(udp::endpoint(sig_addr, sig_rtp))) : nlohmann::json();
    j["latched"] = latched ? nlohmann::json(text_of(latch_rtp)) : nlohmann::json();
    j["srtp"] = {{"in", bool(srtp_in)}, {"out", bool(srtp_out)}, {"failures", srtp_failures}};
    if (report) {
      j["rtcp"] = {{"fraction_lost", report->fraction_lost / 256.0},
                   {"cumulative_lost", report->cumulative_lost},
                   {"jitter_ms", report->jitter * 1000.0 / clock_rate}};
    }
    return j;
  }
};

struct Session::Stream {
  std::string media = "audio";
  std::shared_ptr<Endpoint> ep[2];
  // Negotiation: the formats of the pending offer and who made it.
  std::vector<Format> offered;
  int offer_from = -1;
  // Packets from side s: transcoded (tx[s]), or their payload type rewritten (pt_map[s]).
  std::unique_ptr<Transcoder> tx[2];
  std::array<int16_t, 128> pt_map[2];
  bool mapped[2] = {false, false};
  // Telephone events (RFC 4733) from side s under payload type dtmf_pt[s]; taken out of the
  // stream and delivered in the other side's form when it does not take events (dtmf_out[s]).
  int dtmf_pt[2] = {-1, -1};
  bool dtmf_out[2] = {false, false};
  int64_t last_event_ts[2] = {-1, -1};
  // In-band tones from side s (dtmf=inband, G.711) towards a side that takes another form.
  std::unique_ptr<DtmfDetector> detect[2];
  // Key presses written into what goes to side s (events or tones), made on the first one.
  std::unique_ptr<DtmfInjector> inject[2];
  Session* session = nullptr;
  std::string codec[2];  // what each side sends and receives, for the statistics
  Stream() {
    pt_map[0].fill(-1);
    pt_map[1].fill(-1);
  }
};

namespace {

using Endpoint = Session::Endpoint;

constexpr size_t kBatch = 16;
constexpr size_t kSlot = 2048;  // RTP datagrams are smaller; larger ones are cut (and dropped)
constexpr size_t kOut = 64;     // a transcoder may cut one packet into several

// One receive and send batch per worker thread: calls on a worker take turns, never at once.
struct Batch {
  std::array<char, kBatch * kSlot> buf;
  std::array<mmsghdr, kBatch> in{};
  std::array<mmsghdr, kOut> out{};
  std::array<iovec, kBatch> in_iov{};
  std::array<iovec, kOut> out_iov{};
  std::array<sockaddr_storage, kBatch> from{};
  std::array<udp::endpoint, kOut> to{};
  std::vector<std::string> made;  // packets esg wrote (transcoded), alive until sent
};

Batch& batch() {
  thread_local Batch b;
  return b;
}

std::optional<udp::endpoint> endpoint_of(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(ss);
    return udp::endpoint(asio::ip::address_v4(ntohl(in.sin_addr.s_addr)), ntohs(in.sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(ss);
    asio::ip::address_v6::bytes_type b;
    std::memcpy(b.data(), in6.sin6_addr.s6_addr, 16);
    return udp::endpoint(asio::ip::address_v6(b, in6.sin6_scope_id), ntohs(in6.sin6_port));
  }
  return std::nullopt;
}

// What is queued on one socket, relayed to the other side in batches; a few rounds, then the
// worker's other work gets a turn.
// An RFC 4733 event packet from `side` that the other side takes in another form: delivered
// once, at its end (the end packet is sent three times, with the same timestamp).
void take_event(Session::Stream& st, int side, std::string_view p) {
  const auto* b = reinterpret_cast<const uint8_t*>(p.data());
  const size_t at = 12 + 4 * size_t(b[0] & 0x0F);
  if (at + 4 > p.size() || !(b[at + 1] & 0x80)) return;  // not the end yet
  const uint32_t ts = uint32_t(b[4]) << 24 | uint32_t(b[5]) << 16 | uint32_t(b[6]) << 8 | b[7];
  if (st.last_event_ts[side] == int64_t(ts)) return;
  st.last_event_ts[side] = ts;
  const uint8_t event = b[at];
  if (event > 15) return;  // flash and tones: no key for them
  const uint32_t rate = st.ep[side] ? st.ep[side]->clock_rate : 8000;
  const int ms = int(uint64_t(uint16_t(b[at + 2] << 8 | b[at + 3])) * 1000 / (rate ? rate : 8000));
  if (st.session) st.session->deliver(1 - side, kDtmfKeys[event], ms);
}

void drain(const std::shared_ptr<Endpoint>& e, bool rtcp) {
  Batch& b = batch();
  const int fd = rtcp ? e->rtcp : e->rtp;
  for (int round = 0; round < 4; ++round) {
    for (size_t i = 0; i < kBatch; ++i) {
      b.in_iov[i] = {b.buf.data() + i * kSlot, kSlot};
      b.in[i] = {};
      b.in[i].msg_hdr.msg_name = &b.from[i];
      b.in[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      b.in[i].msg_hdr.msg_iov = &b.in_iov[i];
      b.in[i].msg_hdr.msg_iovlen = 1;
    }
    const int n = ::recvmmsg(fd, b.in.data(), unsigned(kBatch), MSG_DONTWAIT, nullptr);
    if (n <= 0) return;  // drained: the next packet is a new edge
    const int64_t now = steady_ms();
    Endpoint& o = *e->other;
    Session::Stream& st = *e->stream;
    const int side = e->side;
    size_t out = 0;
    b.made.clear();
    b.made.reserve(kOut);  // no reallocation: the queue points into these strings
    DtmfInjector* inject = st.inject[o.side].get();
    auto queue = [&](const udp::endpoint& dest, std::string_view bytes) {
      if (out >= kOut) return;
      if (inject && inject->busy() && !rtcp && b.made.size() < kOut && !is_rtcp(bytes)) {
        b.made.emplace_back();
        if (inject->apply(bytes, b.made.back()))
          bytes = b.made.back();
        else
          b.made.pop_back();
      }
      if (o.srtp_out) {  // esg's own key for this leg
        if (b.made.size() >= kOut) return;
        b.made.emplace_back(bytes);
        if (!o.srtp_out->protect(b.made.back(), rtcp || is_rtcp(bytes))) {
          b.made.pop_back();
          return;
        }
        bytes = b.made.back();
      }
      b.to[out] = dest;
      b.out_iov[out] = {const_cast<char*>(bytes.data()), bytes.size()};
      b.out[out] = {};
      b.out[out].msg_hdr.msg_name = b.to[out].data();
      b.out[out].msg_hdr.msg_namelen = socklen_t(b.to[out].size());
      b.out[out].msg_hdr.msg_iov = &b.out_iov[out];
      b.out[out].msg_hdr.msg_iovlen = 1;
      ++o.packets_out;
      o.bytes_out += bytes.size();
      ++out;
    };
    for (size_t i = 0; i < size_t(n); ++i) {
      if (b.in[i].msg_hdr.msg_flags & MSG_TRUNC) continue;
      const auto src = endpoint_of(b.from[i]);
      if (!src) continue;
      char* data = b.buf.data() + i * kSlot;
      std::string_view bytes(data, b.in[i].msg_len);
      if (!e->accept(*src, bytes, rtcp, now)) continue;
      if (e->srtp_in) {
        size_t len = bytes.size();
        const bool control = rtcp || is_rtcp(bytes);
        if (!e->srtp_in->unprotect(data, len, control)) {
          ++e->srtp_failures;  // not authentic, or replayed: dropped
          continue;
        }
        bytes = std::string_view(data, len);
        if (control) {
          if (auto r = parse_report(bytes)) e->report = r;
        }
      }
      const auto dest = rtcp ? o.rtcp_destination() : o.rtp_destination();
      if (!dest || o.closed) continue;
      if (st.dtmf_out[side] && !rtcp && bytes.size() >= 16 &&
          (uint8_t(data[1]) & 0x7F) == st.dtmf_pt[side]) {
        take_event(st, side, bytes);
        continue;
      }
      if (st.detect[side] && !rtcp && bytes.size() > 12 && !is_rtcp(bytes) &&
          (uint8_t(data[1]) & 0x7F) != st.dtmf_pt[side]) {
        const size_t at = 12 + 4 * size_t(uint8_t(data[0]) & 0x0F);
        if (at < bytes.size() && st.session) {
          for (char digit : st.detect[side]->push(reinterpret_cast<const uint8_t*>(data) + at,
                                                  bytes.size() - at))
            st.session->deliver(1 - side, digit, 100);
        }
      }
      if (!st.tx[side] && !st.mapped[side]) {
        queue(*dest, bytes);
        continue;
      }
      // esg terminates RTCP of transcoded streams: the reports describe other packets.
      if (rtcp || is_rtcp(bytes) || bytes.size() < 12) {
        if (!st.tx[side]) queue(*dest, bytes);
        continue;
      }
      const int pt = uint8_t(data[1]) & 0x7F;
      const int16_t to_pt = st.pt_map[side][size_t(pt)];
      if (to_pt >= 0) {  // the same codec (or events) under another number: relabelled
        data[1] = char((uint8_t(data[1]) & 0x80) | uint8_t(to_pt));
        queue(*dest, bytes);
      } else if (st.tx[side]) {
        if (2 * b.made.size() + 16 > kOut) continue;
        std::vector<std::string> made;
        st.tx[side]->push(bytes, made);
        for (auto& m : made) {
          b.made.push_back(std::move(m));
          queue(*dest, b.made.back());
        }
      } else {
        queue(*dest, bytes);
      }
    }
    if (out) {
      ::sendmmsg(rtcp ? o.rtcp : o.rtp, b.out.data(), unsigned(out), MSG_DONTWAIT);
    }
    if (size_t(n) < kBatch) return;  // the queue was empty: a new packet is a new edge
  }
  // Still busy: carry on after the worker's other work (no new edge would come for these).
  std::weak_ptr<Endpoint> weak = e;
  asio::post(e->io, [weak, rtcp] {
    if (auto e = weak.lock(); e && !e->closed) drain(e, rtcp);
  });
}

bool bind_pair(Endpoint& e, const asio::ip::address& at, uint16_t port) {
  e.close();
  e.closed = false;
  const udp::endpoint rtp(at, port), rtcp(at, uint16_t(port + 1));
  for (auto [fd, where] : {std::pair{&e.rtp, &rtp}, std::pair{&e.rtcp, &rtcp}}) {
    *fd = ::socket(at.is_v6() ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (*fd < 0 || ::bind(*fd, where->data(), socklen_t(where->size())) != 0) {
      e.close();
      return false;
    }
  }
  e.port = port;
  return true;
}

}  // namespace

Poller::Poller(asio::io_context& io) : io_(io), epfd_(::epoll_create1(EPOLL_CLOEXEC)), watch_(io) {
  if (epfd_ < 0) return;
  boost::system::error_code ec;
  watch_.assign(epfd_, ec);
  arm();
}

Poller::~Poller() {
  boost::system::error_code ec;
  watch_.close(ec);  // closes the epoll set
}

bool Poller::add(int fd, void* tag) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.ptr = tag;
  return epfd_ >= 0 && ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0;
}

void Poller::arm() {
  watch_.async_wait(asio::posix::stream_descriptor::wait_read, [this](auto ec) {
    if (ec) return;
    std::array<epoll_event, 128> events;
    for (;;) {
      const int n = ::epoll_wait(epfd_, events.data(), int(events.size()), 0);
      for (int i = 0; i < n; ++i) {
        auto* w = static_cast<Endpoint::Watch*>(events[size_t(i)].data.ptr);
        // Only this thread closes endpoints, and not while this loop runs: `w` is alive.
        if (!w->e->closed) drain(w->e->shared_from_this(), w->rtcp);
      }
      if (n < int(events.size())) break;
    }
    arm();
  });
}

Session::Session(Poller& poller, PortPool& pool, const Options& options, Counters& counters)
    : poller_(poller), pool_(pool), options_(options), counters_(counters) {
  origin_id_[0] = std::to_string(random::between(1000000, 999999999));
  origin_id_[1] = std::to_string(random::between(1000000, 999999999));
  ++counters_.sessions;
}

Session::~Session() {
  uint64_t packets = 0, bytes = 0;
  for (auto& st : streams_) {
    for (auto& e : st->ep) {
      packets += e->packets_in;
      bytes += e->bytes_in;
      if (e->packets_in > 0 && e->rx.lost() >= 0) {
        counters_.lost += uint64_t(e->rx.lost());
        const double ms = e->rx.jitter_units() * 1000.0 / (e->clock_rate ? e->clock_rate : 8000);
        size_t b = 0;
        while (b < 5 && ms > Counters::kJitterBucketsMs[b])
          ++b;
        ++counters_.jitter_buckets[b];
        counters_.jitter_sum_us += uint64_t(ms * 1000);
      }
      e->close();
      if (e->port) pool_.give(e->port);
    }
  }
  counters_.packets += packets;
  counters_.bytes += bytes;
}

Session::Stream* Session::open_stream() {
  boost::system::error_code ec;
  auto at = asio::ip::make_address(options_.bind_address, ec);
  if (ec) at = asio::ip::address_v4::any();
  auto st = std::make_shared<Stream>();
  for (int side = 0; side < 2; ++side) {
    auto e = std::make_shared<Endpoint>(poller_.io());
    e->options = &options_;
    bool bound = false;
    // A port another program holds fails to bind: try the next few.
    for (int attempt = 0; attempt < 8 && !bound; ++attempt) {
      auto port = pool_.take();
      if (!port) break;
      bound = bind_pair(*e, at, *port);
      if (!bound) pool_.give(*port);
    }
    if (!bound) {
      ++counters_.no_ports;
      for (int s = 0; s < side; ++s) {
        st->ep[s]->close();
        pool_.give(st->ep[s]->port);
      }
      return nullptr;
    }
    st->ep[side] = std::move(e);
  }
  st->ep[0]->other = st->ep[1].get();
  st->ep[1]->other = st->ep[0].get();
  for (int side = 0; side < 2; ++side) {
    st->ep[side]->stream = st.get();
    st->ep[side]->side = side;
  }
  st->session = this;
  for (auto& e : st->ep) {
    poller_.add(e->rtp, &e->watch_rtp);
    poller_.add(e->rtcp, &e->watch_rtcp);
  }
  streams_.push_back(std::move(st));
  return streams_.back().get();
}

Result<std::string, std::string> Session::relay_description(int from, std::string_view text,
                                                            const std::string& advertise) {
  auto parsed = sdp::parse(text);
  if (!parsed) {
    return unexpected("SDP line " + std::to_string(parsed.error().line) + ": " +
                      parsed.error().what);
  }
  if (from == last_answer_side_ && text == last_answer_text_) {
    // The same answer again (a 200 after a reliable 18x, or a re-INVITE answered unchanged).
    if (pending_offer_ == 1 - from) pending_offer_ = -1;
    return last_answer_result_;
  }
  sdp::Session d = std::move(*parsed);
  const int to = 1 - from;
  const bool answer = pending_offer_ == to;
  boost::system::error_code ec;
  const auto adv = asio::ip::make_address(advertise, ec);
  const std::string addrtype = !ec && adv.is_v6() ? "IP6" : "IP4";
  for (size_t i = 0; i < d.media.size(); ++i) {
    sdp::Media& m = d.media[i];
    Stream* st = i < streams_.size() ? streams_[i].get() : open_stream();
    if (!st) return unexpected(std::string(kNoPorts));
    st->media = m.media;
    Endpoint& e = *st->ep[from];
    const Endpoint& o = *st->ep[to];
    // Where this side wants its media.
    const sdp::Connection* c = d.connection_for(m);
    const std::string addr = c ? c->address.substr(0, c->address.find('/')) : std::string();
    e.sig_addr = asio::ip::make_address(addr, ec);
    if (ec) e.sig_addr = asio::ip::address_v4::any();
    e.sig_rtp = m.port;
    e.sig_rtcp = m.rtcp_port().value_or(uint16_t(m.port ? m.port + 1 : 0));
    e.direction = d.direction(m);
    e.known = true;
    e.ptime = m.ptime().value_or(20);
    for (const auto& f : m.formats) {
      auto pt = f.find_first_not_of("0123456789") == std::string::npos && f.size() < 4
                    ? std::optional<int>(std::stoi(f))
                    : std::nullopt;
      if (!pt) continue;
      if (auto map = m.rtpmap(*pt)) {
        if (map->encoding != "telephone-event" && map->clock_rate) {
          e.clock_rate = map->clock_rate;
          break;
        }
      } else if (*pt < 96) {
        e.clock_rate = 8000;  // static payload types of telephony are 8 kHz (G.722's too)
        break;
      }
    }
    if (m.port == 0) continue;  // a refused stream stays refused
    if (m.media == "audio") {
      negotiate(*st, from, m, answer);
    } else {
      // Not audio (T.38's udptl after a re-INVITE, video): relayed as it is, untouched.
      for (int side = 0; side < 2; ++side) {
        st->tx[side].reset();
        st->mapped[side] = st->dtmf_out[side] = false;
        st->detect[side].reset();
        st->inject[side].reset();
      }
    }
    if (m.proto.find("RTP/") != std::string::npos) {
      if (auto refused = secure(*st, from, m, answer)) return unexpected(std::move(*refused));
    }
    // What the other side is told: esg, on that side's ports.
    m.port = o.port;
    if (m.connection || !d.connection) m.connection = sdp::Connection{"IN", addrtype, advertise};
    std::vector<sdp::Attribute> kept;
    for (auto& a : m.attributes) {
      if (is_ice(a.name)) continue;
      if (a.name == "rtcp")
        a.value = std::to_string(o.port + 1) + " IN " + addrtype + " " + advertise;
      kept.push_back(std::move(a));
    }
    m.attributes = std::move(kept);
  }
  if (d.connection) d.connection = sdp::Connection{"IN", addrtype, advertise};
  std::vector<sdp::Attribute> kept;
  for (auto& a : d.attributes) {
    if (!is_ice(a.name)) kept.push_back(std::move(a));
  }
  d.attributes = std::move(kept);
  // esg's own origin towards each leg, its version up with every description (RFC 3264 §8).
  d.origin = sdp::Origin{"esg", origin_id_[to], std::to_string(++origin_version_[to]),
                         "IN",  addrtype,       advertise};
  std::string result = sdp::serialize(d);
  pending_offer_ = answer ? -1 : from;
  if (answer) {
    last_answer_side_ = from;
    last_answer_text_ = std::string(text);
    last_answer_result_ = result;
  }
  return result;
}

void Session::negotiate(Stream& st, int from, sdp::Media& m, bool answer) {
  const int to = 1 - from;
  const auto formats = formats_of(m);
  if (!answer || st.offer_from != to) {
    // An offer: what `to` may choose from.
    st.offered = formats;
    st.offer_from = from;
    set_formats(m, offer_for(formats, codecs_[to]));
    return;
  }
  // The answer to `to`'s offer: what `to` is told, and how packets cross from now on.
  AnswerPlan plan = answer_for(st.offered, formats, codecs_[to]);
  // Each side's own event type, whatever the other side has.
  st.dtmf_pt[to] = st.dtmf_pt[from] = -1;
  for (const auto& f : st.offered) {
    if (f.dtmf() && st.dtmf_pt[to] < 0) st.dtmf_pt[to] = f.pt;
  }
  for (const auto& f : formats) {
    if (f.dtmf() && st.dtmf_pt[from] < 0) st.dtmf_pt[from] = f.pt;
  }
  // A side that takes INFO or tones gets the digits the other side sends as events: that side
  // keeps its events in the answer even when the other has none.
  if (dtmf_[from] != "rfc2833" && st.dtmf_pt[to] >= 0 && plan.offerer_dtmf < 0 &&
      !plan.formats.empty()) {
    for (const auto& f : st.offered) {
      if (f.pt == st.dtmf_pt[to]) plan.formats.push_back(f);
    }
  }
  st.dtmf_out[to] = dtmf_[from] != "rfc2833" && st.dtmf_pt[to] >= 0;
  st.dtmf_out[from] = dtmf_[to] != "rfc2833" && st.dtmf_pt[from] >= 0;
  st.inject[0].reset();
  st.inject[1].reset();
  set_formats(m, plan.formats);
  st.offer_from = -1;
  st.tx[0].reset();
  st.tx[1].reset();
  st.pt_map[0].fill(-1);
  st.pt_map[1].fill(-1);
  st.mapped[0] = st.mapped[1] = false;
  if (plan.answerer.pt < 0) return;
  auto map = [&](int side, int in, int out) {
    if (in < 0 || out < 0 || in == out || in > 127) return;
    st.pt_map[side][size_t(in)] = int16_t(out);
    st.mapped[side] = true;
  };
  // Telephone events cross under the receiving side's number.
  map(from, plan.answerer_dtmf, plan.offerer_dtmf);
  map(to, plan.offerer_dtmf, plan.answerer_dtmf);
  st.codec[from] = plan.answerer.name;
  st.codec[to] = plan.offerer.name;
  for (int side : {from, to}) {
    // In-band tones towards a side that takes another form: listened for in what `side`
    // sends (G.711 only).
    const auto codec = codec_named(st.codec[side]);
    const bool g711 = codec && (codec->id == CodecId::Pcma || codec->id == CodecId::Pcmu);
    st.detect[side].reset();
    if (g711 && dtmf_[side] == "inband" && dtmf_[1 - side] != "inband")
      st.detect[side] = std::make_unique<DtmfDetector>(codec->id);
  }
  if (plan.transcode) {
    const auto a = plan.answerer.codec(), o = plan.offerer.codec();
    const uint32_t ptime_to = st.ep[to]->ptime, ptime_from = m.ptime().value_or(20);
    st.tx[from] = std::make_unique<Transcoder>(a->id, o->id, uint8_t(plan.offerer.pt), ptime_to);
    st.tx[to] = std::make_unique<Transcoder>(o->id, a->id, uint8_t(plan.answerer.pt), ptime_from);
    st.ep[from]->clock_rate = a->clock_rate;
    st.ep[to]->clock_rate = o->clock_rate;
  } else {
    map(from, plan.answerer.pt, plan.offerer.pt);
    map(to, plan.offerer.pt, plan.answerer.pt);
  }
}

void Session::set_codecs(int side, std::vector<std::string> codecs) {
  codecs_[side] = std::move(codecs);
}

void Session::set_dtmf(int side, std::string mode) {
  dtmf_[side] = std::move(mode);
}

bool Session::send_digit(int side, char key, int ms) {
  return dtmf_[side] != "info" && deliver(side, key, ms);
}

// A key press for `side` in the form it takes: SIP INFO through `on_dtmf`; otherwise written
// into the first audio stream towards it, as events when it has a telephone-event type and
// does not want tones, else as tones (G.711 only).
bool Session::deliver(int side, char key, int ms) {
  if (dtmf_[side] == "info") {
    if (!on_dtmf) return false;
    on_dtmf(side, key, ms);
    return true;
  }
  for (auto& st : streams_) {
    if (st->media != "audio" || st->codec[side].empty() || !st->ep[side]) continue;
    auto& inject = st->inject[side];
    if (!inject) {
      const auto codec = codec_named(st->codec[side]);
      if (!codec) return false;
      const bool g711 = codec->id == CodecId::Pcma || codec->id == CodecId::Pcmu;
      if (dtmf_[side] == "rfc2833" && st->dtmf_pt[side] >= 0) {
        inject = std::make_unique<DtmfInjector>(DtmfInjector::Mode::Events, st->dtmf_pt[side],
                                                codec->id, st->ep[side]->clock_rate);
      } else if (g711) {
        inject = std::make_unique<DtmfInjector>(DtmfInjector::Mode::Tones, -1, codec->id,
                                                codec->clock_rate);
      } else {
        return false;
      }
    }
    return inject->add(key, ms);
  }
  return false;
}

void Session::set_srtp(int side, std::string mode) {
  srtp_[side] = std::move(mode);
}

namespace {
std::string with_savp(std::string proto, bool secure) {
  const size_t at = proto.find("SAVP");
  if (secure && at == std::string::npos) {
    if (const size_t avp = proto.find("AVP"); avp != std::string::npos) proto.insert(avp, "S");
  } else if (!secure && at != std::string::npos) {
    proto.erase(at, 1);
  }
  return proto;
}
}  // namespace

std::optional<std::string> Session::secure(Stream& st, int from, sdp::Media& m, bool answer) {
  const int to = 1 - from;
  Endpoint& e = *st.ep[from];
  Endpoint& o = *st.ep[to];
  // What `from` says: its key for what it sends us.
  std::optional<sdp::Crypto> theirs;
  for (const auto& c : m.crypto()) {
    if (srtp_suite_supported(c.suite) && inline_key(c.key_params)) {
      theirs = c;
      break;
    }
  }
  e.srtp_in =
      theirs ? Srtp::create(theirs->suite, *inline_key(theirs->key_params), false) : nullptr;
  // A leg that requires SRTP offering or answering without a usable key: refused, whatever
  // the other leg does (its audio would cross the wire in clear).
  if (srtp_[from] == "required" && !e.srtp_in) return std::string(kSrtpMissing);
  if (!answer) {
    e.offered = {bool(e.srtp_in), theirs ? theirs->tag : 1,
                 theirs ? theirs->suite : std::string(kSrtpSuite), m.proto};
  } else if (!e.srtp_in) {
    e.srtp_out.reset();  // the answerer took plain RTP
  }
  // What `to` is told: esg's own key, if SRTP is on between esg and `to`.
  std::vector<sdp::Attribute> kept;
  for (auto& a : m.attributes) {
    if (a.name != "crypto") kept.push_back(std::move(a));
  }
  m.attributes = std::move(kept);
  bool secure = false;
  std::string suite = kSrtpSuite;
  uint32_t tag = 1;
  if (answer) {
    secure = o.offered.crypto && srtp_[to] != "off";
    suite = o.offered.suite;
    tag = o.offered.tag;
    m.proto =
        with_savp(o.offered.proto, secure && o.offered.proto.find("SAVP") != std::string::npos);
    if (!secure) o.srtp_in.reset();  // answered plain: the offerer sends plain RTP
  } else {
    secure = srtp_[to] != "off";
    m.proto = with_savp(m.proto, srtp_[to] == "required");
  }
  if (secure) {
    if (o.our_key.empty()) o.our_key = new_srtp_key();
    o.srtp_out = Srtp::create(suite, o.our_key, true);
    m.attributes.push_back({"crypto", std::to_string(tag) + " " + suite + " inline:" + o.our_key});
  } else {
    o.srtp_out.reset();
  }
  return std::nullopt;
}

bool Session::transcoding() const {
  return std::any_of(streams_.begin(), streams_.end(),
                     [](const auto& st) { return st->tx[0] || st->tx[1]; });
}

void Session::reset_side(int side) {
  for (auto& st : streams_) {
    Endpoint& e = *st->ep[side];
    e.latched = e.rtcp_latched = e.have_ssrc = false;
    e.known = false;
    e.rx = ReceiveStats();
    e.report.reset();
  }
}

nlohmann::json Session::stats() const {
  nlohmann::json streams = nlohmann::json::array();
  for (const auto& st : streams_) {
    nlohmann::json a = st->ep[0]->stats(), b = st->ep[1]->stats();
    if (!st->codec[0].empty()) a["codec"] = st->codec[0];
    if (!st->codec[1].empty()) b["codec"] = st->codec[1];
    streams.push_back(
        {{"media", st->media}, {"a", a}, {"b", b}, {"transcoding", bool(st->tx[0] || st->tx[1])}});
  }
  return {{"streams", streams}, {"one_way", one_way()}, {"hold", on_hold()}};
}

bool Session::one_way() const {
  for (const auto& st : streams_) {
    const Endpoint& a = *st->ep[0];
    const Endpoint& b = *st->ep[1];
    if (!a.known || !b.known || a.held() || b.held() || !a.sig_rtp || !b.sig_rtp) continue;
    if ((a.packets_in > 0) != (b.packets_in > 0)) return true;
    if (!options_.latching && (a.mismatch > 0 || b.mismatch > 0)) return true;
  }
  return false;
}

bool Session::on_hold() const {
  for (const auto& st : streams_) {
    if (st->ep[0]->held() || st->ep[1]->held()) return true;
  }
  return false;
}

int64_t Session::last_packet_ms() const {
  int64_t last = 0;
  for (const auto& st : streams_) {
    last = std::max({last, st->ep[0]->last_in, st->ep[1]->last_in});
  }
  return last;
}

}  // namespace esg::media
