#include "transport/transport.hpp"

#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cstring>
#include <deque>
#include <stdexcept>

#include "base/text.hpp"
#include "sip/framer.hpp"
#include "sip/response.hpp"

namespace esg::transport {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;

std::string_view proto_name(Proto p) {
  switch (p) {
    case Proto::Udp:
      return "udp";
    case Proto::Tcp:
      return "tcp";
    case Proto::Tls:
      return "tls";
  }
  return "udp";
}

std::string Peer::to_string() const {
  const std::string a = addr.to_string();
  return (addr.is_v6() ? "[" + a + "]" : a) + ":" + std::to_string(port);
}

struct Transport::UdpListener {
  size_t index = 0;
  std::vector<std::unique_ptr<udp::socket>> sockets;  // one per worker
  // recvmmsg(2) batches: a flood costs one system call per kBatch datagrams, not one each.
  struct Receive {
    static constexpr size_t kBatch = 16;
    static constexpr size_t kSlot = 65536;  // the largest UDP payload fits
    std::vector<char> buf = std::vector<char>(kBatch * kSlot);
    std::array<mmsghdr, kBatch> msgs{};
    std::array<iovec, kBatch> iov{};
    std::array<sockaddr_storage, kBatch> from{};
  };
  std::vector<std::unique_ptr<Receive>> receives;
};

struct Transport::TcpListener {
  size_t index = 0;
  std::unique_ptr<tcp::acceptor> acceptor;
  size_t next_worker = 0;
  std::shared_ptr<asio::ssl::context> tls;  // set for TLS listeners
};

// One TCP connection, on one worker. Reads are framed by StreamFramer; writes are queued.
class Transport::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Transport& t, tcp::socket socket, uint32_t id, size_t worker,
             std::shared_ptr<asio::ssl::context> tls = nullptr)
      : t_(t),
        timer_(socket.get_executor()),
        id_(id),
        worker_(worker),
        framer_(t.options_.max_message),
        tls_ctx_(std::move(tls)) {
    if (tls_ctx_) {
      tls_ = std::make_unique<asio::ssl::stream<tcp::socket>>(std::move(socket), *tls_ctx_);
    } else {
      socket_.emplace(std::move(socket));
    }
  }

  // The TCP socket under either kind of connection.
  tcp::socket& sock() { return tls_ ? tls_->next_layer() : *socket_; }

  // Incoming TLS: the handshake comes first, bounded by the message timeout.
  void start_server() {
    if (!tls_) {
      start_read();
      return;
    }
    arm_timer();
    auto self = shared_from_this();
    tls_->async_handshake(asio::ssl::stream_base::server, [self](boost::system::error_code ec) {
      if (ec) {
        ++self->t_.counters_.tls_failures;
        self->close();
        return;
      }
      self->start_read();
    });
  }

  void start_read() {
    arm_timer();
    read_more();
  }

  // Outgoing: the messages written before it is open wait in the queue; if it never opens,
  // each is reported to its sender with what went wrong.
  void connect(tcp::endpoint to) {
    connecting_ = true;
    peer_.proto = tls_ ? Proto::Tls : Proto::Tcp;
    peer_.addr = to.address();
    peer_.port = to.port();
    peer_.connection = id_;
    auto self = shared_from_this();
    // One bound for the connect and the handshake; start_read() re-arms the timer for idling.
    timer_.expires_after(t_.options_.connect_timeout);
    timer_.async_wait([self](boost::system::error_code ec) {
      if (ec || !self->connecting_) return;
      self->close(self->handshaking_
                      ? "TLS handshake with " + self->peer_.to_string() + " timed out"
                      : "TCP connect to " + self->peer_.to_string() + " timed out");
    });
    sock().async_connect(to, [self](boost::system::error_code ec) {
      if (self->closed_) return;
      if (ec) {
        self->close(connect_error(self->peer_, ec));
        return;
      }
      self->set_peer();
      if (!self->tls_) {
        self->connecting_ = false;
        self->start_read();
        self->flush();
        return;
      }
      self->handshaking_ = true;
      self->tls_->async_handshake(asio::ssl::stream_base::client,
                                  [self](boost::system::error_code e) {
                                    if (self->closed_) return;
                                    if (e) {
                                      ++self->t_.counters_.tls_failures;
                                      self->close(self->handshake_error(e));
                                      return;
                                    }
                                    self->handshaking_ = false;
                                    self->connecting_ = false;
                                    self->start_read();
                                    self->flush();
                                  });
    });
  }

  void set_peer() {
    boost::system::error_code ec;
    auto ep = sock().remote_endpoint(ec);
    peer_.proto = tls_ ? Proto::Tls : Proto::Tcp;
    peer_.addr = ep.address();
    peer_.port = ep.port();
    peer_.connection = id_;
  }

  // `failed` hears of it when the bytes are not written (the connection never opened or died).
  void write(std::string bytes, SendFailed failed = {}) {
    queue_.push_back({std::move(bytes), std::move(failed)});
    if (!connecting_ && queue_.size() == 1) flush();
  }

  // `why` names what went wrong for the senders of what is still queued.
  void close(std::string_view why = {}) {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ec;
    timer_.cancel();
    sock().shutdown(tcp::socket::shutdown_both, ec);
    sock().close(ec);
    t_.forget(id_, worker_, address_key(), peer_key_);
    report_unwritten(why);
  }

  std::string address_key() const { return peer_.addr.to_string(); }
  uint32_t id() const { return id_; }
  const Peer& peer() const { return peer_; }
  void set_peer_key(std::string k) { peer_key_ = std::move(k); }

 private:
  struct Outgoing {
    std::string bytes;
    SendFailed failed;
  };

  static std::string connect_error(const Peer& to, boost::system::error_code ec) {
    const std::string what = "TCP connect to " + to.to_string();
    if (ec == asio::error::connection_refused) return what + " refused";
    if (ec == asio::error::timed_out) return what + " timed out";
    return what + " failed: " + ec.message();
  }

  std::string handshake_error(boost::system::error_code ec) {
    // A certificate that does not verify is what an operator must see, not "handshake failure"
    // (with verification off the result is recorded too, but did not fail the handshake).
    SSL* ssl = tls_->native_handle();
    const long verify = SSL_get_verify_result(ssl);
    if ((SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) && verify != X509_V_OK) {
      return std::string("TLS certificate verification failed: ") +
             X509_verify_cert_error_string(verify) + " (" + peer_.to_string() + ")";
    }
    return "TLS handshake with " + peer_.to_string() + " failed: " + ec.message();
  }

  // Every queued message is one its sender still waits for: each hears why, once. Not when the
  // transport is closing (its users are going too).
  void report_unwritten(std::string_view why) {
    if (t_.closed_) return;
    const std::string text =
        why.empty() ? "connection to " + peer_.to_string() + " closed" : std::string(why);
    for (auto& o : queue_) {
      if (!o.failed) continue;
      ++t_.counters_.send_failures;
      auto failed = std::move(o.failed);
      o.failed = nullptr;
      failed(text);
    }
  }

  void flush() {
    if (queue_.empty() || closed_ || connecting_) return;
    auto self = shared_from_this();
    auto done = [self](boost::system::error_code ec, size_t) {
      if (ec) {
        self->close("connection to " + self->peer_.to_string() + " lost: " + ec.message());
        return;
      }
      self->queue_.pop_front();
      if (self->queue_.empty() && self->linger_when_flushed_) {
        self->linger();
        return;
      }
      self->flush();
    };
    if (tls_) {
      asio::async_write(*tls_, asio::buffer(queue_.front().bytes), std::move(done));
    } else {
      asio::async_write(*socket_, asio::buffer(queue_.front().bytes), std::move(done));
    }
  }

  void arm_timer() {
    // Idle connections close after idle_timeout; a started, unfinished message after
    // message_timeout from its first byte.
    const auto now = std::chrono::steady_clock::now();
    if (framer_.buffered() == 0) {
      partial_since_.reset();
      timer_.expires_at(now + t_.options_.idle_timeout);
    } else {
      if (!partial_since_) partial_since_ = now;
      timer_.expires_at(*partial_since_ + t_.options_.message_timeout);
    }
    auto self = shared_from_this();
    timer_.async_wait([self](boost::system::error_code ec) {
      if (ec) return;  // re-armed or cancelled
      if (self->framer_.buffered() > 0) ++self->t_.counters_.connections_cut;
      self->close();
    });
  }

  void on_read(boost::system::error_code ec, size_t n) {
    if (ec || closed_) {
      close();
      return;
    }
    if (draining_) {
      // After a framing error: swallow what the peer still sends until it closes or the
      // linger timer fires, so that our answer is read instead of lost to a reset.
      read_more();
      return;
    }
    framer_.feed(std::string_view(buf_.data(), n));
    while (!closed_) {
      auto ev = framer_.next();
      using Kind = sip::StreamFramer::Kind;
      if (ev.kind == Kind::NeedMore) break;
      if (ev.kind == Kind::KeepAlive) {
        ++t_.counters_.keepalives;
        write("\r\n");  // RFC 5626 §4.4.1: answer a ping with a pong
        continue;
      }
      if (ev.kind == Kind::Pong) continue;
      if (ev.kind == Kind::Error) {
        // Framing is lost: answer what we can, then close (RFC 4475 §3.1.2.3, §3.3.9).
        ++t_.counters_.parse_errors;
        ++t_.counters_.connections_cut;
        if (t_.on_malformed_) t_.on_malformed_(peer_);
        std::string answer = sip::build_error_response(framer_.pending(), ev.error,
                                                       {peer_.addr.to_string(), peer_.port});
        if (!answer.empty()) {
          t_.log(Direction::Send, peer_, answer, true, worker_, id_);
          write(std::move(answer));
        }
        // Let the queued answer go out, then half-close.
        linger_when_flushed_ = true;
        if (queue_.empty()) linger();
        return;
      }
      t_.inbound(ev.bytes, peer_, /*stream=*/true, worker_, id_);
    }
    start_read();
  }

  void read_more() {
    auto self = shared_from_this();
    auto done = [self](boost::system::error_code ec, size_t n) { self->on_read(ec, n); };
    if (tls_) {
      tls_->async_read_some(asio::buffer(buf_), std::move(done));
    } else {
      socket_->async_read_some(asio::buffer(buf_), std::move(done));
    }
  }

  // Half-close: our side is done, the peer's remaining bytes are read and dropped for a while.
  void linger() {
    draining_ = true;
    boost::system::error_code ec;
    sock().shutdown(tcp::socket::shutdown_send, ec);
    timer_.expires_after(std::chrono::seconds(2));
    auto self = shared_from_this();
    timer_.async_wait([self](boost::system::error_code e) {
      if (!e) self->close();
    });
    read_more();
  }

  Transport& t_;
  std::optional<tcp::socket> socket_;  // plain TCP
  std::unique_ptr<asio::ssl::stream<tcp::socket>> tls_;
  asio::steady_timer timer_;
  uint32_t id_;
  size_t worker_;
  sip::StreamFramer framer_;
  std::array<char, 16384> buf_{};
  std::deque<Outgoing> queue_;
  std::optional<std::chrono::steady_clock::time_point> partial_since_;
  Peer peer_;
  std::string peer_key_;
  bool connecting_ = false;
  bool handshaking_ = false;
  bool closed_ = false;
  bool draining_ = false;
  bool linger_when_flushed_ = false;
  std::shared_ptr<asio::ssl::context> tls_ctx_;
};

