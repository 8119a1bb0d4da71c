"""Autoanswer on a Telegram line (issue 23): the gateway accepts the Telegram call at once,
before the PBX answers, so the user hears what the PBX plays early (a 183 with SDP: here the
PBX's 1 kHz tone) instead of Telegram's silence; while the PBX only rings (180) the gateway
plays a 425 Hz ringback, 1 s on / 4 s off; a PBX that rejects, or does not answer within the
line's `answer_timeout`, gives a busy tone (425 Hz, 0.5 s on / 0.5 s off) for 3 s, then the call
ends. Everything is checked by frequency in what tgpeer (the real tgcalls, the user's app)
recorded, and the calls API and CDR say when the gateway answered and when the PBX did."""

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
import test_media_engine as engine  # noqa: E402
from sip_call import tone_share  # noqa: E402
from tgnet import TgNet  # noqa: E402
from tgsim_fixture import TGPEER  # noqa: E402

NET = None
RING, BUSY = 425, 425


def setUpModule():
    global NET
    why = TgNet.unavailable()
    if why:
        raise unittest.SkipTest(why)
    if not os.access(TGPEER, os.X_OK):
        raise unittest.SkipTest("no tgpeer at %s (set ESG_TGPEER)" % TGPEER)
    NET = TgNet().__enter__()
    engine.NET = NET


def tearDownModule():
    if NET:
        NET.close()


def blocks(pcm, freq, rate=48000, ms=100):
    """Per block of `ms`: True where the tone is there (loud enough and at its frequency)."""
    n = rate * ms // 1000
    out = []
    for i in range(0, len(pcm) - n + 1, n):
        b = pcm[i:i + n]
        loud = max(abs(x) for x in b) > 300
        out.append(loud and tone_share(b, freq, rate) > 0.5)
    return out


def longest(flags, value):
    run = best = 0
    for f in flags:
        run = run + 1 if f == value else 0
        best = max(best, run)
    return best


class Autoanswer(engine.EngineCase):
    versions = ["9.0.0"]
    line_extra = {"autoanswer": True, "answer_timeout": 8}

    def setUp(self):
        self.pbx.mode, self.pbx.ring_s = "answer", 0.3

    def accepted_before_the_pbx(self, call_id):
        """The Telegram call is up (Ready, media established) while the PBX has not answered."""
        self.wait_peer(call_id)
        info = self.telegram_info()
        self.assertTrue(info.get("autoanswer"), info)
        self.assertTrue(info.get("gateway_answered_at"), info)
        self.assertNotIn("pbx_answered_at", info)
        return info

    def test_ringback_while_the_pbx_rings_then_busy_when_it_does_not_answer(self):
        self.pbx.mode = "ring"
        started = time.time()
        call_id, port, dest, invite = self.from_telegram()
        self.accepted_before_the_pbx(call_id)
        time.sleep(max(0, started + 7.0 - time.time()))
        # About 6 s of the call so far: the 1 s bursts of 425 Hz with 4 s of silence between.
        ring = blocks(self.heard_by_user(call_id, 6.0), RING)
        self.assertGreaterEqual(longest(ring, True), 7, ring)     # a burst of about 1 s
        self.assertLessEqual(longest(ring, True), 12, ring)
        self.assertGreaterEqual(longest(ring, False), 30, ring)   # the 4 s pause
        self.assertEqual(self.pbx.cancels, [])
        # At 8 s the PBX has not answered: CANCEL, and the busy tone for 3 s, then the end.
        self.pbx.wait("cancels", 1, timeout=5)
        cancelled = time.time()
        s = self.call_state(call_id, "Discarded", seconds=6)
        ended = time.time() - cancelled
        self.assertGreater(ended, 2.0, "the busy tone lasted %.1f s" % ended)
        self.assertLess(ended, 4.5, "the busy tone lasted %.1f s" % ended)
        self.assertEqual(s["reason"], "callDiscardReasonHungUp", s)
        busy = blocks(self.heard_by_user(call_id, 2.5), BUSY)
        # 0.5 s on, 0.5 s off: tone and silence both, neither for long.
        self.assertGreaterEqual(sum(busy), 6, busy)
        self.assertLessEqual(longest(busy, True), 7, busy)
        self.assertLessEqual(longest(busy, False), 8, busy)

    def test_the_pbxs_early_media_then_its_answer(self):
        self.pbx.mode, self.pbx.ring_s = "early", 5.0
        call_id, port, dest, invite = self.from_telegram()
        self.accepted_before_the_pbx(call_id)
        tone = engine.ToneSender(port, dest)  # the PBX's 1 kHz, as a greeting or IVR would be
        self.addCleanup(tone.stop)
        time.sleep(3)
        # Before the PBX answered (5 s): the user hears its early audio, not the ringback.
        early = blocks(self.heard_by_user(call_id, 1.5), engine.PBX_TONE)
        self.assertGreaterEqual(sum(early), 12, early)
        self.assertEqual(blocks(self.heard_by_user(call_id, 1.5), RING).count(True), 0)
        self.pbx.wait("acks", 1, timeout=5)
        time.sleep(2)
        self.assert_tones(call_id, port, what="after the PBX answered")
        info = self.telegram_info()
        self.assertLess(info["gateway_answered_at"], info["pbx_answered_at"], info)
        call, _ = self.telegram_call()
        self.hang_up_from_pbx(call_id, invite)
        deadline = time.time() + 5
        while True:
            cdrs = self.api.ok("GET", "/rest/v1/cdrs?limit=20")["items"]
            cdr = next((c for c in cdrs if c["id"] == call["id"]), None)
            if cdr or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertIsNotNone(cdr, cdrs)
        tg = cdr.get("telegram") or {}
        self.assertTrue(tg.get("autoanswer"), cdr)
        self.assertLess(tg.get("gateway_answered_at"), tg.get("pbx_answered_at"), cdr)

    def test_a_pbx_that_rejects_gives_the_busy_tone_for_3_s(self):
        self.pbx.mode, self.pbx.ring_s, self.pbx.status = "reject", 2.0, 486
        call_id, port, dest, invite = self.from_telegram()
        self.accepted_before_the_pbx(call_id)
        # The PBX rejects 2 s after its INVITE (a little before the call was Ready here): the
        # user still hears the busy tone a second later, and the call ends 3 s after the 486.
        since = time.time()
        time.sleep(2.8)
        self.assertEqual(self.sim.ctl("call.state", call_id=call_id)["state"], "Ready")
        s = self.call_state(call_id, "Discarded", seconds=6)
        ended = time.time() - since
        self.assertGreater(ended, 3.5, ended)
        self.assertLess(ended, 6.5, ended)
        self.assertEqual(s["reason"], "callDiscardReasonHungUp", s)
        busy = blocks(self.heard_by_user(call_id, 2.5), BUSY)
        self.assertGreaterEqual(sum(busy), 6, busy)
        self.assertLessEqual(longest(busy, True), 7, busy)


if __name__ == "__main__":
    unittest.main()
