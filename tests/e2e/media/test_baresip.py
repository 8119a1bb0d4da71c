"""baresip as a phone (provider prov-a at 127.0.0.2) calls through esg to a SIPp PBX that
echoes RTP: the phone sends a 1,000 Hz tone and must hear it back, through the relay in
G.711 and through two transcodings when the PBX speaks Opus only."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from baresip_phone import BaresipPhone  # noqa: E402
from media_case import DID, MediaCase  # noqa: E402
from sip_call import tone_share  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


class Baresip(MediaCase):
    media = {"ports": [24200, 24499], "timeout": 30}

    def phone(self, **kwargs):
        p = BaresipPhone("127.0.0.2", "sip:%s@127.0.0.1:%d" % (DID, self.esg.ports["udp"]),
                         **kwargs)
        self.addCleanup(lambda: p.stop(keep=self.failed))
        return p

    def assert_hears_its_tone(self, phone):
        self.assertEqual(phone.wait(), 0, phone.output())
        pcm, rate = phone.heard()
        self.assertEqual(rate, 8000, phone.output())
        # What arrived after the first second (the jitter buffer and codecs settle), to the end.
        heard = pcm[rate:]
        loud = [x for x in heard if abs(x) > 500]
        self.assertGreater(len(loud), rate, "at least a second of sound: %d" % len(loud))
        self.assertGreater(tone_share(heard, 1000), 0.7)
        self.assertLess(tone_share(heard, 1400), 0.05)

    def test_the_phone_hears_its_tone_echoed_through_the_relay(self):
        pbx, _ = self.echoing_pbx()
        phone = self.phone(seconds=5)
        self.assert_hears_its_tone(phone)
        self.assertEqual(pbx.wait(), 0, pbx.output())  # the phone hung up with BYE
        invite = pbx.received("INVITE")[0]
        self.assertRegex(invite, r"(?m)^c=IN IP4 127\.0\.0\.1")  # media through esg

    def test_the_phone_hears_its_tone_through_opus_and_back(self):
        self.api.ok("PATCH", "/rest/v1/uc/pbx/%d" % self.pbx["id"], {"codecs": ["opus"]})
        self.addCleanup(self.api.ok, "PATCH", "/rest/v1/uc/pbx/%d" % self.pbx["id"],
                        {"codecs": ["PCMA", "PCMU"]})
        pbx, _ = self.echoing_pbx(os.path.join(HERE, "uas_answer_opus.xml"))
        phone = self.phone(seconds=5, codecs="PCMU")
        self.assert_hears_its_tone(phone)
        self.assertEqual(pbx.wait(), 0, pbx.output())
        self.assertRegex(pbx.received("INVITE")[0], r"(?m)^m=audio \d+ RTP/AVP 96")


if __name__ == "__main__":
    unittest.main()
