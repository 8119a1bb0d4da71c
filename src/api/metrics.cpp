#include "api/metrics.hpp"

#include <cmath>
#include <cstdio>
#include <map>

namespace esg::api {

using nlohmann::json;

std::string escape_label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void MetricsText::family(std::string_view name, std::string_view type, std::string_view help) {
  out_.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void MetricsText::sample(std::string_view name, const Labels& labels, double value) {
  out_.append(name);
  if (!labels.empty()) {
    out_ += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i) out_ += ',';
      out_.append(labels[i].first)
          .append("=\"")
          .append(escape_label(labels[i].second))
          .append("\"");
    }
    out_ += '}';
  }
  char buf[32];
  if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 1e15) {
    std::snprintf(buf, sizeof buf, " %.0f\n", value);
  } else {
    std::snprintf(buf, sizeof buf, " %.9g\n", value);
  }
  out_ += buf;
}

namespace {

double number(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}

// The Telegram calls' media (issue 22), summed over the lines (each line's `media` counters,
// CallBridge::media_counters()): counted once per call, at the event or at the call's end.
void telegram_media(MetricsText& m, const json& lines) {
  static constexpr size_t kBuckets = 9;
  static const char* kLe[kBuckets] = {"0.1", "0.25", "0.5", "1", "2", "5", "10", "20", "+Inf"};
  std::map<std::pair<std::string, std::string>, double> connected;
  double buckets[kBuckets] = {}, sum_ms = 0, reconnections = 0, no_path = 0, undecryptable = 0,
         skipped = 0;
  std::map<std::string, double> chat;  // the lines' chat messages by result (issue 23)
  for (const char* r : {"sent", "dropped_flood", "dropped_busy", "failed"})
    chat[r] = 0;
  for (const auto& l : lines) {
    const json c = l.value("chat", json::object());
    if (c.is_object()) {
      for (auto& [result, n] : chat)
        n += number(c, result.c_str());
    }
    const json media = l.value("media", json::object());
    if (!media.is_object()) continue;
    for (const auto& c : media.value("connected", json::array()))
      connected[{c.value("path", ""), c.value("version", "")}] += number(c, "calls");
    const json b = media.value("connect_buckets", json::array());
    for (size_t i = 0; i < kBuckets && i < b.size(); ++i)
      buckets[i] += b[i].is_number() ? b[i].get<double>() : 0.0;
    sum_ms += number(media, "connect_ms_sum");
    reconnections += number(media, "reconnections");
    no_path += number(media, "no_path_20s");
    undecryptable += number(media, "signaling_undecryptable");
    skipped += number(media, "skipped_tcp_reflectors");
  }
  m.family("esg_telegram_calls_connected_total", "counter",
           "Telegram calls whose media connected, by path (host, srflx, relay, reflector) and "
           "call protocol version");
  for (const auto& [k, v] : connected)
    m.sample("esg_telegram_calls_connected_total", {{"path", k.first}, {"version", k.second}}, v);
  m.family("esg_telegram_connect_seconds", "histogram",
           "time from a Telegram call's ready state to its media connecting");
  double total = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    total += buckets[i];
    m.sample("esg_telegram_connect_seconds_bucket", {{"le", kLe[i]}}, total);
  }
  m.sample("esg_telegram_connect_seconds_sum", sum_ms / 1000.0);
  m.sample("esg_telegram_connect_seconds_count", total);
  m.single("esg_telegram_reconnections_total", "counter",
           "times a connected Telegram call lost its media path (reconnecting)", reconnections);
  m.single("esg_telegram_calls_no_path_total", "counter",
           "Telegram calls ended by the 20 s rule (no media path for 20 s)", no_path);
  m.single("esg_telegram_signaling_undecryptable_total", "counter",
           "Telegram call signaling packets dropped because they did not decrypt", undecryptable);
  m.single("esg_telegram_tcp_reflectors_skipped_total", "counter",
           "TCP reflectors of Telegram calls skipped (esg uses UDP reflectors)", skipped);
  m.family("esg_telegram_chat_messages_total", "counter",
           "chat messages the Telegram lines wrote (menu, missed-call, callback), by result: "
           "sent, dropped_flood (a flood wait over 5 s), dropped_busy, failed");
  for (const auto& [result, n] : chat)
    m.sample("esg_telegram_chat_messages_total", {{"result", result}}, n);
}

}  // namespace

