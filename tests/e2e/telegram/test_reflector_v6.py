"""esg's reflector ports per address family (issue 22, TELEGRAM-CALLS.md §5.1): one reflector
id served on IPv4 and IPv6 (the test reflector on 192.0.2.2 and 2001:db8::2 under one table),
a second id on IPv4 only and a TCP entry nobody serves, all handed out by the simulator with
the call's own peer_tag (NET.reflector, call.network reflectors). esg opens a port per local
address and family on each UDP reflector, skips and counts the TCP one, and the relay-only call
with tgpeer (the real tgcalls) carries the tone both ways through one of the two ids."""

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
import test_media_engine as engine  # noqa: E402


def setUpModule():
    engine.setUpModule()


def tearDownModule():
    engine.tearDownModule()


class IPv4AndIPv6(engine.EngineCase):
    p2p = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.dual = engine.NET.reflector(port=5995, ipv6=True)
            cls.v4 = engine.NET.reflector(port=5996)
            cls.sim.ctl("call.network", servers=[], allow_p2p=False, reflectors=[
                cls.dual.entry, cls.v4.entry, engine.NET.tcp_reflector(port=5997)])
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for r in (getattr(cls, "dual", None), getattr(cls, "v4", None)):
            if r:
                r.close()
        super().tearDownClass()

    def test_9_0_0_from_telegram(self):
        call_id, port, dest, invite = self.from_telegram(library_versions=["9.0.0"])
        self.wait_peer(call_id)
        tone = engine.ToneSender(port, dest)
        self.addCleanup(tone.stop)
        time.sleep(4)
        self.assert_tones(call_id, port, what="through a reflector")
        info = self.telegram_info()
        self.assertEqual(info["path"], "reflector", info)
        self.assertIn(info.get("reflector_id"), (1, 2), info)  # ids ranked: 1 dual, 2 v4
        self.assertEqual(info.get("skipped_tcp_reflectors"), 1, info)
        ports = info.get("reflectors", [])
        # Server 1 is reached over both families, server 2 over IPv4 only, all ready.
        v6 = [r for r in ports if r["id"] == 1 and r["address"].startswith("[2001:db8::2]")]
        self.assertTrue(v6 and all(r["ready"] for r in v6), ports)
        self.assertTrue(all(r["id"] == 1 for r in ports if r["address"].startswith("[")), ports)
        self.assertTrue(any(r["id"] == 2 and r["ready"] for r in ports), ports)
        # The test reflectors saw the media (the chosen one) and every port's hellos.
        dual, v4 = self.dual.stats(), self.v4.stats()
        self.assertGreater(dual["forwarded"] + v4["forwarded"], 150, (dual, v4))
        self.assertGreater(dual["hellos"], v4["hellos"], (dual, v4))  # the IPv6 ports too
        self.hang_up_from_pbx(call_id, invite)


if __name__ == "__main__":
    unittest.main()
