#include "media/webrtc/ice/turn.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "fake_net.hpp"

namespace esg::media::ice {
namespace {

using namespace test;

// A TURN server for the tests (RFC 8656 over UDP, one allocation per client 5-tuple): long-term
// credentials with a 401 challenge, optional stale nonces, permissions, channels, Send and Data
// indications, ChannelData, Refresh. Built on the STUN codec; what it checks is what a real
// server (coturn) checks.
class FakeTurnServer {
 public:
  FakeTurnServer(FakeNet& net, Endpoint address, Endpoint relayed)
      : net_(net), address_(address), relayed_(relayed) {
    net.attach(address, [this](const Endpoint& from, const Endpoint&, std::string_view d,
                               TimePoint now) { from_client(from, d, now); });
    net.attach(relayed, [this](const Endpoint& from, const Endpoint&, std::string_view d,
                               TimePoint now) { from_peer(from, d, now); });
  }
  std::string realm = "esg.test", nonce = "nonce-1", username = "alice", password = "s3cret";
  uint32_t lifetime = 600;
  bool stale_next = false;
  bool refuse_binds = false;  // ChannelBind answered 403
  int send_indications = 0;   // answer the next signed request 438 with a new nonce
  int challenges = 0, stale_sent = 0, allocations = 0, refreshes = 0, permissions = 0, binds = 0,
      bad_integrity = 0;
  std::set<boost::asio::ip::address> permitted;
  std::map<uint16_t, Endpoint> channels;
  bool allocated = false;
  std::optional<Endpoint> client;

 private:
  std::string key() const { return stun::long_term_key(username, realm, password); }

  void reply(const stun::Message& m, stun::Class cls, const std::function<void(stun::Builder&)>& f,
             bool sign, TimePoint now) {
    stun::Builder b(m.method(), cls, m.transaction());
    f(b);
    net_.send(address_, *client, b.finish(sign ? key() : std::string{}), now);
  }

