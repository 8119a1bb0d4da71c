#include "txn/layer.hpp"

#include <gtest/gtest.h>

#include "harness.hpp"
#include "sip/response.hpp"

namespace esg::txn {
namespace {

using namespace test;

struct LayerTest : ::testing::Test {
  SimulatedTimers timers;
  Wire wire;
  std::vector<std::pair<TxnId, std::string>> requests;
  std::vector<TxnId> cancels;
  std::vector<int> strays;
  Layer layer{timers, TimerConfig{}, user()};

  Layer::User user() {
    Layer::User u;
    u.on_request = [this](TxnId id, const sip::Message& m, const Channel&) {
      requests.emplace_back(id, std::string(m.method_text()));
    };
    u.on_cancel = [this](TxnId id, const sip::Message&) { cancels.push_back(id); };
    u.on_stray_response = [this](const sip::Message& r) { strays.push_back(r.status()); };
    return u;
  }
};

TEST_F(LayerTest, RetransmittedRequestIsAbsorbedAndTheTuSeesItOnce_17_2_3) {
  layer.receive(request("OPTIONS", "z9hG4bKa"), wire.channel());
  layer.receive(request("OPTIONS", "z9hG4bKa"), wire.channel());
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(layer.counters().retransmissions_absorbed, 1u);
  EXPECT_TRUE(layer.respond(requests[0].first, 200,
                            sip::build_response(request("OPTIONS", "z9hG4bKa"), 200)));
  layer.receive(request("OPTIONS", "z9hG4bKa"), wire.channel());
  EXPECT_EQ(wire.sent.size(), 2u);  // the final, then its retransmission
  timers.advance(32s);              // Timer J
  EXPECT_EQ(layer.size(), 0u);      // terminated transactions are deleted
  EXPECT_FALSE(layer.respond(requests[0].first, 200, "x"));
}

// A TU answers from inside on_request over a reliable transport, where the final response
// terminates the transaction at once, and then still reads the request (the B2BUA answers BYE
// 200 and then relays its Reason): the request must live until the callback returns.
TEST(LayerCallbacks, TheRequestOutlivesAnAnswerGivenInsideTheCallback) {
  SimulatedTimers timers;
  Wire wire;
  Layer* self = nullptr;
  std::string after;
  Layer::User u;
  u.on_request = [&](TxnId id, const sip::Message& m, const Channel&) {
    self->respond(id, 200, sip::build_response(m, 200, {}, "t1"));
    after = std::string(m.method_text()) + " " + std::string(m.call_id());
  };
  Layer layer(timers, TimerConfig{}, u);
  self = &layer;
  layer.receive(request("BYE", "z9hG4bKbye", 1, "d1"), wire.channel(true));
  EXPECT_EQ(after.rfind("BYE ", 0), 0u);
  ASSERT_EQ(wire.sent.size(), 1u);
  timers.advance(std::chrono::milliseconds(1));
  EXPECT_EQ(layer.size(), 0u);  // deleted once the callback has returned
}

TEST_F(LayerTest, SameBranchDifferentSentByIsAnotherTransaction_17_2_3) {
  // In-dialog (To tag) so that the merged-request check does not apply.
  layer.receive(request("OPTIONS", "z9hG4bKa", 1, "d1"), wire.channel());
  auto other = request_text("OPTIONS", "z9hG4bKa", 1, "d1");
  other.replace(other.find("127.0.0.2:5060"), 14, "127.0.0.9:5060");
  layer.receive(parse(other), wire.channel());
  EXPECT_EQ(requests.size(), 2u);
}

TEST_F(LayerTest, Rfc2543RequestsMatchWithoutTheMagicCookie_17_2_3) {
  layer.receive(request("INVITE", "old-style-1"), wire.channel());
  layer.receive(request("INVITE", "old-style-1"), wire.channel());
  EXPECT_EQ(requests.size(), 1u);
}

TEST_F(LayerTest, CancelMatchesThePendingInvite_9_2) {
  layer.receive(request("INVITE", "z9hG4bKinv"), wire.channel());
  ASSERT_EQ(requests.size(), 1u);
  const TxnId invite = requests[0].first;
  ASSERT_NE(layer.request(invite), nullptr);
  EXPECT_EQ(layer.request(invite)->method(), sip::Method::Invite);
  layer.receive(request("CANCEL", "z9hG4bKinv"), wire.channel());
  ASSERT_EQ(cancels, std::vector<TxnId>{invite});
  ASSERT_FALSE(wire.sent.empty());
  EXPECT_EQ(wire.line(wire.sent.size() - 1), "SIP/2.0 200 OK");
  auto ok = parse(wire.sent.back());
  EXPECT_EQ(ok.cseq().method, "CANCEL");
  // The TU ends the INVITE with 487; the ACK for it is absorbed by the INVITE transaction.
  layer.respond(invite, 487, sip::build_response(request("INVITE", "z9hG4bKinv"), 487, {}, "u1"));
  EXPECT_EQ(layer.state(invite), State::Completed);
  layer.receive(request("ACK", "z9hG4bKinv", 1, "u1"), wire.channel());
  EXPECT_EQ(layer.state(invite), State::Confirmed);
  EXPECT_EQ(requests.size(), 1u);  // neither CANCEL nor ACK reached the TU as requests
}

TEST_F(LayerTest, CancelWithoutInviteGets481_9_2) {
  layer.receive(request("CANCEL", "z9hG4bKnone"), wire.channel());
  ASSERT_EQ(wire.sent.size(), 1u);
  EXPECT_EQ(wire.line(0), "SIP/2.0 481 Call/Transaction Does Not Exist");
  EXPECT_EQ(layer.counters().cancel_481, 1u);
  EXPECT_TRUE(cancels.empty());
}

TEST_F(LayerTest, MergedRequestGets482_8_2_2_2) {
  layer.receive(request("INVITE", "z9hG4bKpath1"), wire.channel());
  layer.receive(request("INVITE", "z9hG4bKpath2"), wire.channel());  // same From tag/Call-ID/CSeq
  EXPECT_EQ(requests.size(), 1u);
  ASSERT_EQ(wire.sent.size(), 1u);
  EXPECT_EQ(wire.line(0), "SIP/2.0 482 Loop Detected");
  EXPECT_EQ(layer.counters().merged_482, 1u);
}

TEST_F(LayerTest, AckForA2xxHasNoTransactionAndGoesToTheTu_17_2_3) {
  layer.receive(request("ACK", "z9hG4bKnew", 1, "u1"), wire.channel());
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].first, 0u);
  EXPECT_EQ(requests[0].second, "ACK");
}

