#include "api/metrics.hpp"

#include <gtest/gtest.h>

namespace {

TEST(Metrics, FamiliesSamplesAndEscapedLabels) {
  esg::api::MetricsText m;
  m.family("esg_x_total", "counter", "things");
  m.sample("esg_x_total", {{"why", "a \"quoted\" \\ back\nslash"}}, 3);
  m.sample("esg_x_total", 0.25);
  EXPECT_EQ(m.text(),
            "# HELP esg_x_total things\n# TYPE esg_x_total counter\n"
            "esg_x_total{why=\"a \\\"quoted\\\" \\\\ back\\nslash\"} 3\n"
            "esg_x_total 0.25\n");
}

TEST(Metrics, RenderedFromTheStatusViews) {
  esg::api::MetricsSources s;
  s.version = "1.2.3";
  s.calls = [] {
    return nlohmann::json::array({{{"direction", "out"}, {"state", "early"}},
                                  {{"direction", "out"}, {"state", "early"}},
                                  {{"direction", "in"}, {"state", "ended"}}});
  };
  s.regs = [] {
    return nlohmann::json::array({{{"regstate", "registered"}, {"pingstate", "ok"}}});
  };
  const std::string text = esg::api::render_metrics(s);
  EXPECT_NE(text.find("esg_build_info{version=\"1.2.3\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("esg_calls_in_progress{direction=\"out\",state=\"early\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("esg_calls_in_progress{direction=\"in\",state=\"confirmed\"} 0\n"),
            std::string::npos);
  EXPECT_NE(text.find("esg_provider_accounts{regstate=\"registered\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("esg_provider_pings{pingstate=\"ok\"} 1\n"), std::string::npos);
  EXPECT_EQ(text.find("esg_border"), std::string::npos) << "no source, no family";
}

TEST(Metrics, TelegramCallsMediaSummedOverTheLines) {
  esg::api::MetricsSources s;
  s.telegram = [] {
    using nlohmann::json;
    auto media = [](int host_calls, int reconnections) {
      return json{{"connected",
                   json::array({{{"path", "host"}, {"version", "9.0.0"}, {"calls", host_calls}},
                                {{"path", "reflector"}, {"version", "8.0.0"}, {"calls", 1}}})},
                  {"connect_buckets", {0, 1, 2, 0, 0, 0, 0, 0, 1}},
                  {"connect_ms_sum", 1500},
                  {"reconnections", reconnections},
                  {"no_path_20s", 1},
                  {"signaling_undecryptable", 3},
                  {"skipped_tcp_reflectors", 2}};
    };
    return json::array({{{"state", "ready"}, {"media", media(2, 1)}},
                        {{"state", "ready"}, {"media", media(1, 4)}},
                        {{"state", "disabled"}}});
  };
  const std::string text = esg::api::render_metrics(s);
  auto has = [&](const std::string& line) {
    EXPECT_NE(text.find(line + "\n"), std::string::npos) << line << "\n" << text;
  };
  has("# TYPE esg_telegram_calls_connected_total counter");
  has("esg_telegram_calls_connected_total{path=\"host\",version=\"9.0.0\"} 3");
  has("esg_telegram_calls_connected_total{path=\"reflector\",version=\"8.0.0\"} 2");
  has("# TYPE esg_telegram_connect_seconds histogram");
  has("esg_telegram_connect_seconds_bucket{le=\"0.1\"} 0");
  has("esg_telegram_connect_seconds_bucket{le=\"0.25\"} 2");
  has("esg_telegram_connect_seconds_bucket{le=\"0.5\"} 6");  // cumulative
  has("esg_telegram_connect_seconds_bucket{le=\"20\"} 6");
  has("esg_telegram_connect_seconds_bucket{le=\"+Inf\"} 8");
  has("esg_telegram_connect_seconds_sum 3");
  has("esg_telegram_connect_seconds_count 8");
  has("esg_telegram_reconnections_total 5");
  has("esg_telegram_calls_no_path_total 2");
  has("esg_telegram_signaling_undecryptable_total 6");
  has("esg_telegram_tcp_reflectors_skipped_total 4");
  has("esg_telegram_lines{state=\"ready\"} 2");
}

}  // namespace
