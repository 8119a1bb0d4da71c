"""Calls through esg with real peers on loopback: SIPp as provider and PBX, over UDP and TCP.

Addresses: esg on 127.0.0.1; provider prov-a (point-to-point) calls from 127.0.0.2; PBX pbx1 at
127.0.0.5 (it also places the outgoing calls); providers prov-b at 127.0.0.3 and prov-c at
127.0.0.4 take them. Nothing leaves loopback."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from esg_fixture import ESG, EsgProcess, KeepOnFailure, stop_all  # noqa: E402
from dnsmasq_fixture import Dnsmasq  # noqa: E402
from rest_api import Api  # noqa: E402
from sipp_fixture import SippPeer, free_port  # noqa: E402
import sip_uac  # noqa: E402
from sip_call import UdpCall  # noqa: E402

DID = "74951234567"


def scenario(name):
    return os.path.join(HERE, name)


def answered_call(api, esg_udp_port, peers):
    """A provider at 127.0.0.2 (SIPp) calls through esg to a PBX at 127.0.0.5 (SIPp) that
    answers and holds the call for 20 s; returns the call as the monitoring API shows it once
    answered and its CDR is written (None when it was not answered within 5 s). The SIPp peers
    go into `peers`, for the caller to stop."""
    api.ok("POST", "/rest/v1/uc/providers",
           {"code": "prov-a", "domain": "127.0.0.2", "reg": False, "username": ""})
    callee = SippPeer(scenario("uas_answer.xml"), "127.0.0.5")
    peers.append(callee)
    api.ok("POST", "/rest/v1/uc/pbx", {"code": "pbx1", "mode": "ip",
                                       "address": "127.0.0.5", "port": callee.port})
    api.ok("POST", "/rest/v1/routing/rules", {"direction": "in", "action": "pbx", "target": "pbx1"})
    peers.append(SippPeer(scenario("uac_call.xml"), "127.0.0.2",
                          remote="127.0.0.1:%d" % esg_udp_port, duration_ms=20000,
                          keys={"ruri_user": DID, "to_user": DID, "to_host": "127.0.0.1",
                                "from_user": "100", "contact_user": "prov"}))
    deadline = time.time() + 5
    call = None
    while time.time() < deadline and not call:
        calls = api.ok("GET", "/api/monitor/v1/calls")["data"]["calls"]
        call = next((c for c in calls if c["answered"]), None)
        time.sleep(0.05)
    if call:
        time.sleep(0.6)  # the CDR writer gathers for up to 200 ms
    return call


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
        self.assertIn("m=audio", inv)
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

    def test_reliable_provisionals_and_prack_are_bridged(self):
        # RFC 3262 end to end: the caller offers 100rel, the PBX rings reliably, the caller's
        # PRACK reaches the PBX with the RAck of its own leg.
        pbx = self.peer(os.path.join(HERE, "..", "sipp", "uas_100rel.xml"), "127.0.0.5")
        self.pbx_at(pbx.port)
        caller = self.peer(os.path.join(HERE, "..", "sipp", "uac_100rel.xml"), "127.0.0.2",
                           remote=self.esg_addr())
        self.assertPeerOk(caller)
        self.assertPeerOk(pbx)
        inv = pbx.received("INVITE")[0]
        self.assertEqual(sip_uac.header(inv, "Supported"), "100rel")
        prack = pbx.received("PRACK")[0]
        self.assertEqual(sip_uac.header(prack, "RAck"), "1 1 INVITE")

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

    def test_wrong_source_address_is_answered_like_an_unknown_account(self):
        # The Contact names prov-a (step 2.2) but the packet comes from elsewhere: a scanner
        # must not learn that prov-a exists.
        a = sip_uac.invite(self.esg.ports["udp"], "127.0.0.7", DID, "127.0.0.1",
                           contact_host="127.0.0.2")
        self.assertEqual(a.status, 404, a.responses)
        self.assertEqual(a.header("Reason"),
                         'SIP;cause=404;text="EB2B. Unknown account in contact"')

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
            self.assertEqual(self.api.regs()["prov-a"]["onlinetrunkcount"], 1)
            a = sip_uac.invite(self.esg.ports["udp"], "127.0.0.2", DID, "127.0.0.1")
            self.assertEqual(a.status, 503, a.responses)
            self.assertIn("Trunk limit of account prov-a", a.header("Reason"))
            self.assertPeerOk(held)
            self.assertPeerOk(pbx)
        finally:
            self.api.ok("PATCH", path, {"trunks": 0})

    def test_each_matching_step(self):
        # One account per step, each at its own loopback address (the source check passes
        # because the INVITE comes from the account's domain); a route rejects their calls with
        # 486 so that the CDR's decisions show which step matched. Registering accounts point
        # at a port where nothing listens: they stay unregistered, which matching ignores.
        api = self.api
        dead = {"proxyaddr": "127.0.0.1", "proxyport": 9, "pwd": "x", "expires": 60}
        steps = {
            "1.1": dict(reg=True, username="s11", domain="127.0.0.11", **dead),
            "1.2": dict(reg=True, username="s12", domain="127.0.0.12", **dead),
            "1.3": dict(reg=True, username="s13", domain="127.0.0.13", **dead),
            "2.1": dict(reg=False, username="s21", domain="127.0.0.21"),
            "2.2": dict(reg=False, username="", domain="127.0.0.22"),
            "2.3": dict(reg=False, username="s23", domain="127.0.0.23"),
        }
        ids = [api.ok("POST", "/rest/v1/routing/rules", {
            "priority": 1, "direction": "in", "source": "step*", "action": "reject",
            "status": 486})["id"]]
        providers = []
        try:
            for step, fields in steps.items():
                providers.append(api.ok("POST", "/rest/v1/uc/providers", dict(
                    code="step" + step.replace(".", ""), **fields))["id"])
            port = self.esg.ports["udp"]
            invites = {
                "1.1": dict(src_ip="127.0.0.11", to_user="s11", to_host="127.0.0.11"),
                "1.2": dict(src_ip="127.0.0.12", to_user="s12", to_host="esg.test",
                            from_host="127.0.0.12", contact_host="127.0.0.99"),
                "1.3": dict(src_ip="127.0.0.13", to_user="x", to_host="esg.test",
                            contact_user="s13", contact_host="127.0.0.13"),
                "2.1": dict(src_ip="127.0.0.21", to_user="x", to_host="esg.test",
                            contact_user="s21", contact_host="127.0.0.21"),
                "2.2": dict(src_ip="127.0.0.22", to_user="x", to_host="esg.test",
                            contact_user="anyone", contact_host="127.0.0.22"),
                "2.3": dict(src_ip="127.0.0.23", to_user="s23", to_host="esg.test",
                            from_host="127.0.0.23", contact_host="127.0.0.99"),
            }
            for step, kw in invites.items():
                a = sip_uac.invite(port, **kw)
                self.assertEqual(a.status, 486, (step, a.responses))
                cdr = self.cdr(a.call_id)
                self.assertTrue(any("matched at step %s" % step in d for d in cdr["decisions"]),
                                (step, cdr["decisions"]))
                self.assertEqual(cdr["provider"], "step" + step.replace(".", ""))
        finally:
            for i in ids:
                api.ok("DELETE", "/rest/v1/routing/rules/%d" % i)
            for i in providers:
                api.ok("DELETE", "/rest/v1/uc/providers/%d" % i)

    def test_the_field_invite_matches_step_1_1(self):
        # The provider INVITE of the foundation issue, its addresses rewritten to 127.0.0.2 (To
        # keeps 172.27.103.90, to which nothing is ever sent), for a registered account whose
        # proxy is a SIPp registrar on 127.0.0.2.
        registrar = self.peer(scenario("registrar_200.xml"), "127.0.0.2", calls=100)
        api = self.api
        acc = api.ok("POST", "/rest/v1/uc/providers", {
            "code": "seed", "username": "1234567890", "pwd": "secret",
            "domain": "172.27.103.90", "reg": True, "proxyaddr": "127.0.0.2",
            "proxyport": registrar.port, "expires": 60})
        rule = api.ok("POST", "/rest/v1/routing/rules", {
            "priority": 1, "direction": "in", "source": "seed", "action": "reject",
            "status": 486})
        try:
            api.wait_reg("seed", ["registered"])
            with open(os.path.join(HERE, "field_invite.sip")) as f:
                raw = f.read().replace("\n", "\r\n")
            a = sip_uac.invite(self.esg.ports["udp"], "127.0.0.2", None, None, raw=raw)
            self.assertEqual(a.status, 486, a.responses)
            cdr = self.cdr("40bb12f838738e5913c414c4dd7e210137c8da2fa8102e98aa28-0048-5988")
            self.assertTrue(any("account seed matched at step 1.1" in d
                                for d in cdr["decisions"]), cdr["decisions"])
        finally:
            api.ok("DELETE", "/rest/v1/routing/rules/%d" % rule["id"])
            api.ok("DELETE", "/rest/v1/uc/providers/%d" % acc["id"])
            registrar.stop()

    # PBX connections that register

    def register_pbx(self, ip, port, scenario_name, password):
        reg = self.peer(scenario(scenario_name), ip, port=port, remote=self.esg_addr(),
                        keys={"user": "pbxuser", "domain": "pbx.esg.test"},
                        extra=["-au", "pbxuser", "-ap", password])
        self.assertPeerOk(reg)

    def test_pbx_registers_with_digest_and_gets_its_calls(self):
        api = self.api
        pbx = api.ok("POST", "/rest/v1/uc/pbx", {
            "code": "pbx-reg", "mode": "register-in", "username": "pbxuser", "pwd": "pbxpwd"})
        route = api.ok("POST", "/rest/v1/routing/rules", {
            "priority": 50, "direction": "in", "called": "7777", "action": "pbx",
            "target": "pbx-reg"})
        fallback = api.ok("POST", "/rest/v1/routing/rules", {
            "priority": 60, "direction": "in", "called": "7777", "action": "reject",
            "status": 480})
        try:
            # Not registered yet: the route is skipped, the next one rejects.
            a = sip_uac.invite(self.esg.ports["udp"], "127.0.0.2", "7777", "127.0.0.1")
            self.assertEqual(a.status, 480, a.responses)
            self.assertTrue(any("pbx-reg is not registered to esg" in d
                                for d in self.cdr(a.call_id)["decisions"]))
            port = free_port("127.0.0.6")
            self.register_pbx("127.0.0.6", port, "pbx_register_403.xml", "wrong")
            self.register_pbx("127.0.0.6", port, "pbx_register.xml", "pbxpwd")
            callee = self.peer(scenario("uas_answer.xml"), "127.0.0.6", port=port)
            caller = self.peer(scenario("uac_call.xml"), "127.0.0.2", remote=self.esg_addr(),
                               duration_ms=200,
                               keys={"ruri_user": "7777", "to_user": "7777",
                                     "to_host": "127.0.0.1", "from_user": "200",
                                     "contact_user": "prov"})
            self.assertPeerOk(caller)
            self.assertPeerOk(callee)
            inv = callee.received("INVITE")[0]
            self.assertTrue(inv.startswith("INVITE sip:7777@127.0.0.6:%d SIP/2.0" % port), inv)
        finally:
            api.ok("DELETE", "/rest/v1/routing/rules/%d" % fallback["id"])
            api.ok("DELETE", "/rest/v1/routing/rules/%d" % route["id"])
            api.ok("DELETE", "/rest/v1/uc/pbx/%d" % pbx["id"])

    def test_a_pbx_is_recognised_by_the_credentials_in_its_invite(self):
        # No address, no binding: a register-in PBX that answers one of our nonces in its
        # INVITE (preemptive authentication) is from the inside; wrong credentials are not.
        api = self.api
        pbx = api.ok("POST", "/rest/v1/uc/pbx", {
            "code": "pbx-auth", "mode": "register-in", "username": "authuser", "pwd": "authpwd"})
        route = api.ok("POST", "/rest/v1/routing/rules", {
            "priority": 1, "direction": "out", "source": "pbx-auth", "action": "reject",
            "status": 486})
        try:
            port = self.esg.ports["udp"]
            # A nonce: the challenge of a REGISTER.
            reg = ("REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.40:5999;"
                   "branch=z9hG4bKauthreg\r\nFrom: <sip:authuser@pbx.esg.test>;tag=a1\r\n"
                   "To: <sip:authuser@pbx.esg.test>\r\nCall-ID: authreg-1\r\n"
                   "CSeq: 1 REGISTER\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
            a = sip_uac.invite(port, "127.0.0.40", raw=reg)
            self.assertEqual(a.status, 401)
            challenge = a.header("WWW-Authenticate")
            realm = re.search(r'realm="([^"]+)"', challenge).group(1)
            nonce = re.search(r'nonce="([^"]+)"', challenge).group(1)

            def invite_with(password):
                uri = "sip:200@127.0.0.1:%d" % port
                md5 = lambda t: hashlib.md5(t.encode()).hexdigest()  # noqa: E731
                ha1 = md5("authuser:%s:%s" % (realm, password))
                ha2 = md5("INVITE:" + uri)
                resp = md5("%s:%s:00000001:c0ffee:auth:%s" % (ha1, nonce, ha2))
                auth = ('Digest username="authuser", realm="%s", nonce="%s", uri="%s", '
                        'response="%s", qop=auth, nc=00000001, cnonce="c0ffee", algorithm=MD5'
                        % (realm, nonce, uri, resp))
                call_id = "auth-%s" % password
                msg = ("INVITE %s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.40:{via_port};"
                       "branch=z9hG4bK%s\r\nFrom: <sip:101@pbx.esg.test>;tag=a2\r\n"
                       "To: <sip:200@127.0.0.1>\r\nCall-ID: %s\r\nCSeq: 1 INVITE\r\n"
                       "Contact: <sip:101@127.0.0.40:{via_port}>\r\n"
                       "Proxy-Authorization: %s\r\nMax-Forwards: 70\r\n"
                       "Content-Length: 0\r\n\r\n") % (uri, call_id, call_id, auth)
                return sip_uac.invite(port, "127.0.0.40", raw=msg)

            ok = invite_with("authpwd")
            self.assertEqual(ok.status, 486, ok.responses)
            self.assertTrue(any("pbx-auth authenticated" in d
                                for d in self.cdr(ok.call_id)["decisions"]))
            wrong = invite_with("guess")
            self.assertEqual(wrong.status, 404, wrong.responses)  # a provider's then: unknown
        finally:
            api.ok("DELETE", "/rest/v1/routing/rules/%d" % route["id"])
            api.ok("DELETE", "/rest/v1/uc/pbx/%d" % pbx["id"])

    def test_a_provider_registered_on_esg_itself_loops_out_and_back_in(self):
        # The load-test set-up: an account registers to esg as a register-in PBX; a call from
        # pbx1 goes out through that account, comes back in from esg itself (the "loop" PBX)
        # and is routed to pbx2. Each pass has its own Call-ID.
        api = self.api
        created = []
        try:
            created.append(("pbx", api.ok("POST", "/rest/v1/uc/pbx", {
                "code": "loop", "mode": "register-in", "username": "loopuser",
                "pwd": "looppwd"})["id"]))
            callee = self.peer(scenario("uas_answer.xml"), "127.0.0.8")
            created.append(("pbx", api.ok("POST", "/rest/v1/uc/pbx", {
                "code": "pbx2", "mode": "ip", "address": "127.0.0.8",
                "port": callee.port})["id"]))
            created.append(("providers", api.ok("POST", "/rest/v1/uc/providers", {
                "code": "self", "username": "loopuser", "pwd": "looppwd",
                "domain": "pbx.esg.test", "proxyaddr": "127.0.0.1",
                "proxyport": self.esg.ports["udp"], "expires": 120})["id"]))
            created.append(("rules", api.ok("POST", "/rest/v1/routing/rules", {
                "priority": 5, "direction": "out", "source": "pbx1", "called": "9\\d+",
                "action": "external", "target": "self"})["id"]))
            created.append(("rules", api.ok("POST", "/rest/v1/routing/rules", {
                "priority": 5, "direction": "out", "source": "loop", "action": "pbx",
                "target": "pbx2"})["id"]))
            api.wait_reg("self", ["registered"])
            caller = self.peer(scenario("uac_call.xml"), "127.0.0.5", remote=self.esg_addr(),
                               duration_ms=200,
                               keys={"ruri_user": "9123", "to_user": "9123",
                                     "to_host": "127.0.0.1", "from_user": "101",
                                     "contact_user": "101"})
            self.assertPeerOk(caller)
            self.assertPeerOk(callee)
            inv = callee.received("INVITE")[0]
            first = sip_uac.header(caller.messages().split("INVITE sip:", 1)[1], "Call-ID")
            last = sip_uac.header(inv, "Call-ID")
            self.assertNotEqual(first, last)
            # The last leg names the middle one's Call-ID, which names the first.
            middle = sip_uac.header(inv, "X-Call-ID")
            self.assertNotIn(middle, (first, last))
            self.assertEqual(self.cdr(middle)["direction"], "out")
            self.assertEqual(self.cdr(first)["provider"], "self")
        finally:
            for kind, i in reversed(created):
                path = {"pbx": "/rest/v1/uc/pbx/", "providers": "/rest/v1/uc/providers/",
                        "rules": "/rest/v1/routing/rules/"}[kind]
                api.ok("DELETE", path + str(i))

    def test_register_out_connection_registers_and_gets_its_calls(self):
        api = self.api
        pbx_peer = self.peer(scenario("registrar_and_callee.xml"), "127.0.0.7", calls=2)
        pbx = api.ok("POST", "/rest/v1/uc/pbx", {
            "code": "pbx3", "mode": "register-out", "username": "esg", "pwd": "secret",
            "domain": "127.0.0.7", "address": "127.0.0.7", "port": pbx_peer.port,
            "expires": 60})
        route = api.ok("POST", "/rest/v1/routing/rules", {
            "priority": 50, "direction": "in", "called": "6666", "action": "pbx",
            "target": "pbx3"})
        try:
            api.wait_reg("pbx:pbx3", ["registered"])
            caller = self.peer(scenario("uac_call.xml"), "127.0.0.2", remote=self.esg_addr(),
                               duration_ms=200,
                               keys={"ruri_user": "6666", "to_user": "6666",
                                     "to_host": "127.0.0.1", "from_user": "300",
                                     "contact_user": "prov"})
            self.assertPeerOk(caller)
            self.assertPeerOk(pbx_peer)
            inv = pbx_peer.received("INVITE")[0]
            self.assertTrue(inv.startswith("INVITE sip:6666@127.0.0.7 SIP/2.0"), inv)
        finally:
            api.ok("DELETE", "/rest/v1/routing/rules/%d" % route["id"])
            api.ok("DELETE", "/rest/v1/uc/pbx/%d" % pbx["id"])

    def test_refer_from_the_pbx_is_carried_out_by_esg(self):
        # The PBX transfers the provider's caller to 200: esg accepts the REFER, calls 200 as a
        # call from the PBX's side (routed to pbx-t), re-INVITEs the caller towards it, reports
        # progress in NOTIFYs and ends the PBX's leg. The REFER never reaches the caller.
        api = self.api
        target = self.peer(scenario("uas_transfer_target.xml"), "127.0.0.8")
        pbx_t = api.ok("POST", "/rest/v1/uc/pbx", {
            "code": "pbx-t", "mode": "ip", "address": "127.0.0.8", "port": target.port})
        route = api.ok("POST", "/rest/v1/routing/rules", {
            "priority": 5, "direction": "out", "source": "pbx1", "called": "200",
            "action": "pbx", "target": "pbx-t"})
        try:
            uac, pbx = self.call_in(uac="uac_transferred.xml", uas="uas_refer.xml", hold=500)
            self.assertPeerOk(target)
            self.assertFalse(uac.received("REFER"))
            inv = target.received("INVITE")[0]
            self.assertTrue(inv.startswith("INVITE sip:200@127.0.0.8:%d" % target.port), inv)
            self.assertIn("s=uac", inv)  # the caller's session is the offer
            a_call_id = sip_uac.header(uac.messages().split("INVITE sip:", 1)[1], "Call-ID")
            cdr = self.cdr(a_call_id)
            self.assertTrue(any("B leg replaced" in d for d in cdr["decisions"]), cdr)
        finally:
            api.ok("DELETE", "/rest/v1/routing/rules/%d" % route["id"])
            api.ok("DELETE", "/rest/v1/uc/pbx/%d" % pbx_t["id"])

    # Monitoring and the substitution test

    def test_substitution_test_over_rest_and_the_command_line(self):
        body = {"account": "prov-b", "direction": "out", "from_user": "101",
                "to_user": "84951112233"}
        r = self.api.ok("POST", "/rest/v1/routing/test/substitution", body)
        self.assertEqual(r["result"]["from_user"], "74950000001")
        self.assertEqual(r["result"]["to_user"], "+74951112233")
        self.assertEqual(r["result"]["ruri_user"], "+74951112233")
        self.assertEqual(r["result"]["from_domain"], "prov-b.test")
        self.assertEqual([s["field"] for s in r["steps"]], ["from_user", "to_user", "ruri_user"])
        incoming = self.api.ok("POST", "/rest/v1/routing/test/substitution",
                               {"account": "prov-a", "from_user": "+7916", "to_user": DID})
        self.assertEqual(incoming["result"]["to_user"], "")  # the default for incoming calls
        self.assertEqual(incoming["result"]["to_domain"], "pbx.esg.test")
        status, err = self.api.call("POST", "/rest/v1/routing/test/substitution",
                                    {"account": "prov-b", "direction": "sideways"})
        self.assertEqual((status, err["field"]), (400, "direction"))
        status, err = self.api.call("POST", "/rest/v1/routing/test/substitution",
                                    {"account": "nobody"})
        self.assertEqual((status, err["field"]), (404, "account"))
        out = subprocess.run([ESG, "normalize", "--config", self.esg.config_path, "--account",
                              "prov-b", "--direction", "out", "--from", "101", "--to",
                              "84951112233"], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout)["result"], r["result"])
        bad = subprocess.run([ESG, "normalize", "--config", self.esg.config_path, "--account",
                              "nobody"], capture_output=True, text=True, timeout=30)
        self.assertEqual(bad.returncode, 2)
        self.assertIn("account: no such account", bad.stderr)

    def test_calls_in_progress_and_their_packets(self):
        pbx = self.peer(scenario("uas_answer.xml"), "127.0.0.5")
        self.pbx_at(pbx.port)
        caller = self.peer(scenario("uac_call.xml"), "127.0.0.2", remote=self.esg_addr(),
                           duration_ms=1500,
                           keys={"ruri_user": DID, "to_user": DID, "to_host": "127.0.0.1",
                                 "from_user": "+79161234567", "contact_user": "prov"})
        call = None
        deadline = time.time() + 5
        while time.time() < deadline and not call:
            calls = self.api.ok("GET", "/api/monitor/v1/calls")["data"]["calls"]
            call = next((c for c in calls if c["state"] == "answered" or
                         c["state"] == "confirmed"), None)
            time.sleep(0.05)
        self.assertIsNotNone(call)
        self.assertEqual(call["provider"], "prov-a")
        self.assertEqual(call["pbx"], "pbx1")
        self.assertEqual(call["caller"]["received"], "+79161234567")
        self.assertTrue(call["b"]["call_id"])
        packets = self.api.ok("GET", "/api/monitor/v1/calls/%s/packets" % call["id"])
        packets = packets["data"]["packets"]
        legs = {p["call_id"] for p in packets}
        self.assertEqual(legs, {call["id"], call["b"]["call_id"]})  # both legs, one diagram
        first = packets[0]
        self.assertEqual(first["direction"], "recv")
        self.assertTrue(first["packet"].startswith("INVITE "))
        self.assertPeerOk(caller)
        self.assertPeerOk(pbx)
        status, _ = self.api.call("GET", "/api/monitor/v1/calls/%s" % call["id"])
        self.assertEqual(status, 404)  # ended: no longer in progress
        cdrs = self.api.ok("GET", "/rest/v1/cdrs?number=%s&limit=5" % "79161234567")["items"]
        self.assertTrue(any(c["id"] == call["id"] for c in cdrs))
        status, err = self.api.call("GET", "/rest/v1/cdrs?from=yesterday")
        self.assertEqual((status, err["field"]), (400, "from"))

    def test_refer_from_the_provider_side(self):
        # The provider's caller transfers the PBX to 300: a new call in the provider's number
        # plan (an incoming call from prov-a, routed to pbx-t2), the PBX re-INVITEd towards it;
        # the new callee hangs up later and the PBX gets the BYE.
        api = self.api
        target = self.peer(scenario("uas_hangup.xml"), "127.0.0.8", duration_ms=300)
        pbx_t = api.ok("POST", "/rest/v1/uc/pbx", {
            "code": "pbx-t2", "mode": "ip", "address": "127.0.0.8", "port": target.port})
        route = api.ok("POST", "/rest/v1/routing/rules", {
            "priority": 5, "direction": "in", "source": "prov-a", "called": "300",
            "action": "pbx", "target": "pbx-t2"})
        try:
            uac, pbx = self.call_in(uac="uac_refer.xml", uas="uas_reinvite.xml")
            self.assertPeerOk(target)
            self.assertTrue(target.received("INVITE")[0].startswith("INVITE sip:300@127.0.0.8"))
            self.assertFalse(pbx.received("REFER"))
        finally:
            api.ok("DELETE", "/rest/v1/routing/rules/%d" % route["id"])
            api.ok("DELETE", "/rest/v1/uc/pbx/%d" % pbx_t["id"])

    # Outgoing calls

    def test_outgoing_call_over_tcp(self):
        # prov-b disabled: routing skips it; prov-c takes the call over TCP.
        b = "/rest/v1/uc/providers/%d" % self.prov_b["id"]
        c = "/rest/v1/uc/providers/%d" % self.prov_c["id"]
        self.api.ok("PATCH", b, {"enabled": False})
        try:
            answer = self.peer(scenario("uas_answer.xml"), "127.0.0.4", transport="t1")
            self.api.ok("PATCH", c, {"proxyport": answer.port, "transport": "tcp"})
            pbx = self.peer(scenario("uac_call.xml"), "127.0.0.5", remote=self.esg_addr("tcp"),
                            transport="t1", duration_ms=200,
                            keys={"ruri_user": "84951112233", "to_user": "84951112233",
                                  "to_host": "127.0.0.1", "from_user": "101",
                                  "contact_user": "101"})
            self.assertPeerOk(pbx)
            self.assertPeerOk(answer)
            inv = answer.received("INVITE")[0]
            self.assertTrue(inv.startswith("INVITE sip:+74951112233@prov-c.test;transport=tcp "),
                            inv)
            self.assertIn("SIP/2.0/TCP", sip_uac.header(inv, "Via"))
        finally:
            self.api.ok("PATCH", b, {"enabled": True})
            self.api.ok("PATCH", c, {"transport": "udp"})

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



class LateAnswer(KeepOnFailure):
    """A callee that answers after esg gave up on its INVITE (Timer B): the session it opened
    is confirmed and ended at once (ACK, then BYE with a Reason), not left off-hook."""

    def test_an_answer_after_the_invite_timed_out_is_taken_down(self):
        esg = EsgProcess({"transport": {"t1": 50}})
        callee = SippPeer(scenario("uas_late_200.xml"), "127.0.0.5")
        try:
            Api(esg.ports["http"]).inbound_route(callee.port)
            call = UdpCall(esg.ports["udp"], "127.0.0.2", DID, 40000)
            self.addCleanup(call.close)
            self.assertEqual(call.status, 408, call.final)
            self.assertEqual(callee.wait(), 0, callee.output())  # it got the ACK and the BYE
            bye = callee.received("BYE")[0]
            self.assertIn("answered after the INVITE timed out", sip_uac.header(bye, "Reason"))
        finally:
            stop_all(self.failed, esg, callee)


class CrashLeavesNoOpenCall(KeepOnFailure):
    """esg killed (SIGKILL) during an answered call: the next start on the same store closes
    the call's CDR as interrupted."""

    def test_an_open_call_is_interrupted_at_the_next_start(self):
        folder = tempfile.mkdtemp(prefix="esg-crash-")
        self.addCleanup(shutil.rmtree, folder, True)
        store = {"sqlite": os.path.join(folder, "esg.db")}
        first = EsgProcess({"store": store})
        peers = []
        try:
            api = Api(first.ports["http"])
            call = answered_call(api, first.ports["udp"], peers)
            self.assertIsNotNone(call)
            first.proc.kill()
            first.proc.wait()
        finally:
            for p in peers:
                p.stop()
                p.cleanup(keep=False)
        second = EsgProcess({"store": store})
        try:
            api = Api(second.ports["http"])
            cdrs = api.ok("GET", "/rest/v1/cdrs")["items"]
            mine = [c for c in cdrs if c["id"] == call["id"]]
            self.assertEqual(len(mine), 1, cdrs)
            self.assertEqual(mine[0]["state"], "interrupted")
            self.assertGreater(mine[0]["answered"], 0)
        finally:
            stop_all(self.failed, second)
            first.cleanup(keep=self.failed)