  void from_client(const Endpoint& from, std::string_view d, TimePoint now) {
    if (d.size() >= 4 && uint8_t(d[0]) >= 0x40 && uint8_t(d[0]) < 0x50) {
      const uint16_t ch = uint16_t((uint8_t(d[0]) << 8) | uint8_t(d[1]));
      const size_t len = size_t((uint8_t(d[2]) << 8) | uint8_t(d[3]));
      auto it = channels.find(ch);
      if (it != channels.end() && 4 + len <= d.size()) {
        net_.send(relayed_, it->second, d.substr(4, len), now);
      }
      return;
    }
    auto m = stun::Message::parse(d);
    if (!m) return;
    client = from;
    if (m->cls() == stun::Class::Indication && m->method() == stun::method::kSend) {
      auto peer = m->get_xor_address(stun::attr::kXorPeerAddress);
      auto data = m->get(stun::attr::kData);
      if (peer && data && permitted.count(peer->address())) {
        ++send_indications;
        net_.send(relayed_, *peer, *data, now);
      }
      return;
    }
    if (m->cls() != stun::Class::Request) return;
    if (m->method() == stun::method::kBinding) {  // a TURN server is a STUN server too
      return reply(
          *m, stun::Class::Success,
          [&](stun::Builder& b) { b.add_xor_address(stun::attr::kXorMappedAddress, from); }, false,
          now);
    }
    if (!m->has_integrity()) {
      ++challenges;
      return reply(
          *m, stun::Class::Error,
          [&](stun::Builder& b) {
            b.add_error(401, "Unauthorized")
                .add(stun::attr::kRealm, realm)
                .add(stun::attr::kNonce, nonce);
          },
          false, now);
    }
    if (m->get(stun::attr::kUsername) != username || !m->check_integrity(key())) {
      ++bad_integrity;
      return reply(
          *m, stun::Class::Error,
          [&](stun::Builder& b) {
            b.add_error(401, "Unauthorized")
                .add(stun::attr::kRealm, realm)
                .add(stun::attr::kNonce, nonce);
          },
          false, now);
    }
    if (stale_next || m->get(stun::attr::kNonce) != nonce) {
      if (stale_next) nonce = "nonce-" + std::to_string(++stale_sent + 1);
      stale_next = false;
      return reply(
          *m, stun::Class::Error,
          [&](stun::Builder& b) {
            b.add_error(438, "Stale Nonce")
                .add(stun::attr::kRealm, realm)
                .add(stun::attr::kNonce, nonce);
          },
          false, now);
    }
    switch (m->method()) {
      case stun::method::kAllocate:
        if (m->get_u32(stun::attr::kRequestedTransport) != (17u << 24)) return;
        ++allocations;
        allocated = true;
        return reply(
            *m, stun::Class::Success,
            [&](stun::Builder& b) {
              b.add_xor_address(stun::attr::kXorRelayedAddress, relayed_)
                  .add_xor_address(stun::attr::kXorMappedAddress, from)
                  .add_u32(stun::attr::kLifetime, lifetime);
            },
            true, now);
      case stun::method::kRefresh:
        ++refreshes;
        if (m->get_u32(stun::attr::kLifetime) == 0u) allocated = false;
        return reply(
            *m, stun::Class::Success,
            [&](stun::Builder& b) {
              // A server grants at most its own lifetime (RFC 8656 §7.2).
              b.add_u32(stun::attr::kLifetime,
                        std::min(lifetime, m->get_u32(stun::attr::kLifetime).value_or(lifetime)));
            },
            true, now);
      case stun::method::kCreatePermission: {
        auto peer = m->get_xor_address(stun::attr::kXorPeerAddress);
        if (!peer) return;
        ++permissions;
        permitted.insert(peer->address());
        return reply(
            *m, stun::Class::Success, [](stun::Builder&) {}, true, now);
      }
      case stun::method::kChannelBind: {
        auto peer = m->get_xor_address(stun::attr::kXorPeerAddress);
        auto ch = m->get_u32(stun::attr::kChannelNumber);
        if (!peer || !ch) return;
        if (refuse_binds) {
          return reply(
              *m, stun::Class::Error, [](stun::Builder& b) { b.add_error(403, "Forbidden"); }, true,
              now);
        }
        ++binds;
        channels[uint16_t(*ch >> 16)] = *peer;
        permitted.insert(peer->address());
        return reply(
            *m, stun::Class::Success, [](stun::Builder&) {}, true, now);
      }
      default:
        return;
    }
  }

  // Data from a peer to the relayed address goes to the client on its channel if it has one,
  // in a Data indication otherwise; without a permission it is dropped.
  void from_peer(const Endpoint& from, std::string_view d, TimePoint now) {
    if (!allocated || !client || !permitted.count(from.address())) return;
    for (const auto& [ch, peer] : channels) {
      if (peer == from) {
        std::string out{char(ch >> 8), char(ch), char(d.size() >> 8), char(d.size())};
        out.append(d);
        net_.send(address_, *client, out, now);
        return;
      }
    }
    stun::Builder b(stun::method::kData, stun::Class::Indication, stun::new_transaction());
    b.add_xor_address(stun::attr::kXorPeerAddress, from).add(stun::attr::kData, d);
    net_.send(address_, *client, b.finish({}, false), now);
  }

  FakeNet& net_;
  Endpoint address_, relayed_;
};

const Endpoint kServer = ep("10.9.9.9", 3478);
const Endpoint kRelayed = ep("10.9.9.9", 49152);
const Endpoint kClient = ep("10.0.0.1", 1000);
const Endpoint kPeer = ep("10.0.0.2", 2000);

struct TurnFixture : ::testing::Test {
  FakeNet net;
  Sim sim{net};
  FakeTurnServer server{net, kServer, kRelayed};
  std::unique_ptr<TurnClient> client;
  std::vector<std::string> at_client, at_peer;
  std::optional<Endpoint> relayed, mapped;
  std::vector<Endpoint> peer_sources;
  std::string last_request;

