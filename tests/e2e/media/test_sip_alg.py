"""SIP-ALG end to end: esg "behind a NAT" thinks of itself as 127.0.0.1 (gray) while the world
knows it as 127.0.0.20 (white; esg listens on every address, so packets to it arrive). A call
from the provider to the white address reaches the PBX; on the wire every address of esg's is
the white one (Via, Contact, SDP), inside esg saw the gray one, and the call and its media
work."""

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from esg_fixture import EsgProcess, KeepOnFailure, stop_all  # noqa: E402
from rest_api import Api  # noqa: E402
from sipp_fixture import SippPeer, free_port  # noqa: E402
from sip_call import RtpPort, UdpCall, sdp_media  # noqa: E402

CALLS = os.path.join(HERE, "..", "calls")
WHITE, GRAY = "127.0.0.20", "127.0.0.1"


class SipAlg(KeepOnFailure):
    @classmethod
    def setUpClass(cls):
        cls.esg = EsgProcess({"instance": {"workers": 2, "domain": "pbx.esg.test",
                                           "sip_alg": [{"gray": GRAY, "white": WHITE}]},
                              "media": {"ports": [22000, 22999]}},
                             listen=(("udp", "0.0.0.0"),))
        cls.api = Api(cls.esg.ports["http"])
        cls.peers = []
        cls.api.ok("POST", "/rest/v1/uc/providers",
                   {"code": "prov-a", "domain": "127.0.0.2", "reg": False, "username": ""})
        cls.pbx = cls.api.ok("POST", "/rest/v1/uc/pbx",
                             {"code": "pbx1", "mode": "ip", "address": "127.0.0.5", "port": 5060})
        cls.api.ok("POST", "/rest/v1/routing/rules",
                   {"priority": 100, "direction": "in", "action": "pbx", "target": "pbx1"})

    @classmethod
    def tearDownClass(cls):
        stop_all(cls.failed, cls.esg, *cls.peers)

    def test_the_white_address_on_the_wire_and_the_gray_one_inside(self):
        media_port = free_port("127.0.0.5")
        pbx = SippPeer(os.path.join(CALLS, "uas_answer.xml"), "127.0.0.5",
                       extra=["-mi", "127.0.0.5", "-mp", str(media_port), "-rtp_echo"])
        type(self).peers.append(pbx)
        self.api.ok("PATCH", "/rest/v1/uc/pbx/%d" % self.pbx["id"], {"port": pbx.port})
        rtp = RtpPort("127.0.0.2")
        self.addCleanup(rtp.close)
        c = UdpCall(self.esg.ports["udp"], "127.0.0.2", "74951234567", rtp.port, to_host=WHITE,
                    esg_host=WHITE)
        self.addCleanup(c.close)
        self.assertEqual(c.status, 200, c.responses)
        # What the PBX got from esg: white everywhere, gray nowhere.
        invite = pbx.received("INVITE")[0]
        self.assertIn("Via: SIP/2.0/UDP %s:" % WHITE, invite)
        self.assertIn("@%s:" % WHITE, invite.split("Contact:", 1)[1].split("\n", 1)[0])
        self.assertIn("c=IN IP4 %s" % WHITE, invite)
        self.assertNotIn(GRAY, invite)
        # What the provider got: the same.
        self.assertIn("@%s:" % WHITE, c.final.split("Contact:", 1)[1].split("\n", 1)[0])
        addr, port = sdp_media(c.answer)
        self.assertEqual(addr, WHITE)
        self.assertNotIn(GRAY, c.final)
        # Inside, esg saw its gray address in the To the provider addressed to the white one.
        call = self.api.ok("GET", "/api/monitor/v1/calls/" + c.call_id)["data"]
        self.assertEqual(call["to_domain"], GRAY)
        # The trn log holds the wire: white in, white out.
        lines = [l for l in self.esg.trn_lines() if c.call_id in l]
        self.assertTrue(any("Recv from udp 127.0.0.2:" in l and
                            "INVITE sip:74951234567@%s:" % WHITE in l for l in lines), lines[:2])
        # Media through the white address.
        rtp.send((addr, port), count=20)
        time.sleep(0.5)
        self.assertGreaterEqual(len(rtp.packets), 15)
        self.assertEqual(c.bye(), 200)
        self.assertEqual(pbx.wait(), 0, pbx.output())


if __name__ == "__main__":
    unittest.main()
