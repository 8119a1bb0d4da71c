"""esg's Telegram calls with late, reordered and duplicated signaling (issue 22): the simulator
delays every signaling blob it relays between esg and tgpeer by 150 ms plus up to 300 ms of
jitter, swaps pairs of blobs and sends 30 % of them twice, both ways (call.signaling); the call
must still connect, relay-only through the test reflector (NET.reflector, with the call's
peer_tag from call.network reflectors), with audio both ways by frequency, for 8.0.0 and 9.0.0
in both directions. tgpeer (the real tgcalls) is the judge on the other side."""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
import test_media_engine as engine  # noqa: E402

IMPAIRMENT = {"delay_ms": 150, "jitter_ms": 300, "reorder": True, "duplicate": 0.3, "seed": 22}


def setUpModule():
    engine.setUpModule()


def tearDownModule():
    engine.tearDownModule()


class ImpairedSignaling(engine.EngineCase):
    p2p = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.reflector = engine.NET.reflector(port=5980)
            cls.sim.ctl("call.network", servers=[], reflectors=[cls.reflector.entry],
                        allow_p2p=False)
            cls.sim.ctl("call.signaling", **IMPAIRMENT)
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        r = getattr(cls, "reflector", None)
        if r:
            r.close()
        super().tearDownClass()

    def call(self, direction, version):
        before = {c["id"] for c in self.sim.ctl("calls")["calls"]}
        self.reflector.reset()
        self.talk_both_ways(direction, version, "reflector")
        [call] = [c for c in self.sim.ctl("calls")["calls"] if c["id"] not in before]
        sig = call["signaling"]
        # The impairment did happen, both ways.
        for d in ("to_peer", "to_client"):
            self.assertGreaterEqual(sig[d]["max_delay_ms"], 150, sig)
            self.assertGreater(sig[d]["reordered"], 0, sig)
        self.assertGreater(sig["to_peer"]["duplicated"] + sig["to_client"]["duplicated"], 0, sig)
        # The media went through the reflector (a 4 s call: about 250 packets or more).
        self.assertGreater(self.reflector.stats()["forwarded"], 150)

    def test_9_0_0_from_telegram(self):
        self.call("from_telegram", "9.0.0")

    def test_9_0_0_to_telegram(self):
        self.call("to_telegram", "9.0.0")

    def test_8_0_0_from_telegram(self):
        self.call("from_telegram", "8.0.0")

    def test_8_0_0_to_telegram(self):
        self.call("to_telegram", "8.0.0")


if __name__ == "__main__":
    unittest.main()
