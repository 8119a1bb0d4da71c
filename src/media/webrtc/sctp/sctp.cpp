#include "media/webrtc/sctp/sctp.hpp"

#include <arpa/inet.h>
#include <usrsctp.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "media/webrtc/sctp/dcep.hpp"

namespace esg::media {

namespace asio = boost::asio;

namespace detail {

namespace {

// How often usrsctp's clock advances (from whichever worker's tick comes first). Each advance
// walks every pending callout of the process (usrsctp's queue is unsorted), which is what an
// idle association costs: measured with 4,000 idle associations on 2 workers, 10 ms (usrsctp's
// own timer thread period) took 21% of a core, 50 ms 5%. 50 ms late is nothing to SCTP's
// timers here: the delayed SACK is 200 ms, the smallest retransmission timeout 400 ms.
constexpr std::chrono::milliseconds kTick{50};
// usrsctp compares its tick counter modulo 2^32; after a long time without any channel, one
// step of at most an hour keeps every comparison right (its longest timers are minutes).
constexpr int64_t kMaxStepMs = int64_t{3600} * 1000;

// The largest SCTP packet: what is left of IPv6's minimum MTU (1280, which every path carries)
// after the IPv6 (40) and UDP (8) headers, a DTLS record with AES-GCM (13 + 24) and a TURN
// ChannelData header (4). No PMTU discovery (usrsctp has none without ICMP, RFC 8831 §5).
constexpr uint32_t kSctpPacket = 1191;
// usrsctp leaves the 12-byte SCTP common header out of an AF_CONN path's MTU (measured with
// 0.9.5: an MTU of 1000 gives packets of up to 1012 bytes).
constexpr uint32_t kSctpMtu = kSctpPacket - 12;
// Socket buffers: one message of kSctpMaxMessage must fit whole in the send buffer (a
// non-blocking send of a message larger than the free space fails); the receive buffer is the
// window offered to the peer. Limits, not allocations: only queued data takes memory.
constexpr int kSendBuffer = 2 * int(kSctpMaxMessage);
constexpr int kReceiveBuffer = 2 * int(kSctpMaxMessage);
// Streams: Telegram uses stream 0 only; a few more are harmless and cost little.
constexpr uint16_t kStreams = 16;
// Retransmission timeout (ms): a faster first retransmission than RFC 9260's 3 s (the path is
// a call's ICE path that has just carried DTLS), and backoff capped at 3 s as WebRTC's own
// stacks do: after a lossy handshake usrsctp starts from an RTT taken across the lost
// COOKIE ECHO (seconds), and the cap keeps the first retransmissions of data from waiting as
// long; an outage of the media path heals within 3 s of its end. With usrsctp's 10
// retransmissions the association gives up after about 30 s without an answer, as ICE consent
// does (RFC 7675).
constexpr uint32_t kRtoInitial = 1000;
constexpr uint32_t kRtoMin = 400;
constexpr uint32_t kRtoMax = 3000;

}  // namespace

// Timers: usrsctp keeps one process-wide timer wheel and a tick counter that
// usrsctp_handle_timers(elapsed) advances by `elapsed` and then runs whatever expired
// (sctp_handle_tick in sctp_callout.c). Two consequences decide the design:
//  - The counter is global, so the elapsed time must be measured once for the process, not per
//    channel or per worker (N callers each adding their own elapsed time would run the clock N
//    times too fast). Runtime::advance_timers() measures it from one steady clock.
//  - sctp_handle_tick drops its lock around each expired callout and keeps the next one in a
//    global (sctp_os_timer_next), so two threads inside it at once corrupt the walk. Calls are
//    serialized by Runtime::timers_mutex_ (a worker that finds it taken skips its turn), which
//    makes them equivalent to usrsctp's own single timer thread; usrsctp's per-association
//    locks already allow callouts to run concurrently with the API calls of the channels' own
//    threads (that is how usrsctp_init's timer thread works).
// Who calls it: one SctpTicker per io_context that has channels (shared by them, gone with the
// last one), every kTick; the clock advances when at least kTick has passed since the last
// advance by anyone. So the wake-ups scale with the workers and the walks of usrsctp's queue
// with time, not with the calls, and no thread of our own exists; any worker's tick serves
// every association in the process. A
// callout may therefore run on another worker's thread than its channel's: what it produces
// (packets, notifications) is posted to the channel's io_context (SctpCallbacks below).
// With no channel left anywhere, usrsctp's clock stops until the next channel starts it again
// (leftover timers of closed sockets, e.g. their memory's release, then run late).
class SctpTicker : public std::enable_shared_from_this<SctpTicker> {
 public:
  explicit SctpTicker(asio::io_context& io) : timer_(io) {}
  void arm();

