#pragma once
// The instance config file (CONTRACTS.md "Instance config file"): sections, defaults, and
// validation whose errors name the field by its path (`listen[1].port`).

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace esg::app {

struct Listener {
  std::string proto = "udp";  // udp | tcp | tls
  std::string addr = "0.0.0.0";
  uint16_t port = 5080;
  std::string cert, key, ca;  // tls only
};

struct SipAlgRule {
  std::string gray;
  std::string white;
};

struct Config {
  struct Instance {
    int srvidx = 1;
    int roleid = 1;
    std::string node = "esg";
    std::string domain = "esg.local";
    std::vector<std::string> extaddrs;
    // More addresses or CIDRs this instance sends to PBXs from, for the firewall list (a NAT
    // pool, a second uplink); canonical form ("192.0.2.0/28").
    std::vector<std::string> fwaddrs;
    std::vector<SipAlgRule> sip_alg;
    int workers = 0;  // 0 = one per core
    // The A leg's Call-ID on every B leg, so that sngrep and CRMs can join the legs ("" = none).
    std::string call_id_header = "X-Call-ID";
    // SIGTERM: how long calls in progress may go on before esg ends them (seconds).
    int stop_timeout = 30;
    // RFC 4028 session timers on each leg of a call (seconds; 0: none), and the shortest
    // interval esg accepts (Min-SE; the RFC's floor is 90).
    int session_expires = 1800;
    int min_se = 90;
    // A worker whose loop runs this late (ms), or whose receive queue is half full, on several
    // probes in a row is overloaded: a share of the new calls gets 503 with Retry-After until it
    // keeps up again (0: never refuse). On by default: bench/overload.py with the load generator
    // on a core of its own showed no caller waiting for a timeout with it, a sixth without.
    int overload_lag = 500;
    // Several instances (store.postgres): how often each writes its heartbeat, and the silence
    // after which the others count it dead and take its accounts over (seconds).
    double heartbeat = 1;
    double dead_after = 3;
  } instance;
  std::vector<Listener> listen;
  struct Http {
    std::string listen = "127.0.0.1:8080";
    std::string token;
    bool public_metrics = false;
    bool public_fw = false;  // /fw.txt (the firewall list) without the token
    std::string admin_user = "admin";
    std::string admin_password_hash;  // hash_password()'s form: `esg hash-password` makes one
    std::string ui_dir = "web/dist";  // the web page's files (ensure_web builds them)
  } http;
  struct Store {
    std::string sqlite = "var/esg.db";
    std::string postgres;
    // Call records: off only to measure what they cost (bench/b2bua_vs_kamailio.py --cpu).
    bool cdrs = true;
  } store;
  struct Log {
    std::string dir = "var/log";
    bool log_trn = false;
    std::string level = "info";
    std::vector<std::pair<std::string, std::string>> modules;  // a level per module
    std::string to = "stderr";  // stderr | file (<dir>/esg.log, rotated)
  } log;
  // Stream and size limits (an addition to the contract's sections).
  struct Transport {
    int max_message = 65535;
    double idle_timeout = 300;    // seconds a TCP connection may stay silent
    double message_timeout = 30;  // seconds to finish a started message on TCP
    double connect_timeout = 10;  // seconds to open a TCP connection (and its TLS handshake)
    int max_connections = 10000;
    int max_connections_per_address = 64;
    // RFC 3261 timers in milliseconds (T1 also sets B, F, H and J: 64*T1).
    int t1 = 500;
    int t2 = 4000;
    int t4 = 5000;
  } transport;
  std::vector<std::string> dns_servers;
  std::string stun_server;  // host[:port]; empty: no STUN
  // HEP v3 export of every packet to a Homer collector (issue 10); no address: off.
  struct Hep {
    std::string address;  // "IP:port"
    int64_t id = 2001;    // capture agent id
    std::string password;
  } hep;
  int stun_interval = 300;  // seconds between queries
  struct Media {
    bool relay = true;
    uint16_t port_min = 20000;
    uint16_t port_max = 30000;
    int timeout = 60;
    bool latching = true;             // symmetric RTP; false: send to signaled addresses
    bool strict_source = false;       // media only from signaled addresses
    std::string address = "0.0.0.0";  // where the relay's sockets listen
  } media;
  struct Security {
    std::string default_action = "allow";
    int ban_failures = 5;
    int ban_window = 60;
    int ban_duration = 3600;
    // Flood limit per source address (like Kamailio's pike): over `requests` within `window`
    // seconds, dropped for `duration` seconds; requests 0 turns it off.
    int pike_requests = 30;
    int pike_window = 2;
    int pike_duration = 120;
  } security;
  struct Telegram {
    std::string tdjson;
    std::string sessions = "var/telegram";
    // Where the lines' sessions are kept besides their folders (issue 23): "store" (the
    // default with store.postgres) or "files"; snapshots at most every session_snapshot s.
    std::string session_store;
    int session_snapshot = 60;
  } telegram;
  // Registration pacing and retries (an addition to the contract's sections).
  struct Accounts {
    double register_rate = 50;  // start-up REGISTERs per second
    double retry_min = 5;       // seconds before the first retry after a failure
    double retry_max = 300;     // the pause doubles up to this
  } accounts;
  nlohmann::json providers = nlohmann::json::array();  // imported by the accounts module
  // CRM webhooks (issue 23), imported into the store at start (matched by url), as validated
  // by notify::webhook_from_json; and the instance's queue of deliveries on disk.
  nlohmann::json webhooks = nlohmann::json::array();
  struct WebhookQueue {
    std::string dir = "var/webhooks";
    int max = 10000;  // deliveries kept; beyond, the oldest is dropped (counted, logged)
  } webhook_queue;
};

// A config that cannot be used: names the field path (or the line and column of a JSON syntax
// error) and what is wrong.
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string field, const std::string& what)
      : std::runtime_error(field.empty() ? what : field + ": " + what), field_(std::move(field)) {}
  // The same error, prefixed with the file it was found in.
  static ConfigError in_file(const std::string& path, const ConfigError& e) {
    ConfigError out("", path + ": " + e.what());
    out.field_ = e.field_;
    return out;
  }
  const std::string& field() const { return field_; }

 private:
  std::string field_;
};

Config parse_config(const std::string& text);  // throws ConfigError
Config load_config(const std::string& path);   // throws ConfigError
nlohmann::json to_json(const Config& c);       // the effective config (secrets masked)

}  // namespace esg::app
