// The registration client against scripted registrar answers on a simulated clock.
#include "accounts/registration.hpp"

#include <gtest/gtest.h>

#include "test_support/parse.hpp"

#include "sip/response.hpp"
#include "txn/timers.hpp"

namespace esg::accounts {
namespace {

using namespace std::chrono_literals;

using test::parse;

struct FakeLink : Link {
  std::vector<std::string> sent;
  std::vector<Destination> to;
  bool broken = false;
  Local local(const Destination&) override { return {"127.0.0.1", 5080}; }
  void resolve(const Destination& d, std::function<void(std::vector<Destination>)> done) override {
    done({Destination{d.transport, d.host == "sip.example.net" ? "127.0.0.9" : d.host, d.port}});
  }
  txn::Channel channel(const Destination& d, bool) override {
    // Reliable: no retransmissions to tell apart from new requests (Timer F still runs).
    return txn::Channel{true, [this, d](std::string_view b) {
                          if (broken) return false;
                          sent.emplace_back(b);
                          to.push_back(d);
                          return true;
                        }};
  }
};

struct RegistrationTest : ::testing::Test {
  txn::SimulatedTimers timers;
  txn::Layer layer{timers, txn::TimerConfig{}, txn::Layer::User{}};
  FakeLink link;
  std::vector<RegistrationStatus> changes;
  std::unique_ptr<RegistrationClient> client;

  bool clear_first = false;

