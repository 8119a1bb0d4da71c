#include "media/webrtc/ice/reflector.hpp"

#include <gtest/gtest.h>

#include <array>
#include <map>
#include <random>
#include <set>

#include "fake_net.hpp"
#include "media/webrtc/ice/ice.hpp"

namespace esg::media::ice {
namespace {

using namespace test;

std::string bytes(std::initializer_list<int> v) {
  std::string s;
  for (int b : v)
    s += char(uint8_t(b));
  return s;
}

// peer_tag 01 02 .. 10: the call tag on the wire is 01 .. 0C.
const std::string kPeerTag = bytes({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16});
const std::string kCallTag = kPeerTag.substr(0, 12);

TEST(ReflectorFraming, HelloIsFortyBytesTagLittleEndianQueryIdBigEndian) {
  const std::string expected =
      kCallTag + bytes({0x44, 0x33, 0x22, 0x11}) +  // my_tag LE
      bytes({0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}) +
      bytes({0xFE, 0xFF, 0xFF, 0xFF}) + bytes({0, 0, 0, 0, 0, 0, 0, 0x7B});  // 123 BE
  EXPECT_EQ(reflector::hello(kCallTag, 0x11223344u), expected);
  EXPECT_EQ(expected.size(), reflector::kHelloSize);
}

TEST(ReflectorFraming, DataHasMixedByteOrdersAndZeroPadding) {
  const std::string expected = kCallTag + bytes({0xDD, 0xCC, 0xBB, 0xAA}) +  // destination LE
                               bytes({0x44, 0x33, 0x22, 0x11}) +             // sender LE
                               bytes({0, 0, 0, 5}) +                         // length BE
                               "abcde" + bytes({0, 0, 0});                   // pad to 4
  EXPECT_EQ(reflector::data(kCallTag, 0xAABBCCDDu, 0x11223344u, "abcde"), expected);
  EXPECT_EQ(reflector::data(kCallTag, 1, 2, "abcd").size(), 28u);  // no padding needed
  EXPECT_EQ(reflector::data(kCallTag, 1, 2, std::string(1501, 'x')), "");
  EXPECT_EQ(reflector::data("short", 1, 2, "x"), "");
}

TEST(ReflectorFraming, ReceivedDataIsParsedBackWithItsSender) {
  const std::string packet = reflector::data(kCallTag, 7, 0x11223344u, "abcde");
  auto r = reflector::parse(packet, kCallTag);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, reflector::Received::Kind::Data);
  EXPECT_EQ(r->sender, 0x11223344u);
  EXPECT_EQ(r->payload, "abcde");  // the padding is not part of it
  // The fixed bytes from the other side: bytes 12..16 (our tag) are not checked.
  const std::string wire = kCallTag + bytes({9, 9, 9, 9}) + bytes({0x01, 0, 0, 0}) +
                           bytes({0, 0, 0, 2}) + "hi" + bytes({0, 0});
  r = reflector::parse(wire, kCallTag);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->sender, 1u);
  EXPECT_EQ(r->payload, "hi");
}

TEST(ReflectorFraming, ReceiveRules) {
  using Kind = reflector::Received::Kind;
  // Shorter than 16 bytes, or another call's tag: dropped.
  EXPECT_FALSE(reflector::parse(kCallTag + "abc", kCallTag));
  std::string other = reflector::data(kCallTag, 1, 2, "abcd");
  other[3] ^= 1;
  EXPECT_FALSE(reflector::parse(other, kCallTag));
  // 16..24 bytes: accepted (READY) and nothing else.
  auto r = reflector::parse(kCallTag + std::string(4, '\0'), kCallTag);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, Kind::Short);
  r = reflector::parse(kCallTag + std::string(12, 'x'), kCallTag);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, Kind::Short);
  // FF x12 at 16..28: a hello's answer, the 40 bytes echoed or libtgvoip's self info.
  r = reflector::parse(reflector::hello(kCallTag, 5), kCallTag);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, Kind::Special);
  const std::string self_info = kCallTag + bytes({5, 0, 0, 0}) + std::string(12, char(0xFF)) +
                                bytes({0xC7, 0x72, 0x15, 0xC0}) + std::string(36, '\0');
  r = reflector::parse(self_info, kCallTag);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, Kind::Special);
  // A length past the end: accepted, nothing delivered.
  const std::string overlong =
      kCallTag + bytes({0, 0, 0, 0, 1, 0, 0, 0}) + bytes({0, 0, 0, 9}) + "abcd";
  r = reflector::parse(overlong, kCallTag);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, Kind::Overlong);
  // Exactly the bytes there are: delivered.
  const std::string exact =
      kCallTag + bytes({0, 0, 0, 0, 1, 0, 0, 0}) + bytes({0, 0, 0, 4}) + "abcd";
  r = reflector::parse(exact, kCallTag);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, Kind::Data);
  EXPECT_EQ(r->payload, "abcd");
}

