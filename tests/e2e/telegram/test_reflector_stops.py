"""A relay-only Telegram call whose reflector stops forwarding mid-call (issue 22): the test
reflector (NET.reflector, `stop`) drops every data packet but keeps answering hellos, as a
reflector that lost its upstream would. 5 s: esg's calls API shows the call reconnecting, then
connected again with the tone both ways and no BYE to the PBX; longer: the 20 s rule ends it,
BYE with Reason cause=480 to the PBX, discardCall(is_disconnected) to Telegram. tgpeer (the
real tgcalls) is the Telegram user's app."""

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
import test_media_engine as engine  # noqa: E402
from pbx_uas import PbxUas  # noqa: E402


def setUpModule():
    engine.setUpModule()


def tearDownModule():
    engine.tearDownModule()


class ReflectorStops(engine.EngineCase):
    p2p = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.reflector = engine.NET.reflector(port=5990)
            cls.sim.ctl("call.network", servers=[], reflectors=[cls.reflector.entry],
                        allow_p2p=False)
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        r = getattr(cls, "reflector", None)
        if r:
            r.close()
        super().tearDownClass()

    def start(self):
        self.reflector.resume()
        self.addCleanup(self.reflector.resume)
        call_id, port, dest, invite = self.from_telegram(library_versions=["9.0.0"])
        self.addCleanup(self.end_if_up, call_id, invite)  # a failed case leaves no call behind
        self.wait_peer(call_id)
        tone = engine.ToneSender(port, dest)
        self.addCleanup(tone.stop)
        time.sleep(3)
        self.assert_tones(call_id, port)
        info = self.telegram_info()
        self.assertEqual((info["state"], info["path"]), ("connected", "reflector"), info)
        return call_id, port, invite

    def end_if_up(self, call_id, invite):
        if self.sim.ctl("call.state", call_id=call_id)["state"] == "Ready" and \
                not self.pbx_byes(invite):
            self.pbx.bye(call_id=PbxUas.header(invite, "Call-ID"))

    def test_a_5_s_stop_recovers(self):
        call_id, port, invite = self.start()
        ended = self.metric("esg_telegram_calls_no_path_total")
        self.reflector.stop()
        stopped_at = time.time()
        # Monitoring says so while forwarding is stopped (ICE's consent runs out about 5 s
        # after the last answer, so the stop lasts until it shows, well within the 20 s rule).
        during = self.info_until(lambda i: i.get("state") == "reconnecting", 10)
        self.assertEqual(during.get("state"), "reconnecting", during)
        time.sleep(max(0.0, stopped_at + 5 - time.time()))
        self.reflector.resume()
        self.assertGreater(self.reflector.stats()["dropped"]["stopped"], 0)
        mark = len(port.packets)
        after = self.info_until(lambda i: i.get("state") == "connected", 10)
        self.assertEqual(after.get("state"), "connected", after)
        time.sleep(3)
        self.assertEqual(self.sim.ctl("call.state", call_id=call_id)["state"], "Ready")
        self.assertEqual(self.pbx_byes(invite), [])
        self.assert_tones(call_id, port, what="after a 5 s reflector stop", since=mark)
        after = self.telegram_info()
        self.assertGreaterEqual(after["reconnection_count"], 1, after)
        self.assertEqual(after["path"], "reflector", after)
        self.assertEqual(self.metric("esg_telegram_calls_no_path_total"), ended)
        self.hang_up_from_pbx(call_id, invite)

    def test_a_25_s_stop_ends_the_call_with_480(self):
        call_id, port, invite = self.start()
        # A stop of 25 s that ends by itself: esg counts its 20 s from when it last heard the
        # peer (the tone's packets), not from when ICE noticed the loss 5 s later, so the call
        # ends 20 s into the stop, before forwarding comes back.
        self.reflector.stop(25)
        stopped_at = time.time()
        deadline = stopped_at + 30
        while not self.pbx_byes(invite) and time.time() < deadline:
            time.sleep(0.1)
        ended_after = time.time() - stopped_at
        byes = self.pbx_byes(invite)
        if not byes:
            self.addCleanup(self.hang_up_from_pbx, call_id, invite)
        self.assertTrue(byes, "the PBX leg stayed up %d s into the stop" % ended_after)
        self.assertGreater(ended_after, 19.5)
        self.assertLess(ended_after, 23.0)  # 20 s after the last packet, the rule's 1 s tick
        reason = PbxUas.header(byes[0], "Reason") or ""
        self.assertIn("cause=480", reason, byes[0])
        s = self.call_state(call_id, "Discarded", seconds=5)
        self.assertEqual(s["reason"], "callDiscardReasonDisconnected")


if __name__ == "__main__":
    unittest.main()