  void make(nlohmann::json extra = nlohmann::json::object()) {
    nlohmann::json j = {{"code", "p1"},
                        {"username", "alice"},
                        {"pwd", "secret"},
                        {"domain", "sip.example.net"},
                        {"proxyaddr", "127.0.0.2"},
                        {"proxyport", 5070},
                        {"expires", 600}};
    j.merge_patch(extra);
    auto a = account_from_json(j);
    ASSERT_TRUE(a) << a.error().field << ": " << a.error().message;
    RegistrationOptions o;
    o.user_agent = "esg/test";
    o.clear_bindings_first = clear_first;
    client = std::make_unique<RegistrationClient>(
        std::make_shared<const Account>(*a), layer, timers, link, o,
        [this](const SharedStatus& s) { changes.push_back(*s); });
  }
  // The last request sent, parsed.
  sip::Message last() { return parse(link.sent.back()); }
  // Answers the last request.
  void answer(uint16_t status, const std::string& extra = "") {
    auto req = last();
    layer.receive(parse(sip::build_response(req, status, {}, "r1", extra)), txn::Channel{});
  }
  RegState state() const { return client->status().regstate; }
};

TEST_F(RegistrationTest, RegistersThroughTheProxyAnsweringTheDigestChallenge) {
  make();
  client->start();
  timers.advance(0ms);
  ASSERT_EQ(link.sent.size(), 1u);
  auto r = last();
  EXPECT_EQ(r.start_line(), "REGISTER sip:sip.example.net SIP/2.0");
  EXPECT_EQ(link.to.back().host, "127.0.0.2");  // sent to the proxy...
  EXPECT_EQ(link.to.back().port, 5070);
  EXPECT_EQ(r.header(sip::HeaderId::Route)->value, "<sip:127.0.0.2:5070;lr>");  // ...routed
  EXPECT_EQ(r.header(sip::HeaderId::Contact)->value, "<sip:alice@127.0.0.1:5080>");
  EXPECT_EQ(r.header(sip::HeaderId::Expires)->value, "600");
  EXPECT_EQ(r.header(sip::HeaderId::Supported)->value, "path");
  EXPECT_EQ(r.header(sip::HeaderId::UserAgent)->value, "esg/test");
  EXPECT_TRUE(r.header(sip::HeaderId::Allow));
  EXPECT_EQ(std::string(r.from().uri.text), "sip:alice@sip.example.net");
  EXPECT_EQ(state(), RegState::Registering);

  answer(401,
         "WWW-Authenticate: Digest realm=\"sip.example.net\", nonce=\"n1\", qop=\"auth\", "
         "algorithm=SHA-256\r\n");
  ASSERT_EQ(link.sent.size(), 2u);
  auto authed = last();
  EXPECT_EQ(authed.cseq().number, r.cseq().number + 1);
  EXPECT_EQ(authed.call_id(), r.call_id());
  const auto* auth = authed.header(sip::HeaderId::Authorization);
  ASSERT_TRUE(auth);
  EXPECT_NE(auth->value.find("username=\"alice\""), std::string_view::npos);
  EXPECT_NE(auth->value.find("algorithm=SHA-256"), std::string_view::npos);
  EXPECT_NE(auth->value.find("qop=auth"), std::string_view::npos);

  answer(200, "Contact: <sip:alice@127.0.0.1:5080>;expires=120\r\n");
  EXPECT_EQ(state(), RegState::Registered);
  EXPECT_EQ(client->status().expires, 120u);
  EXPECT_NE(client->status().last_response.find("SIP/2.0 200 OK"), std::string::npos);
  // Refreshed before the 120 s run out (at 80-90%), with no challenge remembered.
  timers.advance(95s);
  EXPECT_EQ(link.sent.size(), 2u);
  timers.advance(14s);
  ASSERT_EQ(link.sent.size(), 3u);
  EXPECT_FALSE(last().header(sip::HeaderId::Authorization));
}

TEST_F(RegistrationTest, TakingOverRemovesEveryOldBindingFirst_10_2_2) {
  clear_first = true;
  make();
  client->start();
  timers.advance(0ms);
  ASSERT_EQ(link.sent.size(), 1u);
  auto star = last();
  EXPECT_EQ(star.header(sip::HeaderId::Contact)->value, "*");
  EXPECT_EQ(star.header(sip::HeaderId::Expires)->value, "0");
  // The wildcard needs credentials too.
  answer(401, "WWW-Authenticate: Digest realm=\"r\", nonce=\"n1\", qop=\"auth\"\r\n");
  ASSERT_EQ(link.sent.size(), 2u);
  EXPECT_EQ(last().header(sip::HeaderId::Contact)->value, "*");
  EXPECT_TRUE(last().header(sip::HeaderId::Authorization));
  EXPECT_EQ(state(), RegState::Registering);
  answer(200);
  // Then our own binding, as any registration.
  ASSERT_EQ(link.sent.size(), 3u);
  auto own = last();
  EXPECT_EQ(own.header(sip::HeaderId::Contact)->value, "<sip:alice@127.0.0.1:5080>");
  EXPECT_EQ(own.header(sip::HeaderId::Expires)->value, "600");
  EXPECT_EQ(own.call_id(), star.call_id());
  EXPECT_GT(own.cseq().number, star.cseq().number);
  answer(401, "WWW-Authenticate: Digest realm=\"r\", nonce=\"n2\", qop=\"auth\"\r\n");
  answer(200, "Contact: <sip:alice@127.0.0.1:5080>;expires=600\r\n");
  EXPECT_EQ(state(), RegState::Registered);
  // A refresh (at 80-90% of 600 s) is an ordinary REGISTER.
  timers.advance(541s);
  ASSERT_GE(link.sent.size(), 5u);
  EXPECT_EQ(parse(link.sent[4]).header(sip::HeaderId::Contact)->value,
            "<sip:alice@127.0.0.1:5080>");
}

TEST_F(RegistrationTest, ARegistrarThatRefusesTheWildcardStillGetsOurBinding) {
  clear_first = true;
  make();
  client->start();
  timers.advance(0ms);
  answer(400);
  ASSERT_EQ(link.sent.size(), 2u);
  EXPECT_EQ(last().header(sip::HeaderId::Contact)->value, "<sip:alice@127.0.0.1:5080>");
  answer(200, "Contact: <sip:alice@127.0.0.1:5080>;expires=600\r\n");
  EXPECT_EQ(state(), RegState::Registered);
}

TEST_F(RegistrationTest, RejectedCredentialsAreAuthFailedAndRetriedWithAGrowingPause) {
  make();
  client->start();
  timers.advance(0ms);
  const std::string challenge =
      "WWW-Authenticate: Digest realm=\"r\", nonce=\"n1\", qop=\"auth\"\r\n";
  answer(401, challenge);
  answer(401, challenge);  // the answered challenge is refused: wrong password
  EXPECT_EQ(state(), RegState::AuthFailed);
  EXPECT_NE(client->status().reason.find("401"), std::string::npos);
  EXPECT_NE(client->status().last_response.find("401"), std::string::npos);
  const size_t sent = link.sent.size();
  timers.advance(5s);  // first pause
  EXPECT_EQ(link.sent.size(), sent + 1);
  answer(403);
  EXPECT_EQ(state(), RegState::AuthFailed);
  timers.advance(9s);  // the pause doubled to 10 s
  EXPECT_EQ(link.sent.size(), sent + 1);
  timers.advance(1s);
  EXPECT_EQ(link.sent.size(), sent + 2);
}

TEST_F(RegistrationTest, AStaleNonceIsAnsweredAgainNotAFailure) {
  make();
  client->start();
  timers.advance(0ms);
  answer(407, "Proxy-Authenticate: Digest realm=\"r\", nonce=\"n1\"\r\n");
  EXPECT_TRUE(last().header(sip::HeaderId::ProxyAuthorization));
  answer(407, "Proxy-Authenticate: Digest realm=\"r\", nonce=\"n2\", stale=true\r\n");
  EXPECT_EQ(state(), RegState::Registering);
  auto r = last();
  ASSERT_TRUE(r.header(sip::HeaderId::ProxyAuthorization));
  EXPECT_NE(r.header(sip::HeaderId::ProxyAuthorization)->value.find("nonce=\"n2\""),
            std::string_view::npos);
  answer(200);
  EXPECT_EQ(state(), RegState::Registered);
  EXPECT_EQ(client->status().expires, 600u);  // nothing granted: what we asked for
}

TEST_F(RegistrationTest, IntervalTooBriefRaisesExpiresToMinExpires_10_2_8) {
  make();
  client->start();
  timers.advance(0ms);
  answer(423, "Min-Expires: 1800\r\n");
  EXPECT_EQ(last().header(sip::HeaderId::Expires)->value, "1800");
  answer(200, "Expires: 1800\r\n");
  EXPECT_EQ(state(), RegState::Registered);
  EXPECT_EQ(client->status().expires, 1800u);
}

TEST_F(RegistrationTest, NoAnswerIsFailedAndRetriedForever) {
  make();
  client->start();
  timers.advance(0ms);
  timers.advance(32s);  // Timer F
  EXPECT_EQ(state(), RegState::Failed);
  EXPECT_EQ(client->status().reason, "no answer (timeout)");
  size_t before = link.sent.size();
  timers.advance(5s);
  EXPECT_GT(link.sent.size(), before);
  // The pause is capped (5 min) and retries never stop.
  for (int i = 0; i < 20; ++i)
    timers.advance(6min);
  before = link.sent.size();
  int waited = 0;
  while (link.sent.size() == before && waited++ < 301)
    timers.advance(1s);
  EXPECT_GT(link.sent.size(), before);
  EXPECT_LE(waited, 301);  // the pause never grows past 5 min
  answer(200);
  EXPECT_EQ(state(), RegState::Registered);
}

TEST_F(RegistrationTest, StoppingUnregistersWithExpiresZero) {
  make();
  client->start();
  timers.advance(0ms);
  answer(200);
  bool done = false;
  client->stop([&] { done = true; });
  auto r = last();
  EXPECT_EQ(r.header(sip::HeaderId::Expires)->value, "0");
  EXPECT_FALSE(done);
  answer(200);
  EXPECT_TRUE(done);
  EXPECT_EQ(state(), RegState::Unregistered);
}

TEST_F(RegistrationTest, PointToPointAccountsDoNotRegisterButPing) {
  make({{"reg", false}, {"pingmode", "options"}, {"pingtimeout", 10}, {"pingsrv", "127.0.0.7"}});
  EXPECT_EQ(state(), RegState::None);
  client->start();
  timers.advance(0ms);
  ASSERT_EQ(link.sent.size(), 1u);
  EXPECT_EQ(last().method(), sip::Method::Options);
  EXPECT_EQ(link.to.back().host, "127.0.0.7");
  answer(404);  // any answer: the provider is there
  EXPECT_EQ(client->status().pingstate, PingState::Ok);
  timers.advance(10s);
  ASSERT_EQ(link.sent.size(), 2u);
  timers.advance(32s);  // no answer
  EXPECT_EQ(client->status().pingstate, PingState::Failed);
}

TEST(PrivateAddress, RangesAProviderCannotReach) {
  for (const char* a : {"10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.0.112", "100.64.0.1",
                        "127.0.0.1", "fd00::1", "fe80::1"}) {
    EXPECT_TRUE(is_private_address(a)) << a;
  }
  for (const char* a : {"172.32.0.1", "8.8.8.8", "100.128.0.1", "2001:db8::1", "sip.example"}) {
    EXPECT_FALSE(is_private_address(a)) << a;
  }
}

}  // namespace
}  // namespace esg::accounts
