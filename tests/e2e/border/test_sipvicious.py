"""Attackers with the real tools (Debian's sipvicious) on loopback: the attacker from 127.0.0.2
(127.0.0.3 for svwar), the trusted peer from 127.0.0.1.

- With a whitelist (allow 127.0.0.1, then drop everything), svmap finds nothing and esg sends
  not one packet to 127.0.0.2 (trn log, and a socket of our own at 127.0.0.2 hears nothing).
- Without it, svcrack against a register-in PBX account is banned after the threshold and gets
  silence afterwards: the right password is in its dictionary, past the threshold, and it must
  not find it. svwar finds no extension: esg answers unknown and known users alike.
- The trusted peer registers and is answered throughout.
The tools run through sipvicious_bound.py, which makes svwar and svcrack honour -b (0.3.3
ignores it) and keeps them on loopback."""

import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from esg_fixture import EsgProcess, KeepOnFailure, ask_options, stop_all  # noqa: E402
from rest_api import Api  # noqa: E402
from sipp_fixture import SippPeer, free_port  # noqa: E402

SCENARIOS = os.path.join(HERE, "..", "calls")
SHIM = os.path.join(HERE, "sipvicious_bound.py")



class Attackers(KeepOnFailure):
    home = None

    @classmethod
    def setUpClass(cls):
        cls.home = tempfile.mkdtemp(prefix="esg-sipvicious-")  # the tools keep sessions there

    def sv(self, tool, ip, *args):
        cmd = [sys.executable, SHIM, tool, "-b", ip, "-x", ip, "-p", str(self.esg.ports["udp"])]
        cmd += list(args) + ["127.0.0.1"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=90,
                           env=dict(os.environ, HOME=self.home))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout + r.stderr

    def register_trusted(self):
        port = free_port("127.0.0.1")
        reg = SippPeer(os.path.join(SCENARIOS, "pbx_register.xml"), "127.0.0.1", port=port,
                       remote="127.0.0.1:%d" % self.esg.ports["udp"],
                       keys={"user": "trusted", "domain": "pbx.esg.test"},
                       extra=["-au", "trusted", "-ap", "trusted-pwd"])
        try:
            self.assertEqual(reg.wait(), 0, reg.output())
        finally:
            reg.stop()
            reg.cleanup(keep=False)

    def sends_to(self, ip):
        return [l for l in self.esg.trn_lines() if " Send to udp %s:" % ip in l]


class Whitelist(Attackers):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.esg = EsgProcess()
        cls.api = Api(cls.esg.ports["http"])
        cls.api.ok("POST", "/rest/v1/uc/pbx", {"code": "trusted", "mode": "register-in",
                                               "username": "trusted", "pwd": "trusted-pwd"})
        cls.api.ok("POST", "/rest/v1/master/borderrules",
                   {"priority": 10, "action": "allow", "address": "127.0.0.1"})
        cls.api.ok("POST", "/rest/v1/master/borderrules",
                   {"priority": 100, "action": "drop", "address": "0.0.0.0/0"})

    @classmethod
    def tearDownClass(cls):
        stop_all(cls.failed, cls.esg)

    def test_svmap_finds_nothing_and_gets_not_one_packet(self):
        self.register_trusted()
        out = self.sv("svmap", "127.0.0.2")
        self.assertNotIn("127.0.0.1:%d" % self.esg.ports["udp"], out)
        self.assertIn("found nothing", out)
        self.assertIsNone(ask_options(self.esg.ports["udp"], "127.0.0.2"))  # our own socket there
        self.assertEqual(ask_options(self.esg.ports["udp"], "127.0.0.1"), 200)
        self.register_trusted()
        self.assertEqual(self.sends_to("127.0.0.2"), [])
        self.assertTrue(any(" Recv from udp 127.0.0.2:" in l and l.endswith(" BANNED")
                            for l in self.esg.trn_lines()))
        counters = self.api.ok("GET", "/api/monitor/v1/border")["data"]["counters"]
        self.assertGreaterEqual(counters["dropped_by_rule"], 2)


class NoWhitelist(Attackers):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The flood limit stays out of the way: the bans are what this class is about.
        cls.esg = EsgProcess({"security": {"ban": {"failures": 5, "window": 60,
                                                   "duration": 3600},
                                           "pike": {"requests": 1000}}})
        cls.api = Api(cls.esg.ports["http"])
        for code, user, pwd in (("trusted", "trusted", "trusted-pwd"),
                                ("office", "101", "correct-horse")):
            cls.api.ok("POST", "/rest/v1/uc/pbx", {"code": code, "mode": "register-in",
                                                   "username": user, "pwd": pwd})

    @classmethod
    def tearDownClass(cls):
        stop_all(cls.failed, cls.esg)

    def test_svcrack_is_banned_after_the_threshold_and_gets_silence(self):
        self.register_trusted()
        words = os.path.join(self.home, "words.txt")
        with open(words, "w") as f:
            f.write("\n".join(["guess%d" % i for i in range(20)] + ["correct-horse"]) + "\n")
        out = self.sv("svcrack", "127.0.0.2", "-u", "101", "-d", words, "--maximumtime", "3")
        self.assertNotIn("correct-horse", out)
        self.assertIn("found nothing", out)
        ban = next(b for b in self.api.ok("GET", "/rest/v1/master/bans")["items"]
                   if b["address"] == "127.0.0.2")
        self.assertIn("authentication of '101' failed", ban["reason"])
        # Five 403s (and the challenges before them), then nothing.
        forbidden = [l for l in self.sends_to("127.0.0.2") if "SIP/2.0 403" in l]
        self.assertEqual(len(forbidden), 5, forbidden)
        self.assertTrue(any(" Recv from udp 127.0.0.2:" in l and l.endswith(" BANNED")
                            for l in self.esg.trn_lines()))
        self.assertIsNone(ask_options(self.esg.ports["udp"], "127.0.0.2"))
        self.assertEqual(ask_options(self.esg.ports["udp"], "127.0.0.1"), 200)
        self.register_trusted()

    def test_svwar_finds_no_extension(self):
        # REGISTER scan: every user is challenged alike, so svwar gives up on its sanity check.
        out = self.sv("svwar", "127.0.0.3", "-e", "95-110", "--maximumtime", "3")
        self.assertIn("found nothing", out)
        self.assertNotIn("| 101", out)
        self.assertTrue(any("SIP/2.0 401" in l for l in self.sends_to("127.0.0.3")))
        # INVITE scan: every user is unknown alike (404), and the scanner is banned for it.
        out = self.sv("svwar", "127.0.0.4", "-e", "95-110", "-m", "INVITE", "--maximumtime", "3")
        self.assertIn("found nothing", out)
        self.assertNotIn("| 101", out)
        self.assertTrue(any(b["address"] == "127.0.0.4"
                            for b in self.api.ok("GET", "/rest/v1/master/bans")["items"]))
        self.register_trusted()


if __name__ == "__main__":
    unittest.main()
