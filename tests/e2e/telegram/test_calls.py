"""Telegram calls through a line, both ways, against the simulator (tests/tgsim: NOT Telegram)
and a PBX on loopback (tests/e2e/lib/pbx_uas.py): the caller ID and name the PBX sees in each
line mode, audio both ways (Opus on the Telegram side, G.711 at the PBX, checked by
frequency), calling back the caller ID shown, Telegram's answers as SIP statuses with their
Reason, flood waits, the daily limit, chat digits as DTMF, and hang-up from either side.

The simulated users' apps run tgpeer (Telegram's own call library) against esg's engine, so
everything runs in a network namespace of the test's own (TgNet): WebRTC gathers no candidates
on loopback, and outside the namespace the peers would meet on the machine's own addresses."""

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
from tgnet import TgNet  # noqa: E402
from tgsim_fixture import LIB, TgSim  # noqa: E402
from webhook_receiver import Receiver, free_tcp_port, signed_event  # noqa: E402

API_HASH = "0123456789abcdef0123456789abcdef"
LINES = "/rest/v1/telegram/lines"
PBX_IP = "127.0.0.5"
NET = None


def setUpModule():
    global NET
    why = TgNet.unavailable()
    if why:
        raise unittest.SkipTest(why)
    NET = TgNet().__enter__()


def tearDownModule():
    if NET:
        NET.close()


def sip_user(header_value):
    """The user part and display name of a From/To value."""
    import re
    m = re.match(r'\s*(?:"((?:[^"\\]|\\.)*)"\s*)?<sip:([^@>]*)@', header_value)
    return (m.group(2), m.group(1)) if m else (None, None)