TEST_F(LayerTest, ResponsesFindTheirClientTransactionByBranchAndMethod_17_1_3) {
  std::vector<int> got;
  ClientUser cu{[&](const sip::Message& r) { got.push_back(r.status()); }, nullptr};
  const TxnId id = layer.send_request(request("INVITE", "z9hG4bKc1"), wire.channel(), cu);
  EXPECT_EQ(layer.state(id), State::Calling);
  layer.receive(response(180, "INVITE", "z9hG4bKc1"), wire.channel());
  layer.receive(response(200, "CANCEL", "z9hG4bKc1"), wire.channel());  // another method
  layer.receive(response(200, "INVITE", "z9hG4bKother"), wire.channel());
  EXPECT_EQ(got, std::vector<int>{180});
  EXPECT_EQ(strays, (std::vector<int>{200, 200}));
  layer.receive(response(486, "INVITE", "z9hG4bKc1"), wire.channel());
  EXPECT_EQ(got, (std::vector<int>{180, 486}));
  EXPECT_EQ(wire.line(wire.sent.size() - 1).substr(0, 4), "ACK ");
  timers.advance(32s);
  EXPECT_EQ(layer.size(), 0u);
}

TEST_F(LayerTest, TimedOutClientTransactionReports408AndIsDeleted) {
  std::vector<int> failures;
  ClientUser cu{nullptr, [&](uint16_t s) { failures.push_back(s); }};
  layer.send_request(request("OPTIONS", "z9hG4bKt"), wire.channel(), cu);
  timers.advance(32s);
  EXPECT_EQ(failures, std::vector<int>{408});
  EXPECT_EQ(layer.size(), 0u);
  EXPECT_EQ(timers.pending(), 0u);
}

