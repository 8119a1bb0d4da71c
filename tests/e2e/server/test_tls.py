"""esg over TLS: a listener with a certificate made by the test, OPTIONS answered, the RFC 4475
messages answered as over TCP, and a handshake failure that costs nothing to other peers."""

import os
import re
import shutil
import socket
import ssl
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from esg_fixture import EsgProcess, make_certificate, options, read_answer, status_of  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from test_server import TORTURE, torture, unique  # noqa: E402


class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="esg-tls-")
        cls.cert, cls.key = make_certificate(cls.certs)
        cls.esg = EsgProcess({"listen": [
            {"proto": "udp", "addr": "127.0.0.1", "port": 0},
            {"proto": "tls", "addr": "127.0.0.1", "port": 0, "cert": cls.cert, "key": cls.key}],
            "transport": {"message_timeout": 1.0, "t1": 50},
            "accounts": {"retry_min": 30, "retry_max": 60}})

    @classmethod
    def tearDownClass(cls):
        code = cls.esg.stop()
        cls.esg.cleanup(keep=code != 0)
        shutil.rmtree(cls.certs, ignore_errors=True)
        if code != 0:
            raise AssertionError("esg exited with %d" % code)

    def connect(self, timeout=2.0):
        ctx = ssl.create_default_context(cafile=self.cert)  # verifies esg's certificate
        raw = socket.create_connection(("127.0.0.1", self.esg.ports["tls"]), timeout=timeout)
        return ctx.wrap_socket(raw, server_hostname="127.0.0.1")

    def test_accounts_verify_the_registrar_unless_told_not_to(self):
        # The "registrar" is esg's own TLS listener, with a certificate no system CA signed: an
        # account with tls_verify=false gets through (esg's registrar challenges it and, with no
        # register-in PBX connection named alice, refuses it 403), one with the default
        # verification never gets a TLS session.
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
        from rest_api import Api
        api = Api(self.esg.ports["http"])
        base = {"username": "alice", "pwd": "x", "domain": "provider.test",
                "proxyaddr": "127.0.0.1", "proxyport": self.esg.ports["tls"], "transport": "tls"}
        for code, verify in (("tls-unverified", False), ("tls-verified", True)):
            status, a = api.call("POST", "/rest/v1/uc/providers",
                                 dict(base, code=code, tls_verify=verify))
            self.assertEqual(status, 201, a)
            self.addCleanup(api.call, "DELETE", "/rest/v1/uc/providers/%d" % a["id"])
        reg = api.wait_reg("tls-unverified", ("auth_failed",))
        self.assertEqual(reg["last_response"][0], "SIP/2.0 403 Forbidden")
        reg = api.wait_reg("tls-verified", ("failed",))
        self.assertEqual(reg["last_response"], [])
        # At once, naming the error (not Timer F's "no answer (timeout)" 64*T1 later).
        self.assertTrue(reg["reason"].startswith(
            "transport error: TLS certificate verification failed: self-signed certificate"),
            reg)

    def test_options_over_tls(self):
        with self.connect() as c:
            c.sendall(options("tls-1").replace(b"SIP/2.0/UDP", b"SIP/2.0/TLS"))
            data = read_answer(c)
        self.assertEqual(status_of(data), 200, data)

    def test_rfc4475_messages_over_tls(self):
        for n, name in enumerate(sorted(TORTURE)):
            want = None if name in ("clerr", "baddn") else TORTURE[name]
            with self.subTest(name=name), self.connect(timeout=1.0) as c:
                c.sendall(unique(torture(name), "tls%d" % n))
                data = read_answer(c)
                self.assertEqual(status_of(data) if data else None, want, "%s: %r" % (name, data[:80]))

    def test_plain_bytes_on_the_tls_port_fail_the_handshake_only(self):
        with socket.create_connection(("127.0.0.1", self.esg.ports["tls"]), timeout=3) as raw:
            raw.sendall(options("not-tls"))
            try:
                self.assertIn(raw.recv(100)[:1], (b"", b"\x15"))  # closed, or a TLS alert
            except ConnectionError:
                pass
        self.test_options_over_tls()


if __name__ == "__main__":
    unittest.main()