Transport::Transport(Workers& workers, TransportOptions options, TrnLog* log, Handler handler)
    : workers_(workers),
      options_(options),
      log_(log),
      handler_(std::move(handler)),
      conns_(workers.size()) {}

Transport::~Transport() = default;

void Transport::listen(Proto proto, const std::string& addr, uint16_t port, const TlsFiles& tls) {
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(addr, ec);
  if (ec) throw std::runtime_error("bad listen address " + addr);
  const std::string where =
      std::string(proto_name(proto)) + " " + addr + ":" + std::to_string(port);
  if (proto == Proto::Udp) {
    auto l = std::make_unique<UdpListener>();
    l->index = ports_.size();
    uint16_t bound = port;
    for (size_t w = 0; w < workers_.size(); ++w) {
      auto s = std::make_unique<udp::socket>(workers_.context(w));
      s->open(ip.is_v6() ? udp::v6() : udp::v4(), ec);
      if (!ec) s->set_option(asio::socket_base::reuse_address(true), ec);
      if (!ec) {
        int one = 1;
        ::setsockopt(s->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        s->bind(udp::endpoint(ip, bound), ec);
      }
      if (ec) throw std::runtime_error("cannot listen on " + where + ": " + ec.message());
      bound = s->local_endpoint().port();  // the other workers join the same (ephemeral) port
      s->set_option(asio::socket_base::receive_buffer_size(4 << 20), ec);
      l->sockets.push_back(std::move(s));
      l->receives.push_back(std::make_unique<UdpListener::Receive>());
    }
    ports_.push_back(bound);
    udp_.push_back(std::move(l));
    for (size_t w = 0; w < workers_.size(); ++w)
      start_udp_receive(*udp_.back(), w);
    return;
  }
  auto l = std::make_unique<TcpListener>();
  if (proto == Proto::Tls) {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                     asio::ssl::context::no_tlsv1_1);
    ctx->use_certificate_chain_file(tls.cert, ec);
    if (!ec) ctx->use_private_key_file(tls.key, asio::ssl::context::pem, ec);
    if (!ec && !tls.ca.empty()) {
      ctx->load_verify_file(tls.ca, ec);
      // With a CA, clients must present a certificate it signed (mutual TLS).
      if (!ec) {
        ctx->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
      }
    }
    if (ec) {
      throw std::runtime_error("cannot load the TLS certificate or key for " + where + ": " +
                               ec.message());
    }
    l->tls = std::move(ctx);
  }
  l->index = ports_.size();
  l->acceptor = std::make_unique<tcp::acceptor>(workers_.context(0));
  l->acceptor->open(ip.is_v6() ? tcp::v6() : tcp::v4(), ec);
  if (!ec) l->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) l->acceptor->bind(tcp::endpoint(ip, port), ec);
  if (!ec) l->acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("cannot listen on " + where + ": " + ec.message());
  ports_.push_back(l->acceptor->local_endpoint().port());
  tcp_.push_back(std::move(l));
  accept(*tcp_.back());
}