class CallsFromNamedProviders(KeepOnFailure):
    """An account known by name: its INVITEs must come from what the name resolves to (the
    test's dnsmasq: prov.dns.test -> 127.0.0.31); a PBX connection known by name is recognised
    at what its name resolves to (pbx.dns.test -> 127.0.0.35)."""

    @classmethod
    def setUpClass(cls):
        cls.dns = Dnsmasq("dns.test", ["--host-record=prov.dns.test,127.0.0.31",
                                       "--host-record=pbx.dns.test,127.0.0.35"],
                          probe="prov.dns.test")
        try:
            cls.esg = EsgProcess({"dns": {"servers": [cls.dns.server]}})
        except Exception:
            cls.dns.stop()
            raise
        cls.api = Api(cls.esg.ports["http"])
        cls.api.ok("POST", "/rest/v1/uc/providers", {
            "code": "named", "domain": "prov.dns.test", "reg": False, "username": "trunk"})
        cls.api.ok("POST", "/rest/v1/routing/rules", {
            "direction": "in", "action": "reject", "status": 486})
        cls.api.ok("POST", "/rest/v1/uc/pbx", {
            "code": "named-pbx", "mode": "ip", "address": "pbx.dns.test", "port": 5060})
        cls.api.ok("POST", "/rest/v1/routing/rules", {
            "direction": "out", "source": "named-pbx", "action": "reject", "status": 488})

    @classmethod
    def tearDownClass(cls):
        stop_all(cls.failed, cls.esg, cls.dns)

    def invite_from(self, ip):
        # Step 2.3: To user + From host.
        return sip_uac.invite(self.esg.ports["udp"], ip, "trunk", "127.0.0.1",
                              from_host="prov.dns.test", contact_host="127.0.0.99")

    def test_source_must_be_what_the_name_resolves_to(self):
        deadline = time.time() + 5
        a = self.invite_from("127.0.0.31")
        while a.status == 404 and time.time() < deadline:  # until the lookup has answered
            time.sleep(0.1)
            a = self.invite_from("127.0.0.31")
        self.assertEqual(a.status, 486, a.responses)
        b = self.invite_from("127.0.0.32")
        self.assertEqual(b.status, 404, b.responses)

    def test_a_pbx_known_by_name_calls_out_from_what_it_resolves_to(self):
        def call_from(ip):
            return sip_uac.invite(self.esg.ports["udp"], ip, "84951112233", "127.0.0.1",
                                  from_host=ip, contact_host=ip)
        deadline = time.time() + 5
        a = call_from("127.0.0.35")
        while a.status == 404 and time.time() < deadline:  # until the lookup has answered
            time.sleep(0.1)
            a = call_from("127.0.0.35")
        self.assertEqual(a.status, 488, a.responses)  # its outgoing route
        # Any other address is no PBX: an unknown provider's call.
        self.assertEqual(call_from("127.0.0.36").status, 404)


if __name__ == "__main__":
    unittest.main()
