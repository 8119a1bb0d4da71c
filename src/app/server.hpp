#pragma once
// The running daemon: workers, the transaction log, the transport, one transaction layer per
// worker, and the core that answers what reaches it. Until routing exists (the calls issue),
// the core answers out-of-dialog OPTIONS 200 itself (providers use them as keep-alives) and
// every other request with a final response that says no route is configured.

#include <atomic>
#include <memory>
#include <vector>

#include "accounts/manager.hpp"
#include "api/http_server.hpp"
#include "app/config.hpp"
#include "store/store.hpp"
#include "transport/dns.hpp"
#include "transport/transport.hpp"
#include "txn/asio_timers.hpp"
#include "txn/layer.hpp"

namespace esg::app {

class Server {
 public:
  explicit Server(const Config& config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds every listener (throws std::runtime_error naming the one that failed), starts the
  // workers, opens the store, imports and starts the provider accounts, and serves HTTP.
  void start();
  void stop();
  // The bound port of listener `i` (config order).
  uint16_t port(size_t i) const { return transport_->local_port(i); }
  const transport::Transport& transport() const { return *transport_; }
  uint16_t http_port() const { return http_ ? http_->port() : 0; }
  // Every packet of recent calls by Call-ID, for the call diagrams.
  const transport::SharedPacketIndex& packets() const { return packets_; }

 private:
  struct PerWorker {
    std::unique_ptr<txn::AsioTimers> timers;
    std::unique_ptr<txn::Layer> layer;
  };
  class Runtime;
  class Link;
  void on_message(size_t worker, sip::Message&& message, const transport::Peer& from);
  void on_request(size_t worker, txn::TxnId id, const sip::Message& request);
  txn::Channel channel_to(const transport::Peer& peer);

  const Config& config_;
  std::unique_ptr<transport::Workers> workers_;
  std::unique_ptr<transport::TrnLog> trn_;
  transport::SharedPacketIndex packets_;
  std::unique_ptr<transport::Transport> transport_;
  std::vector<PerWorker> per_worker_;
  std::unique_ptr<transport::Resolver> resolver_;
  std::unique_ptr<Link> link_;
  std::unique_ptr<Runtime> runtime_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<accounts::AccountManager> accounts_;
  std::unique_ptr<api::HttpServer> http_;
  std::string tag_prefix_;
  std::atomic<uint64_t> next_tag_{0};  // To tags, unique across workers
};

}  // namespace esg::app
