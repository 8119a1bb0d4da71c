#include "app/config.hpp"

#include <boost/asio/ip/address.hpp>

#include "accounts/account.hpp"
#include "cluster/firewall.hpp"
#include "log/log.hpp"
#include "notify/webhook.hpp"
#include "transport/hep.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

namespace esg::app {

using nlohmann::json;

namespace {

// Walks one JSON object, reading known fields and rejecting unknown ones, with the path of
// every field at hand for error messages.
class Section {
 public:
  Section(const json& j, std::string path) : j_(j), path_(std::move(path)) {
    if (!j_.is_object()) throw ConfigError(path_, "must be an object");
  }

  std::string at(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

  const json* get(const std::string& key) {
    seen_.insert(key);
    auto it = j_.find(key);
    return it == j_.end() ? nullptr : &*it;
  }

  void str(const std::string& key, std::string& out) {
    if (const json* v = get(key)) {
      if (!v->is_string()) throw ConfigError(at(key), "must be a string");
      out = v->get<std::string>();
    }
  }
  void boolean(const std::string& key, bool& out) {
    if (const json* v = get(key)) {
      if (!v->is_boolean()) throw ConfigError(at(key), "must be true or false");
      out = v->get<bool>();
    }
  }
  template <typename T>
  void integer(const std::string& key, T& out, long long min, long long max) {
    if (const json* v = get(key)) {
      if (!v->is_number_integer()) throw ConfigError(at(key), "must be an integer");
      const long long n = v->get<long long>();
      if (n < min || n > max) {
        throw ConfigError(at(key),
                          "must be between " + std::to_string(min) + " and " + std::to_string(max));
      }
      out = static_cast<T>(n);
    }
  }
  void number(const std::string& key, double& out, double min, double max) {
    if (const json* v = get(key)) {
      if (!v->is_number()) throw ConfigError(at(key), "must be a number");
      const double n = v->get<double>();
      if (n < min || n > max) {
        throw ConfigError(at(key),
                          "must be between " + json(min).dump() + " and " + json(max).dump());
      }
      out = n;
    }
  }
  void strings(const std::string& key, std::vector<std::string>& out) {
    if (const json* v = get(key)) {
      if (!v->is_array()) throw ConfigError(at(key), "must be an array of strings");
      out.clear();
      for (size_t i = 0; i < v->size(); ++i) {
        if (!(*v)[i].is_string()) {
          throw ConfigError(at(key) + "[" + std::to_string(i) + "]", "must be a string");
        }
        out.push_back((*v)[i].get<std::string>());
      }
    }
  }
  // After reading: any key nobody asked for is a typo or a field from another version.
  void finish() const {
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (!seen_.count(it.key())) throw ConfigError(at(it.key()), "unknown field");
    }
  }