 private:
  asio::steady_timer timer_;
};

namespace {

class Runtime {
 public:
  static Runtime& get() {
    // Once for the process, thread-safe (a function-local static): usrsctp without its timer
    // and receive threads (only its iterator thread starts, idle on a condition variable for
    // AF_CONN use). UDP encapsulation port 0: no socket of its own.
    static Runtime runtime;
    return runtime;
  }

  uintptr_t add(asio::io_context& io, SctpDataChannel* channel) {
    std::lock_guard lock(mutex_);
    const uintptr_t id = next_id_++;  // never reused: usrsctp may know an old id for a while
    channels_.emplace(id, Entry{&io, channel});
    return id;
  }

  void remove(uintptr_t id) {
    std::lock_guard lock(mutex_);
    channels_.erase(id);
  }

  // The channel `id`, on its own thread (its destructor runs there too, and removes it first).
  SctpDataChannel* local(uintptr_t id) {
    std::lock_guard lock(mutex_);
    auto it = channels_.find(id);
    return it == channels_.end() ? nullptr : it->second.channel;
  }

  // Posts `handler` to the io_context of channel `id`, from any thread; false if it is gone.
  // The post happens under the lock, so once remove() has returned nothing more is posted for
  // the channel and its io_context may go away with it. (Lock order: usrsctp's locks, then this
  // one, then Asio's queue; nothing here calls into usrsctp under it.)
  template <class Handler>
  bool post_to(uintptr_t id, Handler&& handler) {
    std::lock_guard lock(mutex_);
    auto it = channels_.find(id);
    if (it == channels_.end()) return false;
    if (!it->second.io->get_executor().running_in_this_thread())
      handed_over_.fetch_add(1, std::memory_order_relaxed);
    asio::post(*it->second.io, std::forward<Handler>(handler));
    return true;
  }

  uint64_t handed_over() const { return handed_over_.load(std::memory_order_relaxed); }

  std::shared_ptr<SctpTicker> ticker(asio::io_context& io) {
    std::lock_guard lock(mutex_);
    std::erase_if(tickers_, [](const auto& t) { return t.second.expired(); });
    if (auto ticker = tickers_[&io].lock()) return ticker;
    auto ticker = std::make_shared<SctpTicker>(io);
    tickers_[&io] = ticker;
    ticker->arm();
    return ticker;
  }

  void advance_timers() {
    // A worker never waits for another's callouts: the one inside advances the shared clock.
    std::unique_lock lock(timers_mutex_, std::try_to_lock);
    if (!lock) return;
    const auto now = std::chrono::steady_clock::now();
    const int64_t elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(now - last_).count();
    // usrsctp walks every pending callout of the process on each call (its queue is not
    // sorted), so the walk happens about once per kTick for the process, not once per worker.
    if (elapsed < kTick.count()) return;
    last_ = now - (now - last_) % std::chrono::milliseconds(1);  // keep the fraction
    usrsctp_handle_timers(uint32_t(std::min(elapsed, kMaxStepMs)));
  }

 private:
  Runtime();