class CallsCase(KeepOnFailure):
    line_fields = {}
    extra_config = {}  # more of esg's config

    @classmethod
    def setUpClass(cls):
        cls.sim = TgSim()
        cls.pbx = PbxUas(PBX_IP)
        folder = tempfile.mkdtemp(prefix="esg-e2e-")
        try:
            cls.config = {"telegram": {"tdjson": LIB,
                                       "sessions": os.path.join(folder, "telegram")},
                          "media": {"ports": [25000, 25499], "timeout": 30}}
            cls.config.update(cls.extra_config)
            cls.esg = EsgProcess(cls.config, env=cls.sim.env(), folder=folder)
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

    def test_each_caller_id_mode_and_the_caller_name(self):
        uid = self.sim.user(first_name="Anna", last_name="Smirnova", username="annas",
                            phone="+79991112233", phone_visible=True, tone=1000)
        hidden = self.sim.user(first_name="Oleg", username="", phone="+79994445566", tone=1000)
        quoted = self.sim.user(first_name='Ivan "Vanya"', last_name="Back\\slash", tone=1000)
        cases = [({"callerid": "username", "callername": ["name", "username", "phone"]}, uid,
                  "annas", "Anna Smirnova (@annas, +79991112233)"),
                 ({"callerid": "phone", "callername": ["username"]}, uid, "+79991112233",
                  "@annas"),
                 # Hidden phone, no username: the user id, wrapped in the line's affixes.
                 ({"callerid": "phone", "callerid_prefix": "#", "callerid_suffix": "*",
                   "callername": ["name"]}, hidden, "%23" + str(hidden) + "*", "Oleg"),
                 ({"callerid": "username", "callerid_prefix": "*", "callerid_suffix": ""},
                  hidden, "*" + str(hidden), "Oleg"),
                 # Quotes and backslashes in a name are escaped in the quoted display name.
                 ({"callerid": "userid", "callername": ["name"]}, quoted, "*" + str(quoted),
                  'Ivan \\"Vanya\\" Back\\\\slash')]
        try:
            for fields, who, want_user, want_name in cases:
                self.set_line(**fields)
                call_id, invite = self.incoming(who)
                user, name = sip_user(PbxUas.header(invite, "From"))
                self.assertEqual((user, name), (want_user, want_name), fields)
                # The PBX answers and a tone passes each way (Opus at Telegram, A-law here).
                self.call_state(call_id, "Ready")
                self.pbx.rtp.send_tone(sdp_media(invite.split("\r\n\r\n", 1)[1]), 440,
                                       count=60)
                heard = [p for p in self.pbx.rtp.packets if p[4] == 8]
                self.assertGreater(tone_share(alaw_pcm(heard[-40:]), 1000), 0.5, fields)
                self.assertGreater(tone_share(self.recorded(call_id)[-48000:], 440, rate=48000),
                                   0.5, fields)
                self.pbx.bye(call_id=PbxUas.header(invite, "Call-ID"))
                self.call_state(call_id, "Discarded")
        finally:
            self.set_line(callerid="userid", callerid_prefix="*", callerid_suffix="",
                          callername=["name"])

    def cancel_reason(self, name, telegram_does):
        """The Reason of the CANCEL the ringing PBX gets when Telegram ends the call with
        `telegram_does` (a simulator control) before the PBX answers."""
        uid = self.sim.user(first_name=name)
        self.pbx.mode = "ring"
        try:
            before = len(self.pbx.cancels)
            call_id, _ = self.incoming(uid)
            self.sim.ctl(telegram_does, call_id=call_id)
            return PbxUas.header(self.pbx.wait("cancels", before + 1), "Reason")
        finally:
            self.pbx.mode = "answer"

    def test_the_caller_hanging_up_before_the_answer_cancels_the_pbx(self):
        self.assertIn("hung up", self.cancel_reason("Impatient", "call.hangup"))

    def test_answered_on_another_device_cancels_the_pbx_with_call_completed_elsewhere(self):
        reason = self.cancel_reason("Elsewhere", "call.answer_elsewhere")
        self.assertIn('cause=200', reason)
        self.assertIn('Call completed elsewhere', reason)

    def test_the_pbx_rejecting_discards_the_telegram_call(self):
        uid = self.sim.user(first_name="Rejected")
        self.pbx.mode = "reject"
        try:
            call_id, _ = self.incoming(uid)
            s = self.call_state(call_id, "Discarded")
            self.assertEqual(s["reason"], "callDiscardReasonDeclined")
        finally:
            self.pbx.mode = "answer"

    def test_the_pbx_not_answering_cancels_it_when_the_caller_gives_up(self):
        uid = self.sim.user(first_name="Patient")
        self.pbx.mode = "ring"
        self.sim.ctl("timeouts", ring=1.5)  # TDLib's call_ring_timeout_ms, 90 s by default
        try:
            before = len(self.pbx.cancels)
            call_id, _ = self.incoming(uid)
            cancel = self.pbx.wait("cancels", before + 1)
            self.assertIn("hung up", PbxUas.header(cancel, "Reason"))
            self.assertEqual(self.sim.ctl("call.state", call_id=call_id)["reason"],
                             "callDiscardReasonMissed")
        finally:
            self.sim.ctl("timeouts", ring=90)
            self.pbx.mode = "answer"

    def test_chat_digits_reach_the_pbx_as_dtmf_and_digits_before_a_call_pick_the_number(self):
        uid = self.sim.user(first_name="Digits", tone=0)
        # Sent before calling: the next call goes to that number instead of the line's.
        self.sim.ctl("message", **{"from": uid, "to": self.account, "text": "205"})
        time.sleep(0.3)
        call_id, invite = self.incoming(uid)
        self.assertTrue(invite.startswith("INVITE sip:205@"), invite.split("\r\n")[0])
        self.call_state(call_id, "Ready")
        relay = sdp_media(invite.split("\r\n\r\n", 1)[1])
        self.pbx.rtp.send_tone(relay, 440, count=10)
        self.sim.ctl("message", **{"from": uid, "to": self.account, "text": "47#"})
        deadline = time.time() + 5
        while "47#" not in self.pbx.rtp.events() and time.time() < deadline:
            time.sleep(0.1)
        self.assertIn("47#", self.pbx.rtp.events())
        # The Telegram user hangs up: the PBX gets a BYE.
        before = len(self.pbx.byes)
        self.sim.ctl("call.hangup", call_id=call_id)
        self.pbx.wait("byes", before + 1)

    def answered_call(self, uid):
        call_id, invite = self.incoming(uid)
        self.call_state(call_id, "Ready")
        return call_id, invite, sdp_media(invite.split("\r\n\r\n", 1)[1])

    def test_hold_and_resume_from_the_pbx(self):
        uid = self.sim.user(first_name="Held", tone=1000)
        call_id, _, relay = self.answered_call(uid)
        # Hold: the PBX sends its music one way; the Telegram user hears it.
        answer = self.pbx.reinvite("sendonly")
        self.assertTrue(answer.startswith("SIP/2.0 200"), answer)
        self.assertIn("a=recvonly", answer)
        self.pbx.rtp.send_tone(relay, 600, count=60)
        self.assertGreater(tone_share(self.recorded(call_id)[-48000:], 600, rate=48000), 0.5)
        # Resume: both ways again.
        answer = self.pbx.reinvite("sendrecv")
        self.assertTrue(answer.startswith("SIP/2.0 200"), answer)
        self.assertIn("a=sendrecv", answer)
        self.pbx.rtp.send_tone(relay, 440, count=60)
        self.assertGreater(tone_share(self.recorded(call_id)[-48000:], 440, rate=48000), 0.5)
        self.assertEqual(self.sim.ctl("call.state", call_id=call_id)["state"], "Ready")
        self.pbx.bye()
        self.call_state(call_id, "Discarded")

    def test_a_transfer_from_the_pbx_keeps_the_telegram_call_up(self):
        uid = self.sim.user(first_name="Transferred", tone=1000)
        # Extensions (three digits) dialled by the PBX go back to the PBX.
        rule = self.api.ok("POST", "/rest/v1/routing/rules",
                           {"priority": 5, "direction": "out", "source": "pbx1",
                            "called": "3[0-9][0-9]", "action": "pbx", "target": "pbx1"})
        try:
            call_id, first, _ = self.answered_call(uid)
            invites, byes = len(self.pbx.invites), len(self.pbx.byes)
            self.pbx.refer("300", call_id=PbxUas.header(first, "Call-ID"))
            second = self.pbx.wait("invites", invites + 1)
            self.assertTrue(second.startswith("INVITE sip:300@"), second.split("\r\n")[0])
            # The referring leg is released once the target answered; Telegram stays up.
            self.pbx.wait("byes", byes + 1)
            self.assertEqual(self.sim.ctl("call.state", call_id=call_id)["state"], "Ready")
            relay = sdp_media(second.split("\r\n\r\n", 1)[1])
            self.pbx.rtp.send_tone(relay, 700, count=60)
            self.assertGreater(tone_share(self.recorded(call_id)[-48000:], 700, rate=48000), 0.5)
            self.pbx.bye(call_id=PbxUas.header(second, "Call-ID"))
            self.call_state(call_id, "Discarded")
        finally:
            self.api.ok("DELETE", "/rest/v1/routing/rules/%d" % rule["id"], want=(200, 204))

    def test_chat_digits_as_info_when_the_pbx_takes_info(self):
        pbx = self.api.ok("GET", "/rest/v1/uc/pbx")["items"][0]
        self.api.ok("PATCH", "/rest/v1/uc/pbx/%d" % pbx["id"], {"dtmf": "info"})
        try:
            time.sleep(0.3)
            uid = self.sim.user(first_name="Info")
            call_id, _, _ = self.answered_call(uid)
            infos = len(self.pbx.infos)
            self.sim.ctl("message", **{"from": uid, "to": self.account, "text": "9*"})
            self.pbx.wait("infos", infos + 2)
            keys = [PbxUas.header(i, "Content-Type") + ":" + i.split("\r\n\r\n", 1)[1]
                    for i in self.pbx.infos[infos:]]
            self.assertIn("Signal=9", keys[0])
            self.assertIn("Signal=*", keys[1])
            self.pbx.bye()
            self.call_state(call_id, "Discarded")
        finally:
            self.api.ok("PATCH", "/rest/v1/uc/pbx/%d" % pbx["id"], {"dtmf": "rfc2833"})


    def test_chat_digits_as_tones_when_the_pbx_takes_them_in_band(self):
        pbx = self.api.ok("GET", "/rest/v1/uc/pbx")["items"][0]
        self.api.ok("PATCH", "/rest/v1/uc/pbx/%d" % pbx["id"], {"dtmf": "inband"})
        try:
            time.sleep(0.3)
            uid = self.sim.user(first_name="Tones", tone=0)
            call_id, _, relay = self.answered_call(uid)
            self.pbx.rtp.send_tone(relay, 440, count=10)
            start = len(self.pbx.rtp.packets)
            self.sim.ctl("message", **{"from": uid, "to": self.account, "text": "5"})
            time.sleep(1.0)
            heard = [p for p in self.pbx.rtp.packets[start:] if p[4] == 8]
            # The key as G.711 audio (770 + 1336 Hz), not as events.
            best = max((min(tone_share(alaw_pcm(heard[i:i + 4]), 770),
                            tone_share(alaw_pcm(heard[i:i + 4]), 1336))
                        for i in range(0, max(1, len(heard) - 4))), default=0)
            self.assertGreater(best, 0.2, len(heard))
            self.assertNotIn("5", self.pbx.rtp.events())
            self.pbx.bye()
            self.call_state(call_id, "Discarded")
        finally:
            self.api.ok("PATCH", "/rest/v1/uc/pbx/%d" % pbx["id"], {"dtmf": "rfc2833"})