uint16_t Transport::local_port(size_t listener) const {
  return ports_.at(listener);
}

void Transport::start_udp_receive(UdpListener& l, size_t worker) {
  // Each worker's io_context runs on one thread: the wait is queued again before that thread
  // polls, so a datagram that arrives after the drain still wakes it (epoll is edge-triggered).
  l.sockets[worker]->async_wait(udp::socket::wait_read,
                                [this, &l, worker](boost::system::error_code ec) {
                                  if (closed_ || ec == asio::error::operation_aborted) return;
                                  drain_udp(l, worker);
                                });
}

namespace {

bool endpoint_of(const sockaddr_storage& ss, asio::ip::address& addr, uint16_t& port) {
  if (ss.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(ss);
    addr = asio::ip::address_v4(ntohl(in.sin_addr.s_addr));
    port = ntohs(in.sin_port);
    return true;
  }
  if (ss.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(ss);
    asio::ip::address_v6::bytes_type b;
    std::memcpy(b.data(), in6.sin6_addr.s6_addr, 16);
    addr = asio::ip::address_v6(b, in6.sin6_scope_id);
    port = ntohs(in6.sin6_port);
    return true;
  }
  return false;
}

}  // namespace

void Transport::drain_udp(UdpListener& l, size_t worker) {
  auto& r = *l.receives[worker];
  const int fd = l.sockets[worker]->native_handle();
  using R = UdpListener::Receive;
  // A few batches, then the rest of the worker's queue gets a turn (timers, other sockets).
  for (int round = 0; round < 8; ++round) {
    for (size_t i = 0; i < R::kBatch; ++i) {
      r.iov[i] = {r.buf.data() + i * R::kSlot, R::kSlot};
      r.msgs[i] = {};
      r.msgs[i].msg_hdr.msg_name = &r.from[i];
      r.msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      r.msgs[i].msg_hdr.msg_iov = &r.iov[i];
      r.msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int n = ::recvmmsg(fd, r.msgs.data(), unsigned(R::kBatch), MSG_DONTWAIT, nullptr);
    if (n <= 0) {  // drained (EAGAIN), or an error the next wait reports
      start_udp_receive(l, worker);
      return;
    }
    for (int i = 0; i < n && !closed_; ++i) {
      Peer from;
      from.proto = Proto::Udp;
      from.listener = uint16_t(l.index);
      if (!endpoint_of(r.from[size_t(i)], from.addr, from.port)) continue;
      inbound(std::string_view(r.buf.data() + size_t(i) * R::kSlot, r.msgs[size_t(i)].msg_len),
              from, /*stream=*/false, worker, 0);
    }
    if (closed_) return;
    if (size_t(n) < R::kBatch) {
      start_udp_receive(l, worker);
      return;
    }
  }
  if (closed_) return;
  // Still busy: carry on after the others, then wait again once drained.
  asio::post(workers_.context(worker), [this, &l, worker] {
    if (!closed_) drain_udp(l, worker);
  });
}

Transport::Stamped Transport::stamp(Direction d, const Peer& peer, size_t worker,
                                    uint32_t connection) {
  Stamped s;
  if (!log_ && !index_ && !tap_) return s;
  PacketRecord& r = s.record;
  r.worker = uint16_t(worker);
  r.connection = connection;
  r.direction = d;
  r.proto = std::string(proto_name(peer.proto));
  r.peer = peer.to_string();
  if (log_) {
    s.ticket = log_->open(r);
  } else {
    r.counter = packet_counter_++;
    r.time = std::chrono::system_clock::now();
  }
  return s;
}

void Transport::file(Stamped s, const Peer& peer, std::string_view bytes, bool ok) {
  if (!log_ && !index_ && !tap_) return;
  PacketRecord& r = s.record;
  r.ok = ok;
  r.packet = std::string(bytes);
  if (index_) {
    const auto ids = sip::scan_ids(bytes);
    index_->add(ids.call_id, ids.cseq_method, r);
  }
  if (tap_) tap_(r, peer);
  if (log_) log_->fill(s.ticket, std::move(r));
}

void Transport::note(std::string_view call_id, std::string_view lane, std::string text) {
  if (!index_ || call_id.empty()) return;
  PacketRecord r;
  r.direction = Direction::Recv;
  r.proto = std::string(lane);
  r.peer = std::string(lane);
  r.packet = std::move(text);
  if (log_) {
    log_->stamp(r);
  } else {
    r.counter = packet_counter_++;
    r.time = std::chrono::system_clock::now();
  }
  index_->add(call_id, {}, r);
}

void Transport::log(Direction d, const Peer& peer, std::string_view bytes, bool ok, size_t worker,
                    uint32_t connection) {
  file(stamp(d, peer, worker, connection), peer, bytes, ok);
}

void Transport::inbound(std::string_view bytes, const Peer& from, bool stream, size_t worker,
                        uint32_t connection) {
  ++counters_.received;
  if (drop_ && drop_(from.addr, bytes, worker)) {
    ++counters_.dropped;
    if (log_) {
      const int64_t second = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::steady_clock::now().time_since_epoch())
                                 .count();
      if (banned_log_second_.exchange(second) != second) banned_logged_ = 0;
      if (banned_logged_++ < 20) {
        PacketRecord r;
        r.worker = uint16_t(worker);
        r.connection = connection;
        r.direction = Direction::Recv;
        r.proto = std::string(proto_name(from.proto));
        r.peer = from.to_string();
        r.banned = true;
        log_->stamp_and_write(std::move(r));
      }
    }
    return;
  }
  log(Direction::Recv, from, bytes, true, worker, connection);
  std::string rewritten;
  if (rewrite_in_) {
    rewritten.assign(bytes);
    if (rewrite_in_(rewritten)) bytes = rewritten;
  }
  sip::ParseOptions po;
  po.framing = stream ? sip::Framing::Stream : sip::Framing::Datagram;
  po.max_size = options_.max_message;
  auto parsed = sip::parse_message(bytes, po);
  if (!parsed) {
    ++counters_.parse_errors;
    if (on_malformed_) on_malformed_(from);
    // Answer the source, whatever the Via says; nothing for discards and responses.
    std::string answer =
        sip::build_error_response(bytes, parsed.error(), {from.addr.to_string(), from.port});
    if (!answer.empty()) send(from, std::move(answer));
    return;
  }
  if (parsed->is_request()) parsed->set_source(from.addr.to_string(), from.port);
  const size_t owner = workers_.worker_for(parsed->call_id());
  if (owner == worker) {
    handler_(worker, std::move(*parsed), from);
    return;
  }
  workers_.post(owner, [this, owner, m = std::move(*parsed), from]() mutable {
    handler_(owner, std::move(m), from);
  });
}

