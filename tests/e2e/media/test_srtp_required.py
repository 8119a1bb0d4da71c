"""SRTP `required` towards a target that answers without keys (issue 20): esg offers the target
SRTP, and an answer without a usable a=crypto key (plain RTP/AVP) is not accepted: a 200 is ACKed
and hung up with BYE, an early answer (183 with SDP) is CANCELled, both with a Reason naming
488 and the missing keys, and the call goes on to the next routing target; with no target left
the caller gets 488 with that Reason. The same with the relay off, where descriptions cross end
to end and a leg that requires SRTP needs keys on both sides; and the reverse direction: a caller
that requires SRTP and offers none is refused with 488.

Set-up: provider prov-a calls from 127.0.0.2; pbx1 (127.0.0.5) takes every incoming call, pbx2
(127.0.0.6) the calls to DID2 after it; pbx1's calls to 8XXXXXXXXXX go to provider prov-b
(127.0.0.3), then prov-c (127.0.0.4). SIPp plays the targets (echoing RTP)."""

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from media_case import CALLS, DID, MediaCase  # noqa: E402
from sipp_fixture import SippPeer, free_port  # noqa: E402
from sip_call import UdpCall  # noqa: E402

DID2 = "74951230002"  # pbx1 first, then pbx2
OUT = "89161234567"   # from pbx1: prov-b first, then prov-c
ANSWER = os.path.join(CALLS, "uas_answer.xml")  # 200 with RTP/AVP, no a=crypto
REASON = 'Reason: SIP;cause=488;text="media: SRTP required, but no usable a=crypto key from '


def header(text, name):
    for line in text.split("\r\n\r\n")[0].replace("\n", "\r\n").split("\r\n"):
        if line.lower().startswith(name.lower() + ":"):
            return line.split(":", 1)[1].strip()
    return None


