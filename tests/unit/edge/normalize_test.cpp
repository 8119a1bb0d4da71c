#include "edge/normalize/normalize.hpp"

#include <gtest/gtest.h>

using esg::accounts::Account;
using esg::edge::Normalizer;
using esg::edge::NormFields;
using esg::edge::NormRule;
using nlohmann::json;

namespace {

Account prov() {
  Account a;
  a.id = 7;
  a.code = "prov-a";
  a.username = "74951234567";
  a.domain = "sip.prov.example";
  return a;
}

NormRule rule(const json& j) {
  auto r = esg::edge::norm_rule_from_json(j);
  EXPECT_TRUE(r) << (r ? "" : r.error().field + ": " + r.error().message);
  return *r;
}

}  // namespace

TEST(Normalize, DefaultsWithoutRules) {
  Normalizer n({});
  NormFields in{"+79161234567", "Ivan", "prov.example", "74951234567", "prov.example", "100"};
  auto r = n.apply(false, prov(), in, "esg.local");
  EXPECT_EQ(r.fields.from_user, "+79161234567");
  EXPECT_EQ(r.fields.to_user, "");
  EXPECT_EQ(r.fields.from_domain, "esg.local");
  EXPECT_EQ(r.fields.to_domain, "esg.local");
  EXPECT_TRUE(r.steps.empty());

  auto o =
      n.apply(true, prov(), {"101", "", "esg.local", "84951112233", "esg.local", "84951112233"},
              "esg.local");
  EXPECT_EQ(o.fields.from_user, "101");
  EXPECT_EQ(o.fields.to_user, "84951112233");
  EXPECT_EQ(o.fields.from_domain, "sip.prov.example");
  EXPECT_EQ(o.fields.to_domain, "sip.prov.example");
}

TEST(Normalize, RulesApplyInPriorityOrderWithGroupsAndAccountVariables) {
  Normalizer n({rule({{"id", 1},
                      {"priority", 20},
                      {"direction", "out"},
                      {"providercode", "*"},
                      {"field", "to_user"},
                      {"match", "^8(\\d{10})$"},
                      {"replace", "+7$1"}}),
                rule({{"id", 2},
                      {"priority", 10},
                      {"direction", "out"},
                      {"account", 7},
                      {"field", "from_user"},
                      {"match", ".*"},
                      {"replace", "${account.username}"}}),
                rule({{"id", 3},
                      {"priority", 30},
                      {"direction", "out"},
                      {"providercode", "other-*"},
                      {"field", "to_user"},
                      {"match", ".*"},
                      {"replace", "never"}})});
  auto r = n.apply(true, prov(), {"101", "", "", "84951112233", "", "84951112233"}, "esg.local");
  EXPECT_EQ(r.fields.from_user, "74951234567");
  EXPECT_EQ(r.fields.to_user, "+74951112233");
  ASSERT_EQ(r.steps.size(), 2u);
  EXPECT_EQ(r.steps[0].rule, 2);
  EXPECT_EQ(r.steps[1].rule, 1);
  EXPECT_EQ(r.steps[1].before, "84951112233");
}

TEST(Normalize, AnIncomingRuleOnToUserKeepsIt) {
  Normalizer n({rule({{"direction", "in"},
                      {"providercode", "prov-*"},
                      {"field", "to_user"},
                      {"match", "^7495(\\d+)$"},
                      {"replace", "$1"}})});
  auto r = n.apply(false, prov(), {"1", "", "", "74951234567", "", ""}, "esg.local");
  EXPECT_EQ(r.fields.to_user, "1234567");
}

TEST(Normalize, ValidationNamesTheField) {
  auto check = [](const json& j, const std::string& field) {
    auto r = esg::edge::norm_rule_from_json(j);
    ASSERT_FALSE(r) << j.dump();
    EXPECT_EQ(r.error().field, field) << r.error().message;
  };
  const json ok = {{"providercode", "*"}, {"field", "to_user"}, {"match", "x"}, {"replace", ""}};
  check({{"providercode", "*"}, {"field", "to_user"}, {"match", "("}}, "match");
  check({{"providercode", "*"}, {"field", "to"}, {"match", "x"}}, "field");
  check({{"field", "to_user"}, {"match", "x"}}, "providercode");
  check({{"providercode", "*"}, {"field", "to_user"}, {"match", "(x)"}, {"replace", "$2"}},
        "replace");
  check({{"providercode", "*"}, {"field", "to_user"}, {"match", "x"}, {"replace", "${nope}"}},
        "replace");
  json typo = ok;
  typo["diretion"] = "in";
  check(typo, "diretion");
  json bad_dir = ok;
  bad_dir["direction"] = "sideways";
  check(bad_dir, "direction");
}