TEST(ReflectorNames, GoodAndBad) {
  EXPECT_EQ(reflector::candidate_name(2, 3805618839u), "reflector-2-3805618839.reflector");
  EXPECT_EQ(reflector::parse_name("reflector-2-3805618839.reflector"),
            (reflector::Name{2, 3805618839u}));
  EXPECT_EQ(reflector::parse_name("reflector-255-1.reflector"), (reflector::Name{255, 1}));
  for (const char* bad :
       {"reflector-2-3805618839", "reflector-2.reflector", "reflector--5.reflector",
        "reflector-2-.reflector", "reflector-0-5.reflector", "reflector-256-5.reflector",
        "reflector-2-0.reflector", "reflector-2-4294967296.reflector", "reflector-02-5.reflector",
        "reflector-2-+5.reflector", "reflector-2-5x.reflector", "reflector-2-5.reflector.",
        "Reflector-2-5.reflector", "xreflector-2-5.reflector", "reflector-2-5-6.reflector",
        "10.0.0.1", "", "host.local"}) {
    EXPECT_FALSE(reflector::parse_name(bad)) << bad;
  }
}

ReflectorServer server(uint8_t id = 1, const char* ip = "10.0.0.100", uint16_t port = 596) {
  return ReflectorServer{id, ep(ip, port), kPeerTag};
}

TEST(ReflectorPort, HelloEvery500msUntilAnAnswerThenEvery10s) {
  TimePoint now = TimePoint{} + std::chrono::hours(1);
  const TimePoint t0 = now;
  ReflectorPort port({server(), 0x11223344u});
  std::vector<TimePoint> hellos;
  std::vector<Candidate> ready;
  port.send = [&](std::string_view b) {
    EXPECT_EQ(b, reflector::hello(kCallTag, 0x11223344u));
    hellos.push_back(now);
  };
  port.on_ready = [&](const Candidate& c) { ready.push_back(c); };
  port.start(now);
  auto run_to = [&](TimePoint end) {
    while (port.next_tick() <= end) {
      now = port.next_tick();
      port.tick(now);
    }
    now = end;
  };
  run_to(t0 + 1200ms);
  EXPECT_EQ(hellos, (std::vector<TimePoint>{t0, t0 + 500ms, t0 + 1000ms}));
  EXPECT_FALSE(port.ready());
  // A stranger's answer (another address) changes nothing.
  EXPECT_FALSE(port.on_datagram(ep("10.0.0.99", 596), reflector::hello(kCallTag, 1), now));
  EXPECT_FALSE(port.on_datagram(ep("10.0.0.100", 597), reflector::hello(kCallTag, 1), now));
  EXPECT_FALSE(port.ready());
  EXPECT_EQ(port.counters().dropped, 2u);
  EXPECT_FALSE(port.on_datagram(ep("10.0.0.100", 596), reflector::hello(kCallTag, 1), now));
  EXPECT_TRUE(port.ready());
  EXPECT_EQ(port.counters().replies, 1u);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].address, "reflector-1-287454020.reflector");  // 0x11223344
  EXPECT_EQ(ready[0].port, 596);
  EXPECT_EQ(ready[0].type, "relay");
  EXPECT_EQ(ready[0].protocol, "udp");
  EXPECT_EQ(ready[0].related_address, "");
  EXPECT_EQ(ready[0].related_port, 0);
  const TimePoint answered = now;
  run_to(t0 + 35s);
  EXPECT_EQ(hellos, (std::vector<TimePoint>{t0, t0 + 500ms, t0 + 1000ms, answered + 10s,
                                            answered + 20s, answered + 30s}));
  EXPECT_EQ(port.counters().hellos_sent, 6u);
  EXPECT_EQ(ready.size(), 1u);  // published once
}

