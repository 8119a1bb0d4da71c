#include "dialog/session_timer.hpp"

#include <gtest/gtest.h>

#include "dialog/reliable.hpp"
#include "test_support/parse.hpp"

namespace esg::dialog {
namespace {

using namespace std::chrono_literals;

using test::parse;

std::string invite(const std::string& extra) {
  return "INVITE sip:b@127.0.0.2 SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKs1\r\n"
         "From: <sip:a@127.0.0.1>;tag=a1\r\nTo: <sip:b@127.0.0.2>\r\n"
         "Call-ID: st-1\r\nCSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.1>\r\n" +
         extra + "Content-Length: 0\r\n\r\n";
}

std::string ok(const std::string& extra) {
  return "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKs1\r\n"
         "From: <sip:a@127.0.0.1>;tag=a1\r\nTo: <sip:b@127.0.0.2>;tag=b1\r\n"
         "Call-ID: st-1\r\nCSeq: 1 INVITE\r\n" +
         extra + "Content-Length: 0\r\n\r\n";
}

TEST(SessionExpires, ParsesIntervalAndRefresher_4028_4) {
  auto se = parse_session_expires("4000;refresher=uac");
  ASSERT_TRUE(se);
  EXPECT_EQ(*se, (SessionExpires{4000, Refresher::Uac}));
  EXPECT_EQ(parse_session_expires("1800 ; REFRESHER = UAS ; x=y")->refresher, Refresher::Uas);
  EXPECT_EQ(parse_session_expires("90")->refresher, Refresher::None);
  EXPECT_FALSE(parse_session_expires("0"));
  EXPECT_FALSE(parse_session_expires("abc"));
  EXPECT_FALSE(parse_session_expires("90;refresher=proxy"));
  EXPECT_EQ(format_session_expires({1800, Refresher::Uas}), "1800;refresher=uas");
}

TEST(UasSession, RejectsAnIntervalBelowOurMinSeWith422_4028_9) {
  auto d = uas_session(parse(invite("Supported: timer\r\nSession-Expires: 60\r\n")), {});
  EXPECT_EQ(d.reject, 422);
  EXPECT_EQ(d.headers(), "Min-SE: 90\r\n");
}

TEST(UasSession, GrantsWhatTheUacAskedWithinOurPolicy_4028_9) {
  auto d = uas_session(
      parse(invite("Supported: timer\r\nSession-Expires: 600;refresher=uas\r\nMin-SE: 120\r\n")),
      {});
  EXPECT_EQ(d.reject, 0);
  ASSERT_TRUE(d.session);
  EXPECT_EQ(*d.session, (SessionExpires{600, Refresher::Uas}));
  EXPECT_EQ(d.headers(), "Session-Expires: 600;refresher=uas\r\nRequire: timer\r\n");
  // Longer than we accept: shortened, never below the request's Min-SE.
  SessionTimerPolicy policy{90, 100};
  d = uas_session(parse(invite("Supported: timer\r\nSession-Expires: 7200\r\nMin-SE: 120\r\n")),
                  policy);
  EXPECT_EQ(d.session->seconds, 120u);
  EXPECT_EQ(d.session->refresher, Refresher::Uac);  // the UAC left the choice to us
}

TEST(UasSession, AUacWithoutTimerSupportLeavesTheRefreshingToUs_4028_9) {
  auto d = uas_session(parse(invite("Session-Expires: 1800\r\n")), {});
  ASSERT_TRUE(d.session);
  EXPECT_EQ(d.session->refresher, Refresher::Uas);
  EXPECT_FALSE(d.require_timer);
  // No Session-Expires at all: we still put one in, so a dead call ends.
  d = uas_session(parse(invite("")), {});
  ASSERT_TRUE(d.session);
  EXPECT_EQ(*d.session, (SessionExpires{1800, Refresher::Uas}));
}

TEST(UacSession, TakesTheAnswerOrRunsTheTimerAlone_4028_7_2) {
  auto se =
      uac_session(parse(ok("Require: timer\r\nSession-Expires: 900;refresher=uas\r\n")), 1800);
  ASSERT_TRUE(se);
  EXPECT_EQ(*se, (SessionExpires{900, Refresher::Uas}));
  se = uac_session(parse(ok("Session-Expires: 900\r\n")), 1800);
  EXPECT_EQ(se->refresher, Refresher::Uac);
  se = uac_session(parse(ok("")), 1800);  // the UAS does not do timers: we refresh
  EXPECT_EQ(*se, (SessionExpires{1800, Refresher::Uac}));
  EXPECT_FALSE(uac_session(parse(ok("")), std::nullopt));
}

TEST(UacSession, RetriesA422WithTheLargerInterval_4028_7_3) {
  auto r = parse(
      "SIP/2.0 422 Session Interval Too Small\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\n"
      "From: <sip:a@127.0.0.1>;tag=a1\r\nTo: <sip:b@127.0.0.2>;tag=b1\r\nCall-ID: x\r\n"
      "CSeq: 1 INVITE\r\nMin-SE: 1000\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(retry_interval(r, 90), 1000u);
  EXPECT_EQ(retry_interval(r, 1800), 1800u);
  EXPECT_FALSE(retry_interval(parse(ok("")), 90));
}

TEST(SessionRefresh, APeerTakesUpdateWhenItListsItInAllow_3311_5_1) {
  EXPECT_TRUE(takes_update(parse(ok("Allow: INVITE, ACK, BYE, UPDATE\r\n")), false));
  EXPECT_FALSE(takes_update(parse(ok("Allow: INVITE, ACK, CANCEL, BYE\r\n")), true));
  EXPECT_FALSE(takes_update(parse(invite("Allow: INVITE,ACK,BYE,OPTIONS\r\n")), true));
  // No Allow header: nothing known, what was believed before stays.
  EXPECT_TRUE(takes_update(parse(ok("")), true));
  EXPECT_FALSE(takes_update(parse(ok("")), false));
}

TEST(SessionRefresh, APeerWithoutUpdateGetsAReInviteRepeatingItsLastDescription_4028_7_4) {
  auto d = Dialog::as_uac(parse(invite("")), parse(ok("Contact: <sip:b@127.0.0.2:5070>\r\n")),
                          "<sip:esg@127.0.0.1:5080>");
  ASSERT_TRUE(d);
  d->confirm();
  const std::string sdp =
      "v=0\r\no=esg 77 3 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
      "m=audio 21000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
  const auto via = "SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKr1";
  auto reinvite = parse(build_refresh(*d, via, 90, false, sdp, "application/sdp"));
  EXPECT_EQ(reinvite.method(), sip::Method::Invite);
  EXPECT_EQ(reinvite.request_uri().text, "sip:b@127.0.0.2:5070");
  EXPECT_EQ(reinvite.cseq().number, 2u);  // the dialog's next request
  EXPECT_EQ(reinvite.header(sip::HeaderId::SessionExpires)->value, "90;refresher=uac");
  EXPECT_TRUE(has_option(reinvite, sip::HeaderId::Supported, "timer"));
  EXPECT_EQ(reinvite.body(), sdp);  // the same o= version: nothing changed (RFC 3264 §8)
  EXPECT_EQ(reinvite.header(sip::HeaderId::ContentType)->value, "application/sdp");
  // A peer that takes UPDATE: an UPDATE without a body.
  auto update = parse(build_refresh(*d, via, 90, true, sdp, "application/sdp"));
  EXPECT_EQ(update.method(), sip::Method::Update);
  EXPECT_EQ(update.cseq().number, 3u);
  EXPECT_TRUE(update.body().empty());
  EXPECT_EQ(update.header(sip::HeaderId::SessionExpires)->value, "90;refresher=uac");
}

TEST(SessionTimer, TheRefresherRefreshesAtHalfTheInterval_4028_10) {
  txn::SimulatedTimers timers;
  int refreshes = 0;
  int expired = 0;
  SessionTimer t(
      timers, [&] { ++refreshes; }, [&] { ++expired; });
  t.start(90, true);
  timers.advance(44999ms);
  EXPECT_EQ(refreshes, 0);
  timers.advance(1ms);
  EXPECT_EQ(refreshes, 1);
  t.start(90, true);  // the refresh succeeded
  timers.advance(45s);
  EXPECT_EQ(refreshes, 2);
  // The refresh got no answer: the session ends at 90 - min(32, 30) = 60 s after its start.
  timers.advance(15s);
  EXPECT_EQ(expired, 1);
  EXPECT_FALSE(t.running());
}

TEST(SessionTimer, TheOtherSideEndsADeadCallBeforeTheIntervalRunsOut_4028_10) {
  txn::SimulatedTimers timers;
  int refreshes = 0;
  int expired = 0;
  SessionTimer t(
      timers, [&] { ++refreshes; }, [&] { ++expired; });
  t.start(1800, false);
  timers.advance(1768s - 1ms);  // 1800 - min(32, 600)
  EXPECT_EQ(expired, 0);
  t.start(1800, false);  // the peer refreshed
  timers.advance(1767s);
  EXPECT_EQ(expired, 0);
  timers.advance(1s);
  EXPECT_EQ(expired, 1);
  EXPECT_EQ(refreshes, 0);
  t.stop();
  EXPECT_EQ(timers.pending(), 0u);
}

}  // namespace
}  // namespace esg::dialog