  struct Entry {
    asio::io_context* io;
    SctpDataChannel* channel;
  };
  std::mutex mutex_;
  uintptr_t next_id_ = 1;
  std::atomic<uint64_t> handed_over_{0};
  std::unordered_map<uintptr_t, Entry> channels_;
  std::unordered_map<asio::io_context*, std::weak_ptr<SctpTicker>> tickers_;
  std::mutex timers_mutex_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// A channel's AF_CONN address is its id, not its own address: ids are never reused, so a late
// callback for a closed socket can never reach a newer channel that got the same memory.
void* conn_addr(uintptr_t id) {
  return reinterpret_cast<void*>(id);  // NOLINT(performance-no-int-to-ptr)
}

sockaddr_conn sconn(uintptr_t id) {
  sockaddr_conn a{};
  a.sconn_family = AF_CONN;
  a.sconn_port = htons(kSctpPort);
  a.sconn_addr = conn_addr(id);
  return a;
}

template <class T>
bool set_option(struct socket* sock, int level, int name, const T& value) {
  return usrsctp_setsockopt(sock, level, name, &value, socklen_t(sizeof value)) == 0;
}

}  // namespace

void SctpTicker::arm() {
  timer_.expires_after(kTick);
  // A weak handle: a wait that completed just before the ticker went away still runs.
  timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self) return;
    Runtime::get().advance_timers();
    self->arm();
  });
}

// usrsctp's callbacks. They run on whichever thread is inside usrsctp at the time (the channel's
// own, during on_packet/send_text/start, or any worker's during its tick), with usrsctp's locks
// held: they only copy and post, and the posted work finds the channel again by id on its own
// thread.
struct SctpCallbacks {
  static int output(void* addr, void* buffer, size_t length, uint8_t /*tos*/, uint8_t /*set_df*/) {
    const auto id = reinterpret_cast<uintptr_t>(addr);
    Runtime::get().post_to(id, [id, packet = std::string(static_cast<char*>(buffer), length)] {
      if (auto* channel = Runtime::get().local(id)) channel->deliver_packet(packet);
    });
    return 0;  // what is not posted is lost like a datagram; SCTP retransmits
  }

  static int receive(struct socket* /*sock*/, union sctp_sockstore /*addr*/, void* data,
                     size_t length, struct sctp_rcvinfo info, int flags, void* ulp_info) {
    // usrsctp hands over a malloc()ed copy that the callee frees; nullptr at the end of input.
    std::unique_ptr<char, decltype(&std::free)> owned(static_cast<char*>(data), &std::free);
    if (!owned) return 1;
    const auto id = reinterpret_cast<uintptr_t>(ulp_info);
    auto deliver = [id, owned = std::shared_ptr<char>(std::move(owned)), length,
                    stream = info.rcv_sid, ppid = ntohl(info.rcv_ppid), flags] {
      if (auto* channel = Runtime::get().local(id))
        channel->deliver_message(std::string_view(owned.get(), length), stream, ppid, flags);
    };
    Runtime::get().post_to(id, std::move(deliver));
    return 1;
  }
};

namespace {

Runtime::Runtime() {
  usrsctp_init_nothreads(0, &SctpCallbacks::output, nullptr);
  // ECN means nothing inside DTLS (WebRTC stacks turn it off too).
  usrsctp_sysctl_set_sctp_ecn_enable(0);
}

}  // namespace

}  // namespace detail

using detail::Runtime;