HOOK_PORT = free_tcp_port()


class CrmEvents(CallsCase):
    """The CRM webhooks (issue 23) say who the Telegram user is, both ways."""
    extra_config = {"webhooks": [{"url": "http://127.0.0.1:%d/events" % HOOK_PORT,
                                  "secret": "k", "retry_min_ms": 100}]}

    def setUp(self):
        self.receiver = Receiver(HOOK_PORT)
        self.addCleanup(self.receiver.stop)

    def events(self, match):
        """The events of the call whose events `match` (a call_id, or a predicate on the call),
        once its call.ended has come."""
        if isinstance(match, str):
            call_id = match
            match = lambda c: c["call_id"] == call_id  # noqa: E731
        deadline = time.time() + 10
        while time.time() < deadline:
            got = [signed_event(self, "k", h, b) for h, b in self.receiver.delivered()]
            got = [e for e in got if match(e["call"])]
            if got and got[-1]["event"] == "call.ended":
                return got
            time.sleep(0.05)
        self.fail("no call.ended: %s" % self.receiver.posts)

    def test_a_call_from_telegram_names_the_line_and_the_user(self):
        uid = self.sim.user(first_name="Crm", last_name="User", username="crm_user",
                            phone="+79990007788", phone_visible=True, tone=1000)
        before = len(self.pbx.invites)
        tg_call = self.sim.ctl("call.incoming", **{"from": uid, "to": self.account})["call_id"]
        invite = self.pbx.wait("invites", before + 1)
        self.call_state(tg_call, "Ready")
        self.pbx.bye()
        self.call_state(tg_call, "Discarded")
        # The A leg is the line's SIP side (its Call-ID is not the PBX's).
        events = self.events(lambda c: c["direction"] == "in")
        self.assertEqual([e["event"] for e in events][-2:], ["call.answered", "call.ended"])
        c = events[-1]["call"]
        self.assertEqual(c["direction"], "in")
        self.assertEqual(c["line"], "tg1")
        self.assertIsNone(c["provider"])
        self.assertEqual(c["pbx"], "pbx1")
        self.assertEqual(c["called"]["sent"], "100")
        self.assertEqual(c["telegram"]["user"], {"id": uid, "username": "crm_user",
                                                 "phone": "+79990007788", "name": "Crm User"})
        self.assertEqual(c["result"], "answered")
        self.assertTrue(PbxUas.header(invite, "X-TG-ID"))

    def test_a_call_to_telegram_names_the_user_called(self):
        uid = self.sim.user(first_name="Called", username="called_user", tone=1000,
                            answer={"action": "answer", "after": 0.3})
        self.sim.ctl("talked.add", a=self.account, b=uid)
        call, _ = self.dial("*%d" % uid)
        self.assertEqual(call.status, 200, call.responses)
        self.assertEqual(call.bye(), 200)
        events = self.events(call.call_id)
        self.assertEqual([e["event"] for e in events],
                         ["call.ringing", "call.answered", "call.ended"])
        c = events[-1]["call"]
        self.assertEqual(c["direction"], "out")
        self.assertEqual(c["line"], "tg1")
        self.assertEqual(c["pbx"], "pbx1")
        self.assertEqual(c["telegram"]["user"]["id"], uid)
        self.assertEqual(c["telegram"]["user"]["username"], "called_user")
        self.assertEqual(c["telegram"]["user"]["name"], "Called")


