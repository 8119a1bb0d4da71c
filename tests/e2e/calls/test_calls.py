"""Calls through esg with real peers on loopback: SIPp as provider and PBX, over UDP and TCP.

Addresses: esg on 127.0.0.1; provider prov-a (point-to-point) calls from 127.0.0.2; PBX pbx1 at
127.0.0.5 (it also places the outgoing calls); providers prov-b at 127.0.0.3 and prov-c at
127.0.0.4 take them. Nothing leaves loopback."""

import json
import os
import re
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from esg_fixture import EsgProcess, KeepOnFailure, stop_all  # noqa: E402
from rest_api import Api  # noqa: E402
from sipp_fixture import SippPeer  # noqa: E402
import sip_uac  # noqa: E402

DID = "74951234567"


def scenario(name):
    return os.path.join(HERE, name)


def user_of(header_value):
    m = re.search(r"<?sips?:([^@>;]*)@", header_value or "")
    return m.group(1) if m else ""


class Calls(KeepOnFailure):
    @classmethod
    def setUpClass(cls):
        cls.esg = EsgProcess({"instance": {"workers": 2, "domain": "pbx.esg.test"}})
        cls.api = Api(cls.esg.ports["http"])
        cls.peers = []
        api = cls.api
        cls.prov_a = api.ok("POST", "/rest/v1/uc/providers", {
            "code": "prov-a", "domain": "127.0.0.2", "reg": False, "username": "",
            "passheaders": ["X-Keep"]})
        cls.prov_b = api.ok("POST", "/rest/v1/uc/providers", {
            "code": "prov-b", "domain": "prov-b.test", "reg": False, "username": "74950000001",
            "proxyaddr": "127.0.0.3", "proxyport": 5060})
        cls.prov_c = api.ok("POST", "/rest/v1/uc/providers", {
            "code": "prov-c", "domain": "prov-c.test", "reg": False, "username": "74950000002",
            "proxyaddr": "127.0.0.4", "proxyport": 5060})
        cls.pbx = api.ok("POST", "/rest/v1/uc/pbx", {
            "code": "pbx1", "mode": "ip", "address": "127.0.0.5", "port": 5060,
            "headers": {"X-Site": "main"}})
        api.ok("POST", "/rest/v1/routing/rules", {
            "priority": 100, "direction": "in", "action": "pbx", "target": "pbx1"})
        api.ok("POST", "/rest/v1/routing/rules", {
            "priority": 10, "direction": "out", "source": "pbx1", "called": r"8\d{10}",
            "action": "external", "target": "prov-b"})
        api.ok("POST", "/rest/v1/routing/rules", {
            "priority": 20, "direction": "out", "source": "pbx1", "called": r"8\d{10}",
            "action": "external", "target": "prov-c"})
        api.ok("POST", "/rest/v1/routing/normalization", {
            "direction": "out", "providercode": "prov-*", "field": "from_user", "match": ".*",
            "replace": "${account.username}"})
        for field in ("to_user", "ruri_user"):
            api.ok("POST", "/rest/v1/routing/normalization", {
                "direction": "out", "providercode": "prov-*", "field": field,
                "match": r"^8(\d{10})$", "replace": "+7$1"})

    @classmethod
    def tearDownClass(cls):
        stop_all(cls.failed, cls.esg, *cls.peers)

    # Helpers

    def peer(self, *args, **kwargs):
        p = SippPeer(*args, **kwargs)
        type(self).peers.append(p)
        return p

    def esg_addr(self, proto="udp"):
        return "127.0.0.1:%d" % self.esg.ports[proto]

    def pbx_at(self, port, transport="udp"):
        self.api.ok("PATCH", "/rest/v1/uc/pbx/%d" % self.pbx["id"],
                    {"port": port, "transport": transport})

    def provider_port(self, prov, port):
        self.api.ok("PATCH", "/rest/v1/uc/providers/%d" % prov["id"], {"proxyport": port})

    def assertPeerOk(self, p, timeout=45):
        code = p.wait(timeout)
        self.assertEqual(code, 0, p.output())

    def cdr(self, call_id, seconds=5):
        deadline = time.time() + seconds
        while time.time() < deadline:
            items = self.api.ok("GET", "/rest/v1/cdrs?limit=200")["items"]
            for c in items:
                if c["id"] == call_id and c["state"] in ("ended",):
                    return c
            time.sleep(0.1)
        raise AssertionError("no ended CDR for %s: %s" % (call_id, json.dumps(items)[:2000]))

    def call_in(self, uac="uac_call.xml", uas="uas_answer.xml", transport="u1", hold=200,
                uas_hold=None):
        proto = "udp" if transport == "u1" else "tcp"
        pbx = self.peer(scenario(uas), "127.0.0.5", transport=transport, duration_ms=uas_hold)
        self.pbx_at(pbx.port, proto)
        uac_peer = self.peer(scenario(uac), "127.0.0.2", remote=self.esg_addr(proto),
                             transport=transport, duration_ms=hold,
                             keys={"ruri_user": DID, "to_user": DID, "to_host": "127.0.0.1",
                                   "from_user": "+79161234567", "contact_user": "prov"})
        self.assertPeerOk(uac_peer)
        self.assertPeerOk(pbx)
        return uac_peer, pbx

    # Incoming calls

    def check_incoming(self, uac, pbx):
        invites = pbx.received("INVITE")
        self.assertTrue(invites, pbx.messages())
        inv = invites[0]
        ruri = inv.split("\n", 1)[0]
        self.assertRegex(ruri, r"^INVITE sip:%s@127\.0\.0\.5:%d" % (DID, pbx.port))
        self.assertEqual(user_of(sip_uac.header(inv, "From")), "+79161234567")
        self.assertIn("pbx.esg.test", sip_uac.header(inv, "From"))
        self.assertEqual(sip_uac.header(inv, "To"), "<sip:pbx.esg.test>")  # To user emptied
        a_call_id = sip_uac.header(uac.messages().split("INVITE sip:", 1)[1], "Call-ID")
        b_call_id = sip_uac.header(inv, "Call-ID")
        self.assertNotEqual(a_call_id, b_call_id)
        self.assertEqual(sip_uac.header(inv, "X-Call-ID"), a_call_id)
        self.assertEqual(sip_uac.header(inv, "X-Site"), "main")
        self.assertIsNone(sip_uac.header(inv, "X-Trace"))  # not in passheaders: does not cross
        self.assertNotIn("127.0.0.2", sip_uac.header(inv, "Via"))
        self.assertEqual(sip_uac.header(inv, "Max-Forwards"), "69")
        self.assertIn("m=audio", inv)  # the SDP crosses unchanged (no relay yet)
        return a_call_id

    def test_incoming_call_over_udp(self):
        uac, pbx = self.call_in()
        a_call_id = self.check_incoming(uac, pbx)
        cdr = self.cdr(a_call_id)
        self.assertEqual(cdr["status"], 200)
        self.assertEqual(cdr["hangup_by"], "caller")
        self.assertEqual(cdr["provider"], "prov-a")
        self.assertEqual(cdr["pbx"], "pbx1")
        self.assertTrue(any("matched at step 2.2" in d for d in cdr["decisions"]), cdr)
        self.assertGreater(cdr["answered"], 0)

    def test_incoming_call_over_tcp(self):
        uac, pbx = self.call_in(transport="t1")
        self.check_incoming(uac, pbx)

    def test_callee_hangs_up(self):
        uac, pbx = self.call_in(uac="uac_wait_bye.xml", uas="uas_hangup.xml", hold=None,
                                uas_hold=300)
        a_call_id = sip_uac.header(uac.messages().split("INVITE sip:", 1)[1], "Call-ID")
        self.assertEqual(self.cdr(a_call_id)["hangup_by"], "callee")

    def test_cancel_while_ringing(self):
        uac, pbx = self.call_in(uac="uac_cancel.xml", uas="uas_ring.xml")
        a_call_id = sip_uac.header(uac.messages().split("INVITE sip:", 1)[1], "Call-ID")
        cdr = self.cdr(a_call_id)
        self.assertEqual(cdr["status"], 487)
        self.assertEqual(cdr["hangup_by"], "caller")
        self.assertTrue(pbx.received("CANCEL"))

    def test_reinvite_is_passed_to_the_other_leg(self):
        uac, pbx = self.call_in(uac="uac_reinvite.xml", uas="uas_reinvite.xml")
        self.assertEqual(len(pbx.received("INVITE")), 2)
        self.assertIn("a=sendonly", pbx.received("INVITE")[1])

    def test_reinvite_answered_locally_when_reinvite_is_false(self):
        path = "/rest/v1/uc/providers/%d" % self.prov_a["id"]
        self.api.ok("PATCH", path, {"media": True, "reinvite": False})
        try:
            uac, pbx = self.call_in(uac="uac_reinvite.xml", uas="uas_answer.xml")
        finally:
            self.api.ok("PATCH", path, {"media": False, "reinvite": True})
        self.assertEqual(len(pbx.received("INVITE")), 1)  # never reached the PBX

    def test_unknown_account_gets_404_with_the_reason(self):
        a = sip_uac.invite(self.esg.ports["udp"], "127.0.0.9", "555", "127.0.0.1")
        self.assertEqual(a.status, 404, a.responses)
        self.assertEqual(a.header("Reason"),
                         'SIP;cause=404;text="EB2B. Unknown account in contact"')

    def test_wrong_source_address_gets_403(self):
        # The Contact names prov-a (step 2.2) but the packet comes from elsewhere.
        a = sip_uac.invite(self.esg.ports["udp"], "127.0.0.7", DID, "127.0.0.1",
                           contact_host="127.0.0.2")
        self.assertEqual(a.status, 403, a.responses)
        self.assertIn("127.0.0.7 is not an address of account prov-a", a.header("Reason"))

    def test_trunk_limit_counts_calls_in_progress(self):
        path = "/rest/v1/uc/providers/%d" % self.prov_a["id"]
        self.api.ok("PATCH", path, {"trunks": 1})
        try:
            pbx = self.peer(scenario("uas_answer.xml"), "127.0.0.5")
            self.pbx_at(pbx.port)
            held = self.peer(scenario("uac_call.xml"), "127.0.0.2", remote=self.esg_addr(),
                             duration_ms=3000,
                             keys={"ruri_user": DID, "to_user": DID, "to_host": "127.0.0.1",
                                   "from_user": "100", "contact_user": "prov"})
            deadline = time.time() + 5
            while time.time() < deadline and not self.api.ok(
                    "GET", "/api/monitor/v1/calls")["data"]["calls"]:
                time.sleep(0.05)
            a = sip_uac.invite(self.esg.ports["udp"], "127.0.0.2", DID, "127.0.0.1")
            self.assertEqual(a.status, 503, a.responses)
            self.assertIn("Trunk limit of account prov-a", a.header("Reason"))
            self.assertPeerOk(held)
            self.assertPeerOk(pbx)
        finally:
            self.api.ok("PATCH", path, {"trunks": 0})

    # Outgoing calls

    def test_outgoing_call_fails_over_after_503_with_normalization(self):
        busy = self.peer(scenario("uas_503.xml"), "127.0.0.3")
        self.provider_port(self.prov_b, busy.port)
        answer = self.peer(scenario("uas_answer.xml"), "127.0.0.4")
        self.provider_port(self.prov_c, answer.port)
        pbx = self.peer(scenario("uac_call.xml"), "127.0.0.5", remote=self.esg_addr(),
                        duration_ms=200,
                        keys={"ruri_user": "84951112233", "to_user": "84951112233",
                              "to_host": "127.0.0.1", "from_user": "101",
                              "contact_user": "101"})
        self.assertPeerOk(pbx)
        self.assertPeerOk(busy)
        self.assertPeerOk(answer)
        tried = busy.received("INVITE")[0]
        self.assertEqual(user_of(sip_uac.header(tried, "From")), "74950000001")
        inv = answer.received("INVITE")[0]
        self.assertTrue(inv.startswith("INVITE sip:+74951112233@prov-c.test SIP/2.0"), inv)
        self.assertEqual(user_of(sip_uac.header(inv, "From")), "74950000002")
        self.assertIn("@prov-c.test", sip_uac.header(inv, "From"))
        self.assertEqual(user_of(sip_uac.header(inv, "To")), "+74951112233")
        a_call_id = sip_uac.header(pbx.messages().split("INVITE sip:", 1)[1], "Call-ID")
        cdr = self.cdr(a_call_id)
        self.assertEqual(cdr["direction"], "out")
        self.assertEqual(cdr["provider"], "prov-c")
        self.assertTrue(any("503" in d for d in cdr["decisions"]), cdr)


if __name__ == "__main__":
    unittest.main()
