#include "edge/border/border.hpp"

#include <gtest/gtest.h>

namespace {

using esg::edge::AddressIndex;
using esg::edge::Border;
using esg::edge::BorderAction;
using esg::edge::BorderRule;
using esg::edge::BorderRules;
using esg::edge::IpKey;
using esg::edge::PacketFields;
using esg::edge::Pike;
using nlohmann::json;

IpKey ip(const char* text) {
  return *IpKey::parse(text);
}

BorderRule rule(int64_t id, int priority, const char* action, json filters = json::object()) {
  filters["id"] = id;
  filters["priority"] = priority;
  filters["action"] = action;
  auto r = esg::edge::border_rule_from_json(filters);
  EXPECT_TRUE(r.has_value()) << filters.dump() << ": " << r.error().field << " "
                             << r.error().message;
  return *r;
}

TEST(IpKey, V4AndV4MappedV6AreTheSameKey) {
  EXPECT_EQ(ip("10.1.2.3"), ip("::ffff:10.1.2.3"));
  EXPECT_TRUE(ip("10.1.2.3").v4());
  EXPECT_FALSE(ip("2001:db8::1").v4());
  EXPECT_EQ(ip("10.1.2.3").to_string(), "10.1.2.3");
  EXPECT_EQ(ip("2001:db8::1").to_string(), "2001:db8::1");
  EXPECT_FALSE(IpKey::parse("10.1.2"));
  EXPECT_FALSE(IpKey::parse("sip.example.com"));
}

TEST(AddressIndex, ExactCidrMaskAndRegexGiveTheLowestValue) {
  AddressIndex idx;
  idx.add("10.0.0.1", 7);
  idx.add("10.0.0.0/8", 9);
  idx.add("10.0.0.0/24", 8);
  idx.add("44.55.6?.*", 3);
  idx.add("/reg/^192\\.168\\.(1|2)\\.[0-9]+$", 4);
  idx.add("2001:db8::/32", 5);
  idx.compile();
  EXPECT_EQ(idx.first(ip("10.0.0.1")), 7u);
  EXPECT_EQ(idx.first(ip("10.0.0.2")), 8u);
  EXPECT_EQ(idx.first(ip("10.9.0.2")), 9u);
  EXPECT_EQ(idx.first(ip("11.0.0.1")), AddressIndex::kNone);
  EXPECT_EQ(idx.first(ip("44.55.66.77")), 3u);
  EXPECT_EQ(idx.first(ip("44.55.70.77")), AddressIndex::kNone);  // ? is one character
  EXPECT_EQ(idx.first(ip("192.168.2.10")), 4u);
  EXPECT_EQ(idx.first(ip("192.168.3.10")), AddressIndex::kNone);
  EXPECT_EQ(idx.first(ip("2001:db8:1::9")), 5u);
  EXPECT_EQ(idx.first(ip("2001:db9::1")), AddressIndex::kNone);
  EXPECT_EQ(idx.first(ip("::ffff:10.0.0.1")), 7u);  // v4-mapped is the v4 address
}

TEST(AddressIndex, OverlappingNetworksGiveTheLowestValueOfThoseThatCover) {
  AddressIndex idx;
  idx.add("10.0.0.0/8", 1);
  idx.add("10.0.0.0/24", 5);
  idx.add("10.0.1.0/24", 0);
  idx.add("10.0.1.128/25", 3);
  idx.add("255.255.255.255/32", 6);
  idx.add("ffff::/16", 2);
  idx.add("ffff:ffff::/32", 4);
  idx.compile();
  EXPECT_EQ(idx.first(ip("10.0.0.1")), 1u);
  EXPECT_EQ(idx.first(ip("10.0.1.200")), 0u);
  EXPECT_EQ(idx.first(ip("10.0.2.0")), 1u);
  EXPECT_EQ(idx.first(ip("10.255.255.255")), 1u);
  EXPECT_EQ(idx.first(ip("11.0.0.0")), AddressIndex::kNone);
  EXPECT_EQ(idx.first(ip("9.255.255.255")), AddressIndex::kNone);
  EXPECT_EQ(idx.first(ip("255.255.255.255")), 6u);
  EXPECT_EQ(idx.first(ip("255.255.255.254")), AddressIndex::kNone);
  EXPECT_EQ(idx.first(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")), 2u);  // the very last
  EXPECT_EQ(idx.first(ip("fffe::1")), AddressIndex::kNone);
}

TEST(AddressIndex, ZeroPrefixMatchesEveryV4Address) {
  AddressIndex idx;
  idx.add("0.0.0.0/0", 1);
  idx.compile();
  EXPECT_EQ(idx.first(ip("203.0.113.9")), 1u);
  EXPECT_EQ(idx.first(ip("2001:db8::1")), AddressIndex::kNone);
  AddressIndex all;
  all.add("::/0", 2);
  all.compile();
  EXPECT_EQ(all.first(ip("2001:db8::1")), 2u);
  EXPECT_EQ(all.first(ip("::")), 2u);
}

TEST(AddressIndex, TenThousandRulesAnswerLikeOne) {
  AddressIndex idx;
  for (uint32_t i = 0; i < 10000; ++i) {
    idx.add("10." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".1", i);
  }
  idx.add("172.16.0.0/12", 20000);
  idx.compile();
  EXPECT_EQ(idx.first(ip("10.0.0.1")), 0u);
  EXPECT_EQ(idx.first(ip("10.39.15.1")), 39u * 256 + 15);
  EXPECT_EQ(idx.first(ip("10.39.15.2")), AddressIndex::kNone);
  EXPECT_EQ(idx.first(ip("172.20.1.1")), 20000u);
}

TEST(BorderRuleJson, ValidatesEveryFieldByName) {
  auto error_of = [](json j) {
    auto r = esg::edge::border_rule_from_json(j);
    return r ? std::string() : r.error().field + ": " + r.error().message;
  };
  EXPECT_EQ(error_of({{"address", "10.0.0.1"}}), "action: is required: allow, deny or drop");
  EXPECT_EQ(error_of({{"action", "reject"}}), "action: must be allow, deny or drop");
  EXPECT_EQ(error_of({{"action", "drop"}, {"adress", "1.2.3.4"}}), "adress: unknown field");
  EXPECT_NE(error_of({{"action", "drop"}, {"address", "10.0.0.0/33"}}).find("address: not a CIDR"),
            std::string::npos);
  EXPECT_NE(error_of({{"action", "drop"}, {"address", "sip.example.com"}}).find("address: must be"),
            std::string::npos);
  EXPECT_NE(error_of({{"action", "drop"}, {"address", "10.0.x.*"}}).find("address: a mask"),
            std::string::npos);
  EXPECT_NE(
      error_of({{"action", "drop"}, {"user_agent", "/reg/(unclosed"}}).find("user_agent: bad"),
      std::string::npos);
  EXPECT_EQ(error_of({{"action", "drop"}, {"port", "70000"}}), "port: must be 1-65535");
  EXPECT_EQ(error_of({{"action", "drop"}, {"proto", "sctp"}}),
            "proto: must be udp, tcp or tls (or a mask)");
  EXPECT_EQ(error_of({{"action", "drop"}, {"priority", "1"}}), "priority: must be an integer");
  EXPECT_EQ(error_of({{"action", "allow"}, {"address", "44.55.6?.*"}, {"port", 5060}}), "");
  auto r = esg::edge::border_rule_from_json({{"action", "deny"}, {"method", "REGISTER"}});
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->address_only());
  EXPECT_EQ(esg::edge::to_json(*r)["action"], "deny");
  EXPECT_EQ(esg::edge::to_json(*r)["priority"], 100);
}

TEST(BorderRules, TheFirstMatchingRuleByPriorityDecides) {
  // A whitelist: allow one address and one network, drop everything else.
  BorderRules r({rule(3, 100, "drop", {{"address", "0.0.0.0/0"}}),
                 rule(1, 10, "allow", {{"address", "127.0.0.1"}}),
                 rule(2, 10, "allow", {{"address", "192.0.2.0/24"}})},
                BorderAction::Allow);
  EXPECT_EQ(r.at_socket(ip("127.0.0.1")).step, BorderRules::Step::Pass);
  EXPECT_EQ(r.at_socket(ip("192.0.2.77")).step, BorderRules::Step::Pass);
  EXPECT_EQ(r.at_socket(ip("127.0.0.2")).step, BorderRules::Step::Drop);
  EXPECT_EQ(r.at_socket(ip("2001:db8::1")).step, BorderRules::Step::Pass);  // default allow
  EXPECT_TRUE(r.allowed_by_address(ip("127.0.0.1")));
  EXPECT_FALSE(r.allowed_by_address(ip("127.0.0.2")));
  EXPECT_FALSE(r.needs_fields());
  EXPECT_EQ(r.address_rules(), 3u);
  // Equal priorities go by id.
  BorderRules tie({rule(9, 5, "allow", {{"address", "10.0.0.1"}}),
                   rule(4, 5, "drop", {{"address", "10.0.0.0/8"}})},
                  BorderAction::Allow);
  EXPECT_EQ(tie.at_socket(ip("10.0.0.1")).step, BorderRules::Step::Drop);
}

TEST(BorderRules, DisabledRulesDoNotCount) {
  auto off = rule(1, 1, "drop", {{"address", "10.0.0.1"}});
  off.enabled = false;
  BorderRules r({off}, BorderAction::Allow);
  EXPECT_EQ(r.at_socket(ip("10.0.0.1")).step, BorderRules::Step::Pass);
  EXPECT_EQ(r.size(), 0u);
}

TEST(BorderRules, RulesOnParsedFieldsRunAfterParsingInPriorityOrder) {
  BorderRules r({rule(1, 10, "drop", {{"user_agent", "/reg/(?i).*friendly-scanner.*"}}),
                 rule(2, 20, "allow", {{"address", "10.0.0.1"}}),
                 rule(3, 30, "deny", {{"method", "REGISTER"}, {"proto", "udp"}}),
                 rule(4, 40, "drop", {{"to_user", "100?"}, {"port", "50??"}})},
                BorderAction::Allow);
  EXPECT_TRUE(r.needs_fields());
  // A rule on parsed fields comes first: the address alone cannot decide.
  EXPECT_EQ(r.at_socket(ip("10.0.0.1")).step, BorderRules::Step::Parse);
  PacketFields f;
  f.proto = "udp";
  f.port = 5070;
  f.method = "REGISTER";
  f.user_agent = "Friendly-Scanner 1.0";
  auto v = r.decide(ip("10.0.0.1"), f);
  EXPECT_EQ(v.action, BorderAction::Drop);
  EXPECT_EQ(v.rule, 1);
  f.user_agent = "Asterisk PBX";
  v = r.decide(ip("10.0.0.1"), f);  // the address rule decides before the REGISTER rule
  EXPECT_EQ(v.action, BorderAction::Allow);
  EXPECT_EQ(v.rule, 2);
  v = r.decide(ip("10.0.0.2"), f);
  EXPECT_EQ(v.action, BorderAction::Deny);
  EXPECT_EQ(v.rule, 3);
  f.method = "INVITE";
  f.to_user = "1001";
  EXPECT_EQ(r.decide(ip("10.0.0.2"), f).rule, 4);
  f.port = 6000;
  v = r.decide(ip("10.0.0.2"), f);
  EXPECT_EQ(v.action, BorderAction::Allow);
  EXPECT_EQ(v.rule, 0);  // the default
  // A response has no method: a method filter does not match it.
  f.method = "";
  f.port = 5070;
  f.proto = "udp";
  f.to_user = "";
  EXPECT_EQ(r.decide(ip("10.0.0.2"), f).rule, 0);
}

TEST(BorderRules, DenyNeedsTheRequestAndDefaultDropDropsAtTheSocket) {
  BorderRules deny({rule(1, 1, "deny", {{"address", "10.0.0.0/8"}})}, BorderAction::Drop);
  EXPECT_EQ(deny.at_socket(ip("10.1.1.1")).step, BorderRules::Step::Parse);
  EXPECT_EQ(deny.decide(ip("10.1.1.1"), {}).action, BorderAction::Deny);
  EXPECT_EQ(deny.at_socket(ip("11.1.1.1")).step, BorderRules::Step::Drop);
}

TEST(BorderRules, ProviderAddressesPassDropAllRulesUnlessNamedAndAreWarnedAbout) {
  std::vector<BorderRules::Protected> providers = {{ip("192.0.2.10"), "provider account prov-a"},
                                                   {ip("192.0.2.20"), "PBX connection pbx-1"},
                                                   {ip("198.51.100.5"), "provider account b"}};
  BorderRules r({rule(1, 10, "allow", {{"address", "127.0.0.1"}}),
                 rule(2, 20, "drop", {{"address", "192.0.2.20"}}),
                 rule(3, 90, "drop", {{"address", "0.0.0.0/0"}})},
                BorderAction::Allow, providers);
  // Not named: passes the drop-all rule.
  EXPECT_EQ(r.at_socket(ip("192.0.2.10")).step, BorderRules::Step::Pass);
  auto v = r.decide(ip("192.0.2.10"), {});
  EXPECT_EQ(v.action, BorderAction::Allow);
  EXPECT_TRUE(v.protected_);
  // Named explicitly: the rule holds.
  EXPECT_EQ(r.at_socket(ip("192.0.2.20")).step, BorderRules::Step::Drop);
  EXPECT_EQ(r.at_socket(ip("192.0.2.30")).step, BorderRules::Step::Drop);
  EXPECT_TRUE(r.is_protected(ip("198.51.100.5")));
  const auto& w = r.warnings();
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0],
            "192.0.2.10 of provider account prov-a passes although border rule #3 would drop it "
            "(a rule must name the address to drop it)");
  EXPECT_EQ(w[1],
            "border rule #2 (drop) names 192.0.2.20 of PBX connection pbx-1: its packets are "
            "dropped");
  EXPECT_NE(w[2].find("198.51.100.5 of provider account b passes"), std::string::npos);
}

