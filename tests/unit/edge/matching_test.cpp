#include "edge/matching/matching.hpp"

#include <gtest/gtest.h>

using esg::accounts::Account;
using esg::edge::AccountIndex;
using esg::edge::MatchInput;

namespace {

std::shared_ptr<const Account> account(int64_t id, std::string code, std::string user,
                                       std::string domain, bool reg,
                                       std::vector<std::string> extaddrs = {},
                                       std::vector<std::string> extusers = {}) {
  auto a = std::make_shared<Account>();
  a->id = id;
  a->code = std::move(code);
  a->username = std::move(user);
  a->domain = std::move(domain);
  a->reg = reg;
  a->extaddrs = std::move(extaddrs);
  a->extusernames = std::move(extusers);
  return a;
}

std::string code_of(const AccountIndex& index, const MatchInput& in, std::string* step = nullptr) {
  auto r = index.match(in);
  if (step) *step = r.step;
  return r.account ? r.account->code : "";
}

}  // namespace

TEST(Matching, EachOfTheSixSteps) {
  AccountIndex index({account(1, "reg-to", "1234567890", "172.27.103.90", true),
                      account(2, "reg-from", "555", "prov.example", true),
                      account(3, "reg-contact", "777", "10.9.9.9", true),
                      account(4, "p2p-contact", "trunk", "10.1.1.1", false),
                      account(5, "p2p-host", "", "10.2.2.2", false),
                      account(6, "p2p-from", "888", "10.3.3.3", false)},
                     {});
  std::string step;
  MatchInput in;
  in.to_user = "1234567890";
  in.to_host = "172.27.103.90";
  EXPECT_EQ(code_of(index, in, &step), "reg-to");
  EXPECT_EQ(step, "1.1");

  in = {};
  in.to_user = "555";
  in.to_host = "esg.local";
  in.from_host = "prov.example";
  EXPECT_EQ(code_of(index, in, &step), "reg-from");
  EXPECT_EQ(step, "1.2");

  in = {};
  in.to_user = "x";
  in.to_host = "y";
  in.from_host = "z";
  in.has_contact = true;
  in.contact_user = "777";
  in.contact_host = "10.9.9.9";
  EXPECT_EQ(code_of(index, in, &step), "reg-contact");
  EXPECT_EQ(step, "1.3");

  in.contact_user = "trunk";
  in.contact_host = "10.1.1.1";
  EXPECT_EQ(code_of(index, in, &step), "p2p-contact");
  EXPECT_EQ(step, "2.1");

  in.contact_user = "someone";
  in.contact_host = "10.2.2.2";
  EXPECT_EQ(code_of(index, in, &step), "p2p-host");
  EXPECT_EQ(step, "2.2");

  in.contact_user = "someone";
  in.contact_host = "10.99.0.1";
  in.to_user = "888";
  in.from_host = "10.3.3.3";
  EXPECT_EQ(code_of(index, in, &step), "p2p-from");
  EXPECT_EQ(step, "2.3");

  in.to_user = "nobody";
  auto r = index.match(in);
  EXPECT_EQ(r.account, nullptr);
  EXPECT_NE(r.decision.find("no account matched"), std::string::npos);
}

TEST(Matching, RegisteredAccountsComeFirst) {
  // Both match the same (user, host); the registered one wins because step 1 runs first.
  AccountIndex index(
      {account(1, "p2p", "100", "10.0.0.1", false), account(2, "reg", "100", "10.0.0.1", true)},
      {});
  MatchInput in;
  in.to_user = "100";
  in.to_host = "10.0.0.1";
  in.from_host = "10.0.0.1";
  EXPECT_EQ(code_of(index, in), "reg");
}

TEST(Matching, DomainsFromExtaddrsExtusernamesAndInstance) {
  AccountIndex index({account(1, "masked", "100", "prov.example", true, {"44.55.6?.*"}),
                      account(2, "regex", "200", "prov2.example", true, {"/reg/10\\.5\\..*"}),
                      account(3, "alias", "300", "prov3.example", true, {}, {"alias300"})},
                     {"198.51.100.7"});
  MatchInput in;
  in.to_user = "100";
  in.to_host = "44.55.66.77";
  EXPECT_EQ(code_of(index, in), "masked");
  in.to_host = "44.55.70.77";
  EXPECT_EQ(code_of(index, in), "");
  in.to_user = "200";
  in.to_host = "10.5.1.1";
  EXPECT_EQ(code_of(index, in), "regex");
  in.to_user = "ALIAS300";      // usernames compare case-insensitively
  in.to_host = "198.51.100.7";  // the instance's own external address
  EXPECT_EQ(code_of(index, in), "alias");
}

TEST(Matching, DisabledAccountsAreSkipped) {
  auto a = std::make_shared<Account>(*account(1, "off", "100", "10.0.0.1", true));
  a->enabled = false;
  AccountIndex index({a}, {});
  MatchInput in;
  in.to_user = "100";
  in.to_host = "10.0.0.1";
  EXPECT_EQ(code_of(index, in), "");
}

TEST(Matching, SourceAddressMustBeTheAccounts) {
  auto a = account(1, "a", "100", "prov.example", true, {"10.7.0.0/16"});
  auto b = std::make_shared<Account>(*account(2, "b", "200", "10.0.0.2", true));
  b->proxyaddr = "127.0.0.2";
  AccountIndex index({a, b}, {});
  EXPECT_TRUE(index.source_allowed(*index.by_code("a"), "10.7.3.4"));
  EXPECT_FALSE(index.source_allowed(*index.by_code("a"), "10.8.3.4"));
  EXPECT_TRUE(index.source_allowed(*index.by_code("a"), "192.0.2.1", {"192.0.2.1"}));
  EXPECT_TRUE(index.source_allowed(*index.by_code("b"), "127.0.0.2"));
  EXPECT_TRUE(index.source_allowed(*index.by_code("b"), "10.0.0.2"));
  EXPECT_FALSE(index.source_allowed(*index.by_code("b"), "127.0.0.3"));
}
