// A line's SIP side without esg or Telegram: a UDP socket in the test plays esg's listener and
// a lambda plays TDLib, so the refusals are checked one by one (the e2e tests cover the rest).
#include "telegram/bridge.hpp"

#include <gtest/gtest.h>

#include <boost/asio/ip/address.hpp>

#include <chrono>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
using asio::ip::udp;
using esg::telegram::BridgeOptions;
using esg::telegram::CallBridge;
using esg::telegram::LineConfig;
using nlohmann::json;

struct Fixture {
  asio::io_context io;
  udp::socket esg{io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  LineConfig config;
  std::vector<json> requests;
  // What TDLib answers each request: an error unless a test says otherwise.
  std::function<esg::Result<json, esg::telegram::td::TdError>(const json&)> answer =
      [](const json&) {
        return esg::Result<json, esg::telegram::td::TdError>(
            esg::unexpected(esg::telegram::td::TdError{400, "User not found", 0}));
      };
  std::shared_ptr<CallBridge> bridge;
  int n = 0;
  std::vector<std::pair<std::string, std::string>> lane;  // (Call-ID, text) on the diagram

  explicit Fixture(int digits_valid_s = 300) {
    config.code = "tg1";
    config.phone = "+79990001000";
    BridgeOptions o;
    o.sip_host = "127.0.0.1";
    o.sip_port = esg.local_endpoint().port();
    o.digits_valid_s = digits_valid_s;
    o.lane = [this](const std::string& call_id, std::string text) {
      lane.emplace_back(call_id, std::move(text));
    };
    bridge = std::make_shared<CallBridge>(
        io, config,
        [this](json req, esg::telegram::td::Hub::Answer a) {
          requests.push_back(req);
          if (a) a(answer(req));
        },
        o);
    std::string error;
    EXPECT_TRUE(bridge->open(&error)) << error;
    esg.non_blocking(true);
  }
  ~Fixture() {
    bridge->shutdown("test over");
    bridge.reset();
    io.restart();
    io.run_for(std::chrono::milliseconds(50));  // the handlers still holding the bridge end
  }

  // The first line of the next request of a Call-ID not seen before ("" after 3 s):
  // retransmissions and CANCELs of earlier calls are skipped.
  std::set<std::string> seen;
  std::string next_new_request() {
    const std::string r = receive([this](const std::string& r) {
      const size_t at = r.find("\r\nCall-ID: ");
      return r.rfind("SIP/2.0", 0) != 0 && at != std::string::npos &&
             seen.insert(r.substr(at, r.find("\r\n", at + 2) - at)).second;
    });
    return r.substr(0, r.find("\r\n"));
  }

  // The first message "esg" receives that `wanted` takes, running the bridge meanwhile; ""
  // after 3 s.
  std::string receive(const std::function<bool(const std::string&)>& wanted) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    char buf[4096];
    while (std::chrono::steady_clock::now() < deadline) {
      io.run_for(std::chrono::milliseconds(10));
      io.restart();
      boost::system::error_code ec;
      udp::endpoint from;
      const size_t got = esg.receive_from(asio::buffer(buf), from, 0, ec);
      if (ec) continue;
      std::string r(buf, got);
      if (wanted(r)) return r;
    }
    return "";
  }

  // TDLib's updates as the line passes them on.
  void chat(int64_t from, const std::string& text) {
    bridge->on_update(
        {{"@type", "updateNewMessage"},
         {"message",
          {{"@type", "message"},
           {"is_outgoing", false},
           {"sender_id", {{"@type", "messageSenderUser"}, {"user_id", from}}},
           {"content",
            {{"@type", "messageText"}, {"text", {{"@type", "formattedText"}, {"text", text}}}}}}}});
  }
  std::string ring(int64_t call_id, int64_t from) {
    bridge->on_update(
        {{"@type", "updateCall"},
         {"call",
          {{"id", call_id},
           {"user_id", from},
           {"is_outgoing", false},
           {"state",
            {{"@type", "callStatePending"}, {"is_created", true}, {"is_received", true}}}}}});
    return next_new_request();
  }

  // An INVITE for `number` from "esg"; the bridge's final answer.
  std::string call(const std::string& number) {
    const std::string body =
        "v=0\r\no=esg 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 40000 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\n";
    const std::string host = "127.0.0.1:" + std::to_string(esg.local_endpoint().port());
    const std::string id = std::to_string(++n);
    const std::string m =
        "INVITE sip:" + number + "@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP " + host +
        ";branch=z9hG4bKt" + id + "\r\nMax-Forwards: 70\r\nFrom: <sip:100@" + host + ">;tag=a" +
        id + "\r\nTo: <sip:" + number + "@127.0.0.1>\r\nCall-ID: c" + id +
        "\r\nCSeq: 1 INVITE\r\nContact: <sip:esg@" + host +
        ">\r\nContent-Type: application/sdp\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\n\r\n" + body;
    esg.send_to(asio::buffer(m),
                udp::endpoint(asio::ip::make_address("127.0.0.1"), bridge->port()));
    // Provisional answers are skipped.
    const std::string r =
        receive([](const std::string& r) { return r.rfind("SIP/2.0 1", 0) != 0; });
    return r.empty() ? "no answer" : r;
  }
};