class SrtpTargets(MediaCase):
    media = {"ports": [26000, 26199], "timeout": 30}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        api = cls.api
        cls.pbx2 = api.ok("POST", "/rest/v1/uc/pbx",
                          {"code": "pbx2", "mode": "ip", "address": "127.0.0.6", "port": 5060})
        api.ok("POST", "/rest/v1/routing/rules", {"priority": 200, "direction": "in",
                                                  "called": DID2, "action": "pbx",
                                                  "target": "pbx2"})
        cls.prov_b = api.ok("POST", "/rest/v1/uc/providers", {
            "code": "prov-b", "domain": "prov-b.test", "reg": False, "username": "74950000001",
            "proxyaddr": "127.0.0.3", "proxyport": 5060})
        cls.prov_c = api.ok("POST", "/rest/v1/uc/providers", {
            "code": "prov-c", "domain": "prov-c.test", "reg": False, "username": "74950000002",
            "proxyaddr": "127.0.0.4", "proxyport": 5060})
        for prio, prov in ((10, "prov-b"), (20, "prov-c")):
            api.ok("POST", "/rest/v1/routing/rules", {
                "priority": prio, "direction": "out", "source": "pbx1", "called": r"8\d{10}",
                "action": "external", "target": prov})

    def peer(self, scenario, ip, path, echo=True):
        """A SIPp callee at `ip` (echoing RTP), made the target at REST `path` (its port)."""
        extra = ["-mi", ip, "-mp", str(free_port(ip))] + (["-rtp_echo"] if echo else [])
        p = SippPeer(scenario, ip, extra=extra)
        type(self).peers.append(p)
        field = "proxyport" if "providers" in path else "port"
        self.api.ok("PATCH", path, {field: p.port})
        return p

    def requires_srtp(self, path):
        self.api.ok("PATCH", path, {"srtp": "required"})
        self.addCleanup(self.api.ok, "PATCH", path, {"srtp": "off"})

    def decisions(self, call_id):
        return self.api.ok("GET", "/api/monitor/v1/calls/" + call_id)["data"]["decisions"]

    def assertAudioEchoed(self, c, rtp):
        """The caller's audio reaches the answering target and comes back from its echo."""
        rtp.send(c.media_dest(), count=20)
        deadline = time.time() + 3  # a loaded machine may be slow to echo
        while True:
            back = [p for p in rtp.packets if p[0] == c.media_dest()]
            if len(back) >= 15 or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertGreaterEqual(len(back), 15)

    def test_a_plain_answer_to_srtp_is_hung_up_and_the_next_pbx_answers(self):
        pbx1 = "/rest/v1/uc/pbx/%d" % self.pbx["id"]
        self.requires_srtp(pbx1)
        first = self.peer(ANSWER, "127.0.0.5", pbx1)
        second = self.peer(ANSWER, "127.0.0.6", "/rest/v1/uc/pbx/%d" % self.pbx2["id"])
        rtp = self.port()
        c = UdpCall(self.esg.ports["udp"], "127.0.0.2", DID2, rtp.port)
        self.addCleanup(c.close)
        self.assertEqual(c.status, 200, c.responses)
        # pbx1 was offered SRTP, answered plain RTP: ACKed and hung up with the reason.
        offer = first.received("INVITE")[0]
        self.assertRegex(offer, r"(?m)^m=audio \d+ RTP/SAVP 8")
        self.assertIn("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:", offer)
        self.assertEqual(first.wait(), 0, first.output())
        bye = first.received("BYE")[0]
        self.assertIn(REASON + 'pbx1"', bye)
        # pbx2 (srtp off) got plain RTP and carries the call; the caller never saw pbx1's answer.
        self.assertNotIn("crypto", second.received("INVITE")[0])
        self.assertNotIn("RTP/SAVP", c.answer)
        self.assertAudioEchoed(c, rtp)
        decisions = self.decisions(c.call_id)
        self.assertIn("attempt failed: 488 media: SRTP required, but no usable a=crypto key "
                      "from pbx1", decisions)
        self.assertEqual(c.bye(), 200)
        self.assertEqual(second.wait(), 0, second.output())

    def test_an_early_answer_without_keys_is_cancelled_and_the_next_pbx_answers(self):
        pbx1 = "/rest/v1/uc/pbx/%d" % self.pbx["id"]
        self.requires_srtp(pbx1)
        first = self.peer(os.path.join(HERE, "uas_183_plain.xml"), "127.0.0.5", pbx1, echo=False)
        second = self.peer(ANSWER, "127.0.0.6", "/rest/v1/uc/pbx/%d" % self.pbx2["id"])
        rtp = self.port()
        c = UdpCall(self.esg.ports["udp"], "127.0.0.2", DID2, rtp.port)
        self.addCleanup(c.close)
        self.assertEqual(c.status, 200, c.responses)
        self.assertEqual(first.wait(), 0, first.output())  # cancelled: 200, 487, ACK
        cancel = first.received("CANCEL")[0]
        self.assertIn(REASON + 'pbx1"', cancel)
        # pbx1's early description never reached the caller.
        early = [r for r in c.responses if r.startswith("SIP/2.0 183")]
        self.assertTrue(all("m=audio" not in r for r in early), early)
        self.assertEqual(len(second.received("INVITE")), 1)
        self.assertAudioEchoed(c, rtp)
        self.assertEqual(c.bye(), 200)
        self.assertEqual(second.wait(), 0, second.output())

    def test_with_no_target_left_the_caller_gets_488_with_the_reason(self):
        pbx1 = "/rest/v1/uc/pbx/%d" % self.pbx["id"]
        self.requires_srtp(pbx1)
        first = self.peer(ANSWER, "127.0.0.5", pbx1)
        rtp = self.port()
        c = UdpCall(self.esg.ports["udp"], "127.0.0.2", DID, rtp.port)  # pbx1 only
        self.addCleanup(c.close)
        self.assertEqual(c.status, 488, c.responses)
        self.assertEqual(header(c.final, "Reason"),
                         REASON[len("Reason: "):] + 'pbx1"')
        self.assertEqual(first.wait(), 0, first.output())  # answered, then hung up

    def test_a_provider_that_requires_srtp_and_answers_plain_rtp_fails_over(self):
        prov_b = "/rest/v1/uc/providers/%d" % self.prov_b["id"]
        self.requires_srtp(prov_b)
        first = self.peer(ANSWER, "127.0.0.3", prov_b)
        second = self.peer(ANSWER, "127.0.0.4", "/rest/v1/uc/providers/%d" % self.prov_c["id"])
        rtp = self.port("127.0.0.5")
        c = UdpCall(self.esg.ports["udp"], "127.0.0.5", OUT, rtp.port)  # from pbx1
        self.addCleanup(c.close)
        self.assertEqual(c.status, 200, c.responses)
        self.assertIn("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:", first.received("INVITE")[0])
        self.assertEqual(first.wait(), 0, first.output())
        self.assertIn(REASON + 'prov-b"', first.received("BYE")[0])
        self.assertNotIn("crypto", second.received("INVITE")[0])
        self.assertAudioEchoed(c, rtp)
        self.assertEqual(c.bye(), 200)
        self.assertEqual(second.wait(), 0, second.output())