std::string fit_request_to_transport(const sip::Message& request, Peer& to, uint16_t tcp_port,
                                     size_t threshold) {
  const std::string_view bytes = request.bytes();
  if (to.proto != Proto::Udp || tcp_port == 0 || bytes.size() <= threshold ||
      !request.is_request()) {
    return std::string(bytes);
  }
  const sip::Via& via = request.top_via();
  if (!text::iequals(via.transport, "UDP")) return std::string(bytes);
  // sent-by is host[:port] right after the transport and its whitespace.
  const size_t transport_at = size_t(via.transport.data() - bytes.data());
  const size_t host_end = size_t(via.host.data() - bytes.data()) + via.host.size();
  size_t sent_by_end = host_end;
  if (sent_by_end < bytes.size() && bytes[sent_by_end] == ':') {
    ++sent_by_end;
    while (sent_by_end < bytes.size() && text::is_digit(bytes[sent_by_end]))
      ++sent_by_end;
  }
  std::string out;
  out.reserve(bytes.size() + 8);
  out.append(bytes.substr(0, transport_at)).append("TCP");
  out.append(bytes.substr(transport_at + via.transport.size(),
                          host_end - transport_at - via.transport.size()));
  out.append(":").append(std::to_string(tcp_port));
  out.append(bytes.substr(sent_by_end));
  to.proto = Proto::Tcp;
  to.connection = 0;
  return out;
}