TEST(CallBridge, RefusesCallsWhileTheLineIsNotLoggedIn) {
  Fixture f;
  const std::string r = f.call("*123456789");
  EXPECT_EQ(r.rfind("SIP/2.0 503", 0), 0u) << r;
  EXPECT_NE(r.find("not logged in"), std::string::npos) << r;
  EXPECT_TRUE(f.requests.empty()) << "Telegram is not asked";
}

TEST(CallBridge, AnswersWhatItCannotDialWith484AndAReason) {
  Fixture f;
  f.bridge->set_account(42);
  for (const char* bad : {"12", "bad.name", "*12"}) {
    const std::string r = f.call(bad);
    EXPECT_EQ(r.rfind("SIP/2.0 484", 0), 0u) << bad << ": " << r;
    EXPECT_NE(r.find("Reason: SIP;cause=484;text=\""), std::string::npos) << r;
  }
  EXPECT_TRUE(f.requests.empty());
}

TEST(CallBridge, LooksTheUserUpAndMapsTelegramsRefusal) {
  Fixture f;
  f.bridge->set_account(42);
  std::string r = f.call("*123456789");
  EXPECT_EQ(r.rfind("SIP/2.0 404", 0), 0u) << r;
  EXPECT_NE(r.find("unknown to the line"), std::string::npos) << r;
  ASSERT_EQ(f.requests.size(), 1u);
  EXPECT_EQ(f.requests[0]["@type"], "getUser");
  EXPECT_EQ(f.requests[0]["user_id"], 123456789);
  // A long flood wait: 503 with Retry-After, and the next call is refused without asking.
  f.answer = [](const json&) {
    return esg::Result<json, esg::telegram::td::TdError>(
        esg::unexpected(esg::telegram::td::TdError{429, "Too Many Requests: retry after 40", 40}));
  };
  r = f.call("some_user");
  EXPECT_EQ(r.rfind("SIP/2.0 503", 0), 0u) << r;
  EXPECT_NE(r.find("Retry-After: 40"), std::string::npos) << r;
  EXPECT_EQ(f.requests.back()["@type"], "searchPublicChat");
  const size_t asked = f.requests.size();
  r = f.call("+79991234567");
  EXPECT_EQ(r.rfind("SIP/2.0 503", 0), 0u) << r;
  EXPECT_NE(r.find("flood wait"), std::string::npos) << r;
  EXPECT_EQ(f.requests.size(), asked);
  EXPECT_FALSE(f.bridge->status()["calls_flood_until"].is_null());
}

TEST(CallBridge, ChatDigitsPickTheNextCallsNumberOnceAndOnlyWithinTheWindow) {
  Fixture f(1);
  f.config.number = "100";
  f.bridge->set_account(42);
  f.chat(7, "205");
  EXPECT_EQ(f.ring(1, 7).rfind("INVITE sip:205@", 0), 0u);
  // Used once: the next call rings the line's number again.
  EXPECT_EQ(f.ring(2, 7).rfind("INVITE sip:100@", 0), 0u);
  // Another user's digits are theirs only; text that is not digits is no number.
  f.chat(8, "301");
  f.chat(9, "call me at 5");
  EXPECT_EQ(f.ring(3, 9).rfind("INVITE sip:100@", 0), 0u);
  // Past the window (1 s here, 5 minutes in esg): the line's number.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(f.ring(4, 8).rfind("INVITE sip:100@", 0), 0u);
}