class SrtpWithoutRelay(MediaCase):
    """media.relay off: a description crosses end to end, so where either leg requires SRTP it
    must carry keys; a callee that requires SRTP offered none gets the relay (esg keys it)."""
    media = {"ports": [26200, 26299], "relay": False}

    def provider(self, srtp):
        prov = next(p for p in self.api.ok("GET", "/rest/v1/uc/providers")["items"]
                    if p["code"] == "prov-a")
        path = "/rest/v1/uc/providers/%d" % prov["id"]
        self.api.ok("PATCH", path, {"srtp": srtp})
        self.addCleanup(self.api.ok, "PATCH", path, {"srtp": "off"})

    def pbx_srtp(self, srtp):
        path = "/rest/v1/uc/pbx/%d" % self.pbx["id"]
        self.api.ok("PATCH", path, {"srtp": srtp})
        self.addCleanup(self.api.ok, "PATCH", path, {"srtp": "off"})

    def srtp_caller(self):
        uac = SippPeer(os.path.join(HERE, "uac_srtp_refused.xml"), "127.0.0.2",
                       remote="127.0.0.1:%d" % self.esg.ports["udp"],
                       keys={"ruri_user": DID, "to_user": DID, "to_host": "127.0.0.1",
                             "from_user": "+79161234567", "contact_user": "prov"})
        type(self).peers.append(uac)
        return uac

    def test_a_plain_answer_crossing_end_to_end_is_refused(self):
        # Caller and PBX both take SRTP (no relay needed): the caller's keys go to the PBX as
        # they are, and its plain answer must not reach the caller.
        self.provider("optional")
        self.pbx_srtp("required")
        pbx, _ = self.echoing_pbx()
        uac = self.srtp_caller()
        self.assertEqual(uac.wait(), 0, uac.output())  # 488, ACKed
        self.assertIn("inline:bnHWvRjn//+NFWFR2Sv3MJ6vwQ6aymlZ8EagK7mv",
                      pbx.received("INVITE")[0])  # end to end: the caller's own key
        final = [m for m in uac.received("SIP/2.0") if m.startswith("SIP/2.0 488")][0]
        self.assertIn(REASON + 'pbx1"', final)
        self.assertEqual(pbx.wait(), 0, pbx.output())
        self.assertIn(REASON + 'pbx1"', pbx.received("BYE")[0])

    def test_a_plain_offer_to_a_pbx_that_requires_srtp_brings_the_relay_in(self):
        self.provider("optional")
        self.pbx_srtp("required")
        pbx, _ = self.echoing_pbx(os.path.join(HERE, "uas_answer_srtp.xml"))
        rtp = self.port()
        c = self.call(rtp)  # offers plain RTP/AVP
        offer = pbx.received("INVITE")[0]
        self.assertRegex(offer, r"(?m)^m=audio \d+ RTP/SAVP 8")
        self.assertIn("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:", offer)
        self.assertEqual(c.media_dest()[0], "127.0.0.1")  # through esg's relay
        self.assertIn("media relayed by esg: no codec or SRTP in common with pbx1",
                      self.api.ok("GET", "/api/monitor/v1/calls/" + c.call_id)["data"]["decisions"])
        self.assertEqual(c.bye(), 200)
        self.assertEqual(pbx.wait(), 0, pbx.output())

    def test_a_caller_that_requires_srtp_and_offers_plain_rtp_gets_488(self):
        # The reverse direction: the caller's own leg requires SRTP, its offer has no keys.
        self.provider("required")
        self.pbx_srtp("optional")
        rtp = self.port()
        c = UdpCall(self.esg.ports["udp"], "127.0.0.2", DID, rtp.port)
        self.addCleanup(c.close)
        self.assertEqual(c.status, 488, c.responses)
        self.assertIn("SRTP required", header(c.final, "Reason"))


if __name__ == "__main__":
    unittest.main()