TEST(BorderRules, ProvidersPassADefaultDrop) {
  BorderRules r({}, BorderAction::Drop, {{ip("192.0.2.10"), "provider account prov-a"}});
  EXPECT_EQ(r.at_socket(ip("192.0.2.10")).step, BorderRules::Step::Pass);
  EXPECT_EQ(r.at_socket(ip("192.0.2.11")).step, BorderRules::Step::Drop);
  ASSERT_EQ(r.warnings().size(), 1u);
  EXPECT_EQ(r.warnings()[0],
            "192.0.2.10 of provider account prov-a passes although the default action is drop");
}

TEST(Pike, MoreRequestsThanTheLimitWithinTheWindowAreReportedOnce) {
  int64_t now = 0;
  Pike::Options o;
  o.requests = 5;
  o.window = 2;
  o.now_ms = [&] { return now; };
  Pike pike(o);
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(pike.hit(ip("10.0.0.1")), 0u);
  EXPECT_EQ(pike.hit(ip("10.0.0.1")), 6u);
  EXPECT_EQ(pike.hit(ip("10.0.0.1")), 0u);  // reported once
  EXPECT_EQ(pike.hit(ip("10.0.0.2")), 0u);  // others have their own counts
  now += 2000;                              // a new window
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(pike.hit(ip("10.0.0.1")), 0u);
  o.requests = 0;
  Pike off(o);
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(off.hit(ip("10.0.0.1")), 0u);
}

