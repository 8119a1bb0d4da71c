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
from media_case import MediaCase  # noqa: E402
from sip_call import sdp_media  # noqa: E402

WHITE, GRAY = "127.0.0.20", "127.0.0.1"


class SipAlg(MediaCase):
    instance = {"sip_alg": [{"gray": GRAY, "white": WHITE}]}
    media = {"ports": [22000, 22999]}
    listen = (("udp", "0.0.0.0"),)  # so that packets to the white address arrive

    def test_the_white_address_on_the_wire_and_the_gray_one_inside(self):
        pbx, _ = self.echoing_pbx()
        rtp = self.port()
        c = self.call(rtp, to_host=WHITE, esg_host=WHITE)
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
