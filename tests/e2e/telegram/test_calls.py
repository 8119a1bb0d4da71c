"""Telegram calls through a line, both ways, against the simulator (tests/tgsim: NOT Telegram)
and a PBX on loopback (tests/e2e/lib/pbx_uas.py): the caller ID and name the PBX sees in each
line mode, audio both ways (Opus on the Telegram side, G.711 at the PBX, checked by
frequency), calling back the caller ID shown, Telegram's answers as SIP statuses with their
Reason, flood waits, the daily limit, chat digits as DTMF, and hang-up from either side."""

import base64
import os
import struct
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from esg_fixture import EsgProcess, KeepOnFailure, stop_all  # noqa: E402
from pbx_uas import PbxUas  # noqa: E402
from rest_api import Api  # noqa: E402
from sip_call import RtpPort, UdpCall, alaw_pcm, sdp_media, tone_share  # noqa: E402
from tgsim_fixture import LIB, TgSim  # noqa: E402

API_HASH = "0123456789abcdef0123456789abcdef"
LINES = "/rest/v1/telegram/lines"
PBX_IP = "127.0.0.5"


def sip_user(header_value):
    """The user part and display name of a From/To value."""
    import re
    m = re.match(r'\s*(?:"((?:[^"\\]|\\.)*)"\s*)?<sip:([^@>]*)@', header_value)
    return (m.group(2), m.group(1)) if m else (None, None)


class CallsCase(KeepOnFailure):
    line_fields = {}

    @classmethod
    def setUpClass(cls):
        cls.sim = TgSim()
        cls.pbx = PbxUas(PBX_IP)
        folder = tempfile.mkdtemp(prefix="esg-e2e-")
        try:
            cls.esg = EsgProcess({"telegram": {"tdjson": LIB,
                                               "sessions": os.path.join(folder, "telegram")},
                                  "media": {"ports": [25000, 25499], "timeout": 30}},
                                 env=cls.sim.env(), folder=folder)
            cls.api = Api(cls.esg.ports["http"])
            cls.api.ok("POST", "/rest/v1/uc/pbx", {"code": "pbx1", "mode": "ip",
                                                   "address": PBX_IP, "port": cls.pbx.port})
            cls.account = cls.sim.user(phone="+79990001000", code="24680", first_name="Line",
                                       username="esg_line")
            cls.line = cls.api.ok("POST", LINES, dict({
                "code": "tg1", "api_id": 12345, "api_hash": API_HASH, "phone": "+79990001000",
                "pbx": "pbx1", "number": "100", "ring_timeout": 5}, **cls.line_fields),
                want=(201,))
            cls.login_line(cls.line["id"])
            # Calls from the PBX to Telegram: everything the PBX dials goes to the line.
            cls.api.ok("POST", "/rest/v1/routing/rules",
                       {"priority": 10, "direction": "out", "source": "pbx1",
                        "action": "telegram", "target": "tg1"})
        except Exception:
            stop_all(True, getattr(cls, "esg", None), cls.sim, cls.pbx)
            raise

    @classmethod
    def login_line(cls, line_id):
        deadline = time.time() + 10
        while cls.line_state(line_id)["state"] != "wait_phone" and time.time() < deadline:
            time.sleep(0.05)
        cls.api.ok("POST", "%s/%d/login" % (LINES, line_id), {})
        cls.api.ok("POST", "%s/%d/login" % (LINES, line_id), {"code": "24680"})
        while cls.line_state(line_id)["state"] != "ready" and time.time() < deadline:
            time.sleep(0.05)

    @classmethod
    def line_state(cls, line_id):
        lines = cls.api.ok("GET", "/api/monitor/v1/telegram/lines")["data"]["lines"]
        return next(l for l in lines if l["id"] == line_id)

    @classmethod
    def tearDownClass(cls):
        stop_all(cls.failed, cls.esg, cls.sim, cls.pbx)

    def set_line(self, **fields):
        self.api.ok("PATCH", "%s/%d" % (LINES, self.line["id"]), fields)
        time.sleep(0.2)  # applied on the line's worker

    def call_state(self, call_id, state, seconds=10):
        deadline = time.time() + seconds
        while True:
            s = self.sim.ctl("call.state", call_id=call_id)
            if s["state"] == state or time.time() > deadline:
                self.assertEqual(s["state"], state, s)
                return s
            time.sleep(0.05)

    def recorded(self, call_id):
        raw = base64.b64decode(self.sim.ctl("call.recorded", call_id=call_id)["pcm"])
        return struct.unpack("<%dh" % (len(raw) // 2), raw)

    def dial(self, number, seconds=10):
        """A call from the PBX to esg for `number`, with an RTP port of its own."""
        port = RtpPort(PBX_IP)
        self.addCleanup(port.close)
        call = UdpCall(self.esg.ports["udp"], PBX_IP, number, port.port, timeout=seconds)
        self.addCleanup(call.close)
        return call, port

    def reason(self, call):
        return PbxUas.header(call.final, "Reason") or ""


class FromTelegram(CallsCase):
    def incoming(self, user):
        before = len(self.pbx.invites)
        call_id = self.sim.ctl("call.incoming", **{"from": user, "to": self.account})["call_id"]
        invite = self.pbx.wait("invites", before + 1)
        return call_id, invite

    def test_a_telegram_user_rings_the_pbx_and_talks_both_ways(self):
        uid = self.sim.user(first_name="Ivan", last_name="Petrov", username="ivanp",
                            phone="+79991234567", phone_visible=True, tone=1000)
        call_id, invite = self.incoming(uid)
        user, name = sip_user(PbxUas.header(invite, "From"))
        self.assertEqual(user, "*%d" % uid)
        self.assertEqual(name, "Ivan Petrov")
        self.assertTrue(invite.startswith("INVITE sip:100@"), invite.split("\r\n")[0])
        self.assertEqual(PbxUas.header(invite, "X-TG-ID"), str(uid))
        self.assertEqual(PbxUas.header(invite, "X-TG-Username"), "ivanp")
        self.assertEqual(PbxUas.header(invite, "X-TG-Phone"), "+79991234567")
        self.assertEqual(PbxUas.header(invite, "X-TG-Name"), "Ivan Petrov")
        self.assertIn("PCMA/8000", invite)  # the PBX is offered G.711, not Opus
        # The PBX answers: the Telegram call is accepted.
        self.call_state(call_id, "Ready")
        relay = sdp_media(invite.split("\r\n\r\n", 1)[1])
        self.pbx.rtp.send_tone(relay, 440, count=100)
        # The user's 1 kHz tone reaches the PBX in A-law; the PBX's 440 Hz reaches the user.
        heard = [p for p in self.pbx.rtp.packets if p[4] == 8]
        self.assertGreater(len(heard), 40)
        self.assertGreater(tone_share(alaw_pcm(heard[-40:]), 1000), 0.5)
        pcm = self.recorded(call_id)
        self.assertGreater(len(pcm), 48000)
        self.assertGreater(tone_share(pcm[-48000:], 440, rate=48000), 0.5)
        # The PBX hangs up: the Telegram call ends.
        self.pbx.bye()
        s = self.call_state(call_id, "Discarded")
        self.assertEqual(s["reason"], "callDiscardReasonHungUp")


if __name__ == "__main__":
    unittest.main()
