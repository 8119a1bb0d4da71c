#include "accounts/pbx.hpp"
#include "edge/context.hpp"

#include <gtest/gtest.h>

#include <algorithm>

using esg::accounts::pbx_from_json;
using nlohmann::json;

TEST(Pbx, IpConnectionWithHeaders) {
  auto p = pbx_from_json({{"code", "pbx1"},
                          {"mode", "ip"},
                          {"address", "127.0.0.5"},
                          {"port", 5070},
                          {"number", "100"},
                          {"headers", {{"X-Site", "main"}}}});
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->port, 5070);
  ASSERT_EQ(p->headers.size(), 1u);
  EXPECT_EQ(p->headers[0].first, "X-Site");
  auto j = to_json(*p);
  EXPECT_FALSE(j.contains("pwd"));
  EXPECT_EQ(j["headers"]["X-Site"], "main");
}

TEST(Pbx, ValidationNamesTheField) {
  auto check = [](const json& j, const std::string& field) {
    auto r = pbx_from_json(j);
    ASSERT_FALSE(r) << j.dump();
    EXPECT_EQ(r.error().field, field) << r.error().message;
  };
  check({{"mode", "ip"}, {"address", "1.2.3.4"}}, "code");
  check({{"code", "p"}, {"mode", "ip"}}, "address");
  check({{"code", "p"}, {"mode", "register-in"}}, "username");
  check({{"code", "p"}, {"mode", "register-in"}, {"username", "u"}}, "pwd");
  check({{"code", "p"}, {"mode", "register-out"}, {"username", "u"}, {"pwd", "x"}}, "domain");
  check({{"code", "p"}, {"mode", "bridge"}}, "mode");
  check({{"code", "p"}, {"address", "1.2.3.4"}, {"headers", {{"X-A", "a\r\nb"}}}}, "headers.X-A");
  check({{"code", "p"}, {"address", "1.2.3.4"}, {"dtmf", "tones"}}, "dtmf");
  check({{"code", "p"}, {"address", "1.2.3.4"}, {"port", 0}}, "port");
  check({{"code", "p"}, {"address", "1.2.3.4"}, {"adress", "x"}}, "adress");
}

TEST(Pbx, ConnectionsAreFoundByAddressThenByWhatTheirNamesResolveTo) {
  esg::edge::EdgeConfig cfg;
  auto add = [&cfg](json j) {
    auto p = pbx_from_json(j);
    ASSERT_TRUE(p) << p.error().message;
    cfg.pbxs.push_back(std::make_shared<const esg::accounts::PbxConnection>(std::move(*p)));
  };
  add({{"code", "by-ip"}, {"mode", "ip"}, {"address", "10.0.0.5"}});
  add({{"code", "by-name"}, {"mode", "ip"}, {"address", "pbx.example.net"}});
  add({{"code", "off"}, {"mode", "ip"}, {"address", "pbx2.example.net"}, {"enabled", false}});
  add({{"code", "reg-out"},
       {"mode", "register-out"},
       {"domain", "reg.example.net"},
       {"username", "7001"},
       {"pwd", "x"}});
  std::vector<std::string> asked;
  auto resolved = [&asked](const esg::accounts::PbxConnection& p) {
    asked.push_back(p.code);
    if (p.code == "by-name" || p.code == "off") return std::vector<std::string>{"10.0.0.9"};
    if (p.code == "reg-out") return std::vector<std::string>{"10.0.0.7"};
    return std::vector<std::string>{};
  };
  EXPECT_EQ(cfg.pbx_from("10.0.0.5", resolved)->code, "by-ip");
  EXPECT_TRUE(asked.empty()) << "a literal address needs no lookup";
  EXPECT_EQ(cfg.pbx_from("10.0.0.9", resolved)->code, "by-name");  // not the disabled one
  EXPECT_EQ(cfg.pbx_from("10.0.0.7", resolved)->code, "reg-out");
  EXPECT_EQ(cfg.pbx_from("10.0.0.8", resolved), nullptr);
  EXPECT_EQ(cfg.pbx_from("10.0.0.9"), nullptr) << "without lookups, names match nothing";
  EXPECT_EQ(std::count(asked.begin(), asked.end(), "by-ip"), 0)
      << "a connection given by address is never looked up";
}
