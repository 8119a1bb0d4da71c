"""RFC 4028 session timers on calls: each leg negotiates its own (the caller's interval never
reaches the PBX), refreshes a peer sends are answered on its own leg, esg refreshes with UPDATE
a peer that does not, a caller that stops refreshing is hung up on both legs, and a too short
interval gets 422 with esg's Min-SE. esg runs with the shortest interval the RFC allows (90 s),
so the timed test takes a minute."""

import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from esg_fixture import EsgProcess, KeepOnFailure, stop_all  # noqa: E402
from pbx_uas import PbxUas  # noqa: E402
from rest_api import Api  # noqa: E402
from sip_call import UdpCall  # noqa: E402

TIMERS = "Supported: timer\r\nSession-Expires: 120\r\nMin-SE: 90\r\n"
NO_TIMERS = "Allow: INVITE, ACK, CANCEL, BYE, UPDATE\r\n"


class SessionTimers(KeepOnFailure):
    @classmethod
    def setUpClass(cls):
        cls.pbx = PbxUas("127.0.0.5")
        cls.esg = EsgProcess({"instance": {"session_expires": 90, "min_se": 90},
                              "media": {"ports": [25800, 25899], "timeout": 0}})
        cls.api = Api(cls.esg.ports["http"])
        cls.api.inbound_route(cls.pbx.port)

    @classmethod
    def tearDownClass(cls):
        stop_all(cls.failed, cls.esg, cls.pbx)

    def call(self, headers):
        before = len(self.pbx.invites)
        c = UdpCall(self.esg.ports["udp"], "127.0.0.2", "74951234567", 40000, headers=headers)
        self.addCleanup(c.close)
        self.assertEqual(c.status, 200, c.responses)
        return c, self.pbx.wait("invites", before + 1)

    def test_each_leg_negotiates_its_own_and_refreshes_stay_on_their_leg(self):
        c, invite = self.call(TIMERS)
        # The caller asked for 120 s: it gets esg's 90 s and refreshes itself (it can).
        self.assertEqual(PbxUas.header(c.final, "Session-Expires"), "90;refresher=uac")
        self.assertIn("timer", PbxUas.header(c.final, "Require"))
        # The PBX is asked on its own terms, to refresh: nothing of the caller's crossed.
        self.assertEqual(PbxUas.header(invite, "Session-Expires"), "90;refresher=uas")
        self.assertEqual(PbxUas.header(invite, "Min-SE"), "90")
        self.assertIn("timer", invite.split("\r\n\r\n")[0].split("Supported:", 1)[1])
        # The calls API shows both: the caller refreshes A, esg refreshes B (the PBX said
        # nothing of timers in its 200).
        # (The record is published right after the 200 is sent: wait for it.)
        deadline = time.time() + 3
        while True:
            call = self.api.ok("GET", "/api/monitor/v1/calls/" + c.call_id)["data"]
            if call["state"] in ("answered", "confirmed") or time.time() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(call["a"]["session_timer"], {"seconds": 90, "refresher": "peer"})
        self.assertEqual(call["b"]["session_timer"], {"seconds": 90, "refresher": "esg"})
        # A refresh by UPDATE is answered by esg; the PBX never sees it.
        ok = c.in_dialog("UPDATE", "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n")
        self.assertTrue(ok.startswith("SIP/2.0 200"), ok)
        self.assertEqual(PbxUas.header(ok, "Session-Expires"), "90;refresher=uac")
        # So is a re-INVITE that repeats the caller's description.
        ok = c.in_dialog("INVITE", "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n",
                         c.body)
        self.assertTrue(ok.startswith("SIP/2.0 200"), ok)
        self.assertEqual(PbxUas.header(ok, "Session-Expires"), "90;refresher=uac")
        self.assertIn("m=audio", ok)
        time.sleep(0.3)
        b_leg = PbxUas.header(invite, "Call-ID")
        self.assertEqual([u for u in self.pbx.updates + self.pbx.reinvites
                          if PbxUas.header(u, "Call-ID") == b_leg], [])
        self.assertEqual(c.bye(), 200)

    def test_too_short_an_interval_gets_422_and_requiring_timers_is_fine(self):
        c = UdpCall(self.esg.ports["udp"], "127.0.0.2", "74951234567", 40000,
                    headers="Supported: timer\r\nSession-Expires: 60\r\n")
        self.addCleanup(c.close)
        self.assertEqual(c.status, 422, c.final)
        self.assertEqual(PbxUas.header(c.final, "Min-SE"), "90")
        c, _ = self.call("Require: timer\r\nSupported: timer\r\nSession-Expires: 90\r\n")
        self.assertEqual(PbxUas.header(c.final, "Session-Expires"), "90;refresher=uac")
        self.assertEqual(c.bye(), 200)

    def test_a_silent_refresher_is_hung_up_and_esg_refreshes_who_cannot(self):
        # 1: supports timers, must refresh, never does. 2: no timers, takes UPDATE: esg
        # refreshes it. The PBX runs no timers either: esg refreshes both B legs.
        silent, silent_invite = self.call(TIMERS)
        passive, passive_invite = self.call(NO_TIMERS)
        self.assertEqual(PbxUas.header(passive.final, "Session-Expires"), "90;refresher=uas")
        got = {}
        started = time.time()
        threads = [threading.Thread(target=lambda n=n, c=c: got.__setitem__(n, c.serve(66)))
                   for n, c in (("silent", silent), ("passive", passive))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # The silent caller: BYE before the interval ran out (90 - 30 s), on both legs.
        byes = [r for r in got["silent"] if r.startswith("BYE ")]
        self.assertEqual(len(byes), 1, got["silent"])
        self.assertIn("Session timer expired", PbxUas.header(byes[0], "Reason"))
        pbx_byes = [b for b in self.pbx.byes
                    if PbxUas.header(b, "Call-ID") == PbxUas.header(silent_invite, "Call-ID")]
        self.assertEqual(len(pbx_byes), 1)
        self.assertLess(time.time() - started, 68)
        # The other caller: refreshed by esg at half the interval, and still in the call.
        updates = [r for r in got["passive"] if r.startswith("UPDATE ")]
        self.assertGreaterEqual(len(updates), 1, got["passive"])
        self.assertEqual(PbxUas.header(updates[0], "Session-Expires"), "90;refresher=uac")
        self.assertFalse(any(r.startswith("BYE ") for r in got["passive"]), got["passive"])
        b_updates = [u for u in self.pbx.updates
                     if PbxUas.header(u, "Call-ID") == PbxUas.header(passive_invite, "Call-ID")]
        self.assertGreaterEqual(len(b_updates), 1)
        self.assertEqual(passive.bye(), 200)
        # Counted for the operators: one call ended by its session timer.
        status, _, text = self.api.text("/metrics")
        self.assertEqual(status, 200)
        self.assertIn("\nesg_session_timer_ended_total 1\n", text)


if __name__ == "__main__":
    unittest.main()