double Transport::udp_backlog(size_t worker) const {
  double fullest = 0;
  for (const auto& l : udp_) {
    if (worker >= l->sockets.size() || !l->sockets[worker]->is_open()) continue;
    uint32_t mem[SK_MEMINFO_VARS] = {};
    socklen_t len = sizeof(mem);
    if (getsockopt(l->sockets[worker]->native_handle(), SOL_SOCKET, SO_MEMINFO, mem, &len) != 0 ||
        mem[SK_MEMINFO_RCVBUF] == 0)
      continue;
    fullest = std::max(fullest, double(mem[SK_MEMINFO_RMEM_ALLOC]) / mem[SK_MEMINFO_RCVBUF]);
  }
  return fullest;
}

bool Transport::send(const Peer& to, std::string bytes, SendFailed failed) {
  if (closed_) return false;
  if (rewrite_out_) rewrite_out_(bytes);
  // UDP knows at once: send_to's result is the answer.
  return to.proto == Proto::Udp ? send_udp(to, std::move(bytes))
                                : send_tcp(to, std::move(bytes), std::move(failed));
}

bool Transport::send_udp(const Peer& to, std::string bytes) {
  if (udp_.empty()) return false;
  // Find the UDP listener: the one named, else the first.
  UdpListener* l = nullptr;
  for (auto& u : udp_) {
    if (u->index == to.listener) l = u.get();
  }
  if (!l) l = udp_.front().get();
  const int cur = Workers::current();
  const size_t w = cur >= 0 && size_t(cur) < l->sockets.size() ? size_t(cur) : 0;
  // Stamped before the system call: the answer to this packet may be received and filed by
  // another worker before send_to returns, and must not be shown before it.
  Stamped stamped = stamp(Direction::Send, to, w, 0);
  boost::system::error_code ec;
  l->sockets[w]->send_to(asio::buffer(bytes), udp::endpoint(to.addr, to.port), 0, ec);
  const bool ok = !ec;
  ++(ok ? counters_.sent : counters_.send_failures);
  file(std::move(stamped), to, bytes, ok);
  return ok;
}