TEST(Pike, TrackingIsBounded) {
  int64_t now = 0;
  Pike::Options o;
  o.requests = 1;
  o.max_tracked = 160;
  o.now_ms = [&] { return now; };
  Pike pike(o);
  for (uint32_t i = 0; i < 100000; ++i) {
    IpKey k;
    k.bytes[15] = uint8_t(i);
    k.bytes[14] = uint8_t(i >> 8);
    k.bytes[13] = uint8_t(i >> 16);
    pike.hit(k);
    ASSERT_LE(pike.tracked(), 160u);
  }
  EXPECT_GT(pike.tracked(), 0u);
}

struct BorderTest : ::testing::Test {
  int64_t now = 1'000'000;
  Border border{options()};
  Border::Options options() {
    Border::Options o;
    o.bans.failures = 3;
    o.bans.window = 10;
    o.bans.duration = 60;
    o.bans.now_ms = [this] { return now; };
    o.pike.requests = 4;
    o.pike.window = 1;
    o.pike.now_ms = [this] { return now; };
    o.pike_duration = 30;
    o.workers = 2;
    return o;
  }
};

TEST_F(BorderTest, AFloodIsBannedForThePikeDurationAndListedWithTheBans) {
  const IpKey a = ip("203.0.113.7");
  for (int i = 0; i < 4; ++i)
    EXPECT_FALSE(border.drop_at_socket(a, "OPTIONS sip:x SIP/2.0\r\n", 0));
  EXPECT_TRUE(border.drop_at_socket(a, "OPTIONS sip:x SIP/2.0\r\n", 0));
  EXPECT_TRUE(border.drop_at_socket(a, "SIP/2.0 200 OK\r\n", 1));  // banned: everything
  auto bans = border.bans().list()["items"];
  ASSERT_EQ(bans.size(), 1u);
  EXPECT_EQ(bans[0]["address"], "203.0.113.7");
  EXPECT_EQ(bans[0]["reason"], "flood: more than 4 requests in 1 s");
  EXPECT_EQ(bans[0]["until"].get<int64_t>() - bans[0]["since"].get<int64_t>(), 30'000);
  EXPECT_EQ(border.counters().flood_bans.load(), 1u);
  now += 30'000;
  EXPECT_FALSE(border.drop_at_socket(a, "SIP/2.0 200 OK\r\n", 0));
}

TEST_F(BorderTest, ResponsesAndKeepAlivesAreNoFlood) {
  const IpKey a = ip("203.0.113.8");
  for (int i = 0; i < 20; ++i) {
    EXPECT_FALSE(border.drop_at_socket(a, "SIP/2.0 200 OK\r\n", 0));
    EXPECT_FALSE(border.drop_at_socket(a, "\r\n\r\n", 0));
    EXPECT_FALSE(border.drop_at_socket(a, {}, 0));  // a new connection
  }
}

TEST_F(BorderTest, AllowedAndProtectedAddressesAreNeverBannedNorFloodLimited) {
  border.set_rules(std::make_shared<BorderRules>(
      std::vector<BorderRule>{rule(1, 1, "allow", {{"address", "198.51.100.0/24"}})},
      BorderAction::Allow,
      std::vector<BorderRules::Protected>{{ip("192.0.2.10"), "provider account prov-a"}}));
  for (const char* who : {"198.51.100.9", "192.0.2.10"}) {
    for (int i = 0; i < 50; ++i) {
      EXPECT_FALSE(border.drop_at_socket(ip(who), "INVITE sip:x SIP/2.0\r\n", 0));
      border.count_failure(who, "unknown account");
    }
  }
  EXPECT_TRUE(border.bans().list()["items"].empty());
  for (int i = 0; i < 3; ++i)
    border.count_failure("198.51.101.9", "unknown account");
  EXPECT_TRUE(border.drop_at_socket(ip("198.51.101.9"), "INVITE sip:x SIP/2.0\r\n", 1));
  EXPECT_EQ(border.counters().failures.load(), 103u);
}

TEST_F(BorderTest, NewRulesApplyToTheNextPacketOnEveryWorker) {
  const IpKey a = ip("203.0.113.9");
  EXPECT_FALSE(border.drop_at_socket(a, {}, 0));
  EXPECT_FALSE(border.drop_at_socket(a, {}, 1));
  border.set_rules(std::make_shared<BorderRules>(
      std::vector<BorderRule>{rule(1, 1, "drop", {{"address", "203.0.113.0/24"}})},
      BorderAction::Allow));
  EXPECT_TRUE(border.drop_at_socket(a, {}, 0));
  EXPECT_TRUE(border.drop_at_socket(a, {}, 1));
  EXPECT_TRUE(border.drop_at_socket(a, {}, -1));  // not a worker thread
  EXPECT_EQ(border.counters().dropped_by_rule.load(), 3u);
  EXPECT_EQ(border.status()["rules"], 1);
}

}  // namespace