class ToTelegram(CallsCase):
    def test_the_pbx_calls_back_the_caller_id_it_was_shown_and_talks_both_ways(self):
        uid = self.sim.user(first_name="Back", username="callme_back", tone=1000,
                            answer={"action": "answer", "after": 0.3})
        self.sim.ctl("talked.add", a=self.account, b=uid)
        call, port = self.dial("*%d" % uid)
        self.assertEqual(call.status, 200, call.responses)
        self.assertTrue(any(r.startswith("SIP/2.0 180") for r in call.responses), call.responses)
        tg = [c for c in self.sim.ctl("calls")["calls"] if c["user_id"] == uid][-1]
        self.assertTrue(tg["outgoing"])
        port.send_tone(call.media_dest(), 440, count=100)
        heard = [p for p in port.packets if p[4] == 8]
        self.assertGreater(len(heard), 40)
        self.assertGreater(tone_share(alaw_pcm(heard[-40:]), 1000), 0.5)
        pcm = self.recorded(tg["id"])
        self.assertGreater(tone_share(pcm[-48000:], 440, rate=48000), 0.5)
        # The Telegram user hangs up: the PBX gets a BYE.
        self.sim.ctl("call.hangup", call_id=tg["id"])
        bye = call.wait_bye()
        self.assertTrue(bye.startswith("BYE "))

    def test_the_pbx_cancelling_while_it_rings_ends_the_telegram_call(self):
        uid = self._known(answer={"action": "ignore"})
        port = RtpPort(PBX_IP)
        self.addCleanup(port.close)
        call = UdpCall(self.esg.ports["udp"], PBX_IP, "*%d" % uid, port.port,
                       until_ringing=True)
        self.addCleanup(call.close)
        tg = [c for c in self.sim.ctl("calls")["calls"] if c["user_id"] == uid][-1]
        self.assertEqual(call.cancel(), 487)
        s = self.call_state(tg["id"], "Discarded")
        self.assertEqual(s["reason"], "callDiscardReasonMissed")

    def test_a_username_and_a_phone_number_reach_the_user(self):
        uid = self.sim.user(first_name="Named", username="named_user", phone="+79995556677",
                            phone_visible=True, answer={"action": "answer", "after": 0.2})
        for number in ("named_user", "+79995556677", "79995556677"):
            call, _ = self.dial(number)
            self.assertEqual(call.status, 200, (number, call.responses))
            self.assertEqual(call.bye(), 200)
            tg = [c for c in self.sim.ctl("calls")["calls"] if c["user_id"] == uid][-1]
            deadline = time.time() + 5
            while self.sim.ctl("call.state", call_id=tg["id"])["state"] != "Discarded" and \
                    time.time() < deadline:
                time.sleep(0.05)
            self.assertEqual(self.sim.ctl("call.state", call_id=tg["id"])["state"], "Discarded")

    def test_telegrams_answers_become_sip_statuses_with_a_reason(self):
        known = lambda **f: self._known(**f)  # noqa: E731
        cases = [
            ("*123456789", 404, "unknown to the line"),
            ("no_such_user", 404, "USERNAME_NOT_OCCUPIED"),
            ("+79990009999", 404, "not on Telegram"),
            ("*%d" % known(privacy="nobody"), 403, "USER_PRIVACY_RESTRICTED"),
            ("*%d" % known(outdated=True), 480, "PARTICIPANT_VERSION_OUTDATED"),
            ("*%d" % known(answer={"action": "decline", "after": 0.2}), 603, "declined"),
            ("*%d" % known(answer={"action": "ignore"}), 480, "ring timeout (5 s)"),
            ("12", 484, ""),
            ("bad.name", 484, ""),
        ]
        blocked = known()
        self.sim.ctl("block", user=blocked, blocked=self.account)
        cases.append(("*%d" % blocked, 403, "USER_IS_BLOCKED"))
        for number, status, said in cases:
            call, _ = self.dial(number, seconds=15)
            self.assertEqual(call.status, status, (number, call.final))
            reason = self.reason(call)
            self.assertIn("cause=%d" % status, reason, number)
            self.assertIn(said, reason, number)

    def _known(self, **fields):
        uid = self.sim.user(first_name="Known", **fields)
        self.sim.ctl("talked.add", a=self.account, b=uid)
        return uid

    def test_the_spam_restriction_refuses_non_contacts_and_shows_in_monitoring(self):
        uid = self._known(answer={"action": "answer", "after": 0.1})
        self.sim.ctl("restrict", account=self.account, on=True)
        try:
            call, _ = self.dial("*%d" % uid)
            self.assertEqual(call.status, 503, call.final)
            self.assertEqual(PbxUas.header(call.final, "Retry-After"), "3600")
            self.assertIn("PEER_FLOOD", self.reason(call))
            self.assertTrue(self.line_state(self.line["id"])["restricted"])
        finally:
            self.sim.ctl("restrict", account=self.account, on=False)

    def test_a_user_already_in_a_call_with_the_line_is_busy(self):
        uid = self._known(answer={"action": "ignore"})
        first, _ = self._ringing("*%d" % uid)
        call, _ = self.dial("*%d" % uid)
        self.assertEqual(call.status, 486, call.final)
        self.assertIn("already in a call", self.reason(call))
        first.close()

    def _ringing(self, number):
        """A call left ringing (its INVITE sent, no final answer awaited)."""
        import socket
        port = RtpPort(PBX_IP)
        self.addCleanup(port.close)
        try:
            call = UdpCall(self.esg.ports["udp"], PBX_IP, number, port.port, timeout=1)
        except socket.timeout:
            call = None
        time.sleep(0.5)
        return (call or port), port