SctpDataChannel::SctpDataChannel(asio::io_context& io, bool opener)
    : opener_(opener), id_(Runtime::get().add(io, this)) {
  ticker_ = Runtime::get().ticker(io);
  usrsctp_register_address(detail::conn_addr(id_));
  sock_ = usrsctp_socket(AF_CONN, SOCK_STREAM, IPPROTO_SCTP, &detail::SctpCallbacks::receive,
                         nullptr, 0, detail::conn_addr(id_));
  if (sock_ == nullptr) {
    state_ = State::Closed;  // out of memory in usrsctp: a channel that never opens
    return;
  }
  bool ok = usrsctp_set_non_blocking(sock_, 1) == 0;
  // Closing aborts (ABORT chunk, no SHUTDOWN handshake to wait for).
  linger lin{};
  lin.l_onoff = 1;
  lin.l_linger = 0;
  ok = ok && detail::set_option(sock_, SOL_SOCKET, SO_LINGER, lin);
  ok = ok && detail::set_option(sock_, SOL_SOCKET, SO_SNDBUF, detail::kSendBuffer);
  ok = ok && detail::set_option(sock_, SOL_SOCKET, SO_RCVBUF, detail::kReceiveBuffer);
  // Stream reset is how a data channel closes (RFC 8831 §6.7).
  sctp_assoc_value reset{};
  reset.assoc_id = SCTP_FUTURE_ASSOC;
  reset.assoc_value = SCTP_ENABLE_RESET_STREAM_REQ;
  ok = ok && detail::set_option(sock_, IPPROTO_SCTP, SCTP_ENABLE_STREAM_RESET, reset);
  // Small messages go out at once (MediaState on a mute change), no Nagle-like bundling delay.
  const int nodelay = 1;
  ok = ok && detail::set_option(sock_, IPPROTO_SCTP, SCTP_NODELAY, nodelay);
  sctp_initmsg init{};
  init.sinit_num_ostreams = detail::kStreams;
  init.sinit_max_instreams = detail::kStreams;
  ok = ok && detail::set_option(sock_, IPPROTO_SCTP, SCTP_INITMSG, init);
  sctp_rtoinfo rto{};
  rto.srto_assoc_id = SCTP_FUTURE_ASSOC;
  rto.srto_initial = detail::kRtoInitial;
  rto.srto_min = detail::kRtoMin;
  rto.srto_max = detail::kRtoMax;
  ok = ok && detail::set_option(sock_, IPPROTO_SCTP, SCTP_RTOINFO, rto);
  for (uint16_t type : {uint16_t(SCTP_ASSOC_CHANGE), uint16_t(SCTP_STREAM_RESET_EVENT)}) {
    sctp_event event{};
    event.se_assoc_id = SCTP_FUTURE_ASSOC;
    event.se_type = type;
    event.se_on = 1;
    ok = ok && detail::set_option(sock_, IPPROTO_SCTP, SCTP_EVENT, event);
  }
  sockaddr_conn local = detail::sconn(id_);
  ok = ok && usrsctp_bind(sock_, reinterpret_cast<sockaddr*>(&local), sizeof local) == 0;
  if (!ok) {
    usrsctp_close(sock_);
    sock_ = nullptr;
    state_ = State::Closed;
  }
}

SctpDataChannel::~SctpDataChannel() {
  // First out of the registry: from here on nothing is posted for this channel, and what was
  // posted before finds no channel when it runs. Then the abort, whose ABORT chunk is dropped.
  Runtime::get().remove(id_);
  if (sock_ != nullptr) usrsctp_close(sock_);
  usrsctp_deregister_address(detail::conn_addr(id_));
}

uint64_t SctpDataChannel::handed_over() {
  return Runtime::get().handed_over();
}

void SctpDataChannel::start() {
  if (started_ || state_ == State::Closed) return;
  started_ = true;
  state_ = State::Connecting;
  sockaddr_conn remote = detail::sconn(id_);
  if (usrsctp_connect(sock_, reinterpret_cast<sockaddr*>(&remote), sizeof remote) != 0 &&
      errno != EINPROGRESS) {
    end(false);
    return;
  }
  configure_after_connect();
  std::vector<std::string> early;
  early.swap(early_);
  for (const std::string& packet : early)
    on_packet(packet);
}

void SctpDataChannel::configure_after_connect() {
  // The path MTU applies to the peer address, which exists once connect() has made it.
  sctp_paddrparams params{};
  sockaddr_conn remote = detail::sconn(id_);
  std::memcpy(&params.spp_address, &remote, sizeof remote);
  params.spp_flags = SPP_PMTUD_DISABLE;
  params.spp_pathmtu = detail::kSctpMtu;
  detail::set_option(sock_, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, params);
}

void SctpDataChannel::on_packet(std::string_view packet) {
  if (state_ == State::Closed) {
    ++counters_.packets_dropped;
    return;
  }
  if (!started_) {
    // The peer's DTLS finished first and its INIT is here before our start(): kept, since an
    // INIT to a socket that has not connected yet would be answered with an ABORT.
    if (early_.size() < kEarlyPackets) {
      early_.emplace_back(packet);
    } else {
      ++counters_.packets_dropped;
    }
    return;
  }
  ++counters_.packets_received;
  usrsctp_conninput(detail::conn_addr(id_), packet.data(), packet.size(), 0);
}

