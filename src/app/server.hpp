#pragma once
// The running daemon: workers, the transaction log, the transport, one transaction layer and one
// B2BUA per worker, and the core that answers what reaches it: out-of-dialog OPTIONS get 200
// from esg itself (providers use them as keep-alives), INVITEs and everything inside a call go
// to the B2BUA, and the rest gets a plain final answer.

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "accounts/collection.hpp"
#include "accounts/manager.hpp"
#include "api/http_server.hpp"
#include "api/providers_api.hpp"
#include "api/ui.hpp"
#include "app/cluster_members.hpp"
#include "app/config.hpp"
#include "cluster/cluster.hpp"
#include "edge/b2bua/b2bua.hpp"
#include "edge/border/border.hpp"
#include "edge/context.hpp"
#include "edge/sip_alg.hpp"
#include "notify/notifier.hpp"
#include "store/store.hpp"
#include "store/timed_store.hpp"
#include "telegram/lines.hpp"
#include "transport/dns.hpp"
#include "transport/hep.hpp"
#include "transport/load_probe.hpp"
#include "transport/stun.hpp"
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
  // SIGHUP (issue 10): applies what a running instance can change without dropping a call
  // (log levels, the HTTP token and public_metrics, the border's default action, the providers
  // the file declares) and returns the sections that changed but need a restart.
  std::vector<std::string> reload(const Config& fresh);
  // The bound port of listener `i` (config order).
  uint16_t port(size_t i) const { return transport_->local_port(i); }
  const transport::Transport& transport() const { return *transport_; }
  uint16_t http_port() const { return http_ ? http_->port() : 0; }
  // Every packet of recent calls by Call-ID, for the call diagrams.
  const transport::SharedPacketIndex& packets() const { return packets_; }
  size_t calls() const;

 private:
  struct PerWorker {
    std::unique_ptr<txn::AsioTimers> timers;
    std::unique_ptr<txn::Layer> layer;
    std::unique_ptr<edge::B2bua> b2bua;  // after the layer: goes first
    std::unique_ptr<transport::LoadProbe> load;
  };
  class Runtime;
  class Link;
  class EdgeContext;
  void on_message(size_t worker, sip::Message&& message, const transport::Peer& from);
  void on_request(size_t worker, txn::TxnId id, const sip::Message& request,
                  const txn::Channel& from);
  // Re-reads accounts, PBX connections and rules into a new snapshot for the calls path.
  void rebuild_edge_config();
  bool clustered() const;  // store.postgres: several instances share the accounts
  void sync_lines();       // the Telegram lines this instance runs follow the store
  void start_cluster(const api::InstanceInfo& info);
  // The instance's external addresses: configured (as reloaded), then what STUN found.
  std::vector<std::string> extaddrs() const;
  // The addresses this instance sends to PBXs from (the firewall list).
  std::vector<cluster::FwAddress> fw_addresses() const;
  std::vector<cluster::FwInstance> fw_instances();
  void found_external(const std::string& address);
  // Recompiles the border rules (rules, default action, protected addresses).
  void rebuild_border();
  bool border_admits(const sip::Message& m, const transport::Peer& from);
  std::string call_id_for(size_t worker);
  txn::Channel channel_to(const transport::Peer& peer);

  const Config& config_;
  std::string default_action_;    // security.default_action, as reloaded (under border_mu_)
  bool workers_running_ = false;  // start() got as far as starting the workers
  size_t live_calls();
  void on_workers(const std::function<void(size_t)>& f);  // f(w) on each worker, waited for
  std::unique_ptr<transport::Workers> workers_;
  std::unique_ptr<transport::TrnLog> trn_;
  std::unique_ptr<transport::HepExporter> hep_;
  std::unique_ptr<api::UiSessions>
      ui_sessions_;  // the web page's sign-ins  // packets to a Homer collector (hep.address)
  transport::SharedPacketIndex packets_;
  std::unique_ptr<edge::SipAlg> sip_alg_;  // before the transport that calls it
  std::unique_ptr<transport::Transport> transport_;
  std::vector<PerWorker> per_worker_;
  std::unique_ptr<transport::Resolver> resolver_;
  std::unique_ptr<Link> link_;
  std::unique_ptr<Runtime> runtime_;
  std::unique_ptr<store::Store> store_;
  const store::StoreTimings* store_timings_ = nullptr;  // store_'s, for /metrics
  std::unique_ptr<accounts::AccountManager> accounts_;
  std::unique_ptr<ClusterMembers> members_;    // several instances only
  std::unique_ptr<cluster::Cluster> cluster_;  // after what it drives: goes first
  std::unique_ptr<accounts::Collection> pbx_, normalization_, routes_, border_rules_;
  std::unique_ptr<accounts::Collection> telegram_lines_;
  // CRM webhooks (issue 23): the stored list, the delivery thread, and what the B2BUAs call.
  std::unique_ptr<accounts::Collection> webhooks_;
  std::unique_ptr<notify::Notifier> notifier_;
  std::unique_ptr<edge::CallEvents> call_events_;
  void reload_webhooks();  // the notifier follows the store
  void import_webhooks();  // the config file's webhooks into the store (matched by url)
  std::unique_ptr<telegram::Lines> lines_;
  std::atomic<uint64_t> overload_refused_{0};  // new calls refused while a worker lagged
  std::atomic<uint64_t> malformed_{0};  // packets that did not parse or frame (for /metrics)  //
                                        // their TDLib clients live on the workers
  std::mutex border_mu_;
  std::unique_ptr<edge::CdrWriter> cdrs_;
  std::unique_ptr<EdgeContext> edge_;
  // The media relay's shared parts; each worker's B2BUA opens sessions on its own io_context.
  std::unique_ptr<media::PortPool> media_ports_;
  std::vector<std::unique_ptr<media::Poller>> media_pollers_;  // one per worker
  media::Options media_options_;
  media::Counters media_counters_;
  std::unique_ptr<transport::StunClient> stun_;
  mutable std::mutex ext_mu_;
  std::string stun_address_;
  std::vector<std::string> extaddrs_, fwaddrs_;  // instance.*, as reloaded (under ext_mu_)
  txn::TimerConfig timer_config_;
  std::unique_ptr<api::HttpServer> http_;
  std::string tag_prefix_;
  std::atomic<uint64_t> next_tag_{0};  // To tags, unique across workers
};

}  // namespace esg::app