// The PBX's 200 comes again (its sender repeats it until the ACK arrives): the ACK again, and
// the Telegram call is accepted once (a second acceptCall fails and used to end the call).
TEST(CallBridge, ARepeated200IsAckedAgainAndAcceptsTheTelegramCallOnce) {
  Fixture f;
  f.config.number = "100";
  f.bridge->set_account(42);
  f.answer = [](const json& req) {
    if (req.value("@type", "") == "getUser")
      return esg::Result<json, esg::telegram::td::TdError>(
          json{{"@type", "user"}, {"id", 7}, {"first_name", "Ivan"}});
    return esg::Result<json, esg::telegram::td::TdError>(json{{"@type", "ok"}});
  };
  f.bridge->on_update(
      {{"@type", "updateCall"},
       {"call",
        {{"id", 1},
         {"user_id", 7},
         {"is_outgoing", false},
         {"state",
          {{"@type", "callStatePending"}, {"is_created", true}, {"is_received", true}}}}}});
  const std::string invite =
      f.receive([](const std::string& r) { return r.rfind("INVITE ", 0) == 0; });
  ASSERT_FALSE(invite.empty());
  auto header = [&](const std::string& name) {
    const size_t at = invite.find("\r\n" + name + ": ");
    const size_t end = invite.find("\r\n", at + 2);
    return invite.substr(at + 2, end - at - 2) + "\r\n";
  };
  const std::string body =
      "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
      "m=audio 40002 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n";
  std::string ok = "SIP/2.0 200 OK\r\n" + header("Via") + header("From");
  ok += header("To").substr(0, header("To").size() - 2) + ";tag=pbx1\r\n";
  ok += header("Call-ID") + header("CSeq") +
        "Contact: <sip:pbx@127.0.0.1:" + std::to_string(f.esg.local_endpoint().port()) +
        ">\r\nContent-Type: application/sdp\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\n\r\n" + body;
  const udp::endpoint bridge_at(asio::ip::make_address("127.0.0.1"), f.bridge->port());
  auto is_ack = [](const std::string& r) { return r.rfind("ACK ", 0) == 0; };
  f.esg.send_to(asio::buffer(ok), bridge_at);
  EXPECT_FALSE(f.receive(is_ack).empty());
  f.esg.send_to(asio::buffer(ok), bridge_at);
  EXPECT_FALSE(f.receive(is_ack).empty());
  // Nothing ends the call: no BYE, no CANCEL; acceptCall went once.
  EXPECT_EQ(f.receive([](const std::string& r) {
    return r.rfind("BYE ", 0) == 0 || r.rfind("CANCEL ", 0) == 0;
  }),
            "");
  int accepts = 0;
  for (const auto& r : f.requests)
    accepts += r.value("@type", "") == "acceptCall";
  EXPECT_EQ(accepts, 1);
}

// The diagram's Telegram lane (issue 22): TDLib's call states as the bridge sees them, once
// each, under the Call-ID of the call's SIP side, a discard with its reason.
TEST(CallBridge, TelegramsCallStatesGoOnTheDiagramsLaneOnceEachUnderTheCallsCallId) {
  Fixture f;
  f.config.number = "100";
  f.bridge->set_account(42);
  f.answer = [](const json&) {
    return esg::Result<json, esg::telegram::td::TdError>(
        json{{"@type", "user"}, {"id", 7}, {"first_name", "Ivan"}});
  };
  auto update = [&](const json& state) {
    f.bridge->on_update(
        {{"@type", "updateCall"},
         {"call", {{"id", 5}, {"user_id", 7}, {"is_outgoing", false}, {"state", state}}}});
  };
  update({{"@type", "callStatePending"}, {"is_created", true}, {"is_received", true}});
  const std::string invite =
      f.receive([](const std::string& r) { return r.rfind("INVITE ", 0) == 0; });
  ASSERT_FALSE(invite.empty());
  const size_t at = invite.find("\r\nCall-ID: ") + 11;
  const std::string call_id = invite.substr(at, invite.find("\r\n", at) - at);
  update({{"@type", "callStatePending"}, {"is_created", true}, {"is_received", true}});  // again
  update({{"@type", "callStateExchangingKeys"}});
  update({{"@type", "callStateHangingUp"}});
  update({{"@type", "callStateDiscarded"},
          {"reason", {{"@type", "callDiscardReasonHungUp"}}},
          {"need_rating", false}});
  std::vector<std::string> texts;
  for (const auto& [id, text] : f.lane) {
    EXPECT_EQ(id, call_id);
    texts.push_back(text);
  }
  EXPECT_EQ(texts, (std::vector<std::string>{"updateCall pending, ringing (is_received)",
                                             "updateCall exchanging keys", "updateCall hanging up",
                                             "updateCall discarded: callDiscardReasonHungUp"}));
}

// Bounded: a call whose states keep changing stops adding to its lane, and says so once.
TEST(CallBridge, ACallsLaneIsBounded) {
  Fixture f;
  f.config.number = "100";
  f.bridge->set_account(42);
  f.answer = [](const json&) {
    return esg::Result<json, esg::telegram::td::TdError>(
        json{{"@type", "user"}, {"id", 7}, {"first_name", "Ivan"}});
  };
  for (int i = 0; i < 100; ++i) {
    f.bridge->on_update(
        {{"@type", "updateCall"},
         {"call",
          {{"id", 6},
           {"user_id", 7},
           {"is_outgoing", false},
           {"state",
            {{"@type", "callStatePending"}, {"is_created", true}, {"is_received", i % 2 == 0}}}}}});
  }
  ASSERT_EQ(f.lane.size(), 49u);
  EXPECT_EQ(f.lane.back().second, "(more events of this call are not shown)");
  EXPECT_EQ(f.lane[47].second, "updateCall pending (is_created)");
}

}  // namespace