// Two requests queued on one connection that is then refused: each transaction hears 503 with
// the reason at once, and both are deleted.
TEST_F(LayerTest, EveryTransactionOnAFailedConnectionGets503AtOnceAndIsDeleted_17_1_4) {
  std::vector<std::pair<int, std::string>> failures;
  ClientUser cu{nullptr, [&](uint16_t s, std::string_view why) {
                  failures.emplace_back(s, std::string(why));
                }};
  const Channel channel = wire.watched_channel();
  layer.send_request(request("INVITE", "z9hG4bKi1"), channel, cu);
  layer.send_request(request("OPTIONS", "z9hG4bKo1"), channel, cu);
  ASSERT_EQ(wire.reports.size(), 2u);
  for (auto& report : wire.reports)
    report("TCP connect to 127.0.0.1:5999 refused");
  const std::pair<int, std::string> refused{503, "TCP connect to 127.0.0.1:5999 refused"};
  EXPECT_EQ(failures, (std::vector<std::pair<int, std::string>>{refused, refused}));
  timers.advance(0ms);
  EXPECT_EQ(layer.size(), 0u);
  EXPECT_EQ(timers.pending(), 0u);
}

// A finished transaction lingers up to 64*T1 to absorb retransmissions; what it no longer
// needs (the request) is freed once the final response is out, and it absorbs them as before.
TEST_F(LayerTest, ServerTransactionsShedTheirRequestOnceTheFinalIsOutAndStillAbsorb_17_2_1) {
  layer.receive(request("INVITE", "z9hG4bKs1"), wire.channel());
  layer.receive(request("INVITE", "z9hG4bKs2", 2), wire.channel());
  layer.receive(request("OPTIONS", "z9hG4bKs3", 3), wire.channel());
  ASSERT_EQ(requests.size(), 3u);
  const TxnId busy = requests[0].first, ok = requests[1].first, opts = requests[2].first;
  ASSERT_NE(layer.request(busy), nullptr);
  const std::string b486 = sip::build_response(*layer.request(busy), 486, {}, "u1");
  layer.respond(busy, 486, b486);
  layer.respond(ok, 200, sip::build_response(*layer.request(ok), 200, {}, "u2"));
  layer.respond(opts, 200, sip::build_response(*layer.request(opts), 200, {}, "u3"));
  const size_t sent = wire.sent.size();
  timers.advance(1ms);  // the layer's sweep
  EXPECT_EQ(layer.state(busy), State::Completed);
  EXPECT_EQ(layer.state(ok), State::Accepted);
  EXPECT_EQ(layer.state(opts), State::Completed);
  for (TxnId id : {busy, ok, opts})
    EXPECT_EQ(layer.request(id), nullptr) << id;
  // Retransmissions: the 486 and the OPTIONS' 200 again; the INVITE that got a 2xx absorbs.
  layer.receive(request("INVITE", "z9hG4bKs1"), wire.channel());
  layer.receive(request("INVITE", "z9hG4bKs2", 2), wire.channel());
  layer.receive(request("OPTIONS", "z9hG4bKs3", 3), wire.channel());
  ASSERT_EQ(wire.sent.size(), sent + 2);
  EXPECT_EQ(wire.sent[sent], b486);
  EXPECT_EQ(wire.line(sent + 1), "SIP/2.0 200 OK");
  EXPECT_EQ(requests.size(), 3u);
  EXPECT_EQ(layer.counters().retransmissions_absorbed, 3u);
  // Timer G still resends the 486 until the ACK, which still matches.
  timers.advance(500ms);
  EXPECT_EQ(wire.sent.back(), b486);
  layer.receive(request("ACK", "z9hG4bKs1", 1, "u1"), wire.channel());
  EXPECT_EQ(layer.state(busy), State::Confirmed);
  timers.advance(32s);
  EXPECT_EQ(layer.size(), 0u);
}

