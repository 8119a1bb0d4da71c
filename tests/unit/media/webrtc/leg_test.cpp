// The WebRTC-style leg's own decisions (its parts have their own tests; the whole leg runs in
// tests/unit/telegram/calls/engine_test.cpp and end to end against tgcalls).
#include "media/webrtc/leg.hpp"

#include <gtest/gtest.h>

namespace {

using esg::media::WebRtcLeg;

TEST(WebRtcLeg, DtlsRoleFollowsThePeersSetupAndTheIceRole) {
  // Telegram's caller sends actpass and controls ICE, the callee passive (TELEGRAM-CALLS.md
  // §4.2): the caller is the client, the callee the server, seen from either side.
  EXPECT_EQ(WebRtcLeg::dtls_client_for("passive", true), true);    // the caller, told passive
  EXPECT_EQ(WebRtcLeg::dtls_client_for("actpass", false), false);  // the callee, told actpass
  EXPECT_EQ(WebRtcLeg::dtls_client_for("actpass", true), true);
  EXPECT_EQ(WebRtcLeg::dtls_client_for("active", true), false);  // an active peer is the client
  EXPECT_EQ(WebRtcLeg::dtls_client_for("passive", false), true);
  EXPECT_FALSE(WebRtcLeg::dtls_client_for("holdconn", true));
  EXPECT_FALSE(WebRtcLeg::dtls_client_for("", false));
}

}  // namespace
