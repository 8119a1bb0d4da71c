"""The external address from STUN: coturn (Debian's, STUN only) on loopback answers esg's
Binding requests; the address it reports becomes one of the instance's extaddrs, visible in
the monitoring API and the firewall list. A server that does not answer is reported as such,
and esg keeps going."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from esg_fixture import EsgProcess, KeepOnFailure, stop_all  # noqa: E402
from rest_api import Api  # noqa: E402
from sipp_fixture import free_port  # noqa: E402


class Coturn:
    def __init__(self, ip="127.0.0.1"):
        self.dir = tempfile.mkdtemp(prefix="esg-coturn-")
        self.port = free_port(ip)
        self.out = open(os.path.join(self.dir, "turn.log"), "w")
        self.proc = subprocess.Popen(
            ["turnserver", "--stun-only", "-L", ip, "--listening-port", str(self.port),
             "--no-cli", "--no-tls", "--no-dtls", "--userdb", os.path.join(self.dir, "turndb"),
             "--log-file", "stdout", "--simple-log", "--pidfile", os.path.join(self.dir, "pid")],
            stdout=self.out, stderr=subprocess.STDOUT)
        time.sleep(0.5)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cleanup(self, keep):
        self.out.close()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)


class Stun(KeepOnFailure):
    @classmethod
    def setUpClass(cls):
        cls.stun = Coturn()
        cls.dead = free_port("127.0.0.1")  # nobody answers there
        try:
            cls.esg = EsgProcess({"stun": {"server": "127.0.0.1:%d" % cls.stun.port,
                                           "interval": 10}})
            cls.silent = EsgProcess({"stun": {"server": "127.0.0.1:%d" % cls.dead,
                                              "interval": 10}})
        except Exception:
            cls.stun.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        stop_all(cls.failed, cls.silent)
        stop_all(cls.failed, cls.esg, cls.stun)

    def instance(self, esg):
        return Api(esg.ports["http"]).ok("GET", "/api/monitor/v1/esg/instance")["data"]

    def test_the_mapped_address_becomes_an_external_address(self):
        deadline = time.time() + 5
        while time.time() < deadline:
            info = self.instance(self.esg)
            if info["stun"]["address"]:
                break
            time.sleep(0.1)
        self.assertEqual(info["stun"]["address"], "127.0.0.1", info)
        self.assertGreater(info["stun"]["port"], 0)
        self.assertEqual(info["stun"]["error"], "")
        self.assertIn("127.0.0.1", info["extaddrs"])
        # The firewall list (issue 23) names what STUN found as a source of the instance.
        fw = Api(self.esg.ports["http"]).ok("GET", "/api/monitor/v1/esg/fw")["data"]
        found = {a["addr"]: a["instances"][0] for a in fw["addresses"]}
        self.assertIn("stun", found["127.0.0.1"]["from"], fw)
        self.assertEqual(found["127.0.0.1"]["uses"], ["sip", "rtp"], fw)

    def test_a_server_that_does_not_answer_is_reported(self):
        deadline = time.time() + 10
        while time.time() < deadline:
            info = self.instance(self.silent)
            if info["stun"]["error"]:
                break
            time.sleep(0.2)
        self.assertEqual(info["stun"]["error"], "no answer from 127.0.0.1:%d" % self.dead)
        self.assertEqual(info["extaddrs"], [])
        self.assertTrue(self.silent.alive())


if __name__ == "__main__":
    unittest.main()