TEST(ReflectorPort, FramesDataAndDeliversThePeersAndRandomTagIsNonZero) {
  for (int i = 0; i < 50; ++i)
    EXPECT_NE(ReflectorPort({server(), 0}).tag(), 0u);
  const TimePoint now{};
  ReflectorPort port({server(), 77});
  std::vector<std::string> out;
  port.send = [&](std::string_view b) { out.emplace_back(b); };
  EXPECT_TRUE(port.send_to(99, "stun"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], reflector::data(kCallTag, 99, 77, "stun"));
  // A data packet is accepted first thing (READY) and delivered.
  const std::string in = reflector::data(kCallTag, 77, 99, "\x16\xfe\xfd");
  auto got = port.on_datagram(ep("10.0.0.100", 596), in, now);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->sender, 99u);
  EXPECT_EQ(got->data, "\x16\xfe\xfd");
  EXPECT_TRUE(port.ready());
  EXPECT_EQ(port.counters().data_in, 1u);
  EXPECT_EQ(port.counters().data_out, 1u);
  // Short ones do nothing but count nothing wrong either; wrong call tags are dropped.
  EXPECT_FALSE(port.on_datagram(ep("10.0.0.100", 596), kCallTag + "abcd", now));
  EXPECT_FALSE(port.on_datagram(ep("10.0.0.100", 596), std::string(40, 'z'), now));
  EXPECT_EQ(port.counters().dropped, 1u);
}

// §5.6's test reflector on the fake network: 16-byte key -> last source; hellos answered with
// the same bytes; data forwarded unchanged to table[bytes 0..16].
struct SimReflector {
  FakeNet& net;
  TimePoint* clock;
  Endpoint at;
  std::map<std::string, Endpoint> table;
  uint64_t forwarded = 0, unknown = 0;
  bool forwarding = true;
  SimReflector(FakeNet& n, TimePoint* c, Endpoint a) : net(n), clock(c), at(a) {
    net.attach(at, [this](const Endpoint& from, const Endpoint&, std::string_view d,
                          TimePoint now) { on(from, d, now); });
  }
  void on(const Endpoint& from, std::string_view d, TimePoint now) {
    if (d.size() >= 32 && d.substr(16, 12) == std::string(12, char(0xFF))) {
      table[std::string(d.substr(0, 16))] = from;
      net.send(at, from, d, now);
      return;
    }
    if (d.size() < 24) return;
    table[std::string(d.substr(0, 12)) + std::string(d.substr(16, 4))] = from;
    auto it = table.find(std::string(d.substr(0, 16)));
    if (it == table.end() || !forwarding) {
      ++unknown;
      return;
    }
    ++forwarded;
    net.send(at, it->second, d, now);
  }
};

bool connected(const Peer& p) {
  return p.agent.state() == State::Connected;
}

Agent::Options relay_only(bool controlling) {
  Agent::Options o;
  o.controlling = controlling;
  o.relay_only = true;
  return o;
}

struct ReflectorCall {
  FakeNet net;
  Sim sim{net};
  Peer a, b;
  SimReflector r1{net, &sim.now, ep("10.0.0.100", 596)};
  // Where every datagram went: never anywhere but the reflector.
  std::set<Endpoint> destinations;
  ReflectorCall(Agent::Options ao, Agent::Options bo)
      : a(net, &sim.now, std::move(ao)), b(net, &sim.now, std::move(bo)) {
    sim.add(a.agent);
    sim.add(b.agent);
    for (Peer* p : {&a, &b}) {
      p->agent.send = [this, p](int socket, const Endpoint& to, std::string_view bytes) {
        destinations.insert(to);
        net.send(p->sockets.at(socket), to, bytes, sim.now);
      };
    }
    // Only the reflector is reachable: peer to peer would fail even if tried.
    net.drop = [this](const Endpoint& from, const Endpoint& to) {
      return from != r1.at && to != r1.at;
    };
  }
};

