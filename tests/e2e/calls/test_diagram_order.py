"""Under load, every packet of a call is shown after its cause: in the call diagram (the
packets API, both legs), in the packet index and in the trn log. esg runs two workers; a SIPp
provider at 127.0.0.2 places a few hundred short calls to a SIPp PBX at 127.0.0.5, so a reply
is often received on one worker while the other is still in the system call that sent its
cause. Nothing leaves loopback."""

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

DID = "74951234567"
CALLS = 300


def scenario(name):
    return os.path.join(HERE, name)


def header(packet, name, short=None):
    m = re.search(r"^(?:%s%s)[ \t]*:[ \t]*(.*?)\r?$" % (name, "|" + short if short else ""),
                  packet, re.M | re.I)
    return m.group(1).strip() if m else ""


def kind(packet):
    """('INVITE', 1) for a request, ('200', 1, 'INVITE') style for a response: what a packet is,
    with the CSeq it belongs to."""
    cseq = header(packet, "CSeq").split()
    first = packet.split("\r\n", 1)[0].split("\n", 1)[0]
    number = int(cseq[0]) if cseq and cseq[0].isdigit() else -1
    method = cseq[1] if len(cseq) > 1 else ""
    if first.startswith("SIP/2.0 "):
        return ("response", first.split()[1], number, method)
    return ("request", first.split()[0], number, method)


def causal_violations(packets):
    """packets: [(direction, call_id, text)] in the order shown. Returns what came before its
    cause: on each leg an ACK before the 2xx it acknowledges, a final response before its
    request; across the legs the B leg's INVITE before the A leg's, the A leg's 200 before the
    B leg's, the B leg's BYE before the A leg's."""
    bad = []
    seen = []
    for i, (direction, call_id, text) in enumerate(packets):
        what, name, number, method = kind(text)
        def before(pred):
            return any(pred(*x) for x in seen)
        if what == "request" and name == "ACK":
            if not before(lambda d, c, w, n, num, m: c == call_id and w == "response" and
                          n.startswith("2") and num == number and m == "INVITE"):
                bad.append("ACK %s (%s) before its 200: %d" % (call_id, direction, i))
        if what == "response":
            if not before(lambda d, c, w, n, num, m: c == call_id and w == "request" and
                          n == method and num == number):
                bad.append("%s to %s %s (%s) before its request: %d" %
                           (name, method, call_id, direction, i))
        seen.append((direction, call_id, what, name, number, method))
    return bad


class DiagramOrderUnderLoad(KeepOnFailure):
    @classmethod
    def setUpClass(cls):
        # The diagrams, the index and the trn log of a few hundred calls at once.
        cls.esg = EsgProcess({"instance": {"workers": 2}, "media": {"relay": False}})
        cls.api = Api(cls.esg.ports["http"])
        cls.peers = []

    @classmethod
    def tearDownClass(cls):
        stop_all(cls.failed, cls.esg, *cls.peers)

    def test_every_packet_comes_after_its_cause(self):
        pbx = SippPeer(scenario("uas_answer.xml"), "127.0.0.5", calls=CALLS)
        self.peers.append(pbx)
        self.api.inbound_route(pbx.port)
        caller = SippPeer(scenario("uac_call.xml"), "127.0.0.2",
                          remote="127.0.0.1:%d" % self.esg.ports["udp"], calls=CALLS,
                          duration_ms=100,
                          keys={"ruri_user": DID, "to_user": DID, "to_host": "127.0.0.1",
                                "from_user": "100", "contact_user": "prov"},
                          extra=["-r", "60", "-l", "120"])
        self.peers.append(caller)
        self.assertEqual(caller.wait(timeout=60), 0, caller.output())
        self.assertEqual(pbx.wait(timeout=20), 0, pbx.output())

        # Each call's two legs, from the CDRs (the writer gathers for up to 200 ms).
        deadline = time.time() + 10
        cdrs = []
        while time.time() < deadline:
            cdrs = self.api.ok("GET", "/rest/v1/cdrs?limit=1000")["items"]
            if len(cdrs) >= CALLS:
                break
            time.sleep(0.2)
        self.assertEqual(len(cdrs), CALLS)

        violations = []
        legs = {}
        for cdr in cdrs:
            a, b = cdr["id"], cdr["b"]["call_id"]
            self.assertTrue(b, cdr)
            legs[a] = b
            packets = self.api.ok("GET", "/api/monitor/v1/calls/%s/packets?b=%s" %
                                  (a, b))["data"]["packets"]
            self.assertTrue(all(p["source"] == "index" for p in packets))
            shown = [(p["direction"], p["call_id"], p["packet"]) for p in packets]
            # Both legs' INVITE, 200, ACK, BYE and 200, and the 180 relayed.
            self.assertGreaterEqual(len(shown), 10, shown)
            for v in causal_violations(shown):
                violations.append("diagram %s: %s" % (a, v))
            # Across the legs: the caller's INVITE before the PBX's, the PBX's 200 before the
            # caller's, the caller's BYE before the PBX's.
            order = [(d, c, kind(t)[1]) for d, c, t in shown]
            def first(d, c, name):
                return next((i for i, x in enumerate(order) if x == (d, c, name)), None)
            pairs = [(("recv", a, "INVITE"), ("send", b, "INVITE")),
                     (("recv", b, "200"), ("send", a, "200")),
                     (("recv", a, "BYE"), ("send", b, "BYE"))]
            for cause, effect in pairs:
                i, j = first(*cause), first(*effect)
                if i is None or j is None or i > j:
                    violations.append("diagram %s: %s at %s, %s at %s" % (a, cause, i, effect, j))
        self.assertEqual(violations, [], "\n".join(violations[:20]))

        # The trn log: one order for every worker's lines (the counter of <W.C.N> rises line
        # by line through the file), and each call's lines after their causes.
        by_call = {}
        counters = []
        for line in self.esg.trn_lines():
            m = re.match(r"\d\d:\d\d:\d\d\.\d{3} <\d+\.\d+\.(\d+)> (Send to|Recv from) \S+ \S+ "
                         r"(?:\((?:ok|failed)\) )?(.*)$", line)
            if not m:
                continue
            counters.append(int(m.group(1)))
            # The log wrote each line break as a space; put back the ones kind() reads.
            text = m.group(3).replace(" Via: ", "\r\nVia: ").replace(" CSeq: ", "\r\nCSeq: ")
            cid = re.search(r"(?:^| )Call-ID: (\S+)", m.group(3))
            if cid:
                direction = "send" if m.group(2) == "Send to" else "recv"
                by_call.setdefault(cid.group(1), []).append((len(counters), direction, text))
        self.assertEqual(counters, sorted(counters), "trn lines in the order of their stamps")
        self.assertEqual(len(set(counters)), len(counters))
        for a, b in legs.items():
            lines = sorted([(i, d, a, t) for i, d, t in by_call.get(a, [])] +
                           [(i, d, b, t) for i, d, t in by_call.get(b, [])])
            self.assertGreaterEqual(len(lines), 10, a)
            for v in causal_violations([(d, c, t) for _, d, c, t in lines]):
                violations.append("trn %s: %s" % (a, v))
        self.assertEqual(violations, [], "\n".join(violations[:20]))


if __name__ == "__main__":
    unittest.main()
