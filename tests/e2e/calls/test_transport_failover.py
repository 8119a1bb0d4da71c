"""A target reached over TCP or TLS whose connection fails: the INVITE fails at once with 503
and a Reason naming the error (RFC 3261 §17.1.4, §8.1.3.1), and routing moves on to the next
target within milliseconds, not after Timer B (32 s). The same for a registering account.

Addresses: esg on 127.0.0.1; provider prov-a calls from 127.0.0.2; a PBX port where nothing
listens (TCP) at 127.0.0.5, a TLS server whose self-signed certificate esg's CAs never signed at
127.0.0.7, and a SIPp PBX on UDP at 127.0.0.6 that answers. Nothing leaves loopback."""

import os
import shutil
import socket
import ssl
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from esg_fixture import EsgProcess, KeepOnFailure, make_certificate, stop_all  # noqa: E402
from rest_api import Api  # noqa: E402
from sipp_fixture import SippPeer, free_port  # noqa: E402
import sip_uac  # noqa: E402
from sip_call import UdpCall  # noqa: E402

# Before: the INVITE waited for Timer B (64*T1 = 32 s); now the connection's failure ends it.
FAST = 2.0


def scenario(name):
    return os.path.join(HERE, name)


class TlsServer:
    """Accepts TLS on `ip` with a self-signed certificate and handshakes; counts the attempts
    (a client that does not trust the certificate aborts the handshake)."""

    def __init__(self, ip, folder):
        cert, key = make_certificate(folder)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((ip, 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.attempts = 0
        self.errors = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            self.attempts += 1
            raw.settimeout(5)
            try:
                with self.ctx.wrap_socket(raw, server_side=True) as s:
                    s.recv(100)
            except (OSError, ssl.SSLError) as e:
                self.errors.append(str(e))

    def close(self):
        self.sock.close()
        self._thread.join(timeout=2)


class TransportFailover(KeepOnFailure):
    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="esg-tls-peer-")
        cls.tls = TlsServer("127.0.0.7", cls.certs)
        cls.esg = EsgProcess({"instance": {"workers": 2}})
        cls.api = Api(cls.esg.ports["http"])
        cls.peers = []
        cls.api.ok("POST", "/rest/v1/uc/providers",
                   {"code": "prov-a", "domain": "127.0.0.2", "reg": False, "username": ""})
        cls.refused_port = free_port("127.0.0.5", socket.SOCK_STREAM)  # nothing listens there
        cls.api.ok("POST", "/rest/v1/uc/pbx", {"code": "pbx-tcp", "mode": "ip",
                                               "address": "127.0.0.5", "port": cls.refused_port,
                                               "transport": "tcp"})
        cls.api.ok("POST", "/rest/v1/uc/pbx", {"code": "pbx-tls", "mode": "ip",
                                               "address": "127.0.0.7", "port": cls.tls.port,
                                               "transport": "tls"})
        cls.pbx_udp = cls.api.ok("POST", "/rest/v1/uc/pbx", {
            "code": "pbx-udp", "mode": "ip", "address": "127.0.0.6", "port": 5060})
        # 1001: TCP, then UDP; 1002: TCP only; 2001: TLS, then UDP; 2002: TLS only.
        for called, targets in (("1001", ("pbx-tcp", "pbx-udp")), ("1002", ("pbx-tcp",)),
                                ("2001", ("pbx-tls", "pbx-udp")), ("2002", ("pbx-tls",))):
            for n, target in enumerate(targets):
                cls.api.ok("POST", "/rest/v1/routing/rules", {
                    "priority": 10 + n, "direction": "in", "called": called, "action": "pbx",
                    "target": target})

    @classmethod
    def tearDownClass(cls):
        try:
            stop_all(cls.failed, cls.esg, *cls.peers)
        finally:
            cls.tls.close()
            shutil.rmtree(cls.certs, ignore_errors=True)

    def callee(self):
        """A SIPp PBX on UDP that answers one call; pbx-udp points at it."""
        p = SippPeer(scenario("uas_answer.xml"), "127.0.0.6")
        type(self).peers.append(p)
        self.api.ok("PATCH", "/rest/v1/uc/pbx/%d" % self.pbx_udp["id"], {"port": p.port})
        return p

    def call(self, did):
        """Calls `did` from prov-a; returns the call (its final answer) and the seconds the
        answer took."""
        t0 = time.monotonic()
        call = UdpCall(self.esg.ports["udp"], "127.0.0.2", did, 40000)
        took = time.monotonic() - t0
        self.addCleanup(call.close)
        return call, took

    def cdr(self, call_id, seconds=5):
        deadline = time.time() + seconds
        items = []
        while time.time() < deadline:
            items = self.api.ok("GET", "/rest/v1/cdrs?limit=200")["items"]
            for c in items:
                if c["id"] == call_id and c["state"] == "ended":
                    return c
            time.sleep(0.1)
        raise AssertionError("no ended CDR for %s: %s" % (call_id, items[:3]))

    def assert_failed_over(self, did, error):
        pbx = self.callee()
        call, took = self.call(did)
        self.assertEqual(call.status, 200, call.final)
        self.assertLess(took, FAST, "the failover waited for a timer")
        self.assertEqual(call.bye(), 200)
        self.assertEqual(pbx.wait(10), 0, pbx.output())
        self.assertTrue(pbx.received("INVITE"), pbx.messages())
        cdr = self.cdr(call.call_id)
        self.assertEqual(cdr["pbx"], "pbx-udp", cdr)
        failed = [d for d in cdr["decisions"] if d.startswith("attempt failed: 503 ")]
        self.assertEqual(len(failed), 1, cdr["decisions"])
        self.assertIn(error, failed[0])

    def assert_refused_with_reason(self, did, error):
        call, took = self.call(did)
        self.assertEqual(call.status, 503, call.final)
        self.assertLess(took, FAST, "the 503 waited for a timer")
        reason = sip_uac.header(call.final, "Reason") or ""
        self.assertTrue(reason.startswith("SIP;cause=503;text=\""), call.final)
        self.assertIn(error, reason)

    def test_refused_tcp_target_fails_over_to_the_next_at_once(self):
        self.assert_failed_over(
            "1001", "TCP connect to 127.0.0.5:%d refused" % self.refused_port)

    def test_refused_tcp_target_alone_answers_503_naming_the_error(self):
        self.assert_refused_with_reason(
            "1002", "TCP connect to 127.0.0.5:%d refused" % self.refused_port)

    def test_tls_target_whose_certificate_fails_verification_fails_over_at_once(self):
        before = self.tls.attempts
        self.assert_failed_over("2001", "TLS certificate verification failed: ")
        self.assertGreater(self.tls.attempts, before)  # it was the handshake that failed

    def test_tls_target_alone_answers_503_naming_the_certificate_error(self):
        self.assert_refused_with_reason(
            "2002", "TLS certificate verification failed: self-signed certificate "
                    "(127.0.0.7:%d)" % self.tls.port)

    def test_register_over_a_refused_connection_fails_at_once(self):
        port = free_port("127.0.0.8", socket.SOCK_STREAM)
        t0 = time.monotonic()
        acc = self.api.ok("POST", "/rest/v1/uc/providers", {
            "code": "reg-tcp", "domain": "reg.test", "reg": True, "username": "alice",
            "pwd": "x", "proxyaddr": "127.0.0.8", "proxyport": port, "transport": "tcp"})
        self.addCleanup(self.api.call, "DELETE", "/rest/v1/uc/providers/%d" % acc["id"])
        reg = self.api.wait_reg("reg-tcp", ("failed",), seconds=10)
        self.assertLess(time.monotonic() - t0, FAST, reg)
        self.assertIn("TCP connect to 127.0.0.8:%d refused" % port, reg["reason"])


if __name__ == "__main__":
    unittest.main()
