#pragma once
// GET /metrics in Prometheus' text exposition format (0.0.4) (issue 10): each family with its
// HELP and TYPE lines, samples with escaped label values. The sources are the status views
// the rest of esg already keeps (the call board, registrations, the border's counters, the
// relay's counters, the Telegram lines); this file only writes them out.

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/http_server.hpp"

namespace esg::api {

class MetricsText {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;
  // `type`: counter or gauge.
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, const Labels& labels, double value);
  void sample(std::string_view name, double value) { sample(name, {}, value); }
  // A family of one sample without labels.
  void single(std::string_view name, std::string_view type, std::string_view help, double value) {
    family(name, type, help);
    sample(name, value);
  }
  const std::string& text() const { return out_; }

 private:
  std::string out_;
};

// A label value as the format wants it: backslash, double quote and line feed escaped.
std::string escape_label(std::string_view v);

struct MetricsSources {
  std::function<nlohmann::json()> calls;          // the call board's list
  std::function<nlohmann::json()> call_counters;  // CallBoard::counters()
  // {"malformed", "transaction_timeouts", "sessions_expired", "overload_refused",
  // "workers_overloaded", "worker_lag_ms": [per worker]}
  std::function<nlohmann::json()> sip;
  std::function<nlohmann::json()> store;     // {"read"|"write": {"buckets": [7], "sum_us"}}
  std::function<nlohmann::json()> regs;      // AccountManager::regs()
  std::function<nlohmann::json()> border;    // Border::status()
  std::function<nlohmann::json()> instance;  // instance status with the relay's counters
  std::function<nlohmann::json()> telegram;  // Lines::status()
  std::function<nlohmann::json()> cluster;   // Cluster::status() (several instances only)
  std::function<nlohmann::json()> webhooks;  // notify::Notifier::status()
  std::string version;
};

std::string render_metrics(const MetricsSources& s);
// GET /metrics (the bearer token unless http.public_metrics: see HttpServer::Options).
void add_metrics_route(HttpServer& server, MetricsSources sources);

}  // namespace esg::api
