#include "cluster/firewall.hpp"

#include <gtest/gtest.h>

namespace esg::cluster {
namespace {

TEST(FwCanonical, AddressesAndNetworksInCanonicalForm) {
  EXPECT_EQ(canonical_address("10.0.0.5"), "10.0.0.5");
  EXPECT_EQ(canonical_address("10.0.0.5/24"), "10.0.0.0/24");  // host bits cleared
  EXPECT_EQ(canonical_address("10.0.0.5/32"), "10.0.0.5");     // a /32 is the address
  EXPECT_EQ(canonical_address("2001:DB8:0:0::1"), "2001:db8::1");
  EXPECT_EQ(canonical_address("2001:db8::1/48"), "2001:db8::/48");
  EXPECT_FALSE(canonical_address("10.0.0.5/33"));
  EXPECT_FALSE(canonical_address("10.0.0.5/"));
  EXPECT_FALSE(canonical_address("pbx.example.com"));
  EXPECT_FALSE(canonical_address(""));
}

TEST(FwCollect, ListenerAndMediaOnOneAddressAreOneEntryWithBothUses) {
  FwSources s;
  s.listen = {"127.0.0.2", "127.0.0.2"};  // udp and tcp
  s.media_address = "127.0.0.2";
  const auto a = collect_addresses(s);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].addr, "127.0.0.2");
  EXPECT_EQ(a[0].uses, (std::vector<std::string>{"sip", "rtp"}));
  EXPECT_EQ(a[0].from, (std::vector<std::string>{"listen", "media"}));
}

TEST(FwCollect, WildcardBindsListTheInterfacesButNotLoopbackOrLinkLocal) {
  FwSources s;
  s.listen = {"0.0.0.0"};
  s.media_address = "::";
  s.interfaces = {"127.0.0.1", "192.0.2.7", "169.254.1.1", "::1", "fe80::1", "2001:db8::7"};
  const auto a = collect_addresses(s);
  ASSERT_EQ(a.size(), 2u);
  // 0.0.0.0 gives the IPv4 ones to SIP; :: (dual-stack) both families to RTP.
  EXPECT_EQ(a[0].addr, "192.0.2.7");
  EXPECT_EQ(a[0].uses, (std::vector<std::string>{"sip", "rtp"}));
  EXPECT_EQ(a[0].from, (std::vector<std::string>{"interface"}));
  EXPECT_EQ(a[1].addr, "2001:db8::7");
  EXPECT_EQ(a[1].uses, (std::vector<std::string>{"rtp"}));
}

TEST(FwCollect, ExtaddrsStunAndFwaddrsCarryBothKindsAndAreDeduplicated) {
  FwSources s;
  s.listen = {"10.1.1.1"};
  s.media_address = "10.1.1.1";
  s.extaddrs = {"198.51.100.4"};
  s.stun = "198.51.100.4";  // STUN agrees with the configuration
  s.fwaddrs = {"203.0.113.0/28", "not an address"};
  const auto a = collect_addresses(s);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0].addr, "10.1.1.1");
  EXPECT_EQ(a[1].addr, "198.51.100.4");
  EXPECT_EQ(a[1].uses, (std::vector<std::string>{"sip", "rtp"}));
  EXPECT_EQ(a[1].from, (std::vector<std::string>{"extaddrs", "stun"}));
  EXPECT_EQ(a[2].addr, "203.0.113.0/28");
  EXPECT_EQ(a[2].from, (std::vector<std::string>{"fwaddrs"}));
}

TEST(FwCollect, OrderIsNumericIpv4BeforeIpv6) {
  FwSources s;
  s.listen = {"2001:db8::1", "10.0.0.10", "10.0.0.9"};
  s.media_address = "9.0.0.1";
  const auto a = collect_addresses(s);
  ASSERT_EQ(a.size(), 4u);
  EXPECT_EQ(a[0].addr, "9.0.0.1");
  EXPECT_EQ(a[1].addr, "10.0.0.9");
  EXPECT_EQ(a[2].addr, "10.0.0.10");
  EXPECT_EQ(a[3].addr, "2001:db8::1");
}