class Limits(CallsCase):
    line_fields = {"noncontact_calls_per_day": 1, "trunks": 1}

    def test_0_the_lines_trunks(self):
        uid = self._contact(answer={"action": "ignore"})
        first, _ = self._ringing("*%d" % uid)
        other = self._contact()
        call, _ = self.dial("*%d" % other)
        self.assertEqual(call.status, 503, call.final)
        self.assertIn("trunk limit of 1 calls", self.reason(call))
        first.close()
        time.sleep(5.5)  # the ring timeout ends the first call

    def test_1_the_daily_calls_to_non_contacts_are_kept_across_restarts(self):
        stranger = self._known(answer={"action": "answer", "after": 0.1})
        call, _ = self.dial("*%d" % stranger)
        self.assertEqual(call.status, 200, call.final)
        self.assertEqual(call.bye(), 200)
        self.assertEqual(self.line_state(self.line["id"])["noncontact_calls_today"], 1)
        # esg restarts: the count stays (the line's session stays logged in too).
        type(self).esg.stop()
        type(self).esg = EsgProcess(self.config, env=self.sim.env(), folder=self.esg.dir)
        type(self).api = Api(self.esg.ports["http"])
        deadline = time.time() + 10
        while self.line_state(self.line["id"])["state"] != "ready" and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.line_state(self.line["id"])["noncontact_calls_today"], 1)
        another = self._known(answer={"action": "answer", "after": 0.1})
        call, _ = self.dial("*%d" % another)
        self.assertEqual(call.status, 503, call.final)
        self.assertGreater(int(PbxUas.header(call.final, "Retry-After")), 86000)
        self.assertIn("calls a day to non-contacts", self.reason(call))
        # Contacts still go through.
        friend = self._contact(answer={"action": "answer", "after": 0.1})
        call, _ = self.dial("*%d" % friend)
        self.assertEqual(call.status, 200, call.final)
        self.assertEqual(call.bye(), 200)

    def test_2_flood_waits_short_ones_retried_long_ones_refused_until_over(self):
        uid = self._contact(answer={"action": "answer", "after": 0.1})
        self.sim.ctl("flood", what="call", seconds=3)
        started = time.time()
        call, _ = self.dial("*%d" % uid, seconds=15)
        self.assertEqual(call.status, 200, call.final)
        self.assertGreaterEqual(time.time() - started, 2.9)
        self.assertEqual(call.bye(), 200)
        time.sleep(0.3)
        self.sim.ctl("flood", what="call", seconds=30)
        call, _ = self.dial("*%d" % uid)
        self.assertEqual(call.status, 503, call.final)
        self.assertEqual(PbxUas.header(call.final, "Retry-After"), "30")
        self.assertIn("Too Many Requests: retry after 30", self.reason(call))
        # The line refuses further calls to Telegram until the wait is over.
        call, _ = self.dial("*%d" % uid)
        self.assertEqual(call.status, 503, call.final)
        self.assertIn(int(PbxUas.header(call.final, "Retry-After")), range(25, 31))
        self.assertIn("flood wait", self.reason(call))
        self.assertIsNotNone(self.line_state(self.line["id"])["calls_flood_until"])

    def _known(self, **fields):
        uid = self.sim.user(first_name="Known", **fields)
        self.sim.ctl("talked.add", a=self.account, b=uid)
        return uid

    def _contact(self, **fields):
        uid = self._known(**fields)
        self.sim.ctl("contact.add", owner=self.account, contact=uid)
        return uid

    _ringing = ToTelegram._ringing


