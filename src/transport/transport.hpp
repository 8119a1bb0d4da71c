#pragma once
// SIP over UDP and TCP (RFC 3261 §18, RFC 3581, RFC 5626 keep-alives) on the worker threads.
//
// UDP: each listener has one socket per worker (SO_REUSEPORT), so the kernel spreads datagrams
// and no socket is shared. TCP: a connection lives on the worker that accepted or opened it.
// A message is parsed where it arrived and handed to the worker its Call-ID belongs to. A
// request that does not parse is answered from its readable lines when it can be (400, 505...);
// responses always go back to the source address and port, whatever Via says (CONTRACTS.md).

#include <atomic>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "sip/message.hpp"
#include "transport/trn_log.hpp"
#include "transport/workers.hpp"

namespace esg::transport {

enum class Proto : uint8_t { Udp, Tcp, Tls };
std::string_view proto_name(Proto p);

struct Peer {
  Proto proto = Proto::Udp;
  boost::asio::ip::address addr;
  uint16_t port = 0;
  uint32_t connection = 0;        // TCP/TLS: the connection (0: open or reuse one to addr:port)
  uint16_t listener = 0;          // UDP: the listener whose socket received or sends
  bool tls_verify = true;         // outgoing TLS: verify the peer (an account may turn it off)
  std::string to_string() const;  // "A:P", "[A]:P" for IPv6
};

struct TransportOptions {
  size_t max_message = 65535;
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(5)};  // TCP with no traffic
  // A TCP peer that starts a message and does not finish it in this time is cut off
  // (RFC 4475 §3.1.2.2: "close the connection after a bounded timeout").
  std::chrono::milliseconds message_timeout{std::chrono::seconds(30)};
  size_t max_connections = 10000;
  size_t max_connections_per_address = 64;
  // Opening a connection (TCP connect and, for TLS, the handshake) gives up after this: every
  // wait has a timer, and the kernel's own SYN retries last minutes.
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};
  // Outgoing TLS: the CA file that signs our peers (empty: the system's), and whether to verify.
  std::string tls_ca;
  bool tls_verify = true;
};

struct TlsFiles {
  std::string cert;  // PEM chain
  std::string key;   // PEM private key
  std::string ca;    // when set, clients must present a certificate it signed
};

// RFC 3261 §18.1.1: "If a request is within 200 bytes of the path MTU, or if it is larger than
// 1300 bytes and the path MTU is unknown, the request MUST be sent using ... TCP", and the top
// Via must then say TCP. The caller picks the channel of its client transaction with this before
// starting it: when `request` is bound for UDP (`to`), is over `threshold` and we have a TCP
// listener (`tcp_port`, 0: none), `to` becomes TCP and the returned bytes carry the rewritten
// Via (sent-by port included); otherwise the bytes are the request's own.
inline constexpr size_t kUdpMtuThreshold = 1300;
std::string fit_request_to_transport(const sip::Message& request, Peer& to, uint16_t tcp_port,
                                     size_t threshold = kUdpMtuThreshold);

class Transport {
 public:
  // Called on the worker that owns the message's Call-ID.
  using Handler = std::function<void(size_t worker, sip::Message&& message, const Peer& from)>;

  struct Counters {
    std::atomic<uint64_t> received{0};
    std::atomic<uint64_t> sent{0};
    std::atomic<uint64_t> send_failures{0};
    std::atomic<uint64_t> parse_errors{0};
    std::atomic<uint64_t> keepalives{0};
    std::atomic<uint64_t> connections_refused{0};
    std::atomic<uint64_t> connections_cut{0};  // size or time limits
    std::atomic<uint64_t> tls_failures{0};     // handshakes that failed
    std::atomic<uint64_t> dropped{0};          // packets and connections the filter refused
  };
  // Address-level filter (bans, address-only border rules, flood limit): true drops a datagram
  // or stream message before it is parsed, and refuses a connection (empty `bytes`), silently.
  // Set before start(); called on every packet, on the receiving worker (`worker`).
  using DropFilter = std::function<bool(const boost::asio::ip::address& addr,
                                        std::string_view bytes, size_t worker)>;
  void set_drop(DropFilter drop) { drop_ = std::move(drop); }
  // Address rewriting (SIP-ALG): `in` on every received message after the drop filter and
  // before parsing (the trn log keeps what was on the wire), `out` on every message before it
  // is sent and logged. Each returns true when it changed the text. Set before start.
  using Rewrite = std::function<bool(std::string& message)>;
  void set_rewrite(Rewrite in, Rewrite out) {
    rewrite_in_ = std::move(in);
    rewrite_out_ = std::move(out);
  }
  // Told of every packet that does not parse (bans count malformed requests). Set before start.
  void set_on_malformed(std::function<void(const Peer& from)> f) { on_malformed_ = std::move(f); }

  Transport(Workers& workers, TransportOptions options, TrnLog* log, Handler handler);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Binds a listener (start-up: throws std::runtime_error naming the address on failure).
  // Port 0 binds an ephemeral port; local_port() tells which.
  void listen(Proto proto, const std::string& addr, uint16_t port, const TlsFiles& tls = {});
  uint16_t local_port(size_t listener) const;

