#include "media/webrtc/ice/candidate.hpp"

#include <gtest/gtest.h>

namespace esg::media::ice {
namespace {

// TELEGRAM-CALLS.md §3.1: what tgcalls puts in a Candidates message's sdpString.
constexpr std::string_view kHost =
    "candidate:3315497263 1 udp 2122260223 192.168.1.20 50710 typ host generation 0 ufrag Gk2/ "
    "network-id 1";
constexpr std::string_view kReflector =
    "candidate:1057338416 1 udp 41819903 reflector-2-3805618839.reflector 596 typ relay "
    "generation 0 ufrag Gk2/ network-id 1";

TEST(Candidate, ParsesTgcallsHostCandidateAndFormatsItBack) {
  auto c = Candidate::parse(kHost);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->foundation, "3315497263");
  EXPECT_EQ(c->component, 1);
  EXPECT_EQ(c->protocol, "udp");
  EXPECT_EQ(c->priority, 2122260223u);
  EXPECT_EQ(c->address, "192.168.1.20");
  EXPECT_EQ(c->port, 50710);
  EXPECT_EQ(c->type, "host");
  EXPECT_EQ(c->ufrag, "Gk2/");
  EXPECT_EQ(c->generation, 0);
  EXPECT_EQ(c->network_id, 1);
  EXPECT_EQ(c->to_sdp(), kHost);
}

TEST(Candidate, KeepsReflectorHostnameAsAddress) {
  auto c = Candidate::parse(kReflector);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->address, "reflector-2-3805618839.reflector");
  EXPECT_EQ(c->port, 596);
  EXPECT_EQ(c->type, "relay");
  EXPECT_EQ(c->to_sdp(), kReflector);
}

TEST(Candidate, AcceptsSdpAttributePrefixRelatedAddressAndUnknownExtensions) {
  auto c = Candidate::parse(
      "a=candidate:842163049 1 UDP 1677729535 203.0.113.5 61665 typ srflx raddr 10.0.0.2 rport "
      "61665 generation 0 ufrag abcd network-id 3 network-cost 10\r\n");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->protocol, "udp");
  EXPECT_EQ(c->type, "srflx");
  EXPECT_EQ(c->related_address, "10.0.0.2");
  EXPECT_EQ(c->related_port, 61665);
  EXPECT_EQ(c->network_id, 3);
  auto again = Candidate::parse(c->to_sdp());
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *c);
  // Without any prefix.
  auto bare = Candidate::parse("1 1 udp 100 10.0.0.1 5000 typ host");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->port, 5000);
  EXPECT_EQ(bare->ufrag, "");
}

TEST(Candidate, RefusesWhatIsNotACandidate) {
  EXPECT_FALSE(Candidate::parse(""));
  EXPECT_FALSE(Candidate::parse("candidate:1 1 udp 100 10.0.0.1 5000 host"));
  EXPECT_FALSE(Candidate::parse("candidate:1 1 udp 100 10.0.0.1 70000 typ host"));
  EXPECT_FALSE(Candidate::parse("candidate:1 1 udp x 10.0.0.1 5000 typ host"));
  EXPECT_FALSE(Candidate::parse("candidate:1 1 udp 100 10.0.0.1 5000 typ bogus"));
}

TEST(Candidate, PrioritiesFollowRfc8445) {
  // §5.1.2.1: host, local preference 65535, component 1.
  EXPECT_EQ(candidate_priority(kTypePreferenceHost, 65535), 2130706431u);
  EXPECT_EQ(candidate_priority(kTypePreferenceRelay, 65535), 16777215u);
  // §6.1.2.3: G > D adds one; the order of the arguments is controlling first.
  EXPECT_EQ(pair_priority(10, 5), (uint64_t(5) << 32) + 20 + 1);
  EXPECT_EQ(pair_priority(5, 10), (uint64_t(5) << 32) + 20);
}

}  // namespace
}  // namespace esg::media::ice
