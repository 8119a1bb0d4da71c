"""RFC 4028 session timers on calls: each leg negotiates its own (the caller's interval never
reaches the PBX), refreshes a peer sends are answered on its own leg, esg refreshes with UPDATE
a peer that does not, and with a re-INVITE repeating its last description a peer that takes no
UPDATE, a caller that stops refreshing is hung up on both legs, and a too short interval gets
422 with esg's Min-SE. esg runs with the shortest interval the RFC allows (90 s), so the timed
tests take a minute; they run side by side (the re-INVITE call starts with the class)."""

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
from sipp_fixture import SippPeer  # noqa: E402

TIMERS = "Supported: timer\r\nSession-Expires: 120\r\nMin-SE: 90\r\n"
NO_TIMERS = "Allow: INVITE, ACK, CANCEL, BYE, UPDATE\r\n"
NO_UPDATE = "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n"
NO_UPDATE_DID = "74951230009"  # to pbx2, a SIPp callee that takes no UPDATE either


def body_of(text):
    text = text.replace("\r\n", "\n")
    return text.split("\n\n", 1)[1].strip() if "\n\n" in text else ""


def serve_without_update(c, seconds):
    """The caller's side of a call whose peer takes no UPDATE: answers esg's re-INVITEs with its
    own description again (and a BYE) for `seconds`; returns the requests esg sent, ACKs
    included, in order."""
    got = []
    deadline = time.time() + seconds
    while time.time() < deadline:
        c.sock.settimeout(max(0.05, deadline - time.time()))
        try:
            text = c._recv()
        except OSError:
            break
        if text.startswith("SIP/2.0"):
            continue
        got.append(text)
        if text.startswith("ACK "):
            continue
        lines = [l for l in text.split("\r\n\r\n")[0].split("\r\n")
                 if l.split(":")[0].lower() in ("via", "from", "to", "call-id", "cseq")]
        body = c.body if text.startswith("INVITE ") else ""
        ok = ("SIP/2.0 200 OK\r\n" + "\r\n".join(lines) + "\r\n" + NO_UPDATE +
              "Contact: <sip:caller@%s:%d>\r\n" % (c.ip, c.port) +
              ("Content-Type: application/sdp\r\n" if body else "") +
              "Content-Length: %d\r\n\r\n%s" % (len(body), body))
        c.sock.sendto(ok.encode(), c.esg)
        if text.startswith("BYE "):
            break
    return got


class SessionTimers(KeepOnFailure):
    @classmethod
    def setUpClass(cls):
        cls.pbx = PbxUas("127.0.0.5")
        cls.esg = EsgProcess({"instance": {"session_expires": 90, "min_se": 90},
                              "media": {"ports": [25800, 25899], "timeout": 0}})
        cls.api = Api(cls.esg.ports["http"])
        cls.api.inbound_route(cls.pbx.port)
        # A call whose two peers take no UPDATE: esg must refresh both legs with re-INVITEs
        # (at 45 s). It starts now so that its wait overlaps the other timed test.
        cls.no_update_pbx = SippPeer(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "uas_no_update.xml"), "127.0.0.6",
                                     extra=["-timeout", "100"])
        pbx2 = cls.api.ok("POST", "/rest/v1/uc/pbx", {"code": "pbx2", "mode": "ip",
                                                      "address": "127.0.0.6",
                                                      "port": cls.no_update_pbx.port})
        cls.api.ok("POST", "/rest/v1/routing/rules", {"priority": 50, "direction": "in",
                                                      "called": NO_UPDATE_DID, "action": "pbx",
                                                      "target": pbx2["code"]})
        cls.no_update = {}
        cls.no_update_thread = threading.Thread(target=cls.call_without_update)
        cls.no_update_thread.start()

    @classmethod
    def call_without_update(cls):
        got = cls.no_update
        try:
            c = UdpCall(cls.esg.ports["udp"], "127.0.0.2", NO_UPDATE_DID, 40002,
                        headers=NO_UPDATE)
            got["call"] = c
            if c.status == 200:
                deadline = time.time() + 3  # published just after the 200 is sent
                while True:
                    got["record"] = cls.api.ok("GET", "/api/monitor/v1/calls/" +
                                               c.call_id)["data"]
                    if got["record"]["state"] in ("answered", "confirmed") or \
                            time.time() > deadline:
                        break
                    time.sleep(0.05)
                got["requests"] = serve_without_update(c, 52)
                got["bye"] = c.bye()
            c.close()
        except Exception as e:  # reported by the test
            got["error"] = repr(e)

    @classmethod
    def tearDownClass(cls):
        cls.no_update_thread.join()
        stop_all(cls.failed, cls.esg, cls.pbx, cls.no_update_pbx)

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

    def test_esg_refreshes_peers_that_take_no_update_with_a_reinvite_that_changes_nothing(self):
        # The call started with the class; by now (after the minute-long test) it was refreshed.
        self.no_update_thread.join(70)
        got = self.no_update
        self.assertNotIn("error", got)
        c = got["call"]
        self.assertEqual(c.status, 200, c.responses)
        # No timers and no UPDATE on either side: esg refreshes both legs itself.
        self.assertEqual(PbxUas.header(c.final, "Session-Expires"), "90;refresher=uas")
        record = got["record"]
        self.assertEqual(record["a"]["session_timer"], {"seconds": 90, "refresher": "esg"})
        self.assertEqual(record["b"]["session_timer"], {"seconds": 90, "refresher": "esg"})
        # A leg: one re-INVITE (the B leg's refresh stays on its leg) at half the interval with the very description esg answered the
        # caller with (same o= version: RFC 3264 §8, no change), ACKed once answered.
        methods = [r.split(" ", 1)[0] for r in got["requests"]]
        self.assertEqual(methods, ["INVITE", "ACK"], got["requests"])
        reinvite, ack = got["requests"]
        self.assertEqual(body_of(reinvite), body_of(c.final))
        self.assertIn("o=esg ", body_of(reinvite))
        self.assertEqual(PbxUas.header(reinvite, "Session-Expires"), "90;refresher=uac")
        self.assertIn("timer", PbxUas.header(reinvite, "Supported"))
        self.assertEqual(PbxUas.header(ack, "CSeq"),
                         PbxUas.header(reinvite, "CSeq").split()[0] + " ACK")
        self.assertEqual(got["bye"], 200)
        # B leg: the same, towards the SIPp callee (it answered and got its ACK, or SIPp fails).
        pbx = self.no_update_pbx
        self.assertEqual(pbx.wait(), 0, pbx.output())
        first, refresh = pbx.received("INVITE")
        self.assertEqual(body_of(refresh), body_of(first))
        self.assertEqual(PbxUas.header(refresh.replace("\n", "\r\n"), "Session-Expires"),
                         "90;refresher=uac")
        self.assertEqual(PbxUas.header(refresh.replace("\n", "\r\n"), "CSeq"), "2 INVITE")


if __name__ == "__main__":
    unittest.main()