void SctpDataChannel::deliver_packet(std::string_view packet) {
  if (!send) return;
  ++counters_.packets_sent;
  send(packet);
}

void SctpDataChannel::deliver_message(std::string_view data, uint16_t stream, uint32_t ppid,
                                      int flags) {
  if (state_ == State::Closed) return;
  const bool end_of_record = (flags & MSG_EOR) != 0;
  if ((flags & MSG_NOTIFICATION) != 0) {
    if (end_of_record) on_notification(data);
    return;
  }
  if (discarding_) {
    discarding_ = !end_of_record;
    return;
  }
  if (end_of_record && partial_.empty()) {
    on_complete_message(data, stream, ppid);
    return;
  }
  // usrsctp delivers a message in pieces once it reaches the partial delivery point (half the
  // receive buffer); pieces of one message come in order on our only stream.
  if (partial_.size() + data.size() > kSctpMaxMessage) {
    ++counters_.dropped;
    partial_.clear();
    discarding_ = !end_of_record;
    return;
  }
  partial_.append(data);
  if (!end_of_record) return;
  std::string whole;
  whole.swap(partial_);
  on_complete_message(whole, stream, ppid);
}

void SctpDataChannel::on_complete_message(std::string_view data, uint16_t stream, uint32_t ppid) {
  if (data.size() > kSctpMaxMessage || stream != kDataChannelStream) {
    ++counters_.dropped;
    return;
  }
  if (ppid == dcep::kPpidDcep) {
    on_dcep(data);
    return;
  }
  if (ppid != dcep::kPpidString && ppid != dcep::kPpidStringEmpty) {
    ++counters_.dropped;  // binary (53, 57, deprecated 52), deprecated partial string 54, other
    return;
  }
  if (state_ != State::Open) {
    ++counters_.dropped;
    return;
  }
  ++counters_.received;
  // PPID 56 carries one byte that is not part of the message (RFC 8831 §6.6).
  if (on_text) on_text(ppid == dcep::kPpidStringEmpty ? std::string_view() : data);
}

void SctpDataChannel::on_dcep(std::string_view message) {
  const auto type = dcep::message_type(message);
  if (type == dcep::kOpen) {
    if (!dcep::parse_open(message)) {
      ++counters_.dropped;
      return;
    }
    // RFC 8832 §6: the receiver of DATA_CHANNEL_OPEN answers DATA_CHANNEL_ACK on the same
    // stream and may send at once. Whatever the label (there is one channel), and also on the
    // side that opened itself (both sides then have sent OPEN; both get ACKed).
    send_message(dcep::encode_ack(), dcep::kPpidDcep);
    if (state_ == State::Open) return;  // a repeated OPEN: ACKed again
    state_ = State::Open;
    if (on_open) on_open();
    return;
  }
  if (type == dcep::kAck) {
    if (!open_sent_ || state_ == State::Open) return;  // an ACK for nothing we sent
    state_ = State::Open;
    if (on_open) on_open();
    return;
  }
  ++counters_.dropped;
}

void SctpDataChannel::on_notification(std::string_view data) {
  sctp_notification n{};
  if (data.size() < sizeof n.sn_header) return;
  std::memcpy(&n, data.data(), std::min(data.size(), sizeof n));
  if (n.sn_header.sn_type == SCTP_ASSOC_CHANGE) {
    switch (n.sn_assoc_change.sac_state) {
      case SCTP_COMM_UP:
        began_ = true;
        if (state_ != State::Connecting) return;
        state_ = State::Opening;
        if (opener_) send_open();
        return;
      case SCTP_COMM_LOST:       // the peer's ABORT, or retransmissions gave up
      case SCTP_SHUTDOWN_COMP:   // the peer shut down
      case SCTP_CANT_STR_ASSOC:  // INIT retransmissions gave up
      case SCTP_RESTART:         // the peer lost its state, its channel with it
        end(true);
        return;
      default:
        return;
    }
  }
  if (n.sn_header.sn_type == SCTP_STREAM_RESET_EVENT) {
    const auto& event = n.sn_strreset_event;
    if ((event.strreset_flags & SCTP_STREAM_RESET_INCOMING_SSN) == 0 ||
        (event.strreset_flags & (SCTP_STREAM_RESET_DENIED | SCTP_STREAM_RESET_FAILED)) != 0)
      return;
    // The list of streams follows the fixed part; none listed means all of them.
    const size_t fixed = offsetof(sctp_stream_reset_event, strreset_stream_list);
    const size_t length = std::min<size_t>(event.strreset_length, data.size());
    bool ours = length <= fixed;
    for (size_t at = fixed; !ours && at + 2 <= length; at += 2) {
      uint16_t sid;
      std::memcpy(&sid, data.data() + at, 2);
      ours = sid == kDataChannelStream;
    }
    if (!ours) return;
    // The peer closed the channel (RFC 8831 §6.7): reset ours too, and it is over.
    reset_outgoing_stream();
    end(true);
  }
}