class ReflectorIce : public ::testing::TestWithParam<bool> {};

TEST_P(ReflectorIce, RelayOnlyAgentsConnectOnlyThroughTheReflector) {
  const bool a_controls = GetParam();
  ReflectorCall call(relay_only(a_controls), relay_only(!a_controls));
  call.a.add_socket(1, ep("10.0.0.1", 1000));
  call.b.add_socket(1, ep("10.0.0.2", 2000));
  call.a.agent.add_reflector(server(), call.sim.now);
  call.b.agent.add_reflector(server(), call.sim.now);
  EXPECT_TRUE(call.a.candidates.empty());  // relay only: no host candidate, and not READY yet
  signal(call.a, call.b);
  ASSERT_TRUE(call.sim.run_until_true([&] { return connected(call.a) && connected(call.b); }, 5s));
  for (Peer* p : {&call.a, &call.b}) {
    ASSERT_EQ(p->candidates.size(), 1u);
    const Candidate& c = p->candidates[0];
    EXPECT_EQ(c.type, "relay");
    EXPECT_EQ(c.port, 596);
    EXPECT_EQ(c.address, reflector::candidate_name(1, p->agent.reflectors()[0].tag));
    EXPECT_EQ(c.related_address, "");
    auto sel = p->agent.selected();
    ASSERT_TRUE(sel);
    EXPECT_EQ(sel->local.address, c.address);
    EXPECT_EQ(reflector::parse_name(sel->remote.address)->server_id, 1);
  }
  EXPECT_EQ(call.a.agent.selected()->remote.address, call.b.candidates[0].address);
  // DTLS-like data both ways, through the reflector.
  const std::string hello("\x16\xfe\xfd hello", 9), answer("\x16\xfe\xfd answer", 10);
  EXPECT_TRUE(call.a.agent.send_data(hello));
  EXPECT_TRUE(call.b.agent.send_data(answer));
  call.sim.run_for(100ms);
  EXPECT_EQ(call.b.received, std::vector<std::string>{hello});
  EXPECT_EQ(call.a.received, std::vector<std::string>{answer});
  EXPECT_EQ(call.destinations, (std::set<Endpoint>{call.r1.at}));
  EXPECT_GT(call.r1.forwarded, 4u);
  // The call lives on: consent checks through the reflector and hellos every 10 s.
  const uint64_t hellos = call.a.agent.reflectors()[0].counters.hellos_sent;
  call.sim.run_for(31s);
  EXPECT_TRUE(connected(call.a) && connected(call.b));
  EXPECT_EQ(call.a.agent.reflectors()[0].counters.hellos_sent, hellos + 3);
  EXPECT_EQ(call.destinations, (std::set<Endpoint>{call.r1.at}));
}

INSTANTIATE_TEST_SUITE_P(BothRoles, ReflectorIce, ::testing::Bool());

TEST(ReflectorIce, ForwardingStopDisconnectsAndItsReturnReconnects) {
  ReflectorCall call(relay_only(true), relay_only(false));
  call.a.add_socket(1, ep("10.0.0.1", 1000));
  call.b.add_socket(1, ep("10.0.0.2", 2000));
  call.a.agent.add_reflector(server(), call.sim.now);
  call.b.agent.add_reflector(server(), call.sim.now);
  signal(call.a, call.b);
  ASSERT_TRUE(call.sim.run_until_true([&] { return connected(call.a) && connected(call.b); }, 5s));
  call.r1.forwarding = false;
  ASSERT_TRUE(
      call.sim.run_until_true([&] { return call.a.agent.state() == State::Disconnected; }, 10s));
  call.r1.forwarding = true;
  ASSERT_TRUE(call.sim.run_until_true([&] { return connected(call.a) && connected(call.b); }, 10s));
}

