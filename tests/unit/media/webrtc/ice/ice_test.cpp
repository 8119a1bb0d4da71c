#include "media/webrtc/ice/ice.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "fake_net.hpp"

namespace esg::media::ice {
namespace {

using namespace test;

Agent::Options opts(bool controlling) {
  Agent::Options o;
  o.controlling = controlling;
  return o;
}

bool connected(const Peer& p) {
  return p.agent.state() == State::Connected;
}

// Two agents, each with the sockets given, with signalling between them.
struct Call {
  FakeNet net;
  Sim sim{net};
  Peer a, b;
  Call(Agent::Options ao, Agent::Options bo)
      : a(net, &sim.now, std::move(ao)), b(net, &sim.now, std::move(bo)) {
    sim.add(a.agent);
    sim.add(b.agent);
  }
  Call(bool a_controlling = true, bool b_controlling = false)
      : Call(opts(a_controlling), opts(b_controlling)) {}
  bool connect(milliseconds limit = 3000ms) {
    return sim.run_until_true([&] { return connected(a) && connected(b); }, limit);
  }
};

TEST(IceAgent, RandomCredentialsHaveLibwebrtcLengthsAndAlphabet) {
  const std::string u = Agent::random_ufrag(), p = Agent::random_pwd();
  EXPECT_EQ(u.size(), 4u);
  EXPECT_EQ(p.size(), 24u);
  for (char c : u + p)
    EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/');
  EXPECT_NE(Agent::random_pwd(), p);
}

TEST(IceAgent, HostCandidateSignalledAtOnceInTgcallsShape) {
  Call call;
  call.a.add_socket(1, ep("10.0.0.1", 1000));
  ASSERT_EQ(call.a.candidates.size(), 1u);
  const Candidate& c = call.a.candidates[0];
  EXPECT_EQ(c.type, "host");
  EXPECT_EQ(c.address, "10.0.0.1");
  EXPECT_EQ(c.port, 1000);
  EXPECT_EQ(c.ufrag, call.a.agent.ufrag());
  EXPECT_EQ(c.priority, candidate_priority(kTypePreferenceHost, 65535));
  const std::string sdp = c.to_sdp();
  EXPECT_NE(sdp.find(" 1 udp 2130706431 10.0.0.1 1000 typ host generation 0 ufrag "),
            std::string::npos)
      << sdp;
}

TEST(IceAgent, ControllingAndControlledConnectAndCarryData) {
  Call call;
  call.a.add_socket(1, ep("10.0.0.1", 1000));
  call.b.add_socket(1, ep("10.0.0.2", 2000));
  signal(call.a, call.b);
  EXPECT_EQ(call.a.agent.state(), State::Checking);
  const TimePoint start = call.sim.now;
  ASSERT_TRUE(call.connect());
  // Check, answer, nomination, answer: four trips of 10 ms; the one pair is nominated as soon
  // as it works (there is nothing better to wait for).
  EXPECT_LE(call.sim.now - start, 60ms);
  auto pa = call.a.agent.selected(), pb = call.b.agent.selected();
  ASSERT_TRUE(pa && pb);
  EXPECT_EQ(pa->local.address, "10.0.0.1");
  EXPECT_EQ(pa->remote.address, "10.0.0.2");
  EXPECT_EQ(pb->local.address, "10.0.0.2");
  EXPECT_EQ(pb->remote.address, "10.0.0.1");
  ASSERT_TRUE(pa->rtt);
  EXPECT_EQ(pa->rtt->count(), 20);  // the fake network's 10 ms each way
  EXPECT_EQ(call.a.states, (std::vector<State>{State::Checking, State::Connected}));
  // DTLS (first byte 22) both ways on the selected pair.
  const std::string hello("\x16\xfe\xfd hello", 9), answer("\x16\xfe\xfd answer", 10);
  EXPECT_TRUE(call.a.agent.send_data(hello));
  EXPECT_TRUE(call.b.agent.send_data(answer));
  call.sim.run_for(50ms);
  EXPECT_EQ(call.b.received, std::vector<std::string>{hello});
  EXPECT_EQ(call.a.received, std::vector<std::string>{answer});
  EXPECT_GT(call.a.agent.counters().checks_sent, 0u);
  EXPECT_GT(call.b.agent.counters().checks_received, 0u);
}

TEST(IceAgent, PairsOnlyWithinAnAddressFamilyAndConnectsOverIpv6) {
  Call call;
  call.a.add_socket(1, ep("10.0.0.1", 1000));
  call.a.add_socket(2, ep("fd00::1", 1001));
  call.b.add_socket(1, ep("fd00::2", 2000));
  // B's IPv4 is unreachable: only the IPv6 pair can work.
  call.b.add_socket(2, ep("10.0.0.2", 2001));
  call.net.drop = [](const Endpoint&, const Endpoint& to) { return to.address().is_v4(); };
  // Every datagram A sends leaves a socket of the destination's family.
  int cross_family = 0, sent_v4 = 0;
  call.a.agent.send = [&](int socket, const Endpoint& to, std::string_view bytes) {
    const Endpoint& from = call.a.sockets.at(socket);
    if (from.address().is_v4() != to.address().is_v4()) ++cross_family;
    if (to.address().is_v4()) ++sent_v4;
    call.net.send(from, to, bytes, call.sim.now);
  };
  signal(call.a, call.b);
  ASSERT_TRUE(call.connect());
  EXPECT_EQ(call.a.agent.selected()->local.address, "fd00::1");
  EXPECT_EQ(call.a.agent.selected()->remote.address, "fd00::2");
  EXPECT_EQ(call.b.agent.selected()->remote.address, "fd00::1");
  EXPECT_EQ(cross_family, 0);
  EXPECT_GT(sent_v4, 0);  // the v4 pair was tried
}

TEST(IceAgent, NoDataBeforeAPairIsSelected) {
  Call call;
  call.a.add_socket(1, ep("10.0.0.1", 1000));
  EXPECT_FALSE(call.a.agent.send_data("\x80 rtp"));
}

TEST(IceAgent, ControllingNominatesTheBestPair) {
  Call call;
  // A's second address is its preferred one (first socket: highest local preference).
  call.a.add_socket(1, ep("10.0.0.1", 1000));
  call.a.add_socket(2, ep("10.0.1.1", 1001));
  call.b.add_socket(1, ep("10.0.0.2", 2000));
  call.b.add_socket(2, ep("10.0.1.2", 2001));
  signal(call.a, call.b);
  ASSERT_TRUE(call.connect());
  auto pa = call.a.agent.selected(), pb = call.b.agent.selected();
  ASSERT_TRUE(pa && pb);
  EXPECT_EQ(pa->local.address, "10.0.0.1");
  EXPECT_EQ(pa->remote.address, "10.0.0.2");
  EXPECT_EQ(pb->local.address, "10.0.0.2");
  EXPECT_EQ(pb->remote.address, "10.0.0.1");
  EXPECT_EQ(call.a.agent.counters().selections, 1u);
}

TEST(IceAgent, BestPairUnreachableTheNextOneIsNominated) {
  Call call;
  call.a.add_socket(1, ep("10.0.0.1", 1000));
  call.a.add_socket(2, ep("10.0.1.1", 1001));
  call.b.add_socket(1, ep("10.0.0.2", 2000));
  // A's preferred address cannot reach anything.
  call.net.drop = [](const Endpoint& from, const Endpoint& to) {
    return from.address().to_string() == "10.0.0.1" || to.address().to_string() == "10.0.0.1";
  };
  signal(call.a, call.b);
  ASSERT_TRUE(call.connect());
  EXPECT_EQ(call.a.agent.selected()->local.address, "10.0.1.1");
  EXPECT_EQ(call.b.agent.selected()->remote.address, "10.0.1.1");
}

TEST(IceAgent, PeerReflexiveRemoteLearntFromChecksBehindNat) {
  Call call;
  call.a.add_socket(1, ep("10.0.0.1", 1000));
  // B is behind a NAT: its host candidate is unreachable, its checks come from the outside
  // address, which it never signalled.
  call.b.add_socket(1, ep("192.168.5.5", 2000));
  call.net.nat(ep("192.168.5.5", 2000), ep("203.0.113.9", 40000));
  call.net.drop = [](const Endpoint&, const Endpoint& to) {
    return to.address().to_string() == "192.168.5.5";
  };
  signal(call.a, call.b);
  ASSERT_TRUE(call.connect());
  auto pa = call.a.agent.selected();
  ASSERT_TRUE(pa);
  EXPECT_EQ(pa->remote.type, "prflx");
  EXPECT_EQ(pa->remote.address, "203.0.113.9");
  EXPECT_EQ(pa->remote.port, 40000);
  EXPECT_EQ(call.b.agent.selected()->remote.address, "10.0.0.1");
  call.b.agent.send_data("\x80 rtp");
  call.sim.run_for(50ms);
  EXPECT_EQ(call.a.received.size(), 1u);
}

TEST(IceAgent, ChecksBeforeRemoteCredentialsAreAnsweredAndCheckedBackLater) {
  Call call;
  call.a.add_socket(1, ep("10.0.0.1", 1000));
  call.b.add_socket(1, ep("10.0.0.2", 2000));
  // B knows A; A does not know B yet (its signalling is late).
  call.b.agent.set_remote_credentials(call.a.agent.ufrag(), call.a.agent.pwd(), call.sim.now);
  for (const Candidate& c : call.a.candidates)
    call.b.agent.add_remote_candidate(c, call.sim.now);
  call.sim.run_for(300ms);
  EXPECT_GT(call.a.agent.counters().checks_received, 0u);
  EXPECT_EQ(call.a.agent.counters().checks_sent, 0u);
  call.a.agent.set_remote_credentials(call.b.agent.ufrag(), call.b.agent.pwd(), call.sim.now);
  ASSERT_TRUE(call.connect());
}

TEST(IceAgent, RoleConflictBothControllingResolvedByTieBreaker) {
  Call call(true, true);
  call.a.add_socket(1, ep("10.0.0.1", 1000));
  call.b.add_socket(1, ep("10.0.0.2", 2000));
  signal(call.a, call.b);
  ASSERT_TRUE(call.connect());
  EXPECT_NE(call.a.agent.controlling(), call.b.agent.controlling());
  EXPECT_GT(call.a.agent.counters().role_conflicts + call.b.agent.counters().role_conflicts, 0u);
  EXPECT_EQ(call.a.agent.selected()->remote.address, "10.0.0.2");
}

TEST(IceAgent, RoleConflictBothControlledResolvedByTieBreaker) {
  Call call(false, false);
  call.a.add_socket(1, ep("10.0.0.1", 1000));
  call.b.add_socket(1, ep("10.0.0.2", 2000));
  signal(call.a, call.b);
  ASSERT_TRUE(call.connect());
  EXPECT_NE(call.a.agent.controlling(), call.b.agent.controlling());
  EXPECT_GT(call.a.agent.counters().role_conflicts + call.b.agent.counters().role_conflicts, 0u);
}

TEST(IceAgent, ConsentKeepsConnectedCutDisconnectsRestoreReconnects) {
  Call call;
  call.a.add_socket(1, ep("10.0.0.1", 1000));
  call.b.add_socket(1, ep("10.0.0.2", 2000));
  signal(call.a, call.b);
  ASSERT_TRUE(call.connect());
  // 30 s of nothing but consent checks: no state change.
  const uint64_t consent_before = call.a.agent.counters().consent_sent;
  call.sim.run_for(30s);
  EXPECT_TRUE(connected(call.a) && connected(call.b));
  EXPECT_EQ(call.a.states.back(), State::Connected);
  EXPECT_EQ(call.a.states.size(), 2u);
  const uint64_t consent = call.a.agent.counters().consent_sent - consent_before;
  EXPECT_GE(consent, 10u);  // every 2-3 s
  EXPECT_LE(consent, 15u);
  EXPECT_GT(call.b.agent.counters().consent_sent, 0u);
  // The network is cut: Disconnected within ~5 s (plus one consent interval at most).
  bool cut = true;
  call.net.drop = [&cut](const Endpoint&, const Endpoint&) { return cut; };
  const TimePoint cut_at = call.sim.now;
  ASSERT_TRUE(call.sim.run_until_true(
      [&] {
        return call.a.agent.state() == State::Disconnected &&
               call.b.agent.state() == State::Disconnected;
      },
      10s));
  EXPECT_GE(call.sim.now - cut_at, 2s);
  EXPECT_TRUE(call.a.agent.selected());  // still the path to come back to
  // Restored: Connected again, on the same pair.
  cut = false;
  ASSERT_TRUE(call.connect(5s));
  EXPECT_EQ(call.a.agent.selected()->remote.address, "10.0.0.2");
  EXPECT_EQ(call.a.states, (std::vector<State>{State::Checking, State::Connected,
                                               State::Disconnected, State::Connected}));
}

TEST(IceAgent, DisconnectedSelectedPairSwitchesToAnotherThatWorks) {
  Call call;
  call.a.add_socket(1, ep("10.0.0.1", 1000));
  call.a.add_socket(2, ep("10.0.1.1", 1001));
  call.b.add_socket(1, ep("10.0.0.2", 2000));
  signal(call.a, call.b);
  ASSERT_TRUE(call.connect());
  ASSERT_EQ(call.a.agent.selected()->local.address, "10.0.0.1");
  // A's first address goes away.
  call.net.drop = [](const Endpoint& from, const Endpoint& to) {
    return from.address().to_string() == "10.0.0.1" || to.address().to_string() == "10.0.0.1";
  };
  ASSERT_TRUE(
      call.sim.run_until_true([&] { return call.a.agent.state() == State::Disconnected; }, 10s));
  ASSERT_TRUE(call.connect(10s));
  EXPECT_EQ(call.a.agent.selected()->local.address, "10.0.1.1");
  EXPECT_EQ(call.b.agent.selected()->remote.address, "10.0.1.1");
  call.a.agent.send_data("\x80 after");
  call.sim.run_for(50ms);
  ASSERT_FALSE(call.b.received.empty());
  EXPECT_EQ(call.b.received.back(), "\x80 after");
}

// The peer's phone changes networks mid-call (issue 22): its old address is gone, a new one
// comes up and its candidate trickles in after the path was lost; the call moves onto it,
// whichever side controls.
TEST(IceAgent, APeerThatMovesToANewAddressMidCallIsFollowed) {
  for (bool a_controls : {true, false}) {
    Call call(a_controls, !a_controls);
    call.a.add_socket(1, ep("10.0.0.1", 1000));
    call.b.add_socket(1, ep("10.0.0.2", 2000));
    signal(call.a, call.b);
    ASSERT_TRUE(call.connect());
    call.net.drop = [](const Endpoint& from, const Endpoint& to) {
      return from.address().to_string() == "10.0.0.2" || to.address().to_string() == "10.0.0.2";
    };
    ASSERT_TRUE(
        call.sim.run_until_true([&] { return call.a.agent.state() == State::Disconnected; }, 10s));
    call.b.add_socket(2,
                      ep("10.0.2.2", 2002));  // trickles to A as it would in a Candidates message
    ASSERT_TRUE(call.connect(10s)) << "a_controls " << a_controls;
    EXPECT_EQ(call.a.agent.selected()->remote.address, "10.0.2.2");
    EXPECT_EQ(call.b.agent.selected()->local.address, "10.0.2.2");
    call.b.agent.send_data("\x80 moved");
    call.sim.run_for(50ms);
    ASSERT_FALSE(call.a.received.empty());
    EXPECT_EQ(call.a.received.back(), "\x80 moved");
  }
}

TEST(IceAgent, CheckWithBadIntegrityIsRefusedAndLearnsNothing) {
  Call call;
  call.a.add_socket(1, ep("10.0.0.1", 1000));
  call.a.agent.set_remote_credentials("rmte", "remote-password-123456789", call.sim.now);
  Peer intruder(call.net, &call.sim.now, opts(false));
  std::vector<std::string> answers;
  call.net.attach(ep("10.6.6.6", 666), [&](const Endpoint&, const Endpoint&, std::string_view d,
                                           TimePoint) { answers.emplace_back(d); });
  const std::string check =
      stun::Builder(stun::method::kBinding, stun::Class::Request, stun::new_transaction())
          .add(stun::attr::kUsername, call.a.agent.ufrag() + ":rmte")
          .add_u32(stun::attr::kPriority, 1000)
          .add_u64(stun::attr::kIceControlled, 1)
          .finish("not-the-password");
  call.net.send(ep("10.6.6.6", 666), ep("10.0.0.1", 1000), check, call.sim.now);
  call.sim.run_for(100ms);
  EXPECT_EQ(call.a.agent.counters().bad_integrity, 1u);
  EXPECT_EQ(call.a.agent.counters().checks_received, 0u);
  ASSERT_EQ(answers.size(), 1u);
  auto m = stun::Message::parse(answers[0]);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->cls(), stun::Class::Error);
  EXPECT_EQ(m->error()->code, 401);
  // No peer-reflexive candidate came of it: media from there is not accepted.
  EXPECT_FALSE(call.a.agent.on_datagram(1, ep("10.6.6.6", 666), "\x17 dtls", call.sim.now));
  EXPECT_EQ(call.a.agent.counters().checks_sent, 0u);
}

// What libwebrtc sends: its GOOG attributes (NETWORK_INFO 0xC057, and 0xC001 with renomination)
// are comprehension-optional and must not stop the check; an unknown comprehension-required
// attribute gets a 420.
TEST(IceAgent, LibwebrtcStyleCheckWithGoogAttributesIsAnsweredAndLearnt) {
  Call call(false, false);  // A is controlled, as esg is when a Telegram user calls
  call.a.add_socket(1, ep("10.0.0.1", 1000));
  call.a.agent.set_remote_credentials("Gk2/", "q8Yh3m0kV1xZp5Lr2Tn6Wc9A", call.sim.now);
  std::vector<std::string> answers;
  call.net.attach(ep("10.0.0.7", 7000), [&](const Endpoint&, const Endpoint&, std::string_view d,
                                            TimePoint) { answers.emplace_back(d); });
  auto check = [&](uint16_t extra) {
    return stun::Builder(stun::method::kBinding, stun::Class::Request, stun::new_transaction())
        .add(stun::attr::kUsername, call.a.agent.ufrag() + ":Gk2/")
        .add_u32(extra, 0x00010001)
        .add_u32(stun::attr::kPriority, 1853824767)
        .add_u64(stun::attr::kIceControlling, 42)
        .finish(call.a.agent.pwd());
  };
  call.net.send(ep("10.0.0.7", 7000), ep("10.0.0.1", 1000), check(0xC057), call.sim.now);
  call.sim.run_for(60ms);
  // The answer, and a triggered check back to the sender, now a peer-reflexive candidate.
  std::optional<stun::Message> response, triggered;
  for (const std::string& d : answers) {
    auto m = stun::Message::parse(d);
    ASSERT_TRUE(m);
    (m->cls() == stun::Class::Request ? triggered : response) = m;
  }
  ASSERT_TRUE(response && triggered);
  EXPECT_EQ(response->cls(), stun::Class::Success);
  EXPECT_TRUE(response->check_integrity(call.a.agent.pwd()));
  EXPECT_TRUE(response->check_fingerprint());
  EXPECT_EQ(response->get_xor_address(stun::attr::kXorMappedAddress), ep("10.0.0.7", 7000));
  EXPECT_EQ(call.a.agent.counters().checks_received, 1u);
  EXPECT_EQ(triggered->get(stun::attr::kUsername), "Gk2/:" + call.a.agent.ufrag());
  EXPECT_TRUE(triggered->has(stun::attr::kIceControlled));
  EXPECT_TRUE(triggered->check_integrity("q8Yh3m0kV1xZp5Lr2Tn6Wc9A"));
  answers.clear();
  call.net.send(ep("10.0.0.7", 7000), ep("10.0.0.1", 1000), check(0x7FFE), call.sim.now);
  call.sim.run_for(25ms);
  ASSERT_FALSE(answers.empty());
  auto m = stun::Message::parse(answers[0]);
  ASSERT_TRUE(m && m->error());
  EXPECT_EQ(m->error()->code, 420);
  EXPECT_EQ(m->get(stun::attr::kUnknownAttributes), std::string("\x7f\xfe", 2));
}

TEST(IceAgent, ForgedResponseIsIgnored) {
  Call call;
  call.a.add_socket(1, ep("10.0.0.1", 1000));
  // B's host exists but its answers are rewritten by an attacker with a wrong key.
  call.b.add_socket(1, ep("10.0.0.2", 2000));
  signal(call.a, call.b);
  call.a.agent.set_remote_credentials(call.b.agent.ufrag(), "a-wrong-remote-password-x",
                                      call.sim.now);
  call.sim.run_for(1s);
  EXPECT_GT(call.a.agent.counters().bad_integrity, 0u);
  EXPECT_FALSE(call.a.agent.selected());
}

TEST(IceAgent, MediaFromUnknownAddressIsDropped) {
  Call call;
  call.a.add_socket(1, ep("10.0.0.1", 1000));
  EXPECT_FALSE(call.a.agent.on_datagram(1, ep("10.0.0.9", 9), "\x80\x00 rtp", call.sim.now));
  EXPECT_FALSE(call.a.agent.on_datagram(1, ep("10.0.0.9", 9), "\x16 dtls", call.sim.now));
}

TEST(IceAgent, ReflectorHostnamesAndTcpCandidatesAreSkipped) {
  Call call;
  call.a.add_socket(1, ep("10.0.0.1", 1000));
  auto reflector = Candidate::parse(
      "candidate:1057338416 1 udp 41819903 reflector-2-3805618839.reflector 596 typ relay "
      "generation 0 ufrag Gk2/ network-id 1");
  auto tcp = Candidate::parse("candidate:1 1 tcp 1 10.0.0.5 9 typ host tcptype passive");
  ASSERT_TRUE(reflector && tcp);
  call.a.agent.add_remote_candidate(*reflector, call.sim.now);
  call.a.agent.add_remote_candidate(*tcp, call.sim.now);
  EXPECT_EQ(call.a.agent.counters().remote_skipped, 2u);
  call.a.agent.set_remote_credentials("Gk2/", "q8Yh3m0kV1xZp5Lr2Tn6Wc9A", call.sim.now);
  call.sim.run_for(200ms);
  EXPECT_EQ(call.net.sent, 0u);  // nothing to check
}

TEST(IceAgent, RelayOnlySignalsAndPairsNoHostCandidate) {
  Agent::Options relay_only = opts(true);
  relay_only.relay_only = true;
  Call call(relay_only, opts(false));
  call.a.add_socket(1, ep("10.0.0.1", 1000));
  call.b.add_socket(1, ep("10.0.0.2", 2000));
  call.a.agent.add_server(Server{ep("10.0.0.50", 3478), false, "", ""}, call.sim.now);
  EXPECT_TRUE(call.a.candidates.empty());
  EXPECT_TRUE(call.a.agent.local_candidates().empty());
  signal(call.a, call.b);
  call.sim.run_for(1s);
  EXPECT_EQ(call.a.agent.counters().checks_sent, 0u);
  EXPECT_FALSE(call.a.agent.selected());
}

TEST(IceAgent, ServerReflexiveCandidateGatheredFromStunServer) {
  Call call;
  call.a.add_socket(1, ep("192.168.1.10", 1000));
  call.net.nat(ep("192.168.1.10", 1000), ep("198.51.100.7", 61000));
  // A STUN server answering Binding requests with the address it sees.
  int requests = 0;
  call.net.attach(ep("10.0.0.50", 3478), [&](const Endpoint& from, const Endpoint& to,
                                             std::string_view d, TimePoint now) {
    auto m = stun::Message::parse(d);
    if (!m || m->cls() != stun::Class::Request) return;
    if (++requests == 1) return;  // the first is lost: a retransmission is needed
    call.net.send(to, from,
                  stun::Builder(stun::method::kBinding, stun::Class::Success, m->transaction())
                      .add_xor_address(stun::attr::kXorMappedAddress, from)
                      .finish({}),
                  now);
  });
  call.a.agent.add_server(Server{ep("10.0.0.50", 3478), false, "", ""}, call.sim.now);
  call.sim.run_for(2s);
  EXPECT_EQ(requests, 2);
  ASSERT_EQ(call.a.candidates.size(), 2u);
  const Candidate& srflx = call.a.candidates[1];
  EXPECT_EQ(srflx.type, "srflx");
  EXPECT_EQ(srflx.address, "198.51.100.7");
  EXPECT_EQ(srflx.port, 61000);
  EXPECT_EQ(srflx.related_address, "192.168.1.10");
  EXPECT_EQ(srflx.related_port, 1000);
  EXPECT_EQ(srflx.priority, candidate_priority(kTypePreferenceSrflx, 65535));
}

TEST(IceAgent, FailedOnlyWhenTheOwnerSaysSo) {
  Call call;
  call.a.add_socket(1, ep("10.0.0.1", 1000));
  call.b.add_socket(1, ep("10.0.0.2", 2000));
  call.net.drop = [](const Endpoint&, const Endpoint&) { return true; };
  signal(call.a, call.b);
  call.sim.run_for(30s);
  EXPECT_EQ(call.a.agent.state(), State::Checking);
  call.a.agent.fail();
  EXPECT_EQ(call.a.agent.state(), State::Failed);
  EXPECT_EQ(call.a.agent.next_tick(), TimePoint::max());
  EXPECT_FALSE(call.a.agent.send_data("\x80"));
}

TEST(IceAgent, RemoteCandidatesAndPairsAreBounded) {
  Call call;
  call.a.add_socket(1, ep("10.0.0.1", 1000));
  call.a.add_socket(2, ep("10.0.1.1", 1000));
  call.a.add_socket(3, ep("10.0.2.1", 1000));
  call.a.add_socket(4, ep("10.0.3.1", 1000));
  call.a.add_socket(5, ep("10.0.4.1", 1000));
  for (int i = 0; i < 100; ++i) {
    Candidate c;
    c.foundation = std::to_string(i);
    c.priority = 1000 + uint32_t(i);
    c.address = "10.1.0." + std::to_string(i + 1);
    c.port = 5000;
    c.type = "host";
    call.a.agent.add_remote_candidate(c, call.sim.now);
  }
  // 64 remote candidates kept; 5 x 64 = 320 pairs wanted, 256 made.
  EXPECT_EQ(call.a.agent.counters().remote_skipped, 100u - Agent::kMaxRemoteCandidates);
  EXPECT_EQ(call.a.agent.counters().pairs_refused,
            5 * Agent::kMaxRemoteCandidates - Agent::kMaxPairs);
  // Checks go out paced at Ta, nothing unbounded: 1 s holds at most 1000/25 new checks.
  call.a.agent.set_remote_credentials("rmte", "remote-password-123456789", call.sim.now);
  call.sim.run_for(1s);
  EXPECT_LE(call.a.agent.counters().checks_sent, 41u);
  EXPECT_GE(call.a.agent.counters().checks_sent, 39u);
}

// 128 pairs of which one works: the other checks fill the table of checks in flight for
// seconds, and the selected pair's consent must still get through.
TEST(IceAgent, ConsentSurvivesAFullTableOfChecks) {
  Call call;
  call.a.add_socket(1, ep("10.0.0.1", 1000));
  call.a.add_socket(2, ep("10.0.9.1", 1000));
  call.b.add_socket(1, ep("10.0.0.2", 2000));
  call.net.drop = [](const Endpoint& from, const Endpoint& to) {
    return to.address().to_string().rfind("10.1.", 0) == 0 ||
           from.address().to_string() == "10.0.9.1";
  };
  signal(call.a, call.b);
  ASSERT_TRUE(call.connect());
  for (int i = 0; i < 63; ++i) {
    Candidate c;
    c.foundation = std::to_string(i);
    c.priority = 2000000000u + uint32_t(i);  // better than B's real one: checked first
    c.address = "10.1.0." + std::to_string(i + 1);
    c.port = 5000;
    c.type = "host";
    call.a.agent.add_remote_candidate(c, call.sim.now);
  }
  call.sim.run_for(20s);
  EXPECT_EQ(call.a.states, (std::vector<State>{State::Checking, State::Connected}));
  EXPECT_GE(call.a.agent.counters().consent_sent, 6u);
}

// Whatever arrives on a socket (truncated, bit-flipped, random) is refused without a crash or
// an answer to an unauthenticated sender's garbage beyond a STUN error.
TEST(IceAgent, HostileDatagramsAreSurvived) {
  Call call;
  call.a.add_socket(1, ep("10.0.0.1", 1000));
  call.b.add_socket(1, ep("10.0.0.2", 2000));
  signal(call.a, call.b);
  ASSERT_TRUE(call.connect());
  std::vector<std::string> seeds;
  seeds.push_back(
      stun::Builder(stun::method::kBinding, stun::Class::Request, stun::new_transaction())
          .add(stun::attr::kUsername, call.a.agent.ufrag() + ":" + call.b.agent.ufrag())
          .add_u32(stun::attr::kPriority, 1)
          .add_u64(stun::attr::kIceControlled, 1)
          .finish(call.a.agent.pwd()));
  seeds.push_back(
      stun::Builder(stun::method::kBinding, stun::Class::Success, stun::new_transaction())
          .add_xor_address(stun::attr::kXorMappedAddress, ep("10.0.0.1", 1000))
          .finish(call.b.agent.pwd()));
  seeds.push_back(
      std::string("\x40\x00\x00\x04"
                  "abcd",
                  8));
  seeds.push_back(std::string("\x16\xfe\xfd", 3));
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::string d = seeds[size_t(i) % seeds.size()];
    switch (i % 3) {
      case 0:
        d.resize(rng() % (d.size() + 1));
        break;
      case 1:
        for (int k = 0; k < 1 + i % 4; ++k)
          d[rng() % d.size()] ^= char(1 << (rng() % 8));
        break;
      default:
        d.resize(rng() % 64);
        for (char& c : d)
          c = char(rng());
        if (!d.empty()) d[0] = char(rng() % 4);
    }
    const Endpoint from = (i % 2) ? ep("10.0.0.2", 2000) : ep("10.0.0.99", 9);
    call.a.agent.on_datagram(1, from, d, call.sim.now);
  }
  EXPECT_TRUE(connected(call.a));
  call.sim.run_for(10s);
  EXPECT_TRUE(connected(call.a) && connected(call.b));
}

}  // namespace
}  // namespace esg::media::ice