// The same over UDP when the TU answers inside on_request: the request it holds lives until the
// callback returns and is freed after it (AddressSanitizer watches the read after the answer).
TEST(LayerCallbacks, AnAnswerInsideTheCallbackShedsTheRequestAfterIt) {
  SimulatedTimers timers;
  Wire wire;
  Layer* self = nullptr;
  TxnId got = 0;
  std::string after;
  Layer::User u;
  u.on_request = [&](TxnId id, const sip::Message& m, const Channel&) {
    got = id;
    self->respond(id, 200, sip::build_response(m, 200, {}, "t1"));
    after = std::string(m.method_text()) + " " + std::string(m.call_id());
  };
  Layer layer(timers, TimerConfig{}, u);
  self = &layer;
  layer.receive(request("BYE", "z9hG4bKbye", 1, "d1"), wire.channel());
  EXPECT_EQ(after.rfind("BYE ", 0), 0u);
  EXPECT_EQ(layer.state(got), State::Completed);
  EXPECT_EQ(layer.request(got), nullptr);
}

// The CANCEL the TU is told of is read after the layer has answered it (and shed it).
TEST_F(LayerTest, TheCancelReachesTheTuWholeAfterItsAnswer_9_2) {
  std::string cancel_seen;
  Layer::User u = user();
  u.on_cancel = [&](TxnId, const sip::Message& m) {
    cancel_seen = std::string(m.cseq().method) + " " + std::string(m.call_id());
  };
  Layer l(timers, TimerConfig{}, u);
  l.receive(request("INVITE", "z9hG4bKc9"), wire.channel());
  l.receive(request("CANCEL", "z9hG4bKc9"), wire.channel());
  EXPECT_EQ(cancel_seen.rfind("CANCEL ", 0), 0u) << cancel_seen;
}

TEST_F(LayerTest, ClientTransactionsShedTheirRequestAndStillAnswerRetransmissions_17_1) {
  std::vector<int> got;
  ClientUser cu{[&](const sip::Message& r) { got.push_back(r.status()); }, nullptr};
  const TxnId busy = layer.send_request(request("INVITE", "z9hG4bKk1"), wire.channel(), cu);
  const TxnId ok = layer.send_request(request("INVITE", "z9hG4bKk2", 2), wire.channel(), cu);
  const TxnId opts = layer.send_request(request("OPTIONS", "z9hG4bKk3", 3), wire.channel(), cu);
  layer.receive(response(486, "INVITE", "z9hG4bKk1"), wire.channel());
  const std::string ack = wire.sent.back();
  ASSERT_EQ(ack.substr(0, 4), "ACK ");
  layer.receive(response(200, "INVITE", "z9hG4bKk2"), wire.channel());
  layer.receive(response(200, "OPTIONS", "z9hG4bKk3"), wire.channel());
  EXPECT_EQ(got, (std::vector<int>{486, 200, 200}));
  EXPECT_EQ(layer.state(busy), State::Completed);
  EXPECT_EQ(layer.state(ok), State::Accepted);
  EXPECT_EQ(layer.state(opts), State::Completed);
  // After the shed: the 486 again brings the same ACK again (§17.1.1.3), the 2xx again goes
  // to the TU for its ACK (RFC 6026), the OPTIONS' 200 again is absorbed.
  const size_t sent = wire.sent.size();
  layer.receive(response(486, "INVITE", "z9hG4bKk1"), wire.channel());
  layer.receive(response(200, "INVITE", "z9hG4bKk2"), wire.channel());
  layer.receive(response(200, "OPTIONS", "z9hG4bKk3"), wire.channel());
  ASSERT_EQ(wire.sent.size(), sent + 1);
  EXPECT_EQ(wire.sent.back(), ack);
  EXPECT_EQ(got, (std::vector<int>{486, 200, 200, 200}));
  EXPECT_TRUE(strays.empty());
  timers.advance(32s);
  EXPECT_EQ(layer.size(), 0u);
}

}  // namespace
}  // namespace esg::txn