std::shared_ptr<asio::ssl::context> Transport::client_tls(bool verify) {
  std::lock_guard lock(admission_mu_);
  auto& slot = client_tls_[verify ? 1 : 0];
  if (!slot) {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                     asio::ssl::context::no_tlsv1_1);
    boost::system::error_code ec;
    if (options_.tls_ca.empty()) {
      ctx->set_default_verify_paths(ec);
    } else {
      ctx->load_verify_file(options_.tls_ca, ec);
    }
    ctx->set_verify_mode(verify ? asio::ssl::verify_peer : asio::ssl::verify_none);
    slot = std::move(ctx);
  }
  return slot;
}

uint32_t Transport::next_id(size_t worker) {
  // The id names its worker (id % workers == worker), so a send finds the right thread.
  const uint32_t n = next_connection_.fetch_add(1);
  return n * uint32_t(workers_.size()) + uint32_t(worker);
}

bool Transport::send_tcp(const Peer& to, std::string bytes, SendFailed failed) {
  const int cur = Workers::current();
  const size_t owner =
      to.connection ? size_t(to.connection % workers_.size()) : (cur >= 0 ? size_t(cur) : 0);
  if (failed) {
    // The report goes back to the sender's worker (its transactions live there), posted: the
    // sender hears of it on a fresh stack, never inside a connection's handler.
    const size_t home = cur >= 0 ? size_t(cur) : owner;
    failed = [this, home, f = std::move(failed)](std::string_view why) {
      workers_.post(home, [f, why = std::string(why)] { f(why); });
    };
  }
  if (cur >= 0 && size_t(cur) == owner) {
    return deliver_tcp(owner, to, std::move(bytes), std::move(failed));
  }
  workers_.post(owner, [this, owner, to, b = std::move(bytes), f = std::move(failed)]() mutable {
    // send() has returned true already: a refusal here is reported like a failed connection.
    SendFailed report = f;
    if (!deliver_tcp(owner, to, std::move(b), std::move(f)) && report && !closed_) {
      report(to.connection ? "connection to " + to.to_string() + " is gone"
                           : "no connection to " + to.to_string() + ": connection limit reached");
    }
  });
  return true;
}