class PbxConnectionMethods(CallsCase):
    """The line's PBX connection by each of the three methods: IP (the other classes), the PBX
    registering to esg, esg registering to the PBX."""

    def test_register_in_and_register_out_pbxs_get_the_lines_calls(self):
        reg_in = PbxUas("127.0.0.7")
        reg_out = PbxUas("127.0.0.8")
        self.addCleanup(reg_in.close)
        self.addCleanup(reg_out.close)
        self.api.ok("POST", "/rest/v1/uc/pbx", {"code": "pbx-in", "mode": "register-in",
                                                "username": "tgpbx", "pwd": "tgpwd"})
        self.assertEqual(reg_in.register(self.esg.ports["udp"], "tgpbx", "tgpwd"), 200)
        self.api.ok("POST", "/rest/v1/uc/pbx", {"code": "pbx-out", "mode": "register-out",
                                                "domain": "127.0.0.8", "address": "127.0.0.8",
                                                "port": reg_out.port, "username": "7001",
                                                "pwd": "x"})
        self.api.wait_reg("pbx:pbx-out", ["registered"])
        for code, pbx, phone in (("tg-in", reg_in, "+79990002001"),
                                 ("tg-out", reg_out, "+79990002002")):
            account = self.sim.user(phone=phone, code="24680", first_name=code)
            line = self.api.ok("POST", LINES, {"code": code, "api_id": 12345,
                                               "api_hash": API_HASH, "phone": phone,
                                               "pbx": code.replace("tg", "pbx"),
                                               "number": "300"}, want=(201,))
            self.login_line(line["id"])
            uid = self.sim.user(first_name="Caller", tone=1000)
            call_id = self.sim.ctl("call.incoming", **{"from": uid, "to": account})["call_id"]
            invite = pbx.wait("invites")
            self.assertTrue(invite.startswith("INVITE sip:300@"), (code, invite.split("\r\n")[0]))
            self.assertEqual(sip_user(PbxUas.header(invite, "From"))[0], "*%d" % uid)
            self.call_state(call_id, "Ready")
            pbx.bye()
            self.call_state(call_id, "Discarded")

if __name__ == "__main__":
    unittest.main()
