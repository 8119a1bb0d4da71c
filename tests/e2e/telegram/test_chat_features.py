"""A Telegram line's chat features (issue 23) against the simulator (tests/tgsim: NOT Telegram)
and PBXs on loopback (tests/e2e/lib/pbx_uas.py): the missed-call message after the PBX did not
answer (once per interval, never after an answered call), the menu of lines as a chat reply
(once per interval) and a key that sends the next call to its entry's PBX connection and
number, the callback keyword (the PBX rings first, then the user gets a Telegram call, both
bridged with audio each way; a refusal by the user's privacy written back), and chat replies
under Telegram's flood waits (a short one waited out, a long one drops the message and counts
it). What esg wrote is read in the simulator's chat (control `chat.sent`).

Answered calls run tgpeer (Telegram's call library) for the user, so everything runs in a
network namespace of the test's own (TgNet), as the call tests do."""

import base64
import os
import struct
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
from esg_fixture import EsgProcess, KeepOnFailure, stop_all  # noqa: E402
from pbx_uas import PbxUas  # noqa: E402
from rest_api import Api  # noqa: E402
from sip_call import alaw_pcm, sdp_media, tone_share  # noqa: E402
from tgsim_fixture import LIB, TgSim  # noqa: E402
# The namespace every answered call's tgpeer runs in, as in the media tests.
from test_media_engine import setUpModule, tearDownModule  # noqa: E402,F401

API_HASH = "0123456789abcdef0123456789abcdef"
LINES = "/rest/v1/telegram/lines"
PBX_IP, PBX2_IP = "127.0.0.5", "127.0.0.6"
MISSED = "Sorry, we missed your call. Send 'callback' and we will call you back"