TEST(ReflectorIce, RemoteReflectorCandidatesPairOnlyOnTheSameServerAndPort) {
  ReflectorCall call(relay_only(true), relay_only(false));
  call.a.add_socket(1, ep("10.0.0.1", 1000));
  call.a.agent.add_reflector(server(1), call.sim.now);
  // Answer A's hello so its port is READY (and its candidate pairable).
  call.sim.run_for(50ms);
  ASSERT_EQ(call.a.candidates.size(), 1u);
  call.a.agent.set_remote_credentials("Gk2/", "q8Yh3m0kV1xZp5Lr2Tn6Wc9A", call.sim.now);
  auto cand = [](const std::string& addr, uint16_t port) {
    return *Candidate::parse("candidate:1 1 udp 41819903 " + addr + " " + std::to_string(port) +
                             " typ relay generation 0");
  };
  const uint64_t sent = call.a.agent.counters().checks_sent;
  // Another server id (not one of this call's): skipped; the right id on another port: kept,
  // never paired; a name of another shape: skipped; an address in 100::/64: skipped.
  call.a.agent.add_remote_candidate(cand("reflector-2-5.reflector", 596), call.sim.now);
  call.a.agent.add_remote_candidate(cand("reflector-1-5.reflector", 597), call.sim.now);
  call.a.agent.add_remote_candidate(cand("reflector-1-x.reflector", 596), call.sim.now);
  call.a.agent.add_remote_candidate(cand("100::1:0:5", 596), call.sim.now);
  EXPECT_EQ(call.a.agent.counters().remote_skipped, 3u);
  call.sim.run_for(300ms);
  EXPECT_EQ(call.a.agent.counters().checks_sent, sent);
  // The same id and port: checked, through the reflector, for tag 6.
  std::vector<std::string> to_reflector;
  call.a.agent.send = [&](int, const Endpoint& to, std::string_view b) {
    EXPECT_EQ(to, call.r1.at);
    to_reflector.emplace_back(b);
  };
  call.a.agent.add_remote_candidate(cand("reflector-1-6.reflector", 596), call.sim.now);
  call.sim.run_for(100ms);
  EXPECT_GT(call.a.agent.counters().checks_sent, sent);
  ASSERT_FALSE(to_reflector.empty());
  auto r = reflector::parse(to_reflector.back(), kCallTag);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, reflector::Received::Kind::Data);
  EXPECT_EQ(uint8_t(to_reflector.back()[12]), 6);  // the destination tag, little-endian
  EXPECT_EQ(r->sender, call.a.agent.reflectors()[0].tag);
  EXPECT_TRUE(stun::looks_like_stun(r->payload));
}

TEST(ReflectorIce, PortPerSocketOfTheReflectorsFamilyWithItsOwnTagAndHostsStillUsedWithP2p) {
  FakeNet net;
  Sim sim{net};
  Agent::Options o;
  o.controlling = true;
  Peer a(net, &sim.now, o);
  sim.add(a.agent);
  a.add_socket(1, ep("10.0.0.1", 1000));
  a.add_socket(2, ep("10.0.0.3", 1001));
  a.add_socket(3, ep("fd00::1", 1002));
  SimReflector v4(net, &sim.now, ep("10.0.0.100", 596));
  SimReflector v6(net, &sim.now, ep("fd00::100", 596));
  a.agent.add_reflector(server(1, "10.0.0.100"), sim.now);
  a.agent.add_reflector(server(1, "fd00::100"), sim.now);
  a.agent.add_reflector(server(1, "fd00::100"), sim.now);  // twice: nothing more
  const auto ports = a.agent.reflectors();
  ASSERT_EQ(ports.size(), 3u);
  EXPECT_EQ(ports[0].socket, 1);
  EXPECT_EQ(ports[1].socket, 2);
  EXPECT_EQ(ports[2].socket, 3);
  EXPECT_NE(ports[0].tag, ports[1].tag);
  sim.run_for(100ms);
  // 3 host candidates at once (peer to peer allowed), then a relay candidate per port.
  ASSERT_EQ(a.candidates.size(), 6u);
  std::set<std::string> names;
  for (size_t i = 3; i < 6; ++i) {
    EXPECT_EQ(a.candidates[i].type, "relay");
    names.insert(a.candidates[i].address);
  }
  EXPECT_EQ(names.size(), 3u);
  // A reflector candidate outranks TURN's and is below the host ones.
  EXPECT_LT(a.candidates[3].priority, a.candidates[0].priority);
  EXPECT_GT(a.candidates[3].priority, candidate_priority(kTypePreferenceRelay, 65535 - 16));
}

