#include "accounts/pbx.hpp"

#include <gtest/gtest.h>

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