std::string render_metrics(const MetricsSources& s) {
  MetricsText m;
  m.family("esg_build_info", "gauge", "esg's version (always 1)");
  m.sample("esg_build_info", {{"version", s.version}}, 1);

  if (s.calls) {
    // Every direction and state is written, 0 included, so that rates and sums never miss one.
    std::map<std::pair<std::string, std::string>, double> by;
    for (const char* d : {"in", "out"}) {
      for (const char* st : {"routing", "calling", "early", "answered", "confirmed"})
        by[{d, st}] = 0;
    }
    const json calls = s.calls();
    for (const auto& c : calls) {
      const std::string st = c.value("state", "");
      if (st == "ended") continue;
      by[{c.value("direction", ""), st}] += 1;
    }
    m.family("esg_calls_in_progress", "gauge", "calls in progress by direction and state");
    for (const auto& [k, v] : by)
      m.sample("esg_calls_in_progress", {{"direction", k.first}, {"state", k.second}}, v);
  }

  if (s.call_counters) {
    const json c = s.call_counters();
    m.family("esg_call_attempts_total", "counter", "calls routed, by direction");
    for (const char* d : {"in", "out"})
      m.sample("esg_call_attempts_total", {{"direction", d}},
               number(c.value("attempts", json::object()), d));
    m.family("esg_calls_completed_total", "counter",
             "calls ended, by direction and result (answered, cancelled, 4xx, 5xx, 6xx, failed)");
    for (const char* d : {"in", "out"}) {
      const json done = c.value("completed", json::object()).value(d, json::object());
      for (const char* r : {"answered", "cancelled", "4xx", "5xx", "6xx", "failed"})
        m.sample("esg_calls_completed_total", {{"direction", d}, {"result", r}}, number(done, r));
    }
  }

  if (s.sip) {
    const json x = s.sip();
    m.single("esg_sip_malformed_total", "counter",
             "packets that did not parse as SIP or broke a stream's framing",
             number(x, "malformed"));
    m.single("esg_sip_transaction_timeouts_total", "counter",
             "client transactions that got no final answer (Timer B or F)",
             number(x, "transaction_timeouts"));
    m.single("esg_session_timer_ended_total", "counter",
             "calls ended because a leg's session timer ran out or its refresh failed",
             number(x, "sessions_expired"));
    m.single("esg_overload_refused_total", "counter",
             "new calls refused with 503 while their worker was overloaded",
             number(x, "overload_refused"));
    m.single("esg_workers_overloaded", "gauge", "workers refusing a share of new calls now",
             number(x, "workers_overloaded"));
    m.family("esg_worker_lag_ms", "gauge", "how late each worker ran its last load probe");
    const json& lag = x.contains("worker_lag_ms") ? x["worker_lag_ms"] : json::array();
    for (size_t w = 0; w < lag.size(); ++w)
      m.sample("esg_worker_lag_ms", {{"worker", std::to_string(w)}}, lag[w].get<double>());
    m.family("esg_worker_refusing_percent", "gauge",
             "the share of new calls each worker refuses now (overload control)");
    const json& refusing =
        x.contains("worker_refusing_pct") ? x["worker_refusing_pct"] : json::array();
    for (size_t w = 0; w < refusing.size(); ++w)
      m.sample("esg_worker_refusing_percent", {{"worker", std::to_string(w)}},
               refusing[w].get<double>());
  }

  if (s.store) {
    // Bucket bounds as store/timed_store.hpp keeps them (milliseconds), in seconds.
    static const char* kLe[] = {"0.001", "0.005", "0.01", "0.05", "0.1", "0.5", "+Inf"};
    const json st = s.store();
    m.family("esg_store_latency_seconds", "histogram",
             "time taken by store operations (SQLite), by kind (read, write)");
    for (const char* kind : {"read", "write"}) {
      const json h = st.value(kind, json::object());
      const json buckets = h.value("buckets", json::array());
      if (buckets.size() != 7) continue;
      double total = 0;
      for (size_t i = 0; i < 7; ++i) {
        total += buckets[i].get<double>();
        m.sample("esg_store_latency_seconds_bucket", {{"op", kind}, {"le", kLe[i]}}, total);
      }
      m.sample("esg_store_latency_seconds_sum", {{"op", kind}}, number(h, "sum_us") / 1e6);
      m.sample("esg_store_latency_seconds_count", {{"op", kind}}, total);
    }
  }

  if (s.regs) {
    std::map<std::string, double> reg = {{"unregistered", 0}, {"registering", 0}, {"registered", 0},
                                         {"failed", 0},       {"auth_failed", 0}, {"disabled", 0},
                                         {"none", 0}};
    std::map<std::string, double> ping = {{"disabled", 0}, {"ok", 0}, {"failed", 0}};
    for (const auto& r : s.regs()) {
      reg[r.value("regstate", "")] += 1;
      ping[r.value("pingstate", "")] += 1;
    }
    m.family("esg_provider_accounts", "gauge", "provider accounts by registration state");
    for (const auto& [k, v] : reg)
      m.sample("esg_provider_accounts", {{"regstate", k}}, v);
    m.family("esg_provider_pings", "gauge", "provider accounts by OPTIONS ping state");
    for (const auto& [k, v] : ping)
      m.sample("esg_provider_pings", {{"pingstate", k}}, v);
  }

  if (s.cluster) {
    const json c = s.cluster();
    m.single("esg_cluster_store_up", "gauge", "1 while the heartbeats reach the store",
             c.value("store_ok", false) ? 1.0 : 0.0);
    m.single("esg_cluster_srvidx_conflict", "gauge",
             "1 while another live instance uses this one's srvidx (this one serves nothing)",
             c.value("srvidx_conflict", false) ? 1.0 : 0.0);
    m.family("esg_cluster_instances", "gauge", "instances in the store, by state");
    m.sample("esg_cluster_instances", {{"state", "online"}}, number(c, "online"));
    m.sample("esg_cluster_instances", {{"state", "offline"}}, number(c, "offline"));
    m.single("esg_cluster_accounts_served", "gauge",
             "accounts, PBX connections and Telegram lines this instance holds the lease of",
             number(c, "serving"));
    m.single("esg_cluster_leases_taken_total", "counter", "leases this instance took",
             number(c, "leases_taken"));
    m.single("esg_cluster_leases_released_total", "counter",
             "leases this instance handed over (un-registered, then released)",
             number(c, "leases_released"));
    m.single("esg_cluster_lease_rows_read_total", "counter",
             "lease rows the heartbeats read (only those changed since the last one)",
             number(c, "lease_rows_read"));
  }

  if (s.webhooks) {
    const json w = s.webhooks();
    m.single("esg_webhook_events_total", "counter", "call events published to the CRM webhooks",
             number(w, "events"));
    m.single("esg_webhook_delivered_total", "counter", "webhook deliveries answered 2xx",
             number(w, "delivered"));
    m.single("esg_webhook_failed_attempts_total", "counter",
             "webhook delivery attempts that failed (each retry counts)",
             number(w, "failed_attempts"));
    const json& d = w.value("dropped", json::object());
    m.family("esg_webhook_dropped_total", "counter", "webhook deliveries dropped, by reason");
    for (const char* r : {"queue_full", "expired", "overload", "deleted"})
      m.sample("esg_webhook_dropped_total", {{"reason", r}}, number(d, r));
    m.single("esg_webhook_queue_depth", "gauge", "webhook deliveries waiting (on disk)",
             number(w, "queue_depth"));
  }

  if (s.border) {
    const json b = s.border();
    const json& c = b.value("counters", json::object());
    m.family("esg_border_dropped_total", "counter", "packets dropped at the border, by reason");
    m.sample("esg_border_dropped_total", {{"reason", "rule"}}, number(c, "dropped_by_rule"));
    m.sample("esg_border_dropped_total", {{"reason", "banned"}}, number(c, "dropped_banned"));
    m.single("esg_border_denied_total", "counter", "requests answered 403 by a deny rule",
             number(c, "denied"));
    m.family("esg_border_bans_total", "counter", "addresses banned, by cause");
    m.sample("esg_border_bans_total", {{"cause", "all"}}, number(c, "bans"));
    m.sample("esg_border_bans_total", {{"cause", "flood"}}, number(c, "flood_bans"));
    m.single("esg_border_failures_total", "counter",
             "failures counted towards bans (authentication, unknown accounts, malformed)",
             number(c, "failures"));
    m.family("esg_border_bans_active", "gauge", "addresses banned now");
    m.sample("esg_border_bans_active",
             b.contains("bans") && b["bans"].is_array() ? double(b["bans"].size()) : 0.0);
  }

  if (s.instance) {
    const json r = s.instance().value("media", json::object());
    m.single("esg_media_sessions_total", "counter", "calls whose media went through the relay",
             number(r, "sessions"));
    m.single("esg_media_timeouts_total", "counter", "calls ended by the media timeout",
             number(r, "timeouts"));
    m.single("esg_media_no_ports_total", "counter", "calls refused for want of relay ports",
             number(r, "no_ports"));
    m.single("esg_rtp_packets_total", "counter", "RTP packets relayed by ended calls",
             number(r, "packets"));
    m.single("esg_rtp_bytes_total", "counter", "RTP bytes relayed by ended calls",
             number(r, "bytes"));
    m.single("esg_rtp_lost_packets_total", "counter",
             "RTP packets lost on the way to esg (sequence numbers), by ended calls",
             number(r, "lost"));
    const json jitter = r.value("jitter", json::object());
    const json buckets = jitter.value("buckets", json::array());
    if (buckets.size() == 6) {
      // Cumulative, as Prometheus histograms are.
      m.family("esg_rtp_jitter_ms", "histogram",
               "interarrival jitter (RFC 3550) of each ended stream side, in milliseconds");
      static const char* kLe[] = {"5", "10", "20", "40", "80", "+Inf"};
      double total = 0;
      for (size_t i = 0; i < 6; ++i) {
        total += buckets[i].get<double>();
        m.sample("esg_rtp_jitter_ms_bucket", {{"le", kLe[i]}}, total);
      }
      m.sample("esg_rtp_jitter_ms_sum", number(jitter, "sum_us") / 1000.0);
      m.sample("esg_rtp_jitter_ms_count", total);
    }
    m.single("esg_media_port_pairs_free", "gauge", "free RTP/RTCP port pairs of the relay",
             number(r, "port_pairs_free"));
  }

  if (s.telegram) {
    std::map<std::string, double> states;
    const json lines = s.telegram();
    for (const auto& l : lines)
      states[l.value("state", "")] += 1;
    m.family("esg_telegram_lines", "gauge", "Telegram lines by authorization state");
    for (const char* st : {"starting", "wait_phone", "wait_code", "wait_password", "ready",
                           "closed", "disabled", "error"})
      states.emplace(st, 0);
    for (const auto& [k, v] : states)
      m.sample("esg_telegram_lines", {{"state", k}}, v);
    telegram_media(m, lines);
  }
  return m.text();
}

void add_metrics_route(HttpServer& server, MetricsSources sources) {
  server.route("GET", "/metrics", [sources = std::move(sources)](const Request&, const auto&) {
    Response r;
    r.status = 200;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = render_metrics(sources);
    return r;
  });
}

}  // namespace esg::api
