#include "app/server.hpp"

#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <malloc.h>

#include <algorithm>
#include <future>
#include <iostream>
#include <thread>

#include "api/edge_api.hpp"
#include "api/fw_api.hpp"
#include "api/metrics.hpp"
#include "api/providers_api.hpp"
#include "api/telegram_api.hpp"
#include "base/random.hpp"
#include "base/text.hpp"
#include "log/log.hpp"
#include "sip/response.hpp"
#include "store/timed_store.hpp"

namespace esg::app {

namespace {

// The B2BUAs' call events go to the webhooks' notifier (which only queues them).
class NotifierEvents final : public edge::CallEvents {
 public:
  explicit NotifierEvents(notify::Notifier& n) : n_(n) {}
  bool wants(std::string_view event) const override { return n_.wants(event); }
  void on_call_event(std::string_view event, nlohmann::json call) override {
    n_.publish(event, std::move(call));
  }

 private:
  notify::Notifier& n_;
};

constexpr const char* kAllow =
    "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, REFER, NOTIFY";

transport::Proto proto_of(const std::string& p) {
  if (p == "tcp") return transport::Proto::Tcp;
  if (p == "tls") return transport::Proto::Tls;
  return transport::Proto::Udp;
}

// The address the kernel would send from towards `to`: a connected UDP socket sends nothing
// but has its source chosen by the routing table.
std::string source_address_towards(boost::asio::io_context& io, const std::string& to) {
  boost::system::error_code ec;
  const auto addr = boost::asio::ip::make_address(to, ec);
  if (ec) return "127.0.0.1";
  boost::asio::ip::udp::socket s(io);
  s.connect({addr, 5060}, ec);
  const auto local = ec ? boost::asio::ip::udp::endpoint() : s.local_endpoint(ec);
  if (ec) return addr.is_v6() ? "::1" : "127.0.0.1";
  return local.address().to_string();
}

accounts::Registrar::Options registrar_options(const std::string& realm) {
  accounts::Registrar::Options o;
  o.realm = realm;
  return o;
}

edge::Border::Options border_options(const Config& c) {
  edge::Border::Options o;
  o.bans.failures = c.security.ban_failures;
  o.bans.window = c.security.ban_window;
  o.bans.duration = c.security.ban_duration;
  o.pike.requests = c.security.pike_requests;
  o.pike.window = c.security.pike_window;
  o.pike_duration = c.security.pike_duration;
  o.workers = size_t(c.instance.workers);
  return o;
}

// An IP literal's key; names and empty text give none.
std::optional<edge::IpKey> ip_of(const std::string& text) {
  return text.empty() ? std::nullopt : edge::IpKey::parse(text);
}

// The transport a request came over, as its top Via says (a peer that lies about it only
// misdirects its own calls).
std::string_view transport_name_of(const sip::Message& m) {
  const auto t = m.top_via().transport;
  if (text::iequals(t, "TCP")) return "tcp";
  if (text::iequals(t, "TLS")) return "tls";
  return "udp";
}

}  // namespace

// The accounts module's view of the daemon: workers, their transaction layers and timers.
class Server::Runtime final : public accounts::Runtime {
 public:
  explicit Runtime(Server& s) : s_(s) {}
  size_t workers() const override { return s_.workers_->size(); }
  size_t worker_for(std::string_view call_id) const override {
    return s_.workers_->worker_for(call_id);
  }
  void post(size_t worker, std::function<void()> f) override {
    s_.workers_->post(worker, std::move(f));
  }
  txn::Layer& layer(size_t worker) override { return *s_.per_worker_[worker].layer; }
  txn::Timers& timers(size_t worker) override { return *s_.per_worker_[worker].timers; }
  accounts::Link& link() override;

 private:
  Server& s_;
};

// How registration and pings reach the network: our address for Via and Contact, RFC 3263
// resolution on the resolver thread, and channels over the transport.
class Server::Link final : public accounts::Link {
 public:
  explicit Link(Server& s) : s_(s) {}

  Local local(const accounts::Destination& to) override {
    Local l;
    int listener = -1;
    for (size_t i = 0; i < s_.config_.listen.size(); ++i) {
      if (s_.config_.listen[i].proto == to.transport) {
        listener = int(i);
        break;
      }
    }
    if (listener < 0) listener = 0;
    const auto& cfg = s_.config_.listen[size_t(listener)];
    l.port = s_.transport_->local_port(size_t(listener));
    if (const auto ext = s_.extaddrs(); !ext.empty()) {
      l.host = ext.front();  // what the outside sees us as
    } else if (cfg.addr != "0.0.0.0" && cfg.addr != "::") {
      l.host = cfg.addr;
    } else {
      l.host = source_address_towards(s_.workers_->context(0), to.host);
    }
    return l;
  }

  void resolve(const accounts::Destination& to,
               std::function<void(std::vector<accounts::Destination>)> done) override {
    boost::system::error_code ec;
    boost::asio::ip::make_address(to.host, ec);
    if (!ec) {  // an address: nothing to look up (RFC 3263 §4.2: 5060, 5061 for TLS)
      accounts::Destination d = to;
      if (d.port == 0) d.port = to.transport == "tls" ? 5061 : 5060;
      done({d});
      return;
    }
    const int worker = transport::Workers::current();
    // With a port, RFC 3263 asks only for addresses; without, NAPTR and SRV choose transport
    // and port. A transport other than the default is the account's explicit choice.
    std::string uri = "sip:" + to.host;
    if (to.port) uri += ":" + std::to_string(to.port);
    if (to.transport != "udp") uri += ";transport=" + to.transport;
    // Looked up on the resolver thread and handed back to the worker that asked.
    s_.resolver_->resolve(uri, [this, worker, done = std::move(done)](
                                   std::vector<transport::Target> targets) mutable {
      std::vector<accounts::Destination> out;
      for (const auto& t : targets)
        out.push_back({std::string(transport::proto_name(t.proto)), t.addr, t.port});
      if (worker < 0) {
        done(std::move(out));
        return;
      }
      s_.workers_->post(size_t(worker), [done = std::move(done), out = std::move(out)]() mutable {
        done(std::move(out));
      });
    });
  }

  txn::Channel channel(const accounts::Destination& to, bool tls_verify) override {
    transport::Peer peer;
    peer.tls_verify = tls_verify;
    peer.proto = to.transport == "tcp"   ? transport::Proto::Tcp
                 : to.transport == "tls" ? transport::Proto::Tls
                                         : transport::Proto::Udp;
    boost::system::error_code ec;
    peer.addr = boost::asio::ip::make_address(to.host, ec);
    peer.port = to.port;
    for (size_t i = 0; i < s_.config_.listen.size(); ++i) {
      if (s_.config_.listen[i].proto == "udp") {
        peer.listener = uint16_t(i);
        break;
      }
    }
    if (ec) return txn::Channel{};  // no address: a transport error for the transaction
    return s_.channel_to(peer);
  }

