#include "edge/routing/routing.hpp"

#include <gtest/gtest.h>

#include <set>

using esg::edge::Router;
using esg::edge::RouteRule;
using nlohmann::json;

namespace {

RouteRule rule(const json& j) {
  auto r = esg::edge::route_rule_from_json(j);
  EXPECT_TRUE(r) << (r ? "" : r.error().field + ": " + r.error().message);
  return *r;
}

}  // namespace

TEST(Routing, PriorityDirectionSourceAndPatterns) {
  Router router({rule({{"id", 1},
                       {"priority", 20},
                       {"direction", "out"},
                       {"action", "external"},
                       {"target", "b"}}),
                 rule({{"id", 2},
                       {"priority", 10},
                       {"direction", "out"},
                       {"called", "8\\d{10}"},
                       {"action", "external"},
                       {"target", "a"}}),
                 rule({{"id", 3},
                       {"priority", 5},
                       {"direction", "in"},
                       {"action", "pbx"},
                       {"target", "pbx1"}}),
                 rule({{"id", 4},
                       {"priority", 1},
                       {"direction", "out"},
                       {"source", "other"},
                       {"action", "reject"},
                       {"status", 403}})});
  auto c = router.candidates(true, "pbx1", "84951112233", "101");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0]->target, "a");
  EXPECT_EQ(c[1]->target, "b");
  c = router.candidates(true, "pbx1", "101", "102");  // called must match as a whole
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0]->target, "b");
  c = router.candidates(true, "other", "101", "102");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0]->action, "reject");
  c = router.candidates(false, "prov", "", "");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0]->target, "pbx1");
}

TEST(Routing, EqualPrioritiesAreShuffled) {
  Router router({rule({{"id", 1}, {"direction", "out"}, {"action", "external"}, {"target", "a"}}),
                 rule({{"id", 2}, {"direction", "out"}, {"action", "external"}, {"target", "b"}}),
                 rule({{"id", 3}, {"direction", "out"}, {"action", "external"}, {"target", "c"}}),
                 rule({{"id", 4},
                       {"priority", 200},
                       {"direction", "out"},
                       {"action", "external"},
                       {"target", "last"}})});
  std::set<std::string> firsts;
  for (int i = 0; i < 200; ++i) {
    auto c = router.candidates(true, "pbx", "1", "2");
    ASSERT_EQ(c.size(), 4u);
    EXPECT_EQ(c[3]->target, "last");
    firsts.insert(c[0]->target);
  }
  EXPECT_EQ(firsts.size(), 3u);
}

TEST(Routing, ValidationNamesTheField) {
  auto check = [](const json& j, const std::string& field) {
    auto r = esg::edge::route_rule_from_json(j);
    ASSERT_FALSE(r) << j.dump();
    EXPECT_EQ(r.error().field, field) << r.error().message;
  };
  check({{"action", "external"}}, "target");
  check({{"action", "forward"}, {"target", "x"}}, "action");
  check({{"action", "reject"}, {"status", 200}}, "status");
  check({{"action", "pbx"}, {"target", "x"}, {"called", "(("}}, "called");
  check({{"action", "pbx"}, {"target", "x"}, {"priority", "high"}}, "priority");
  check({{"action", "pbx"}, {"target", "x"}, {"colour", "red"}}, "colour");
}
