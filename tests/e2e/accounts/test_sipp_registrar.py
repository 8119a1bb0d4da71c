"""What Kamailio can't easily do, with SIPp as the registrar: a 407 challenge, a stale nonce,
and no answer at all."""

import os
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "sipp"))
sys.path.insert(0, HERE)
from esg_fixture import EsgTestCase  # noqa: E402
from kamailio_fixture import free_port  # noqa: E402
from test_registration import Api, account  # noqa: E402
from test_ua import wait_listening  # noqa: E402


class SippRegistrar(EsgTestCase):
    extra_config = {"listen": [{"proto": "udp", "addr": "127.0.0.1", "port": 0}],
                    "transport": {"t1": 50}, "accounts": {"retry_min": 30, "retry_max": 60}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.api = Api(cls.esg.ports["http"])

    def registrar(self, scenario):
        cwd = tempfile.mkdtemp(prefix="esg-sipp-reg-")
        for _ in range(3):
            port = free_port()
            p = subprocess.Popen(["sipp", "-sf", os.path.join(HERE, scenario), "-i", "127.0.0.1",
                                  "-p", str(port), "-m", "1", "-nostdin", "-nd", "-trace_err",
                                  "-timeout", "30"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 cwd=cwd)
            try:
                wait_listening(port, "u1")
            except RuntimeError:
                p.kill()
                p.wait()
                continue
            if p.poll() is None:
                return p, port
        raise RuntimeError("sipp did not start")

    def run_account(self, scenario, code, states):
        sipp, port = self.registrar(scenario)
        try:
            status, a = self.api.call("POST", "/rest/v1/uc/providers", account(code, port))
            self.assertEqual(status, 201, a)
            self.addCleanup(self.api.call, "DELETE", "/rest/v1/uc/providers/%d" % a["id"])
            reg = self.api.wait_reg(code, states, seconds=20)
            out, _ = sipp.communicate(timeout=30)
            return reg, sipp.returncode, out
        finally:
            if sipp.poll() is None:
                sipp.kill()
                sipp.wait()

    def test_407_is_answered_with_proxy_authorization(self):
        reg, rc, out = self.run_account("reg_407.xml", "p407", ("registered",))
        self.assertEqual(rc, 0, out[-2000:])
        self.assertEqual(reg["expires"], 60)

    def test_a_stale_nonce_is_answered_again(self):
        reg, rc, out = self.run_account("reg_stale.xml", "stale", ("registered", "auth_failed"))
        self.assertEqual(reg["regstate"], "registered")
        self.assertEqual(rc, 0, out[-2000:])

    def test_no_answer_is_failed(self):
        started = time.time()
        reg, _, _ = self.run_account("reg_silent.xml", "silent", ("failed",))
        self.assertEqual(reg["reason"], "no answer (timeout)")
        self.assertLess(time.time() - started, 15)  # Timer F = 64 * T1 = 3.2 s here


if __name__ == "__main__":
    unittest.main()
