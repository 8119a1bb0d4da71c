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

}  // namespace
