#pragma once
// A wire that records what transactions send, a simulated clock, and message builders: the
// inject/expect scripts of the transaction tests run on these, never on sockets or sleeps.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sip/message.hpp"
#include "test_support/parse.hpp"
#include "txn/timers.hpp"
#include "txn/transaction.hpp"

namespace esg::txn::test {

using namespace std::chrono_literals;

struct Wire {
  std::vector<std::string> sent;
  bool broken = false;  // sends fail: a transport error
  Channel channel(bool reliable = false) {
    return Channel{reliable, [this](std::string_view bytes) {
                     if (broken) return false;
                     sent.emplace_back(bytes);
                     return true;
                   }};
  }
  // A connection-oriented channel that reports failures later, as TCP/TLS does: `reports`
  // holds, per send, how the transport would tell that those bytes never reached the peer.
  std::vector<SendFailed> reports;
  Channel watched_channel() {
    Channel c = channel(true);
    c.send_watched = [this](std::string_view bytes, SendFailed failed) {
      if (broken) return false;
      sent.emplace_back(bytes);
      reports.push_back(std::move(failed));
      return true;
    };
    return c;
  }
  // The start line of the n-th message sent.
  std::string line(size_t n) const { return sent.at(n).substr(0, sent.at(n).find("\r\n")); }
};

using esg::test::parse;

inline std::string request_text(const std::string& method, const std::string& branch,
                                uint32_t cseq = 1, const std::string& to_tag = "",
                                const std::string& cseq_method = "") {
  std::string m = method +
                  " sip:100@127.0.0.1:5080 SIP/2.0\r\n"
                  "Via: SIP/2.0/UDP 127.0.0.2:5060;branch=" +
                  branch +
                  "\r\n"
                  "Route: <sip:127.0.0.3;lr>\r\n"
                  "Max-Forwards: 70\r\n"
                  "From: <sip:200@127.0.0.2>;tag=f1\r\n"
                  "To: <sip:100@127.0.0.1>" +
                  (to_tag.empty() ? "" : ";tag=" + to_tag) +
                  "\r\n"
                  "Call-ID: txn-test-1\r\n"
                  "CSeq: " +
                  std::to_string(cseq) + " " + (cseq_method.empty() ? method : cseq_method) +
                  "\r\n"
                  "Content-Length: 0\r\n\r\n";
  return m;
}

inline sip::Message request(const std::string& method, const std::string& branch = "z9hG4bK1",
                            uint32_t cseq = 1, const std::string& to_tag = "") {
  return parse(request_text(method, branch, cseq, to_tag));
}

inline sip::Message response(int status, const std::string& method,
                             const std::string& branch = "z9hG4bK1",
                             const std::string& to_tag = "t9", uint32_t cseq = 1) {
  return parse("SIP/2.0 " + std::to_string(status) +
               " Whatever\r\n"
               "Via: SIP/2.0/UDP 127.0.0.2:5060;branch=" +
               branch +
               "\r\n"
               "From: <sip:200@127.0.0.2>;tag=f1\r\n"
               "To: <sip:100@127.0.0.1>;tag=" +
               to_tag +
               "\r\n"
               "Call-ID: txn-test-1\r\n"
               "CSeq: " +
               std::to_string(cseq) + " " + method +
               "\r\n"
               "Content-Length: 0\r\n\r\n");
}

// A client transaction's surroundings: the clock, the wire, and what reached the user.
struct ClientFixture : ::testing::Test {
  SimulatedTimers timers;
  TimerConfig config;
  Wire wire;
  std::vector<int> responses;
  std::vector<int> failures;
  std::vector<std::string> failure_reasons;
  ClientUser user() {
    return {[this](const sip::Message& r) { responses.push_back(r.status()); },
            [this](uint16_t s, std::string_view why) {
              failures.push_back(s);
              failure_reasons.emplace_back(why);
            }};
  }
};

}  // namespace esg::txn::test