// On the owning worker: the named connection, else one to addr:port, else a new one.
bool Transport::deliver_tcp(size_t worker, const Peer& to, std::string bytes, SendFailed failed) {
  auto& table = conns_[worker];
  std::shared_ptr<Connection> c;
  if (to.connection) {
    auto it = table.by_id.find(to.connection);
    if (it != table.by_id.end()) c = it->second;
  }
  // Verification of the peer is on for outgoing connections unless the transport or the
  // account turned it off; an unverified connection is never reused for a verified send.
  const bool verify = to.proto == Proto::Tls && options_.tls_verify && to.tls_verify;
  const std::string key =
      to.proto == Proto::Tls && !verify ? to.to_string() + "#unverified" : to.to_string();
  if (!to.connection) {
    if (auto it = table.by_peer.find(key); it != table.by_peer.end()) {
      c = table.by_id.at(it->second);
    }
  }
  if (!c && !to.connection && admit(to.addr, false, worker)) {
    const uint32_t id = next_id(worker);
    c = std::make_shared<Connection>(*this, tcp::socket(workers_.context(worker)), id, worker,
                                     to.proto == Proto::Tls ? client_tls(verify) : nullptr);
    c->set_peer_key(key);
    table.by_id[id] = c;
    table.by_peer[key] = id;
    c->connect(tcp::endpoint(to.addr, to.port));
  }
  if (!c) {
    ++counters_.send_failures;
    log(Direction::Send, to, bytes, false, worker, to.connection);
    return false;  // the connection a request came on is gone, or over the limits
  }
  ++counters_.sent;
  log(Direction::Send, to, bytes, true, worker, c->id());
  c->write(std::move(bytes), std::move(failed));
  return true;
}