TEST(ReflectorIce, NothingIsEverSentToASyntheticAddress) {
  // A check from the reflector's peer learnt as peer-reflexive: its answer goes through the
  // port, and nothing ever reaches 100::/64 (the datagrams' destinations are all the reflector).
  ReflectorCall call(relay_only(true), relay_only(false));
  call.a.add_socket(1, ep("10.0.0.1", 1000));
  call.b.add_socket(1, ep("10.0.0.2", 2000));
  call.a.agent.add_reflector(server(), call.sim.now);
  call.b.agent.add_reflector(server(), call.sim.now);
  call.a.signal_candidates = false;  // B learns A only from its checks
  signal(call.a, call.b);
  ASSERT_TRUE(call.sim.run_until_true([&] { return connected(call.a) && connected(call.b); }, 5s));
  EXPECT_EQ(call.b.agent.selected()->remote.type, "prflx");
  EXPECT_EQ(call.b.agent.selected()->remote.address, call.a.candidates[0].address);
  EXPECT_EQ(call.destinations, (std::set<Endpoint>{call.r1.at}));
  EXPECT_TRUE(Agent::reflector_name_of(Agent::reflector_endpoint(3, 0xDEADBEEF, 5)));
  EXPECT_EQ(Agent::reflector_name_of(Agent::reflector_endpoint(3, 0xDEADBEEF, 5))->tag,
            0xDEADBEEFu);
  EXPECT_FALSE(Agent::reflector_name_of(ep("fd00::1", 5)));
  EXPECT_FALSE(Agent::reflector_name_of(ep("10.0.0.1", 5)));
}

TEST(ReflectorIce, HostileDatagramsFromTheReflectorAreSurvived) {
  ReflectorCall call(relay_only(true), relay_only(false));
  call.a.add_socket(1, ep("10.0.0.1", 1000));
  call.b.add_socket(1, ep("10.0.0.2", 2000));
  call.a.agent.add_reflector(server(), call.sim.now);
  call.b.agent.add_reflector(server(), call.sim.now);
  signal(call.a, call.b);
  ASSERT_TRUE(call.sim.run_until_true([&] { return connected(call.a) && connected(call.b); }, 5s));
  std::mt19937 rng(7);
  const uint32_t b_tag = call.b.agent.reflectors()[0].tag;
  size_t delivered = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string d(size_t(rng() % 80), '\0');
    for (char& c : d)
      c = char(rng());
    // Half of them with the call's tag, so they get past the prefix check; some claim to be B.
    if (i % 2 && d.size() >= 16) d.replace(0, 12, kCallTag);
    if (i % 4 == 1 && d.size() >= 24) {
      for (int k = 0; k < 4; ++k)
        d[size_t(16 + k)] = char(b_tag >> (8 * k));
    }
    if (call.a.agent.on_datagram(1, call.r1.at, d, call.sim.now)) ++delivered;
  }
  // Anything that comes out is a payload of a data packet, never more than the packet had.
  EXPECT_LT(delivered, 3000u);
  EXPECT_GT(call.a.agent.reflectors()[0].counters.dropped, 0u);
  call.sim.run_for(1s);
  EXPECT_TRUE(connected(call.a) && connected(call.b));
}

}  // namespace
}  // namespace esg::media::ice