void SctpDataChannel::reset_outgoing_stream() {
  if (sock_ == nullptr) return;
  alignas(sctp_reset_streams) char buffer[sizeof(sctp_reset_streams) + sizeof(uint16_t)] = {};
  auto* reset = reinterpret_cast<sctp_reset_streams*>(buffer);
  reset->srs_assoc_id = SCTP_ALL_ASSOC;
  reset->srs_flags = SCTP_STREAM_RESET_OUTGOING;
  reset->srs_number_streams = 1;
  const uint16_t sid = kDataChannelStream;
  std::memcpy(buffer + sizeof(sctp_reset_streams), &sid, sizeof sid);
  usrsctp_setsockopt(sock_, IPPROTO_SCTP, SCTP_RESET_STREAMS, buffer, socklen_t(sizeof buffer));
}

void SctpDataChannel::send_open() {
  if (open_sent_) return;
  dcep::Open open;
  open.label = kDataChannelLabel;
  open_sent_ = send_message(dcep::encode_open(open), dcep::kPpidDcep);
}

bool SctpDataChannel::send_message(std::string_view payload, uint32_t ppid) {
  if (sock_ == nullptr) return false;
  sctp_sndinfo info{};
  info.snd_sid = kDataChannelStream;
  info.snd_ppid = htonl(ppid);  // on the wire as given
  // snd_flags 0: ordered; SCTP_EXPLICIT_EOR is off, so one call is one whole message.
  const ssize_t n = usrsctp_sendv(sock_, payload.data(), payload.size(), nullptr, 0, &info,
                                  socklen_t(sizeof info), SCTP_SENDV_SNDINFO, 0);
  return n >= 0 && size_t(n) == payload.size();
}

bool SctpDataChannel::send_user_message(std::string_view data, uint32_t ppid, uint32_t empty_ppid) {
  bool ok = false;
  if (state_ == State::Open && data.size() <= kSctpMaxMessage) {
    // An empty message is one zero byte under its own PPID (RFC 8831 §6.6): SCTP has no empty
    // user messages.
    ok = data.empty() ? send_message(std::string_view("\0", 1), empty_ppid)
                      : send_message(data, ppid);
  }
  ++(ok ? counters_.sent : counters_.send_failed);
  return ok;
}

bool SctpDataChannel::send_text(std::string_view text) {
  return send_user_message(text, dcep::kPpidString, dcep::kPpidStringEmpty);
}

bool SctpDataChannel::send_binary(std::string_view data) {
  return send_user_message(data, dcep::kPpidBinary, dcep::kPpidBinaryEmpty);
}

void SctpDataChannel::close() {
  state_ = State::Closed;
  early_.clear();
  partial_.clear();
  if (sock_ == nullptr) return;
  usrsctp_close(sock_);  // SO_LINGER 0: an ABORT, through the output callback (posted)
  sock_ = nullptr;
}

void SctpDataChannel::close_channel() {
  if (state_ != State::Open) return;
  state_ = State::Closed;
  partial_.clear();
  reset_outgoing_stream();
}

void SctpDataChannel::end(bool notify) {
  if (state_ == State::Closed) return;
  state_ = State::Closed;
  partial_.clear();
  if (notify && began_ && on_close) on_close();
}

}  // namespace esg::media