void Transport::accept(TcpListener& l) {
  const size_t w = l.next_worker++ % workers_.size();
  auto socket = std::make_shared<tcp::socket>(workers_.context(w));
  l.acceptor->async_accept(*socket, [this, &l, socket, w](boost::system::error_code ec) {
    if (closed_) return;
    if (!ec) {
      boost::system::error_code e2;
      const auto remote = socket->remote_endpoint(e2);
      if (e2 || !admit(remote.address(), true, 0)) {
        ++counters_.connections_refused;
        socket->close(e2);
      } else {
        auto c = std::make_shared<Connection>(*this, std::move(*socket), next_id(w), w, l.tls);
        workers_.post(w, [this, c, w] { adopt(c, w); });
      }
    }
    accept(l);
  });
}

void Transport::adopt(std::shared_ptr<Connection> c, size_t worker) {
  c->set_peer();
  conns_[worker].by_id[c->peer().connection] = c;
  c->start_server();
}

bool Transport::admit(const asio::ip::address& addr, bool inbound, size_t worker) {
  if (inbound && drop_ && drop_(addr, {}, worker)) {
    ++counters_.dropped;
    return false;
  }
  const std::string address_key = addr.to_string();
  std::lock_guard lock(admission_mu_);
  size_t& n = per_address_[address_key];
  if (total_connections_ >= options_.max_connections || n >= options_.max_connections_per_address) {
    if (n == 0) per_address_.erase(address_key);
    return false;
  }
  ++n;
  ++total_connections_;
  return true;
}

void Transport::forget(uint32_t id, size_t worker, const std::string& address_key,
                       const std::string& peer_key) {
  auto& table = conns_[worker];
  table.by_id.erase(id);
  if (!peer_key.empty()) table.by_peer.erase(peer_key);
  std::lock_guard lock(admission_mu_);
  auto it = per_address_.find(address_key);
  if (it != per_address_.end() && --it->second == 0) per_address_.erase(it);
  if (total_connections_ > 0) --total_connections_;
}

size_t Transport::connections() const {
  std::lock_guard lock(admission_mu_);
  return total_connections_;
}

void Transport::close() {
  closed_ = true;
  for (size_t w = 0; w < workers_.size(); ++w) {
    workers_.post(w, [this, w] {
      auto conns = conns_[w].by_id;
      for (auto& [id, c] : conns)
        c->close();
      for (auto& l : udp_) {
        boost::system::error_code ec;
        l->sockets[w]->close(ec);
      }
      if (w == 0) {
        for (auto& l : tcp_) {
          boost::system::error_code ec;
          l->acceptor->close(ec);
        }
      }
    });
  }
}

}  // namespace esg::transport