TEST(FwJson, PublishedAddressesRoundTripAndJunkIsLeftOut) {
  const std::vector<FwAddress> a = {{"127.0.0.2", {"sip", "rtp"}, {"listen", "media"}},
                                    {"192.0.2.0/28", {"sip", "rtp"}, {"fwaddrs"}}};
  EXPECT_EQ(fw_addresses_from_json(to_json(a)), a);
  const auto junk = nlohmann::json::parse(
      R"([{"addr": "bad"}, 7, {"uses": ["sip"]}, {"addr": "10.0.0.1/8", "uses": "x"}])");
  const auto got = fw_addresses_from_json(junk);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].addr, "10.0.0.0/8");
  EXPECT_TRUE(got[0].uses.empty());
  EXPECT_TRUE(fw_addresses_from_json(nlohmann::json("x")).empty());
}

std::vector<FwInstance> two_instances() {
  FwInstance a{2, "esg-b", false, false, {{"127.0.0.3", {"sip", "rtp"}, {"listen", "media"}}}};
  FwInstance b{1,
               "esg-a",
               true,
               true,
               {{"127.0.0.2", {"sip", "rtp"}, {"listen", "media"}},
                {"198.51.100.4", {"sip"}, {"extaddrs"}}}};
  // Both behind one NAT address.
  a.addrs.push_back({"198.51.100.4", {"sip", "rtp"}, {"extaddrs"}});
  return {a, b};
}

TEST(FwText, OneSortedLineAnAddressNamingEveryInstanceThatSendsFromIt) {
  const std::string t = fw_text(two_instances(), 1796644800000);  // 2026-12-07T12:00:00Z
  EXPECT_NE(t.find("# Generated 2026-12-07T12:00:00Z from 2 instance(s)"), std::string::npos) << t;
  EXPECT_NE(t.find("wildcard address (0.0.0.0, ::)"), std::string::npos);
  std::vector<std::string> entries;
  size_t pos = 0;
  while (pos < t.size()) {
    const size_t end = t.find('\n', pos);
    const std::string line = t.substr(pos, end - pos);
    if (!line.empty() && line[0] != '#') entries.push_back(line);
    pos = end + 1;
  }
  ASSERT_EQ(entries.size(), 3u) << t;
  EXPECT_EQ(entries[0], "127.0.0.2     # instance 1 (srvidx 1, esg-a): sip, rtp");
  EXPECT_EQ(entries[1], "127.0.0.3     # instance 2 (srvidx 2, esg-b, offline): sip, rtp");
  EXPECT_EQ(entries[2],
            "198.51.100.4  # instance 1 (srvidx 1, esg-a): sip; instance 2 (srvidx 2, esg-b, "
            "offline): sip, rtp");
  EXPECT_EQ(t.back(), '\n');
}

TEST(FwText, AnInstanceWithoutAddressesIsSaidInAComment) {
  const std::string t = fw_text({FwInstance{3, "esg-c", true, false, {}}}, 0);
  EXPECT_NE(t.find("# instance 3 (srvidx 3, esg-c): no address published\n"), std::string::npos);
}

TEST(FwJsonForm, MatchesTheTextForm) {
  const auto j = fw_json(two_instances(), 1796644800000);
  EXPECT_EQ(j["generated"], "2026-12-07T12:00:00Z");
  ASSERT_EQ(j["addresses"].size(), 3u);
  EXPECT_EQ(j["addresses"][2]["addr"], "198.51.100.4");
  ASSERT_EQ(j["addresses"][2]["instances"].size(), 2u);
  EXPECT_EQ(j["addresses"][2]["instances"][0]["srvidx"], 1);
  EXPECT_EQ(j["addresses"][2]["instances"][1]["online"], false);
  ASSERT_EQ(j["instances"].size(), 2u);
  EXPECT_EQ(j["instances"][0]["srvidx"], 1);  // by srvidx
  EXPECT_EQ(j["instances"][0]["self"], true);
  EXPECT_EQ(j["instances"][1]["addrs"][0]["addr"], "127.0.0.3");
}

}  // namespace
}  // namespace esg::cluster