 private:
  const json& j_;
  std::string path_;
  std::set<std::string> seen_;
};

bool is_ip(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

void read_listeners(const json& arr, Config& c) {
  if (!arr.is_array()) throw ConfigError("listen", "must be an array of listeners");
  c.listen.clear();
  std::set<std::string> seen;
  for (size_t i = 0; i < arr.size(); ++i) {
    const std::string path = "listen[" + std::to_string(i) + "]";
    Section s(arr[i], path);
    Listener l;
    s.str("proto", l.proto);
    if (l.proto != "udp" && l.proto != "tcp" && l.proto != "tls") {
      throw ConfigError(s.at("proto"), "must be udp, tcp or tls");
    }
    if (l.proto == "tls") l.port = 5061;
    s.str("addr", l.addr);
    if (!is_ip(l.addr)) throw ConfigError(s.at("addr"), "must be an IPv4 or IPv6 address");
    s.integer("port", l.port, 0, 65535);  // 0: any free port (tests)
    s.str("cert", l.cert);
    s.str("key", l.key);
    s.str("ca", l.ca);
    if (l.proto == "tls" && (l.cert.empty() || l.key.empty())) {
      throw ConfigError(path, "a tls listener needs cert and key");
    }
    s.finish();
    const std::string id = l.proto + " " + l.addr + ":" + std::to_string(l.port);
    if (!seen.insert(id).second) throw ConfigError(path, "duplicate listener " + id);
    c.listen.push_back(l);
  }
}

}  // namespace

Config parse_config(const std::string& text) {
  json root;
  try {
    root = json::parse(text, nullptr, true, /*ignore_comments=*/true);
  } catch (const json::parse_error& e) {
    // Turn the byte offset into a line and column an editor can jump to.
    size_t line = 1, col = 1;
    for (size_t i = 0; i + 1 < e.byte && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    throw ConfigError("", "JSON syntax error at line " + std::to_string(line) + ", column " +
                              std::to_string(col) + ": " + e.what());
  }
  Config c;
  c.listen = {Listener{"udp", "0.0.0.0", 5080, {}, {}, {}},
              Listener{"tcp", "0.0.0.0", 5080, {}, {}, {}}};
  Section top(root, "");
  if (const json* j = top.get("instance")) {
    Section s(*j, "instance");
    s.integer("srvidx", c.instance.srvidx, 0, 65535);
    s.integer("roleid", c.instance.roleid, 0, 65535);
    s.str("node", c.instance.node);
    s.str("domain", c.instance.domain);
    s.strings("extaddrs", c.instance.extaddrs);
    for (size_t i = 0; i < c.instance.extaddrs.size(); ++i) {
      if (!is_ip(c.instance.extaddrs[i])) {
        throw ConfigError("instance.extaddrs[" + std::to_string(i) + "]", "must be an IP address");
      }
    }
    s.strings("fwaddrs", c.instance.fwaddrs);
    for (size_t i = 0; i < c.instance.fwaddrs.size(); ++i) {
      const auto canonical = cluster::canonical_address(c.instance.fwaddrs[i]);
      if (!canonical || c.instance.fwaddrs[i].find_first_not_of("0123456789abcdefABCDEF.:/") !=
                            std::string::npos) {
        throw ConfigError("instance.fwaddrs[" + std::to_string(i) + "]",
                          "must be an IP address or a CIDR (192.0.2.0/28)");
      }
      c.instance.fwaddrs[i] = *canonical;
    }
    if (const json* alg = s.get("sip_alg")) {
      if (!alg->is_array()) throw ConfigError("instance.sip_alg", "must be an array");
      for (size_t i = 0; i < alg->size(); ++i) {
        Section r((*alg)[i], "instance.sip_alg[" + std::to_string(i) + "]");
        SipAlgRule rule;
        r.str("gray", rule.gray);
        r.str("white", rule.white);
        if (!is_ip(rule.gray)) throw ConfigError(r.at("gray"), "must be an IP address");
        if (!is_ip(rule.white)) throw ConfigError(r.at("white"), "must be an IP address");
        r.finish();
        c.instance.sip_alg.push_back(rule);
      }
    }
    s.integer("workers", c.instance.workers, 0, 256);
    s.str("call_id_header", c.instance.call_id_header);
    s.integer("stop_timeout", c.instance.stop_timeout, 0, 3600);
    s.integer("session_expires", c.instance.session_expires, 0, 86400);
    s.integer("min_se", c.instance.min_se, 90, 86400);
    s.integer("overload_lag", c.instance.overload_lag, 0, 60000);
    if (c.instance.session_expires != 0 && c.instance.session_expires < c.instance.min_se) {
      throw ConfigError("instance.session_expires",
                        "must be 0 (no session timers) or at least instance.min_se (" +
                            std::to_string(c.instance.min_se) + ")");
    }
    s.number("heartbeat", c.instance.heartbeat, 0.1, 10);
    s.number("dead_after", c.instance.dead_after, 0.3, 60);
    if (c.instance.dead_after < 2 * c.instance.heartbeat) {
      throw ConfigError("instance.dead_after",
                        "must be at least twice instance.heartbeat (one lost heartbeat must not "
                        "make an instance dead)");
    }
    for (char ch : c.instance.call_id_header) {
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_' && ch != '.')
        throw ConfigError("instance.call_id_header",
                          "must be a header name (letters, digits, '-', '_', '.') or empty");
    }
    s.finish();
  }
  if (const json* j = top.get("listen")) read_listeners(*j, c);
  if (const json* j = top.get("http")) {
    Section s(*j, "http");
    s.str("listen", c.http.listen);
    s.str("token", c.http.token);
    s.boolean("public_metrics", c.http.public_metrics);
    s.boolean("public_fw", c.http.public_fw);
    s.str("ui_dir", c.http.ui_dir);
    if (const json* a = s.get("admin")) {
      Section admin(*a, "http.admin");
      admin.str("user", c.http.admin_user);
      admin.str("password_hash", c.http.admin_password_hash);
      if (!c.http.admin_password_hash.empty() &&
          c.http.admin_password_hash.rfind("pbkdf2-sha256$", 0) != 0)
        throw ConfigError("http.admin.password_hash",
                          "must be pbkdf2-sha256$... (make one with `esg hash-password`)");
      admin.finish();
    }
    s.finish();
  }
  if (const json* j = top.get("store")) {
    Section s(*j, "store");
    s.str("sqlite", c.store.sqlite);
    s.str("postgres", c.store.postgres);
    s.boolean("cdrs", c.store.cdrs);
    if (!c.store.postgres.empty() && j->contains("sqlite")) {
      throw ConfigError("store", "name either sqlite or postgres, not both");
    }
    if (!c.store.postgres.empty()) c.store.sqlite.clear();
    s.finish();
  }
  if (const json* j = top.get("log")) {
    Section s(*j, "log");
    s.str("dir", c.log.dir);
    s.boolean("log_trn", c.log.log_trn);
    s.str("level", c.log.level);
    static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error", "off"};
    if (!kLevels.count(c.log.level)) {
      throw ConfigError("log.level", "must be trace, debug, info, warn, error or off");
    }
    if (const json* m = s.get("modules")) {
      if (!m->is_object()) throw ConfigError("log.modules", "must be an object of module: level");
      c.log.modules.clear();
      for (auto it = m->begin(); it != m->end(); ++it) {
        const auto& known = log::modules();
        if (std::find(known.begin(), known.end(), it.key()) == known.end()) {
          std::string list;
          for (const auto& k : known)
            list += (list.empty() ? "" : ", ") + k;
          throw ConfigError("log.modules." + it.key(), "no such module (" + list + ")");
        }
        if (!it->is_string() || !kLevels.count(it->get<std::string>()))
          throw ConfigError("log.modules." + it.key(),
                            "must be trace, debug, info, warn, error or off");
        c.log.modules.emplace_back(it.key(), it->get<std::string>());
      }
    }
    s.str("to", c.log.to);
    if (c.log.to != "stderr" && c.log.to != "file")
      throw ConfigError("log.to", "must be stderr or file");
    s.finish();
  }
  if (const json* j = top.get("transport")) {
    Section s(*j, "transport");
    s.integer("max_message", c.transport.max_message, 1024, 1 << 20);
    s.number("idle_timeout", c.transport.idle_timeout, 0.1, 86400);
    s.number("message_timeout", c.transport.message_timeout, 0.1, 3600);
    s.number("connect_timeout", c.transport.connect_timeout, 0.1, 300);
    s.integer("max_connections", c.transport.max_connections, 1, 1000000);
    s.integer("max_connections_per_address", c.transport.max_connections_per_address, 1, 100000);
    s.integer("t1", c.transport.t1, 10, 10000);
    s.integer("t2", c.transport.t2, 100, 60000);
    s.integer("t4", c.transport.t4, 100, 60000);
    s.finish();
    if (c.transport.t2 < c.transport.t1) {
      throw ConfigError("transport.t2", "must not be less than transport.t1");
    }
  }
  if (const json* j = top.get("accounts")) {
    Section s(*j, "accounts");
    s.number("register_rate", c.accounts.register_rate, 0.1, 100000);
    s.number("retry_min", c.accounts.retry_min, 0.1, 86400);
    s.number("retry_max", c.accounts.retry_max, 0.1, 86400);
    s.finish();
    if (c.accounts.retry_max < c.accounts.retry_min) {
      throw ConfigError("accounts.retry_max", "must not be less than accounts.retry_min");
    }
  }
  if (const json* j = top.get("dns")) {
    Section s(*j, "dns");
    s.strings("servers", c.dns_servers);
    s.finish();
  }
  if (const json* j = top.get("hep")) {
    Section s(*j, "hep");
    s.str("address", c.hep.address);
    if (!c.hep.address.empty()) {
      if (auto e = transport::HepExporter::parse_address(c.hep.address); !e)
        throw ConfigError("hep.address", e.error());
    }
    s.integer("id", c.hep.id, 0, 4294967295LL);
    s.str("password", c.hep.password);
    s.finish();
  }
  if (const json* j = top.get("stun")) {
    Section s(*j, "stun");
    s.str("server", c.stun_server);
    s.integer("interval", c.stun_interval, 10, 86400);
    s.finish();
  }
  if (const json* j = top.get("media")) {
    Section s(*j, "media");
    s.boolean("relay", c.media.relay);
    if (const json* ports = s.get("ports")) {
      if (!ports->is_array() || ports->size() != 2 || !(*ports)[0].is_number_integer() ||
          !(*ports)[1].is_number_integer()) {
        throw ConfigError("media.ports", "must be [first, last]");
      }
      const long long lo = (*ports)[0].get<long long>(), hi = (*ports)[1].get<long long>();
      if (lo < 1024 || hi > 65535 || lo >= hi) {
        throw ConfigError("media.ports", "must be a range within 1024-65535, first < last");
      }
      c.media.port_min = static_cast<uint16_t>(lo);
      c.media.port_max = static_cast<uint16_t>(hi);
    }
    s.integer("timeout", c.media.timeout, 0, 86400);
    s.boolean("latching", c.media.latching);
    s.boolean("strict_source", c.media.strict_source);
    s.str("address", c.media.address);
    {
      boost::system::error_code ec;
      boost::asio::ip::make_address(c.media.address, ec);
      if (ec) throw ConfigError("media.address", "must be an IP address");
    }
    s.finish();
  }
  if (const json* j = top.get("security")) {
    Section s(*j, "security");
    s.str("default_action", c.security.default_action);
    if (c.security.default_action != "allow" && c.security.default_action != "deny" &&
        c.security.default_action != "drop") {
      throw ConfigError("security.default_action", "must be allow, deny or drop");
    }
    if (const json* b = s.get("ban")) {
      Section ban(*b, "security.ban");
      ban.integer("failures", c.security.ban_failures, 1, 1000000);
      ban.integer("window", c.security.ban_window, 1, 86400);
      ban.integer("duration", c.security.ban_duration, 1, 31536000);
      ban.finish();
    }
    if (const json* p = s.get("pike")) {
      Section pike(*p, "security.pike");
      pike.integer("requests", c.security.pike_requests, 0, 100000000);
      pike.integer("window", c.security.pike_window, 1, 3600);
      pike.integer("duration", c.security.pike_duration, 1, 31536000);
      pike.finish();
    }
    s.finish();
  }
  if (const json* j = top.get("telegram")) {
    Section s(*j, "telegram");
    s.str("tdjson", c.telegram.tdjson);
    s.str("sessions", c.telegram.sessions);
    s.str("session_store", c.telegram.session_store);
    s.integer("session_snapshot", c.telegram.session_snapshot, 5, 3600);
    s.finish();
    if (!c.telegram.session_store.empty() && c.telegram.session_store != "store" &&
        c.telegram.session_store != "files")
      throw ConfigError("telegram.session_store", "must be \"store\" or \"files\"");
  }
  // The sessions go into the store where instances share one (PostgreSQL); on SQLite, one
  // instance's own file, the folders are all there is.
  if (c.telegram.session_store.empty())
    c.telegram.session_store = c.store.postgres.empty() ? "files" : "store";
  if (c.telegram.session_store == "store" && c.store.postgres.empty())
    throw ConfigError("telegram.session_store",
                      "\"store\" needs store.postgres (the instances' shared store)");
  if (const json* j = top.get("providers")) {
    if (!j->is_array()) throw ConfigError("providers", "must be an array of provider accounts");
    c.providers = *j;
    std::set<std::string> codes;
    for (size_t i = 0; i < j->size(); ++i) {
      const std::string path = "providers[" + std::to_string(i) + "]";
      auto a = accounts::account_from_json((*j)[i]);
      if (!a) {
        throw ConfigError(a.error().field.empty() ? path : path + "." + a.error().field,
                          a.error().message);
      }
      if (!codes.insert(a->code).second) throw ConfigError(path + ".code", "is used twice");
    }
  }
  if (const json* j = top.get("webhooks")) {
    if (!j->is_array()) throw ConfigError("webhooks", "must be an array of webhooks");
    std::set<std::string> urls;
    for (size_t i = 0; i < j->size(); ++i) {
      const std::string path = "webhooks[" + std::to_string(i) + "]";
      if ((*j)[i].is_object() && (*j)[i].contains("id"))
        throw ConfigError(path + ".id", "is given by the store, not the config file");
      auto w = notify::webhook_from_json((*j)[i]);
      if (!w) {
        throw ConfigError(w.error().field.empty() ? path : path + "." + w.error().field,
                          w.error().message);
      }
      if (!urls.insert(w->url).second) throw ConfigError(path + ".url", "is used twice");
    }
    c.webhooks = *j;
  }
  if (const json* j = top.get("webhook_queue")) {
    Section s(*j, "webhook_queue");
    s.str("dir", c.webhook_queue.dir);
    if (c.webhook_queue.dir.empty()) throw ConfigError("webhook_queue.dir", "must not be empty");
    s.integer("max", c.webhook_queue.max, 1, 10000000);
    s.finish();
  }
  top.finish();
  return c;
}

Config load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError("", "cannot read config file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return parse_config(ss.str());
  } catch (const ConfigError& e) {
    throw ConfigError::in_file(path, e);
  }
}

json to_json(const Config& c) {
  json j;
  j["instance"] = {{"srvidx", c.instance.srvidx},
                   {"roleid", c.instance.roleid},
                   {"node", c.instance.node},
                   {"domain", c.instance.domain},
                   {"extaddrs", c.instance.extaddrs},
                   {"fwaddrs", c.instance.fwaddrs},
                   {"workers", c.instance.workers},
                   {"call_id_header", c.instance.call_id_header},
                   {"stop_timeout", c.instance.stop_timeout},
                   {"session_expires", c.instance.session_expires},
                   {"min_se", c.instance.min_se},
                   {"overload_lag", c.instance.overload_lag},
                   {"heartbeat", c.instance.heartbeat},
                   {"dead_after", c.instance.dead_after}};
  j["instance"]["sip_alg"] = json::array();
  for (const auto& r : c.instance.sip_alg) {
    j["instance"]["sip_alg"].push_back({{"gray", r.gray}, {"white", r.white}});
  }
  j["listen"] = json::array();
  for (const auto& l : c.listen) {
    json x = {{"proto", l.proto}, {"addr", l.addr}, {"port", l.port}};
    if (!l.cert.empty()) x["cert"] = l.cert;
    if (!l.key.empty()) x["key"] = l.key;
    if (!l.ca.empty()) x["ca"] = l.ca;
    j["listen"].push_back(x);
  }
  // Secrets are write-only (CONTRACTS.md): say whether they are set, never what they are.
  j["http"] = {{"listen", c.http.listen},
               {"token", c.http.token.empty() ? "" : "(set)"},
               {"public_metrics", c.http.public_metrics},
               {"public_fw", c.http.public_fw},
               {"ui_dir", c.http.ui_dir},
               {"admin",
                {{"user", c.http.admin_user},
                 {"password_hash", c.http.admin_password_hash.empty() ? "" : "(set)"}}}};
  j["store"] =
      c.store.postgres.empty() ? json{{"sqlite", c.store.sqlite}} : json{{"postgres", "(set)"}};
  j["store"]["cdrs"] = c.store.cdrs;
  json modules = json::object();
  for (const auto& [m, l] : c.log.modules)
    modules[m] = l;
  j["log"] = {{"dir", c.log.dir},
              {"log_trn", c.log.log_trn},
              {"level", c.log.level},
              {"modules", modules},
              {"to", c.log.to}};
  j["transport"] = {{"max_message", c.transport.max_message},
                    {"idle_timeout", c.transport.idle_timeout},
                    {"message_timeout", c.transport.message_timeout},
                    {"connect_timeout", c.transport.connect_timeout},
                    {"max_connections", c.transport.max_connections},
                    {"max_connections_per_address", c.transport.max_connections_per_address},
                    {"t1", c.transport.t1},
                    {"t2", c.transport.t2},
                    {"t4", c.transport.t4}};
  j["accounts"] = {{"register_rate", c.accounts.register_rate},
                   {"retry_min", c.accounts.retry_min},
                   {"retry_max", c.accounts.retry_max}};
  j["dns"] = {{"servers", c.dns_servers}};
  j["hep"] = c.hep.address.empty() ? json::object()
                                   : json{{"address", c.hep.address},
                                          {"id", c.hep.id},
                                          {"password", c.hep.password.empty() ? "" : "(set)"}};
  j["stun"] = c.stun_server.empty()
                  ? json::object()
                  : json{{"server", c.stun_server}, {"interval", c.stun_interval}};
  j["media"] = {{"relay", c.media.relay},
                {"ports", {c.media.port_min, c.media.port_max}},
                {"timeout", c.media.timeout},
                {"latching", c.media.latching},
                {"strict_source", c.media.strict_source},
                {"address", c.media.address}};
  j["security"] = {{"default_action", c.security.default_action},
                   {"ban",
                    {{"failures", c.security.ban_failures},
                     {"window", c.security.ban_window},
                     {"duration", c.security.ban_duration}}},
                   {"pike",
                    {{"requests", c.security.pike_requests},
                     {"window", c.security.pike_window},
                     {"duration", c.security.pike_duration}}}};
  j["telegram"] = {{"tdjson", c.telegram.tdjson},
                   {"sessions", c.telegram.sessions},
                   {"session_store", c.telegram.session_store},
                   {"session_snapshot", c.telegram.session_snapshot}};
  json providers = c.providers;
  for (auto& p : providers) {
    if (p.is_object() && p.contains("pwd")) p["pwd"] = "(set)";
  }
  j["providers"] = providers;
  json webhooks = c.webhooks;
  for (auto& w : webhooks) {
    if (w.is_object() && w.contains("secret")) w["secret"] = "(set)";
  }
  j["webhooks"] = webhooks;
  j["webhook_queue"] = {{"dir", c.webhook_queue.dir}, {"max", c.webhook_queue.max}};
  return j;
}

}  // namespace esg::app