 private:
  Server& s_;
};

accounts::Link& Server::Runtime::link() {
  return *s_.link_;
}

// What the calls path reads: the configuration snapshot, live account state, trunks, the board
// of calls in progress and the CDR writer.
class Server::EdgeContext final : public edge::Context {
 public:
  explicit EdgeContext(Server& s) : s_(s) {}
  std::shared_ptr<const edge::EdgeConfig> config() const override {
    return std::atomic_load(&config_);
  }
  void set(std::shared_ptr<const edge::EdgeConfig> c) { std::atomic_store(&config_, std::move(c)); }
  bool account_ready(const accounts::Account& a, std::string* why) const override {
    const auto st = s_.accounts_ ? s_.accounts_->status(a.id) : std::nullopt;
    if (!st) {
      // Several instances: the account's calls go out through the instance that serves it.
      *why = s_.clustered() ? "served by another instance" : "not running";
      return false;
    }
    if (a.reg && st->regstate != accounts::RegState::Registered) {
      *why = "not registered (" + std::string(accounts::reg_state_name(st->regstate)) + ")";
      return false;
    }
    if (a.pingmode == "options" && st->pingstate == accounts::PingState::Failed) {
      *why = "OPTIONS pings unanswered";
      return false;
    }
    return true;
  }
  edge::Trunks& trunks() override { return trunks_; }
  edge::CallBoard& board() override { return board_; }
  edge::CdrWriter* cdrs() override { return s_.cdrs_.get(); }
  accounts::Registrar* registrar() override { return &registrar_; }
  std::vector<std::string> resolved(const accounts::Account& a) override {
    return resolved_of(a.code);
  }
  std::vector<std::string> resolved(const accounts::PbxConnection& p) override {
    return resolved_of("pbx:" + p.code);
  }
  // Looks up the names among the accounts' domains and proxies and the PBX connections'
  // addresses (NAPTR/SRV and A/AAAA, on the resolver's thread) and keeps what they resolve to
  // for the source check of incoming calls ("pbx:<code>" for connections: account codes hold
  // no ':').
  void resolve_names(const edge::EdgeConfig& cfg) {
    for (const auto& a : cfg.accounts->accounts()) {
      look_up(a->domain, a->code);
      look_up(a->proxyaddr, a->code);
    }
    for (const auto& p : cfg.pbxs) {
      if (p->mode != "ip" && p->mode != "register-out") continue;
      look_up(p->address, "pbx:" + p->code);
      if (p->mode == "register-out") look_up(p->domain, "pbx:" + p->code);
    }
  }
  void count_failure(const std::string& addr, const std::string& what) override {
    border_.count_failure(addr, what);
  }
  edge::TelegramDirectory& telegram() override { return telegram_; }
  edge::Border& border() { return border_; }
  // The addresses of configured providers and PBX connections, and what their names resolve
  // to: never banned, and not dropped unless a rule names them (a ban or a whitelist would cut
  // esg off from its own trunks).
  std::vector<edge::BorderRules::Protected> protected_addresses(const edge::EdgeConfig& cfg) {
    std::vector<edge::BorderRules::Protected> out;
    auto add = [&](const std::string& text, const std::string& who) {
      if (auto k = ip_of(text)) out.push_back({*k, who});
    };
    for (const auto& a : cfg.accounts->accounts()) {
      add(a->domain, "provider account " + a->code);
      add(a->proxyaddr, "provider account " + a->code);
      for (const auto& ip : resolved_of(a->code))
        add(ip, "provider account " + a->code);
    }
    for (const auto& p : cfg.pbxs) {
      add(p->address, "PBX connection " + p->code);
      add(p->domain, "PBX connection " + p->code);
      for (const auto& ip : resolved_of("pbx:" + p->code))
        add(ip, "PBX connection " + p->code);
    }
    // The Telegram lines' calls come from their SIP sides on loopback.
    if (!s_.config_.telegram.tdjson.empty()) add("127.0.0.1", "Telegram lines");
    return out;
  }

  std::mutex rebuild_mu;

 private:
  std::vector<std::string> resolved_of(const std::string& key) {
    std::lock_guard lock(resolved_mu_);
    auto it = resolved_.find(key);
    return it == resolved_.end() ? std::vector<std::string>{} : it->second;
  }
  void look_up(const std::string& name, const std::string& key) {
    boost::system::error_code ec;
    if (name.empty()) return;
    boost::asio::ip::make_address(name, ec);
    if (!ec) return;  // an address: compared as it is
    for (const std::string& uri : {"sip:" + name, "sip:" + name + ":5060"}) {
      s_.resolver_->resolve(uri, [this, key](std::vector<transport::Target> found) {
        bool fresh = false;
        {
          std::lock_guard lock(resolved_mu_);
          auto& list = resolved_[key];
          for (const auto& t : found) {
            if (std::find(list.begin(), list.end(), t.addr) != list.end()) continue;
            list.push_back(t.addr);
            fresh = true;
          }
          if (list.size() > 64) list.erase(list.begin(), list.end() - 64);
        }
        // What the names resolve to is protected from drop rules too.
        if (fresh) s_.rebuild_border();
      });
    }
  }

