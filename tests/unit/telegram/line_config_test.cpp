#include "telegram/line_config.hpp"

#include <gtest/gtest.h>

namespace {

using esg::telegram::line_from_json;
using nlohmann::json;

json good() {
  return {{"code", "tg1"},
          {"api_id", 12345},
          {"api_hash", "0123456789abcdef0123456789abcdef"},
          {"phone", "+79990001122"},
          {"pbx", "pbx1"}};
}

std::string field_of(const json& j) {
  auto l = line_from_json(j);
  return l ? "(accepted)" : l.error().field + ": " + l.error().message;
}

TEST(LineConfig, DefaultsFollowTheIssue) {
  auto l = line_from_json(good());
  ASSERT_TRUE(l);
  EXPECT_EQ(l->callerid, "userid");
  EXPECT_EQ(l->callerid_prefix, "*");
  EXPECT_EQ(l->callerid_suffix, "");
  EXPECT_EQ(l->ring_timeout, 15);
  EXPECT_EQ(l->noncontact_calls_per_day, 30);
  EXPECT_TRUE(l->enabled);
  EXPECT_EQ(l->callername, std::vector<std::string>{"name"});
}

TEST(LineConfig, ErrorsNameTheField) {
  auto with = [](const char* k, json v) {
    json j = good();
    j[k] = std::move(v);
    return j;
  };
  auto without = [](const char* k) {
    json j = good();
    j.erase(k);
    return j;
  };
  EXPECT_EQ(field_of(without("code")).substr(0, 5), "code:");
  EXPECT_EQ(field_of(without("api_id")).substr(0, 7), "api_id:");
  EXPECT_EQ(field_of(with("api_hash", "short")).substr(0, 9), "api_hash:");
  EXPECT_EQ(field_of(with("phone", "89990001122")).substr(0, 6), "phone:");
  EXPECT_EQ(field_of(without("pbx")).substr(0, 4), "pbx:");
  EXPECT_EQ(field_of(with("callerid", "name")).substr(0, 9), "callerid:");
  EXPECT_EQ(field_of(with("callerid_prefix", "9")).substr(0, 16), "callerid_prefix:");
  EXPECT_EQ(field_of(with("callername", json::array({"name", "email"}))),
            "callername[1]: must be one of name, username, phone");
  EXPECT_EQ(field_of(with("ring_timeout", 1)).substr(0, 13), "ring_timeout:");
  EXPECT_EQ(field_of(with("trunk", 2)), "trunk: unknown field");
}

TEST(LineConfig, ServeridxsLikeAProviderAccount) {
  auto l = line_from_json(good());
  ASSERT_TRUE(l);
  EXPECT_TRUE(l->serveridxs.empty());  // any instance
  json j = good();
  j["serveridxs"] = json::array({2, 3});
  l = line_from_json(j);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->serveridxs, (std::vector<int>{2, 3}));
  EXPECT_EQ(esg::telegram::to_stored_json(*l)["serveridxs"], json::array({2, 3}));
  j["serveridxs"] = 2;
  EXPECT_EQ(field_of(j), "serveridxs: must be an array of srvidx integers");
  j["serveridxs"] = json::array({1, "two"});
  EXPECT_EQ(field_of(j), "serveridxs[1]: must be a srvidx (0 to 65535)");
  j["serveridxs"] = json::array({70000});
  EXPECT_EQ(field_of(j).substr(0, 14), "serveridxs[0]:");
}

TEST(LineConfig, ChatFieldsDefaultsAndErrorsNameTheField) {
  auto l = line_from_json(good());
  ASSERT_TRUE(l);
  EXPECT_TRUE(l->menu.empty());
  EXPECT_EQ(l->menu_text, "{menu}; send a digit, then call");
  EXPECT_EQ(l->menu_interval, 3600);
  EXPECT_EQ(l->missed_interval, 3600);
  EXPECT_EQ(l->missed_message, "");
  EXPECT_EQ(l->callback_keyword, "");
  auto with = [](const char* k, json v) {
    json j = good();
    j[k] = std::move(v);
    return j;
  };
  const json entry = {{"key", "1"}, {"label", "Sales"}, {"pbx", "pbx2"}, {"number", "200"}};
  auto ok = line_from_json(with("menu", json::array({entry})));
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->menu.size(), 1u);
  EXPECT_EQ(ok->menu[0].pbx, "pbx2");
  EXPECT_EQ(ok->menu[0].number, "200");
  EXPECT_EQ(field_of(with("menu", "1 Sales")).substr(0, 5), "menu:");
  EXPECT_EQ(field_of(with("menu", json::array({entry, entry}))), "menu[1].key: is used by menu[0]");
  EXPECT_EQ(field_of(with("menu", json::array({{{"key", "x"}, {"label", "A"}}}))).substr(0, 12),
            "menu[0].key:");
  EXPECT_EQ(field_of(with("menu", json::array({{{"key", "1"}}}))).substr(0, 14), "menu[0].label:");
  EXPECT_EQ(field_of(with("menu", json::array({{{"key", "1"}, {"label", "A"}, {"pbx", "a b"}}})))
                .substr(0, 12),
            "menu[0].pbx:");
  EXPECT_EQ(field_of(with("menu", json::array({{{"key", "1"}, {"label", "A"}, {"to", "1"}}}))),
            "menu[0].to: unknown field");
  EXPECT_EQ(field_of(with("menu", json::array({{{"key", "1"}, {"label", "A"}, {"number", 5}}}))),
            "menu[0].number: must be a string");
  EXPECT_EQ(field_of(with("menu_interval", 0)).substr(0, 14), "menu_interval:");
  EXPECT_EQ(field_of(with("missed_interval", "1h")).substr(0, 16), "missed_interval:");
  EXPECT_EQ(field_of(with("missed_message", std::string(4097, 'a'))).substr(0, 15),
            "missed_message:");
  EXPECT_EQ(field_of(with("callback_keyword", "call back")).substr(0, 17), "callback_keyword:");
  EXPECT_EQ(field_of(with("callback_keyword", "123")).substr(0, 17), "callback_keyword:");
  json empty_text = with("menu", json::array({entry}));
  empty_text["menu_text"] = "";
  EXPECT_EQ(field_of(empty_text).substr(0, 10), "menu_text:");
}

TEST(LineConfig, StoredAndPublicViews) {
  json in = good();
  in["menu"] = json::array({{{"key", "1"}, {"label", "Sales"}, {"pbx", ""}, {"number", "200"}}});
  in["callback_keyword"] = "callback";
  in["missed_message"] = "Sorry, we missed your call";
  auto l = line_from_json(in);
  ASSERT_TRUE(l);
  const json stored = esg::telegram::to_stored_json(*l);
  EXPECT_EQ(stored["api_hash"], "0123456789abcdef0123456789abcdef");
  EXPECT_FALSE(esg::telegram::public_view(stored).contains("api_hash"));
  auto again = line_from_json(stored);
  ASSERT_TRUE(again) << again.error().field;
  EXPECT_EQ(esg::telegram::to_stored_json(*again), stored);
}

}  // namespace