  void SetUp() override {
    TurnClient::Options o;
    o.server = kServer;
    o.username = "alice";
    o.password = "s3cret";
    client = std::make_unique<TurnClient>(o);
    client->send = [this](std::string_view b) {
      last_request = std::string(b);
      net.send(kClient, kServer, b, sim.now);
    };
    client->on_allocated = [this](const Endpoint& r, const Endpoint& m) {
      relayed = r;
      mapped = m;
    };
    net.attach(kClient,
               [this](const Endpoint&, const Endpoint&, std::string_view d, TimePoint now) {
                 if (auto in = client->on_datagram(d, now)) {
                   EXPECT_EQ(in->peer, kPeer);
                   at_client.emplace_back(in->data);
                 }
               });
    net.attach(kPeer, [this](const Endpoint& from, const Endpoint&, std::string_view d, TimePoint) {
      peer_sources.push_back(from);
      at_peer.emplace_back(d);
    });
    sim.add([this](TimePoint t) { client->tick(t); }, [this] { return client->next_tick(); });
  }
};

TEST_F(TurnFixture, AllocatesAfterThe401ChallengeWithLongTermCredentials) {
  client->start(sim.now);
  sim.run_for(200ms);
  EXPECT_EQ(server.challenges, 1);
  EXPECT_EQ(server.allocations, 1);
  EXPECT_EQ(server.bad_integrity, 0);
  EXPECT_EQ(client->state(), TurnClient::State::Allocated);
  ASSERT_TRUE(relayed);
  EXPECT_EQ(*relayed, kRelayed);
  EXPECT_EQ(*mapped, kClient);
  EXPECT_EQ(client->counters().auth_challenges, 1u);
}

TEST_F(TurnFixture, WrongPasswordFailsTheAllocation) {
  server.password = "other";
  int failed = -1;
  client->on_failed = [&](int code) { failed = code; };
  client->start(sim.now);
  sim.run_for(500ms);
  EXPECT_EQ(client->state(), TurnClient::State::Failed);
  EXPECT_EQ(failed, 401);
  EXPECT_EQ(server.allocations, 0);
}

TEST_F(TurnFixture, PermissionChannelAndDataBothWaysThroughTheRelay) {
  client->start(sim.now);
  sim.run_for(100ms);
  EXPECT_FALSE(client->can_send(kPeer));
  client->add_peer(kPeer, sim.now);
  sim.run_for(100ms);
  EXPECT_EQ(server.permissions, 1);
  EXPECT_EQ(server.binds, 1);
  ASSERT_TRUE(client->can_send(kPeer));
  EXPECT_TRUE(client->send_to(kPeer, "\x80 to peer"));
  sim.run_for(50ms);
  ASSERT_EQ(at_peer, std::vector<std::string>{"\x80 to peer"});
  EXPECT_EQ(peer_sources[0], kRelayed);  // the peer sees the relayed address
  net.send(kPeer, kRelayed, "\x17 to client", sim.now);
  sim.run_for(50ms);
  EXPECT_EQ(at_client, std::vector<std::string>{"\x17 to client"});
  // A stranger without a permission gets nothing through.
  net.send(ep("10.0.0.66", 1), kRelayed, "\x17 spoof", sim.now);
  sim.run_for(50ms);
  EXPECT_EQ(at_client.size(), 1u);
}

TEST_F(TurnFixture, SendAndDataIndicationsWhileNoChannelIsBound) {
  server.refuse_binds = true;
  client->start(sim.now);
  sim.run_for(100ms);
  client->add_peer(kPeer, sim.now);
  sim.run_for(100ms);
  EXPECT_TRUE(server.channels.empty());
  ASSERT_TRUE(client->can_send(kPeer));
  EXPECT_TRUE(client->send_to(kPeer, "\x80 via send"));
  sim.run_for(50ms);
  EXPECT_EQ(at_peer, std::vector<std::string>{"\x80 via send"});
  EXPECT_EQ(server.send_indications, 1);
  net.send(kPeer, kRelayed, "\x80 via data", sim.now);
  sim.run_for(50ms);
  EXPECT_EQ(at_client, std::vector<std::string>{"\x80 via data"});
}

TEST_F(TurnFixture, RefreshesTheAllocationPermissionsAndChannelsBeforeTheyExpire) {
  server.lifetime = 120;
  client->start(sim.now);
  sim.run_for(100ms);
  client->add_peer(kPeer, sim.now);
  sim.run_for(100ms);
  sim.run_for(std::chrono::minutes(11));
  // Lifetime 120 s: a refresh every 60 s; permissions every 4 min, channels every 9.
  EXPECT_GE(server.refreshes, 10);
  EXPECT_LE(server.refreshes, 12);
  EXPECT_EQ(server.permissions, 3);
  EXPECT_EQ(server.binds, 2);
  EXPECT_EQ(client->state(), TurnClient::State::Allocated);
  EXPECT_TRUE(client->send_to(kPeer, "\x80 still"));
  sim.run_for(50ms);
  EXPECT_EQ(at_peer.back(), "\x80 still");
}

TEST_F(TurnFixture, StaleNonceIsRetriedWithTheNewOne) {
  client->start(sim.now);
  sim.run_for(100ms);
  server.stale_next = true;
  client->add_peer(kPeer, sim.now);
  sim.run_for(200ms);
  EXPECT_EQ(server.stale_sent, 1);
  // Both requests in flight (CreatePermission, ChannelBind) carried the old nonce.
  EXPECT_EQ(client->counters().stale_nonces, 2u);
  EXPECT_TRUE(client->can_send(kPeer));
  EXPECT_EQ(client->state(), TurnClient::State::Allocated);
}

TEST_F(TurnFixture, ForgedSuccessIsIgnoredAndTheRequestRetransmitted) {
  client->start(sim.now);
  sim.run_for(100ms);
  net.drop = [](const Endpoint&, const Endpoint& to) { return to == kServer; };
  client->add_peer(kPeer, sim.now);
  // Someone on the path answers the ChannelBind with a success signed with another key.
  auto request = stun::Message::parse(last_request);
  ASSERT_TRUE(request);
  ASSERT_EQ(request->method(), stun::method::kChannelBind);
  const std::string forged =
      stun::Builder(stun::method::kChannelBind, stun::Class::Success, request->transaction())
          .finish(stun::long_term_key("alice", "esg.test", "guess"));
  EXPECT_FALSE(client->on_datagram(forged, sim.now));
  EXPECT_EQ(client->counters().bad_integrity, 1u);
  EXPECT_FALSE(client->can_send(kPeer));
  sim.run_for(2s);
  EXPECT_GT(client->counters().retransmits, 0u);
  net.drop = nullptr;
  sim.run_for(5s);
  EXPECT_TRUE(client->can_send(kPeer));
  EXPECT_EQ(server.binds, 1);
}

TEST_F(TurnFixture, CloseDeallocates) {
  client->start(sim.now);
  sim.run_for(100ms);
  ASSERT_TRUE(server.allocated);
  client->close(sim.now);
  sim.run_for(100ms);
  EXPECT_FALSE(server.allocated);
}

TEST_F(TurnFixture, HostileDatagramsFromTheServerAddressAreSurvived) {
  client->start(sim.now);
  sim.run_for(100ms);
  client->add_peer(kPeer, sim.now);
  sim.run_for(100ms);
  std::vector<std::string> seeds;
  seeds.push_back(
      std::string("\x40\x00\x00\x05"
                  "hello",
                  9));
  stun::Builder data(stun::method::kData, stun::Class::Indication, stun::new_transaction());
  data.add_xor_address(stun::attr::kXorPeerAddress, kPeer).add(stun::attr::kData, "payload");
  seeds.push_back(data.finish({}, false));
  seeds.push_back(last_request);
  std::mt19937 rng(11);
  for (int i = 0; i < 20000; ++i) {
    std::string d = seeds[size_t(i) % seeds.size()];
    if (i % 2) {
      d.resize(rng() % (d.size() + 1));
    } else {
      for (int k = 0; k < 1 + i % 3; ++k)
        d[rng() % d.size()] ^= char(1 << (rng() % 8));
    }
    if (auto in = client->on_datagram(d, sim.now)) {
      EXPECT_LE(in->data.size(), d.size());
    }
  }
  EXPECT_EQ(client->state(), TurnClient::State::Allocated);
  EXPECT_TRUE(client->send_to(kPeer, "\x80 ok"));
}

// Telegram lists one server with supports_stun and supports_turn: Binding for srflx and Allocate
// for relay go to the same address, and each answer must reach its own transaction.
TEST(IceOverTurn, OneServerForStunAndTurnGivesBothCandidates) {
  FakeNet net;
  Sim sim(net);
  FakeTurnServer server(net, kServer, kRelayed);
  Peer a(net, &sim.now, Agent::Options{});
  sim.add(a.agent);
  a.add_socket(1, ep("192.168.1.10", 1000));
  net.nat(ep("192.168.1.10", 1000), ep("198.51.100.7", 61000));
  a.agent.add_server(Server{kServer, false, "", ""}, sim.now);
  a.agent.add_server(Server{kServer, true, "alice", "s3cret"}, sim.now);
  sim.run_for(500ms);
  ASSERT_EQ(a.candidates.size(), 3u);
  EXPECT_EQ(a.candidates[0].type, "host");
  std::set<std::string> types{a.candidates[1].type, a.candidates[2].type};
  EXPECT_EQ(types, (std::set<std::string>{"srflx", "relay"}));
  for (const Candidate& c : a.candidates) {
    if (c.type == "srflx") {
      EXPECT_EQ(c.address, "198.51.100.7");
    } else if (c.type == "relay") {
      EXPECT_EQ(c.related_address, "198.51.100.7");
    }
  }
}

// The ICE agent through TURN: A may only use relays (allow_p2p false), B is a plain host.
TEST(IceOverTurn, RelayOnlyAgentConnectsThroughTheRelayAndCarriesData) {
  FakeNet net;
  Sim sim(net);
  FakeTurnServer server(net, kServer, kRelayed);
  Agent::Options ao;
  ao.controlling = true;
  ao.relay_only = true;
  Peer a(net, &sim.now, ao);
  Agent::Options bo;
  Peer b(net, &sim.now, bo);
  sim.add(a.agent);
  sim.add(b.agent);
  a.add_socket(1, kClient);
  b.add_socket(1, kPeer);
  signal(a, b);
  a.agent.add_server(Server{kServer, true, "alice", "s3cret"}, sim.now);
  ASSERT_TRUE(sim.run_until_true(
      [&] { return a.agent.state() == State::Connected && b.agent.state() == State::Connected; },
      3000ms));
  ASSERT_EQ(a.candidates.size(), 1u);
  EXPECT_EQ(a.candidates[0].type, "relay");
  EXPECT_EQ(a.candidates[0].address, "10.9.9.9");
  EXPECT_EQ(a.candidates[0].port, 49152);
  EXPECT_EQ(a.candidates[0].related_address, "10.0.0.1");
  EXPECT_EQ(a.agent.selected()->local.type, "relay");
  EXPECT_EQ(b.agent.selected()->remote.address, "10.9.9.9");
  EXPECT_EQ(server.challenges, 1);
  EXPECT_GE(server.permissions, 1);
  a.agent.send_data("\x80 from a");
  b.agent.send_data("\x80 from b");
  sim.run_for(100ms);
  EXPECT_EQ(b.received, std::vector<std::string>{"\x80 from a"});
  EXPECT_EQ(a.received, std::vector<std::string>{"\x80 from b"});
  // Keeps working past the allocation's refresh.
  sim.run_for(std::chrono::minutes(10) + 30s);
  EXPECT_EQ(a.agent.state(), State::Connected);
  EXPECT_GE(server.refreshes, 1);
}

}  // namespace
}  // namespace esg::media::ice