class ChatFeatures(KeepOnFailure):
    @classmethod
    def setUpClass(cls):
        cls.sim = TgSim()
        cls.pbx = PbxUas(PBX_IP)
        cls.pbx2 = PbxUas(PBX2_IP)
        folder = tempfile.mkdtemp(prefix="esg-e2e-")
        try:
            config = {"telegram": {"tdjson": LIB, "sessions": os.path.join(folder, "telegram")},
                      "media": {"ports": [25500, 25999], "timeout": 30}}
            cls.esg = EsgProcess(config, env=cls.sim.env(), folder=folder)
            cls.api = Api(cls.esg.ports["http"])
            cls.api.ok("POST", "/rest/v1/uc/pbx", {"code": "pbx1", "mode": "ip",
                                                   "address": PBX_IP, "port": cls.pbx.port})
            cls.api.ok("POST", "/rest/v1/uc/pbx", {"code": "pbx2", "mode": "ip",
                                                   "address": PBX2_IP, "port": cls.pbx2.port})
            cls.account = cls.sim.user(phone="+79990003000", code="24680", first_name="Line")
            cls.line = cls.api.ok("POST", LINES, {
                "code": "tgchat", "api_id": 12345, "api_hash": API_HASH,
                "phone": "+79990003000", "pbx": "pbx1", "number": "100", "ring_timeout": 5,
                "missed_message": MISSED, "callback_keyword": "callback",
                "menu": [{"key": "1", "label": "Sales"},
                         {"key": "2", "label": "Support", "pbx": "pbx2", "number": "300"}]},
                want=(201,))
            deadline = time.time() + 10
            while cls.line_status()["state"] != "wait_phone" and time.time() < deadline:
                time.sleep(0.05)
            cls.api.ok("POST", "%s/%d/login" % (LINES, cls.line["id"]), {})
            cls.api.ok("POST", "%s/%d/login" % (LINES, cls.line["id"]), {"code": "24680"})
            while cls.line_status()["state"] != "ready" and time.time() < deadline:
                time.sleep(0.05)
        except Exception:
            stop_all(True, getattr(cls, "esg", None), cls.sim, cls.pbx, cls.pbx2)
            raise

    @classmethod
    def tearDownClass(cls):
        stop_all(cls.failed, cls.esg, cls.sim, cls.pbx, cls.pbx2)

    @classmethod
    def line_status(cls):
        lines = cls.api.ok("GET", "/api/monitor/v1/telegram/lines")["data"]["lines"]
        return next(l for l in lines if l["id"] == cls.line["id"])

    def setUp(self):
        self.pbx.mode = "answer"

    # --- helpers ----------------------------------------------------------------------------

    def sent(self, uid):
        return [m["text"] for m in self.sim.ctl("chat.sent", account=self.account,
                                                user=uid)["messages"]]

    def wait_sent(self, uid, count, seconds=5):
        deadline = time.time() + seconds
        while len(self.sent(uid)) < count and time.time() < deadline:
            time.sleep(0.05)
        return self.sent(uid)

    def write(self, uid, text):
        self.sim.ctl("message", **{"from": uid, "to": self.account, "text": text})

    def call_state(self, call_id, state, seconds=10):
        deadline = time.time() + seconds
        while True:
            s = self.sim.ctl("call.state", call_id=call_id)
            if s["state"] == state or time.time() > deadline:
                self.assertEqual(s["state"], state, s)
                return s
            time.sleep(0.05)

    def incoming(self, uid, pbx=None):
        pbx = pbx or self.pbx
        before = len(pbx.invites)
        call_id = self.sim.ctl("call.incoming", **{"from": uid, "to": self.account})["call_id"]
        return call_id, pbx.wait("invites", before + 1)

    def cdr(self, call_id, ready=lambda c: c.get("ended"), seconds=5):
        """The CDR with `call_id` on either leg, once `ready` holds for it (or at the deadline)."""
        deadline = time.time() + seconds
        found = None
        while time.time() < deadline:
            for c in self.api.ok("GET", "/rest/v1/cdrs?limit=50")["items"]:
                if call_id in (c.get("a", {}).get("call_id"), c.get("b", {}).get("call_id")):
                    found = c
            if found and ready(found):
                break
            time.sleep(0.1)
        self.assertIsNotNone(found, call_id)
        return found

    def rejected_call(self, uid, status=486):
        self.pbx.mode, self.pbx.status = "reject", status
        call_id, _ = self.incoming(uid)
        self.call_state(call_id, "Discarded")
        self.pbx.mode = "answer"

    # --- the missed-call message ------------------------------------------------------------

    def test_missed_message_after_a_rejected_call_once_per_interval(self):
        uid = self.sim.user(first_name="Missed")
        self.rejected_call(uid, 486)
        self.assertEqual(self.wait_sent(uid, 1), [MISSED])
        recent = [m for m in self.line_status()["chat"]["recent"] if m["user_id"] == uid]
        self.assertEqual(recent[-1]["kind"], "missed")
        self.assertEqual(recent[-1]["result"], "sent")
        self.assertTrue(recent[-1]["call_id"])  # the SIP Call-ID of the missed call
        # The call's record keeps it too, although the PBX's reject ended the record first.
        first = self.cdr(recent[-1]["call_id"], lambda c: c.get("telegram", {}).get("chat_sent"))
        self.assertTrue(first["ended"], first)
        self.assertEqual(first["status"], 486, first)
        self.assertEqual(first.get("telegram", {}).get("chat_sent"), [MISSED], first)
        # A second missed call (603 this time) within the interval: no second message, and
        # nothing written on its record.
        before = len(self.pbx.invites)
        self.rejected_call(uid, 603)
        time.sleep(0.5)
        self.assertEqual(self.sent(uid), [MISSED])
        second = self.cdr(PbxUas.header(self.pbx.invites[before], "Call-ID"))
        self.assertEqual(second["status"], 603, second)
        self.assertNotIn("chat_sent", second.get("telegram", {}), second)

    def test_no_missed_message_after_an_answered_call(self):
        uid = self.sim.user(first_name="Answered", tone=1000)
        call_id, invite = self.incoming(uid)
        self.call_state(call_id, "Ready")
        self.pbx.bye(call_id=PbxUas.header(invite, "Call-ID"))
        self.call_state(call_id, "Discarded")
        time.sleep(0.5)
        self.assertEqual(self.sent(uid), [])

    # --- the menu of lines ------------------------------------------------------------------

    def test_menu_reply_once_per_interval_and_a_key_picks_the_entry(self):
        uid = self.sim.user(first_name="Menu", tone=1000)
        self.write(uid, "Hello, who is there?")
        self.assertEqual(self.wait_sent(uid, 1),
                         ["1 \u2014 Sales, 2 \u2014 Support; send a digit, then call"])
        self.write(uid, "Hello again")
        time.sleep(0.5)
        self.assertEqual(len(self.sent(uid)), 1)  # once per menu_interval
        # Key 2, then a call: the entry's PBX connection (pbx2) and number (300).
        self.write(uid, "2")
        time.sleep(0.3)
        call_id, invite = self.incoming(uid, self.pbx2)
        self.assertTrue(invite.startswith("INVITE sip:300@"), invite.split("\r\n")[0])
        self.assertIsNone(PbxUas.header(invite, "X-ESG-PBX"))  # esg's own, never passed on
        self.call_state(call_id, "Ready")
        self.pbx2.bye(call_id=PbxUas.header(invite, "Call-ID"))
        self.call_state(call_id, "Discarded")
        # Key 1 (no number of its own): the line's PBX and number.
        self.write(uid, "1")
        time.sleep(0.3)
        call_id, invite = self.incoming(uid)
        self.assertTrue(invite.startswith("INVITE sip:100@"), invite.split("\r\n")[0])
        self.call_state(call_id, "Ready")
        self.pbx.bye(call_id=PbxUas.header(invite, "Call-ID"))
        self.call_state(call_id, "Discarded")

    # --- callback on request ----------------------------------------------------------------

    def test_callback_rings_the_pbx_first_then_the_user_both_bridged(self):
        uid = self.sim.user(first_name="Callme", tone=1000,
                            answer={"action": "answer", "after": 0.3})
        before = len(self.pbx.invites)
        self.write(uid, "Callback 205")
        invite = self.pbx.wait("invites", before + 1)
        # The PBX rings first, for the number given, with the caller ID of a call from the user.
        self.assertTrue(invite.startswith("INVITE sip:205@"), invite.split("\r\n")[0])
        self.assertIn("<sip:*%d@" % uid, PbxUas.header(invite, "From"))
        self.assertEqual(PbxUas.header(invite, "X-TG-ID"), str(uid))
        # On the PBX's answer the user gets a Telegram call from the line.
        deadline = time.time() + 10
        tg = []
        while not tg and time.time() < deadline:
            tg = [c for c in self.sim.ctl("calls")["calls"] if c["user_id"] == uid]
            time.sleep(0.05)
        self.assertTrue(tg and tg[0]["outgoing"], tg)
        self.call_state(tg[0]["id"], "Ready")
        # Bridged: the user's 1 kHz reaches the PBX, the PBX's 440 Hz reaches the user.
        self.pbx.rtp.send_tone(sdp_media(invite.split("\r\n\r\n", 1)[1]), 440, count=100)
        heard = [p for p in self.pbx.rtp.packets if p[4] == 8]
        self.assertGreater(len(heard), 40, (self.sim.ctl("call.peer", call_id=tg[0]["id"]),
                                            self.line_status()))
        self.assertGreater(tone_share(alaw_pcm(heard[-40:]), 1000), 0.5)
        raw = base64.b64decode(self.sim.ctl("call.recorded", call_id=tg[0]["id"])["pcm"])
        pcm = struct.unpack("<%dh" % (len(raw) // 2), raw)
        self.assertGreater(tone_share(pcm[-48000:], 440, rate=48000), 0.5)
        before = len(self.pbx.byes)
        self.sim.ctl("call.hangup", call_id=tg[0]["id"])
        self.pbx.wait("byes", before + 1)
        self.assertEqual(self.sent(uid), [])  # nothing to say: it worked

    def test_callback_refused_by_privacy_is_written_back(self):
        uid = self.sim.user(first_name="Private", privacy="nobody")
        before, byes = len(self.pbx.invites), len(self.pbx.byes)
        self.write(uid, "callback")
        invite = self.pbx.wait("invites", before + 1)
        self.assertTrue(invite.startswith("INVITE sip:100@"), invite.split("\r\n")[0])
        # Telegram refuses the call to the user: the PBX's leg ends with the reason...
        bye = self.pbx.wait("byes", byes + 1)
        self.assertIn("cause=403", PbxUas.header(bye, "Reason") or "")
        # ...and the user reads why.
        texts = self.wait_sent(uid, 1)
        self.assertEqual(len(texts), 1, texts)
        self.assertIn("privacy", texts[0])
        # The call's record (CDR) keeps what esg wrote.
        found = self.cdr(PbxUas.header(invite, "Call-ID"),
                         lambda c: c.get("telegram", {}).get("chat_sent"))
        self.assertEqual(found.get("telegram", {}).get("chat_sent"), texts, found)

    # --- configuration ----------------------------------------------------------------------

    def test_bad_chat_fields_are_refused_naming_the_field(self):
        path = "%s/%d" % (LINES, self.line["id"])
        cases = [({"menu": [{"key": "1", "label": "A", "pbx": "nopbx"}]}, "menu[0].pbx"),
                 ({"menu": [{"key": "1", "label": "A"}, {"key": "1", "label": "B"}]},
                  "menu[1].key"),
                 ({"menu": [{"key": "1"}]}, "menu[0].label"),
                 ({"menu": [{"key": "1", "label": "A", "extension": "5"}]},
                  "menu[0].extension"),
                 ({"callback_keyword": "call me"}, "callback_keyword"),
                 ({"missed_interval": 0}, "missed_interval"),
                 ({"menu_interval": "1h"}, "menu_interval")]
        for body, field in cases:
            status, answer = self.api.call("PATCH", path, body)
            self.assertEqual((status, answer.get("field")), (400, field), (body, answer))
            self.assertTrue(answer.get("error"), answer)
        # Nothing of it was applied.
        got = self.api.ok("GET", path)
        self.assertEqual(got["callback_keyword"], "callback")
        self.assertEqual([m["key"] for m in got["menu"]], ["1", "2"])

    # --- flood waits on chat replies --------------------------------------------------------

    def flood_waits(self, tag):
        short = self.sim.user(first_name="ShortWait" + tag)
        self.sim.ctl("flood", what="message", seconds=2)
        started = time.time()
        self.write(short, "hi")
        self.assertEqual(len(self.wait_sent(short, 1, seconds=8)), 1)
        self.assertGreater(time.time() - started, 1.5)  # sent again after the wait
        dropped = self.line_status()["chat"]["dropped_flood"]
        long_wait = self.sim.user(first_name="LongWait" + tag)
        self.sim.ctl("flood", what="message", seconds=30)
        self.write(long_wait, "hi")
        deadline = time.time() + 5
        while self.line_status()["chat"]["dropped_flood"] == dropped and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.line_status()["chat"]["dropped_flood"], dropped + 1)
        self.assertEqual(self.sent(long_wait), [])
        recent = [m for m in self.line_status()["chat"]["recent"] if m["user_id"] == long_wait]
        self.assertEqual(recent[-1]["result"], "dropped: flood wait of 30 s")
        metrics = self.api.text("/metrics")[2]
        self.assertIn('esg_telegram_chat_messages_total{result="dropped_flood"} %d'
                      % (dropped + 1), metrics)

    def test_flood_wait_short_retried_long_dropped_and_counted(self):
        self.flood_waits("")

    def test_flood_wait_reported_later_as_tdlib_does(self):
        # sendMessage answers "pending"; the flood wait comes in updateMessageSendFailed.
        self.sim.ctl("chat.async", on=True)
        try:
            self.flood_waits("Async")
        finally:
            self.sim.ctl("chat.async", on=False)

if __name__ == "__main__":
    unittest.main()