  // Every packet sent or received is also filed under its Call-ID here (call diagrams), whether
  // or not the trn log is on. Set before start; nullptr: none.
  void set_packet_index(SharedPacketIndex* index) { index_ = index; }
  // Something that happened to call `call_id` outside SIP (a Telegram call's states and media
  // events, issue 22), filed in the packet index with proto `lane` and `text` as its packet, in
  // the one order of all packets (the trn log's sequence, without a line in the log), so that
  // the call's diagram shows it exactly where it happened. Thread-safe; nothing without an index.
  void note(std::string_view call_id, std::string_view lane, std::string text);
  // Told of every packet sent or received (HEP export), on the worker. Set before start.
  using Tap = std::function<void(const PacketRecord& record, const Peer& peer)>;
  void set_tap(Tap tap) { tap_ = std::move(tap); }

  // Told that bytes send() accepted for TCP/TLS never reached the peer, and why: the
  // connection could not be opened ("TCP connect to 127.0.0.1:5999 refused", timed out, "TLS
  // certificate verification failed: ..."), or was lost before they were written. Each message
  // queued on the connection is reported. Runs at most once per send, from a fresh stack on the
  // worker that called send() (the connection's worker when send() came from elsewhere); never
  // after close().
  using SendFailed = std::function<void(std::string_view why)>;
  // Sends `bytes` to `to`: UDP from the listener's socket, TCP over the connection (or one to
  // addr:port, reused or opened). Thread-safe. False when it could not be handed to the network
  // (then `failed` is not called).
  bool send(const Peer& to, std::string bytes, SendFailed failed = {});

  // How full worker `worker`'s fullest UDP receive queue is, 0..1 (issue 24's overload
  // control): when a worker falls behind, the backlog of a datagram transport waits in the
  // kernel's socket buffers, where its loop's lag does not show it, until the kernel drops.
  // On that worker (its sockets are closed there).
  double udp_backlog(size_t worker) const;

  void close();  // stops accepting and closes every socket (call with the workers running)
  const Counters& counters() const { return counters_; }
  size_t connections() const;

 private:
  struct UdpListener;
  struct TcpListener;
  class Connection;
  friend class Connection;

  void start_udp_receive(UdpListener& l, size_t worker);
  void drain_udp(UdpListener& l, size_t worker);
  void inbound(std::string_view bytes, const Peer& from, bool stream, size_t worker,
               uint32_t connection);
  // A packet's time and place in the one order of all workers' packets (the trn log's sequence
  // when it is on), taken when esg decides to send it or has received it; file() gives it to
  // the trn log, the packet index and the tap once the outcome is known.
  struct Stamped {
    PacketRecord record;
    TrnLog::Ticket ticket = 0;
  };
  Stamped stamp(Direction d, const Peer& peer, size_t worker, uint32_t connection);
  void file(Stamped stamped, const Peer& peer, std::string_view bytes, bool ok);
  // stamp() and file() at once: a received packet, or a send whose outcome is already known.
  void log(Direction d, const Peer& peer, std::string_view bytes, bool ok, size_t worker,
           uint32_t connection);
  bool send_udp(const Peer& to, std::string bytes);
  bool send_tcp(const Peer& to, std::string bytes, SendFailed failed);
  bool deliver_tcp(size_t worker, const Peer& to, std::string bytes, SendFailed failed);
  uint32_t next_id(size_t worker);
  std::shared_ptr<boost::asio::ssl::context> client_tls(bool verify);
  void accept(TcpListener& l);
  void adopt(std::shared_ptr<Connection> c, size_t worker);
  void forget(uint32_t id, size_t worker, const std::string& address_key,
              const std::string& peer_key);
  // Counts a connection against the limits; `inbound` ones pass the drop filter first.
  bool admit(const boost::asio::ip::address& addr, bool inbound, size_t worker);

  Workers& workers_;
  TransportOptions options_;
  Tap tap_;
  TrnLog* log_;
  SharedPacketIndex* index_ = nullptr;
  Handler handler_;
  DropFilter drop_;
  Rewrite rewrite_in_, rewrite_out_;
  std::function<void(const Peer&)> on_malformed_;
  // The trn log gets at most this many "BANNED" lines per second: a flood must not fill the disk.
  std::atomic<int64_t> banned_log_second_{0};
  std::atomic<uint32_t> banned_logged_{0};
  Counters counters_;
  std::vector<std::unique_ptr<UdpListener>> udp_;
  std::vector<std::unique_ptr<TcpListener>> tcp_;
  std::vector<uint16_t> ports_;  // per listener, in listen() order
  std::atomic<uint32_t> next_connection_{1};
  std::atomic<uint64_t> packet_counter_{0};
  // Per worker: its connections, and outgoing ones by "addr:port" for reuse.
  struct WorkerConnections {
    std::unordered_map<uint32_t, std::shared_ptr<Connection>> by_id;
    std::unordered_map<std::string, uint32_t> by_peer;
  };
  std::vector<WorkerConnections> conns_;
  mutable std::mutex admission_mu_;  // connection counts: touched on accept and close only
  std::unordered_map<std::string, size_t> per_address_;
  size_t total_connections_ = 0;
  std::atomic<bool> closed_{false};
  std::shared_ptr<boost::asio::ssl::context> client_tls_[2];  // [verify]
};

}  // namespace esg::transport