  Server& s_;
  std::shared_ptr<const edge::EdgeConfig> config_ = std::make_shared<edge::EdgeConfig>();
  edge::Trunks trunks_;
  edge::CallBoard board_;
  accounts::Registrar registrar_{registrar_options(s_.config_.instance.domain)};
  std::mutex resolved_mu_;
  // account code, or "pbx:<code>" -> IPs
  std::unordered_map<std::string, std::vector<std::string>> resolved_;
  edge::Border border_{border_options(s_.config_)};
  edge::TelegramDirectory telegram_;
};

Server::Server(const Config& config)
    : config_(config), extaddrs_(config.instance.extaddrs), fwaddrs_(config.instance.fwaddrs) {
  // glibc raises its mmap and trim thresholds each time a large block is freed (up to 32 MiB,
  // and twice that for trimming): after one big monitoring answer (the regs of 10,000
  // accounts) every thread's arena may then keep tens of MiB of freed memory resident. Fixed
  // thresholds keep big blocks in mmap (given back on free) and trim a heap's free top above
  // 1 MiB; nothing on the per-message path allocates blocks that large.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
  workers_ = std::make_unique<transport::Workers>(size_t(config.instance.workers));
  if (config.log.log_trn) {
    trn_ = std::make_unique<transport::TrnLog>(transport::TrnLog::Options{config.log.dir});
  }
  transport::TransportOptions options;
  options.max_message = size_t(config.transport.max_message);
  options.idle_timeout = std::chrono::milliseconds(int64_t(config.transport.idle_timeout * 1000));
  options.message_timeout =
      std::chrono::milliseconds(int64_t(config.transport.message_timeout * 1000));
  options.connect_timeout =
      std::chrono::milliseconds(int64_t(config.transport.connect_timeout * 1000));
  options.max_connections = size_t(config.transport.max_connections);
  options.max_connections_per_address = size_t(config.transport.max_connections_per_address);
  transport_ = std::make_unique<transport::Transport>(
      *workers_, options, trn_.get(),
      [this](size_t w, sip::Message&& m, const transport::Peer& from) {
        on_message(w, std::move(m), from);
      });
  transport_->set_packet_index(&packets_);
  // The border on the socket: address-only rules, bans (the B2BUA and the registrar count
  // failures, the transport malformed packets) and the flood limit, before parsing.
  transport_->set_drop(
      [this](const boost::asio::ip::address& addr, std::string_view bytes, size_t) {
        return edge_ && edge_->border().drop_at_socket(edge::IpKey::of(addr), bytes,
                                                       transport::Workers::current());
      });
  if (!config.instance.sip_alg.empty()) {
    std::vector<edge::SipAlg::Pair> pairs;
    for (const auto& r : config.instance.sip_alg)
      pairs.push_back({r.gray, r.white});
    sip_alg_ = std::make_unique<edge::SipAlg>(std::move(pairs));
    transport_->set_rewrite([this](std::string& m) { return sip_alg_->inbound(m); },
                            [this](std::string& m) { return sip_alg_->outbound(m); });
  }
  transport_->set_on_malformed([this](const transport::Peer& from) {
    malformed_.fetch_add(1, std::memory_order_relaxed);
    if (edge_) edge_->count_failure(from.addr.to_string(), "malformed request");
  });
  tag_prefix_ = "esg" + std::to_string(config.instance.srvidx) + "-";
  for (size_t w = 0; w < workers_->size(); ++w) {
    PerWorker pw;
    pw.timers = std::make_unique<txn::AsioTimers>(workers_->context(w));
    pw.load = std::make_unique<transport::LoadProbe>(
        workers_->context(w), config.instance.overload_lag, std::chrono::milliseconds(100),
        [t = transport_.get(), w] { return t->udp_backlog(w); });
    txn::Layer::User user;
    user.on_request = [this, w](txn::TxnId id, const sip::Message& m, const txn::Channel& from) {
      on_request(w, id, m, from);
    };
    user.on_stray_response = [this, w](const sip::Message& m) {
      if (per_worker_[w].b2bua) per_worker_[w].b2bua->on_stray_response(m);
    };
    user.on_cancel = [this, w](txn::TxnId invite, const sip::Message& cancel) {
      if (per_worker_[w].b2bua && per_worker_[w].b2bua->on_cancel(invite, cancel)) return;
      auto& layer = *per_worker_[w].layer;
      if (const sip::Message* req = layer.request(invite)) {
        layer.respond(invite, 487, sip::build_response(*req, 487, {}, tag_prefix_ + "c"));
      }
    };
    txn::TimerConfig timers;
    timers.t1 = txn::Millis(config.transport.t1);
    timers.t2 = txn::Millis(config.transport.t2);
    timers.t4 = txn::Millis(config.transport.t4);
    timers.timer_d = std::max(txn::Millis(32000), timers.t1 * 64);
    timer_config_ = timers;
    pw.layer = std::make_unique<txn::Layer>(*pw.timers, timers, std::move(user));
    per_worker_.push_back(std::move(pw));
  }
}

Server::~Server() {
  stop();
}

void Server::start() {
  log::Options logging;
  logging.level = config_.log.level;
  logging.levels = config_.log.modules;
  if (config_.log.to == "file") logging.file = config_.log.dir + "/esg.log";
  log::init(logging);
  log::get("app").info("esg {} starting: srvidx {}, {} worker(s)", ESG_VERSION,
                       config_.instance.srvidx, workers_->size());
  for (const auto& l : config_.listen) {
    transport_->listen(proto_of(l.proto), l.addr, l.port, {l.cert, l.key, l.ca});
  }
  if (!config_.hep.address.empty()) {
    // Every packet to the Homer collector too, with our end as each listener is bound.
    std::vector<transport::HepExporter::Local> locals;
    for (size_t i = 0; i < config_.listen.size(); ++i) {
      boost::system::error_code ec;
      auto addr = boost::asio::ip::make_address(config_.listen[i].addr, ec);
      locals.push_back({proto_of(config_.listen[i].proto), ec ? boost::asio::ip::address() : addr,
                        transport_->local_port(i)});
    }
    auto collector = transport::HepExporter::parse_address(config_.hep.address);
    hep_ = std::make_unique<transport::HepExporter>(
        transport::HepOptions{config_.hep.address, uint32_t(config_.hep.id), config_.hep.password},
        *collector, std::move(locals));
    transport_->set_tap(
        [this](const transport::PacketRecord& r, const transport::Peer& p) { hep_->send(r, p); });
    log::get("app").info("HEP v3 export to {} (agent id {})", config_.hep.address, config_.hep.id);
  }
  transport::Resolver::Options ro;
  ro.servers = config_.dns_servers;
  resolver_ = std::make_unique<transport::Resolver>(ro);
  link_ = std::make_unique<Link>(*this);
  runtime_ = std::make_unique<Runtime>(*this);
  try {
    auto timed = std::make_unique<store::TimedStore>(
        config_.store.postgres.empty() ? store::open_sqlite(config_.store.sqlite)
                                       : store::open_postgres(config_.store.postgres));
    store_timings_ = &timed->timings();
    store_ = std::move(timed);
  } catch (const store::StoreError& e) {
    throw std::runtime_error(e.what());
  }
  // A crash leaves calls open in the store: they did not end normally.
  if (auto n = store_->cdr_interrupt_active(config_.instance.srvidx); n && *n > 0) {
    log::get("app").warn("{} call(s) left open by the previous run closed as interrupted", *n);
  }
  if (config_.store.cdrs) {
    cdrs_ = std::make_unique<edge::CdrWriter>(*store_, config_.instance.srvidx);
  } else {
    log::get("app").warn("store.cdrs is off: no call records are written");
  }
  auto strip = [](std::vector<std::string> secrets) {
    return [secrets](const nlohmann::json& j) {
      nlohmann::json out = j;
      for (const auto& s : secrets)
        out.erase(s);
      return out;
    };
  };
  pbx_ = std::make_unique<accounts::Collection>(
      *store_, accounts::Collection::Spec{
                   store::Table::Pbx,
                   "PBX connection",
                   true,
                   [](const nlohmann::json& j) -> Result<nlohmann::json, accounts::FieldError> {
                     auto p = accounts::pbx_from_json(j);
                     if (!p) return unexpected(p.error());
                     return accounts::to_stored_json(*p);
                   },
                   strip({"pwd"}),
                   {"pwd"}});
  normalization_ = std::make_unique<accounts::Collection>(
      *store_, accounts::Collection::Spec{
                   store::Table::Normalization,
                   "normalization rule",
                   false,
                   [](const nlohmann::json& j) -> Result<nlohmann::json, accounts::FieldError> {
                     auto r = edge::norm_rule_from_json(j);
                     if (!r) return unexpected(r.error());
                     return edge::to_json(*r);
                   },
                   strip({}),
                   {}});
  routes_ = std::make_unique<accounts::Collection>(
      *store_, accounts::Collection::Spec{
                   store::Table::Routes,
                   "routing rule",
                   false,
                   [](const nlohmann::json& j) -> Result<nlohmann::json, accounts::FieldError> {
                     auto r = edge::route_rule_from_json(j);
                     if (!r) return unexpected(r.error());
                     return edge::to_json(*r);
                   },
                   strip({}),
                   {}});
  border_rules_ = std::make_unique<accounts::Collection>(
      *store_, accounts::Collection::Spec{
                   store::Table::BorderRules,
                   "border rule",
                   false,
                   [](const nlohmann::json& j) -> Result<nlohmann::json, accounts::FieldError> {
                     auto r = edge::border_rule_from_json(j);
                     if (!r) return unexpected(r.error());
                     return edge::to_json(*r);
                   },
                   strip({}),
                   {}});
  telegram_lines_ = std::make_unique<accounts::Collection>(
      *store_, accounts::Collection::Spec{
                   store::Table::TelegramLines,
                   "Telegram line",
                   true,
                   [this](const nlohmann::json& j) -> Result<nlohmann::json, accounts::FieldError> {
                     auto l = telegram::line_from_json(j);
                     if (!l) return unexpected(l.error());
                     if (!store_->find_code(store::Table::Pbx, l->pbx))
                       return unexpected(accounts::FieldError{"pbx", "names no PBX connection"});
                     for (size_t i = 0; i < l->menu.size(); ++i) {
                       const std::string& pbx = l->menu[i].pbx;
                       if (!pbx.empty() && !store_->find_code(store::Table::Pbx, pbx))
                         return unexpected(accounts::FieldError{
                             "menu[" + std::to_string(i) + "].pbx", "names no PBX connection"});
                     }
                     return telegram::to_stored_json(*l);
                   },
                   telegram::public_view,
                   {"api_hash"}});
  webhooks_ = std::make_unique<accounts::Collection>(
      *store_, accounts::Collection::Spec{
                   store::Table::Webhooks,
                   "webhook",
                   false,
                   [](const nlohmann::json& j) -> Result<nlohmann::json, accounts::FieldError> {
                     auto w = notify::webhook_from_json(j);
                     if (!w)
                       return unexpected(accounts::FieldError{w.error().field, w.error().message});
                     w->id = 0;
                     return notify::to_json(*w);
                   },
                   [](const nlohmann::json& j) {
                     nlohmann::json out = j;
                     out["secret_set"] = !j.value("secret", std::string()).empty();
                     out.erase("secret");
                     return out;
                   },
                   {"secret"}});
  import_webhooks();
  {
    notify::NotifierOptions no;
    no.dir = config_.webhook_queue.dir;
    no.max_queue = size_t(config_.webhook_queue.max);
    no.srvidx = config_.instance.srvidx;
    no.user_agent = "esg/" ESG_VERSION;
    notifier_ = std::make_unique<notify::Notifier>(no);
    call_events_ = std::make_unique<NotifierEvents>(*notifier_);
    reload_webhooks();
    notifier_->start();
    webhooks_->set_on_change([this] { reload_webhooks(); });
  }
  edge_ = std::make_unique<EdgeContext>(*this);
  // PBXs registered to esg are known by address only once registered: never banned either.
  edge_->border().set_extra_exempt([this](const edge::IpKey& addr) {
    return edge_->registrar()->pbx_at(addr.to_string()).has_value();
  });
  for (auto* c : {pbx_.get(), normalization_.get(), routes_.get()})
    c->set_on_change([this] { rebuild_edge_config(); });
  border_rules_->set_on_change([this] { rebuild_border(); });
  media_ports_ = std::make_unique<media::PortPool>(config_.media.port_min, config_.media.port_max);
  media_options_.latching = config_.media.latching;
  media_options_.strict_source = config_.media.strict_source;
  media_options_.bind_address = config_.media.address;
  for (size_t w = 0; w < per_worker_.size(); ++w) {
    edge::B2buaOptions bo;
    bo.user_agent = "esg/" ESG_VERSION;
    media_pollers_.push_back(std::make_unique<media::Poller>(workers_->context(w)));
    bo.media.poller = media_pollers_.back().get();
    bo.media.ports = media_ports_.get();
    bo.media.options = &media_options_;
    bo.media.counters = &media_counters_;
    bo.media.relay_all = config_.media.relay;
    bo.media.timeout = config_.media.timeout;
    bo.tag_prefix = tag_prefix_ + std::to_string(w) + "-";
    bo.call_id_header = config_.instance.call_id_header;
    bo.session.session_expires = uint32_t(config_.instance.session_expires);
    bo.session.min_se = uint32_t(config_.instance.min_se);
    bo.events = call_events_.get();
    per_worker_[w].b2bua = std::make_unique<edge::B2bua>(
        w, *per_worker_[w].layer, *per_worker_[w].timers, timer_config_, *link_, *edge_, bo,
        [this, w] { return call_id_for(w); });
  }
  workers_->start();
  workers_running_ = true;
  telegram::LinesOptions lo;
  lo.tdjson = config_.telegram.tdjson;
  lo.sessions = config_.telegram.sessions;
  if (config_.telegram.session_store == "store") {
    lo.session_store = std::make_shared<telegram::SessionStore>(*store_, config_.instance.srvidx);
    lo.session_snapshot = std::chrono::seconds(config_.telegram.session_snapshot);
  }
  lo.bridge.board = &edge_->board();
  lo.bridge.cdrs = cdrs_.get();
  lo.bridge.ports = media_ports_.get();
  lo.bridge.media_address = config_.media.address;
  // A Telegram call's lane on its diagram, in the order of its SIP packets (issue 22).
  lo.bridge.lane = [t = transport_.get()](const std::string& call_id, std::string text) {
    t->note(call_id, "telegram", std::move(text));
  };
  lo.worker = [this](int64_t id) -> boost::asio::io_context& {
    return workers_->context(size_t(id) % workers_->size());
  };
  // A line's calls enter esg through its first UDP listener, like any SIP peer's.
  for (size_t i = 0; i < config_.listen.size(); ++i) {
    if (config_.listen[i].proto != "udp") continue;
    lo.bridge.sip_host = config_.listen[i].addr;
    lo.bridge.sip_port = transport_->local_port(i);
    break;
  }
  lo.publish = [this](const telegram::LineConfig& l, const std::string& state, uint16_t port) {
    if (!port) {
      edge_->telegram().remove(l.code);
      return;
    }
    edge::TelegramLineInfo info{l.code, l.pbx, l.trunks, state, "127.0.0.1", port, {}};
    for (const auto& m : l.menu)
      if (!m.pbx.empty()) info.menu_pbxs.push_back(m.pbx);
    edge_->telegram().put(std::move(info));
  };
  lo.srvidx = config_.instance.srvidx;
  if (clustered()) {
    lo.runner = [this](int64_t id) {
      return cluster_ ? cluster_->holder("tg:" + std::to_string(id)) : int64_t(0);
    };
  }
  lines_ = std::make_unique<telegram::Lines>(std::move(lo));
  telegram_lines_->set_on_change([this] { sync_lines(); });
  sync_lines();
  accounts::ManagerOptions mo;
  mo.register_rate = config_.accounts.register_rate;
  mo.registration.retry_min = txn::Millis(int64_t(config_.accounts.retry_min * 1000));
  mo.registration.retry_max = txn::Millis(int64_t(config_.accounts.retry_max * 1000));
  mo.registration.user_agent = "esg/" ESG_VERSION;
  mo.log_dir = config_.log.dir;
  mo.on_change = [this] { rebuild_edge_config(); };
  // Several instances: an account runs here only while this instance holds its lease.
  mo.leased = clustered();
  mo.calls_in_progress = [this](const std::string& code) {
    // Register-out PBX connections run as "pbx:<code>", their trunk key too.
    return edge_->trunks().in_use(code.rfind("pbx:", 0) == 0 ? code : "acc:" + code);
  };
  accounts_ = std::make_unique<accounts::AccountManager>(*store_, *runtime_, mo);
  api::HttpServer::Options ho;
  ho.listen = config_.http.listen;
  ho.token = config_.http.token;
  ho.public_metrics = config_.http.public_metrics;
  ho.public_fw = config_.http.public_fw;
  http_ = std::make_unique<api::HttpServer>(ho);
  ui_sessions_ = std::make_unique<api::UiSessions>(api::UiSessions::Options{
      config_.http.admin_user, config_.http.admin_password_hash, std::chrono::hours(8), 1000});
  api::add_ui_routes(*http_, *ui_sessions_, config_.http.ui_dir);
  api::InstanceInfo info;
  info.srvidx = config_.instance.srvidx;
  const size_t colon = config_.http.listen.rfind(':');
  info.addr = config_.instance.extaddrs.empty() ? config_.http.listen.substr(0, colon)
                                                : config_.instance.extaddrs.front();
  info.node = config_.instance.node + "@" + info.addr;
  if (clustered()) {
    info.servers = [this](const nlohmann::json& own) {
      return cluster_ ? cluster_->servers(own) : nlohmann::json::array();
    };
  }
  api::add_provider_routes(*http_, *accounts_, info);
  api::add_collection_routes(*http_, "/rest/v1/uc/pbx", *pbx_);
  api::add_collection_routes(*http_, "/rest/v1/routing/normalization", *normalization_);
  api::add_collection_routes(*http_, "/rest/v1/routing/rules", *routes_);
  api::add_collection_routes(*http_, "/rest/v1/master/borderrules", *border_rules_);
  api::add_telegram_routes(*http_, *telegram_lines_, *lines_);
  api::add_collection_routes(*http_, "/rest/v1/master/webhooks", *webhooks_);
  http_->route("GET", "/api/monitor/v1/webhooks", [this](const api::Request&, const auto&) {
    return api::Response::json(
        200, {{"resultcode", 0}, {"resultmsg", "OK"}, {"data", notifier_->status()}});
  });
  // Log levels per module, at run time (issue 10).
  http_->route("GET", "/rest/v1/master/log", [](const api::Request&, const auto&) {
    return api::Response::json(200, log::levels());
  });
  for (const char* method : {"PATCH", "PUT"}) {
    http_->route(method, "/rest/v1/master/log", [](const api::Request& r, const auto&) {
      const auto body = nlohmann::json::parse(r.body, nullptr, false);
      if (body.is_discarded()) return api::Response::error(400, "the body is not JSON");
      std::string field;
      if (const std::string e = log::set_levels(body, &field); !e.empty())
        return api::Response::error(400, e, field);
      log::get("api").info("log levels changed: {}", body.dump());
      return api::Response::json(200, log::levels());
    });
  }
  api::EdgeApiDeps deps;
  deps.config = [this] { return edge_->config(); };
  deps.board = &edge_->board();
  deps.store = store_.get();
  deps.cdrs = cdrs_.get();
  deps.packets = &packets_;
  if (config_.log.log_trn) deps.trn_dir = config_.log.dir;
  deps.border = &edge_->border();
  deps.instance = [this] {
    nlohmann::json j = {
        {"extaddrs", extaddrs()},
        {"stun", stun_ ? stun_->status() : nlohmann::json()},
        {"media",
         {{"relay", config_.media.relay},
          {"sessions", media_counters_.sessions.load()},
          {"timeouts", media_counters_.timeouts.load()},
          {"no_ports", media_counters_.no_ports.load()},
          {"packets", media_counters_.packets.load()},
          {"lost", media_counters_.lost.load()},
          {"jitter",
           {{"buckets",
             {media_counters_.jitter_buckets[0].load(), media_counters_.jitter_buckets[1].load(),
              media_counters_.jitter_buckets[2].load(), media_counters_.jitter_buckets[3].load(),
              media_counters_.jitter_buckets[4].load(), media_counters_.jitter_buckets[5].load()}},
            {"sum_us", media_counters_.jitter_sum_us.load()}}},
          {"bytes", media_counters_.bytes.load()},
          {"port_pairs", media_ports_->size()},
          {"port_pairs_free", media_ports_->free()}}}};
    return j;
  };
  api::MetricsSources ms;
  ms.calls = [this] { return edge_->board().list(); };
  ms.call_counters = [this] { return edge_->board().counters(); };
  ms.store = [this] {
    auto histogram = [](const store::StoreTimings::Histogram& h) {
      nlohmann::json buckets = nlohmann::json::array();
      for (const auto& b : h.buckets)
        buckets.push_back(b.load());
      return nlohmann::json{{"buckets", buckets}, {"sum_us", h.sum_us.load()}};
    };
    return nlohmann::json{{"read", histogram(store_timings_->read)},
                          {"write", histogram(store_timings_->write)}};
  };
  ms.sip = [this] {
    nlohmann::json lag = nlohmann::json::array(), refusing = nlohmann::json::array();
    int overloaded = 0;
    for (const auto& pw : per_worker_) {
      lag.push_back(pw.load->lag_ms());
      refusing.push_back(pw.load->refusing_pct());
      overloaded += pw.load->overloaded() ? 1 : 0;
    }
    return nlohmann::json{{"malformed", malformed_.load()},
                          {"transaction_timeouts", txn::client_timeouts().load()},
                          {"sessions_expired", edge::B2bua::sessions_expired().load()},
                          {"overload_refused", overload_refused_.load()},
                          {"workers_overloaded", overloaded},
                          {"worker_lag_ms", lag},
                          {"worker_refusing_pct", refusing}};
  };
  ms.regs = [this] { return accounts_->regs(); };
  ms.border = [this] { return edge_->border().status(); };
  ms.instance = deps.instance;
  ms.telegram = [this] { return lines_->status(); };
  if (clustered()) {
    ms.cluster = [this] { return cluster_ ? cluster_->status() : nlohmann::json::object(); };
  }
  ms.webhooks = [this] { return notifier_->status(); };
  ms.version = ESG_VERSION;
  api::add_metrics_route(*http_, std::move(ms));
  api::add_edge_routes(*http_, deps);
  api::add_fw_routes(*http_, [this] { return fw_instances(); });
  accounts_->start(config_.providers);
  rebuild_edge_config();
  if (clustered()) start_cluster(info);
  // The start-up REGISTERs run for accounts / register_rate seconds; their messages and
  // transactions, freed between the accounts' long-lived state, leave the workers' arenas
  // holding pages (~0.5 KiB per account at 10,000). Given back once, after the last of them.
  if (const size_t n = accounts_->leasable().size(); n > 0) {
    const auto burst = std::chrono::milliseconds(
        int64_t(1000.0 * double(n) / std::max(0.1, config_.accounts.register_rate)));
    // The last transaction ends Timer K (T4) after its answer.
    auto trim = std::make_shared<boost::asio::steady_timer>(
        workers_->context(0), burst + timer_config_.t4 + std::chrono::milliseconds(500));
    trim->async_wait([trim](const boost::system::error_code& ec) {
      if (!ec) malloc_trim(0);
    });
  }
  http_->start();
  if (!config_.stun_server.empty()) {
    transport::StunClient::Options so;
    so.server = config_.stun_server;
    so.interval = std::chrono::seconds(config_.stun_interval);
    stun_ = std::make_unique<transport::StunClient>(
        workers_->context(0), so, [this](const std::string& a) { found_external(a); });
    stun_->start();
  }
}

bool Server::clustered() const {
  return !config_.store.postgres.empty();
}

void Server::sync_lines() {
  if (!lines_ || !telegram_lines_) return;
  const auto stored = telegram_lines_->stored();
  if (!clustered()) {
    lines_->sync(stored);
    return;
  }
  if (members_) members_->lines_stored(stored);
  const std::set<int64_t> served = members_ ? members_->served_lines() : std::set<int64_t>();
  lines_->sync(stored, &served);
}

void Server::start_cluster(const api::InstanceInfo& info) {
  ClusterMembers::Hooks hooks;
  hooks.accounts = accounts_.get();
  hooks.run_lines = [this] { sync_lines(); };
  hooks.rebuild = [this] {
    rebuild_edge_config();
    reload_webhooks();
    rebuild_border();
  };
  members_ = std::make_unique<ClusterMembers>(std::move(hooks));
  sync_lines();  // the members learn the stored lines
  cluster::Options co;
  co.srvidx = config_.instance.srvidx;
  co.roleid = config_.instance.roleid;
  co.node = info.node;
  co.addr = info.addr;
  co.heartbeat = std::chrono::milliseconds(int64_t(config_.instance.heartbeat * 1000));
  co.dead_after = std::chrono::milliseconds(int64_t(config_.instance.dead_after * 1000));
  co.addrs = [this] { return fw_addresses(); };
  try {
    // A connection of its own: heartbeats never queue behind CDR writes.
    cluster_ = std::make_unique<cluster::Cluster>(store::open_postgres(config_.store.postgres),
                                                  *members_, co);
  } catch (const store::StoreError& e) {
    throw std::runtime_error(e.what());
  }
  cluster_->start();
}

std::vector<std::string> Server::extaddrs() const {
  std::lock_guard lock(ext_mu_);
  std::vector<std::string> out = extaddrs_;
  if (!stun_address_.empty() && std::find(out.begin(), out.end(), stun_address_) == out.end()) {
    out.push_back(stun_address_);
  }
  return out;
}

std::vector<cluster::FwAddress> Server::fw_addresses() const {
  cluster::FwSources src;
  for (const auto& l : config_.listen)
    src.listen.push_back(l.addr);
  src.media_address = config_.media.address;
  {
    std::lock_guard lock(ext_mu_);
    src.extaddrs = extaddrs_;
    src.stun = stun_address_;
    src.fwaddrs = fwaddrs_;
  }
  // Only a wildcard bind needs them: spare the netlink round trip at each heartbeat otherwise.
  const auto wildcard = [](const std::string& a) { return a == "0.0.0.0" || a == "::"; };
  if (wildcard(src.media_address) || std::any_of(src.listen.begin(), src.listen.end(), wildcard))
    src.interfaces = cluster::interface_addresses();
  return cluster::collect_addresses(src);
}

std::vector<cluster::FwInstance> Server::fw_instances() {
  auto own = fw_addresses();
  if (cluster_) return cluster_->fw_instances(own);
  cluster::FwInstance self;
  self.srvidx = config_.instance.srvidx;
  self.node = config_.instance.node;
  self.self = true;
  self.addrs = std::move(own);
  return {self};
}

void Server::found_external(const std::string& address) {
  {
    std::lock_guard lock(ext_mu_);
    if (stun_address_ == address) return;
    stun_address_ = address;
  }
  log::get("app").info("STUN: the external address is {}", address);
  rebuild_edge_config();  // matching knows it as ours
}

// Calls in progress on every worker (asked on each worker, where the count lives).
size_t Server::live_calls() {
  size_t n = 0;
  for (size_t w = 0; w < per_worker_.size(); ++w) {
    auto p = std::make_shared<std::promise<size_t>>();
    auto f = p->get_future();
    workers_->post(w, [this, w, p] {
      p->set_value(per_worker_[w].b2bua ? per_worker_[w].b2bua->calls() : 0);
    });
    if (f.wait_for(std::chrono::seconds(1)) == std::future_status::ready) n += f.get();
  }
  return n;
}

void Server::on_workers(const std::function<void(size_t)>& f) {
  std::vector<std::future<void>> done;
  for (size_t w = 0; w < per_worker_.size(); ++w) {
    auto p = std::make_shared<std::promise<void>>();
    done.push_back(p->get_future());
    workers_->post(w, [f, w, p] {
      f(w);
      p->set_value();
    });
  }
  for (auto& d : done)
    d.wait_for(std::chrono::seconds(2));
}

void Server::stop() {
  if (!workers_) return;
  // Graceful (SIGTERM): no new calls, accounts un-registered, calls in progress may end by
  // themselves within instance.stop_timeout, then esg ends the rest (BYE, or 503 and CANCEL).
  if (workers_running_) {
    on_workers([this](size_t w) {
      if (per_worker_[w].b2bua) per_worker_[w].b2bua->drain();
    });
  }
  // Hands the accounts over (un-registered, leases released) so the others take them now.
  if (cluster_) cluster_->stop();
  if (accounts_) accounts_->stop();
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(config_.instance.stop_timeout);
  size_t live = workers_running_ ? live_calls() : 0;
  while (live > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    live = live_calls();
  }
  if (live > 0) {
    log::get("app").warn("stopping: ending {} call(s) still in progress", live);
    on_workers([this](size_t w) {
      if (per_worker_[w].b2bua) per_worker_[w].b2bua->end_all("esg is shutting down");
    });
    // Their BYEs and CANCELs are out; a moment for the answers (and a retransmission).
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
  }
  if (http_) http_->stop();
  if (stun_) {
    // Its sockets and timers live on worker 0: closed there.
    auto done = std::make_shared<std::promise<void>>();
    auto f = done->get_future();
    workers_->post(0, [this, done] {
      stun_->stop();
      done->set_value();
    });
    f.wait_for(std::chrono::seconds(2));
  }
  // TDLib saves its state while the workers still run.
  if (lines_) lines_->stop();
  transport_->close();
  workers_->stop();
  // With every thread stopped, tear down in dependency order: what holds timers and sockets on
  // the io_contexts goes before the io_contexts themselves.
  cluster_.reset();
  members_.reset();
  accounts_.reset();
  http_.reset();
  lines_.reset();  // its receive loop posts to the workers' io_contexts
  stun_.reset();
  resolver_.reset();    // its thread calls back into edge_ (account names)
  per_worker_.clear();  // the B2BUAs before what their calls use
  media_pollers_.clear();
  notifier_.reset();  // after the B2BUAs that publish to it; what is queued stays on disk
  call_events_.reset();
  webhooks_.reset();
  cdrs_.reset();  // writes what is queued
  edge_.reset();
  pbx_.reset();
  normalization_.reset();
  routes_.reset();
  border_rules_.reset();
  store_.reset();
  transport_.reset();
  trn_.reset();  // writes what is still queued
  workers_.reset();
}

void Server::reload_webhooks() {
  if (!webhooks_ || !notifier_) return;
  std::vector<notify::Webhook> list;
  for (const auto& j : webhooks_->stored()) {
    auto w = notify::webhook_from_json(j);
    if (w) list.push_back(std::move(*w));
  }
  notifier_->set_webhooks(std::move(list));
}

void Server::import_webhooks() {
  auto stored = store_->list(store::Table::Webhooks);
  if (!stored) throw std::runtime_error("webhooks: " + stored.error().message);
  for (const auto& j : config_.webhooks) {
    auto w = notify::webhook_from_json(j);
    if (!w) continue;  // the config check refused it already
    const std::string data = notify::to_json(*w).dump();
    int64_t id = 0;
    for (const auto& row : *stored) {
      auto d = nlohmann::json::parse(row.data, nullptr, false);
      if (d.is_object() && d.value("url", std::string()) == w->url) id = row.id;
    }
    std::string error;
    if (id) {
      if (auto r = store_->update(store::Table::Webhooks, id, "", data); !r)
        error = r.error().message;
    } else if (auto r = store_->insert(store::Table::Webhooks, "", data); !r) {
      error = r.error().message;
    }
    if (!error.empty()) throw std::runtime_error("webhooks: " + w->url + ": " + error);
  }
}

txn::Channel Server::channel_to(const transport::Peer& peer) {
  txn::Channel channel{peer.proto != transport::Proto::Udp, [this, peer](std::string_view bytes) {
                         return transport_->send(peer, std::string(bytes));
                       }};
  if (channel.reliable) {
    // A connection that is refused, times out or fails TLS verification fails the transaction
    // at once (RFC 3261 §17.1.4), not at Timer B/F.
    channel.send_watched = [this, peer](std::string_view bytes, txn::SendFailed failed) {
      return transport_->send(peer, std::string(bytes), std::move(failed));
    };
  }
  return channel;
}

size_t Server::calls() const {
  return edge_ ? edge_->board().size() : 0;
}

std::string Server::call_id_for(size_t worker) {
  // The B leg must belong to the worker of its A leg: draw until the hash agrees.
  for (;;) {
    std::string id = random::hex(20) + "@esg";
    if (workers_->worker_for(id) == worker) return id;
  }
}

void Server::rebuild_edge_config() {
  if (!edge_ || !store_) return;
  std::lock_guard lock(edge_->rebuild_mu);
  edge::ShareAccount share;
  if (accounts_) share = [this](accounts::Account&& a) { return accounts_->shared(std::move(a)); };
  auto cfg = edge::edge_config_from_store(*store_, config_.instance.domain, extaddrs(), share);
  edge_->registrar()->set_connections(cfg->pbxs);
  std::vector<accounts::Account> register_out;
  for (const auto& p : cfg->pbxs) {
    if (p->mode == "register-out" && p->enabled) register_out.push_back(p->as_account());
  }
  edge_->resolve_names(*cfg);
  edge_->set(std::move(cfg));
  if (accounts_) accounts_->sync_register_out(register_out);
  rebuild_border();  // the protected addresses follow the accounts
}

std::vector<std::string> Server::reload(const Config& fresh) {
  std::vector<std::string> applied = {"log levels"};
  if (http_) {
    http_->set_auth(fresh.http.token, fresh.http.public_metrics, fresh.http.public_fw);
    applied.push_back("http token");
  }
  // The addresses the outside sees us as, and those the firewall list adds: matching and
  // Contact use the new extaddrs from the next message on, the list from its next heartbeat.
  bool ext_changed;
  {
    std::lock_guard lock(ext_mu_);
    ext_changed = extaddrs_ != fresh.instance.extaddrs;
    extaddrs_ = fresh.instance.extaddrs;
    fwaddrs_ = fresh.instance.fwaddrs;
  }
  if (ext_changed) rebuild_edge_config();
  applied.push_back("extaddrs, fwaddrs");
  {
    std::lock_guard lock(border_mu_);
    default_action_ = fresh.security.default_action;
  }
  rebuild_border();
  applied.push_back("border default action");
  // The providers the file declares: new ones created, changed ones replaced (their
  // registration restarts), unchanged ones left alone; the store's others stay.
  size_t changed = 0;
  for (size_t i = 0; accounts_ && i < fresh.providers.size(); ++i) {
    const auto& p = fresh.providers[i];
    auto a = accounts::account_from_json(p);
    if (!a) {
      log::get("app").error("reload: providers[{}]: {}: {}", i, a.error().field, a.error().message);
      continue;
    }
    auto existing = store_->find_code(store::Table::Providers, a->code);
    if (existing && existing->data == accounts::to_stored_json(*a).dump()) continue;
    auto r = existing ? accounts_->replace(existing->id, p) : accounts_->create(p);
    if (!r) {
      log::get("app").error("reload: providers[{}] ({}): {}", i, a->code, r.error().message);
      continue;
    }
    ++changed;
  }
  applied.push_back(std::to_string(changed) + " provider(s) changed");
  // What else differs needs a restart: named, not applied.
  auto comparable = [](const Config& c) {
    nlohmann::json j = to_json(c);
    j.erase("providers");
    j["log"].erase("level");
    j["log"].erase("modules");
    j["http"].erase("token");
    j["http"].erase("public_metrics");
    j["http"].erase("public_fw");
    j["instance"].erase("extaddrs");
    j["instance"].erase("fwaddrs");
    j["security"].erase("default_action");
    return j;
  };
  const nlohmann::json before = comparable(config_), after = comparable(fresh);
  std::vector<std::string> restart;
  for (auto it = after.begin(); it != after.end(); ++it) {
    if (!before.contains(it.key()) || before[it.key()] != it.value()) restart.push_back(it.key());
  }
  std::string a, r;
  for (const auto& x : applied)
    a += (a.empty() ? "" : ", ") + x;
  for (const auto& x : restart)
    r += (r.empty() ? "" : ", ") + x;
  log::get("app").info("configuration reloaded: {}{}", a,
                       restart.empty() ? "" : "; changed but need a restart: " + r);
  // The levels last, so that the line above is written at the levels it was asked under
  // (load_config checked the modules and levels already).
  nlohmann::json levels = {{"level", fresh.log.level}, {"modules", nlohmann::json::object()}};
  for (const auto& [m, l] : fresh.log.modules)
    levels["modules"][m] = l;
  std::string field;
  if (const std::string e = log::set_levels(levels, &field); !e.empty())
    log::get("app").error("reload: log.{}: {}", field, e);
  return restart;
}

void Server::rebuild_border() {
  if (!edge_ || !border_rules_) return;
  std::lock_guard lock(border_mu_);
  std::vector<edge::BorderRule> rules;
  for (const auto& j : border_rules_->stored()) {
    if (auto r = edge::border_rule_from_json(j)) rules.push_back(std::move(*r));
  }
  const auto action = edge::border_action(default_action_.empty() ? config_.security.default_action
                                                                  : default_action_);
  edge_->border().set_rules(std::make_shared<edge::BorderRules>(
      std::move(rules), action.value_or(edge::BorderAction::Allow),
      edge_->protected_addresses(*edge_->config())));
}

// Border rules on parsed fields (CONTRACTS.md "Who is calling" step 2): false when the message
// goes no further (dropped, or a request answered 403 here, statelessly).
bool Server::border_admits(const sip::Message& m, const transport::Peer& from) {
  const auto rules = edge_->border().rules();
  if (!rules->needs_fields()) return true;
  const std::string addr = from.addr.to_string();
  edge::PacketFields f;
  f.address = addr;
  f.port = from.port;
  f.proto = transport::proto_name(from.proto);
  std::string ruri_user, from_user, to_user;
  if (m.is_request()) {
    f.method = m.method_text();
    ruri_user = m.request_uri().user_unescaped();
    f.ruri_user = ruri_user;
  }
  from_user = m.from().uri.user_unescaped();
  to_user = m.to().uri.user_unescaped();
  f.from_user = from_user;
  f.to_user = to_user;
  if (const auto* ua = m.header(sip::HeaderId::UserAgent)) f.user_agent = ua->value;
  const auto v =
      edge_->border().after_parse(edge::IpKey::of(from.addr), f, transport::Workers::current());
  if (v.action == edge::BorderAction::Allow) return true;
  if (v.action == edge::BorderAction::Deny && m.is_request() && m.method() != sip::Method::Ack) {
    transport_->send(from, sip::build_response(m, 403, {}, tag_prefix_ + "b"));
  }
  return false;
}

void Server::on_message(size_t worker, sip::Message&& message, const transport::Peer& from) {
  if (edge_ && !border_admits(message, from)) return;
  // An overloaded worker refuses a share of the new calls before any state is made for them
  // (stateless 503: the caller tries another instance or later), and goes on with the calls it
  // has.
  if (message.is_request() && message.method() == sip::Method::Invite && message.to_tag().empty() &&
      per_worker_[worker].load->refuse()) {
    overload_refused_.fetch_add(1, std::memory_order_relaxed);
    const auto& load = *per_worker_[worker].load;
    transport_->send(
        from,
        sip::build_response(
            message, 503, {}, tag_prefix_ + "o",
            "Retry-After: 5\r\nReason: SIP;cause=503;text=\"EB2B. Overloaded: worker " +
                std::to_string(worker) + " runs " + std::to_string(load.lag_ms()) +
                " ms late, queue " + std::to_string(load.backlog_pct()) + " % full, refusing " +
                std::to_string(load.refusing_pct()) + " % of new calls\"\r\n"));
    return;
  }
  per_worker_[worker].layer->receive(std::move(message), channel_to(from));
}

void Server::on_request(size_t worker, txn::TxnId id, const sip::Message& request,
                        const txn::Channel& from) {
  auto& layer = *per_worker_[worker].layer;
  auto& b2bua = per_worker_[worker].b2bua;
  if (id == 0) {  // an ACK for a 2xx: the B2BUA's, or one we never sent
    if (b2bua) b2bua->on_request(0, request, from);
    return;
  }
  const std::string tag = tag_prefix_ + std::to_string(++next_tag_);
  // RFC 3261 §8.2.2.3: an extension we do not support in Require is answered 420 with the
  // offending option tags in Unsupported (RFC 4475 §3.3.5). The B2BUA bridges 100rel (RFC 3262)
  // end to end in calls and keeps session timers (RFC 4028) on each leg; nothing else.
  if (request.method() != sip::Method::Cancel) {
    auto required = request.tokens(sip::HeaderId::Require);
    if (!required) {
      layer.respond(id, 400, sip::build_response(request, 400, "Malformed Require", tag));
      return;
    }
    const bool call = request.method() == sip::Method::Invite ||
                      request.method() == sip::Method::Prack ||
                      (!request.to_tag().empty() && request.method() != sip::Method::Register);
    std::string unsupported;
    for (auto t : *required) {
      if (call && text::iequals(t, "100rel")) continue;
      if (call && text::iequals(t, "timer") && config_.instance.session_expires != 0) continue;
      unsupported += (unsupported.empty() ? "" : ", ") + std::string(t);
    }
    if (!unsupported.empty()) {
      layer.respond(
          id, 420,
          sip::build_response(request, 420, {}, tag, "Unsupported: " + unsupported + "\r\n"));
      return;
    }
  }
  const bool in_dialog = !request.to_tag().empty();
  if (request.method() == sip::Method::Register && !in_dialog && edge_) {
    // esg is the registrar of register-in PBX connections.
    auto answer = edge_->registrar()->on_register(request, std::string(transport_name_of(request)),
                                                  request.source().addr, request.source().port);
    if (answer.auth_failure) edge_->count_failure(request.source().addr, answer.why);
    layer.respond(id, answer.status,
                  sip::build_response(request, answer.status, answer.reason, tag, answer.extra));
    return;
  }
  if (b2bua && (in_dialog || request.method() == sip::Method::Invite) &&
      b2bua->on_request(id, request, from)) {
    return;
  }
  if (in_dialog) {
    layer.respond(id, 481, sip::build_response(request, 481, {}, tag));
    return;
  }
  switch (request.method()) {
    case sip::Method::Options:
      // Out-of-dialog OPTIONS are answered by esg itself (CONTRACTS.md "Who is calling").
      layer.respond(
          id, 200,
          sip::build_response(request, 200, {}, tag,
                              std::string("Allow: ") + kAllow + "\r\nAccept: application/sdp\r\n"));
      return;
    case sip::Method::Bye:
    case sip::Method::Prack:
    case sip::Method::Update:
    case sip::Method::Info:
    case sip::Method::Notify:
      layer.respond(id, 481, sip::build_response(request, 481, {}, tag));
      return;
    case sip::Method::Unknown:
      layer.respond(
          id, 501,
          sip::build_response(request, 501, {}, tag, std::string("Allow: ") + kAllow + "\r\n"));
      return;
    default:
      // Accounts, routing and the B2BUA come with later issues: say so plainly.
      layer.respond(id, 480, sip::build_response(request, 480, "No Route", tag));
      return;
  }
}

}  // namespace esg::app
