"""esg's own Telegram call media engine against the real tgcalls: the simulated Telegram user's
app runs tgpeer (tests/tgsim, /work/shared/tools/tgpeer), esg runs its engine, a PBX on the
namespace's loopback (tests/e2e/lib/pbx_uas.py and sip_call.py) sends a 1 kHz G.711 tone and
records what comes back; tgpeer sends 440 Hz and records what it hears. Both are checked by
frequency and by level (a threshold: the August 2023 tgpeer's audio processing takes about 9 dB
off a sine). Calls both ways, 8.0.0 and 9.0.0, peer to peer and through TURN only, 5 % loss,
70 s of mute, an unsupported version, and tgpeer's network cut for 5 s and for longer than 20 s.

Everything runs in a network namespace of the test's own (TgNet: WebRTC gathers no candidates
on loopback): esg, the simulator, tgpeer, coturn and the PBX. Each class starts its own esg and
runs as its own ctest entry, side by side."""

import base64
import math
import os
import struct
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from esg_fixture import EsgProcess, KeepOnFailure, stop_all  # noqa: E402
from pbx_uas import PbxUas  # noqa: E402
from rest_api import Api  # noqa: E402
from sip_call import RtpPort, UdpCall, alaw_pcm, sdp_media, tone_share  # noqa: E402
from tgnet import TgNet  # noqa: E402
from tgsim_fixture import LIB, TGPEER, TgSim  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

API_HASH = "0123456789abcdef0123456789abcdef"
LINES = "/rest/v1/telegram/lines"
PBX_IP = "127.0.0.5"
PBX_TONE, TG_TONE = 1000, 440
MIN_DBFS = -40.0  # tgpeer's tone arrives at about -22 dBFS, the PBX's at about -12 sent
NET = None


def setUpModule():
    global NET
    why = TgNet.unavailable()
    if why:
        raise unittest.SkipTest(why)
    if not os.access(TGPEER, os.X_OK):
        raise unittest.SkipTest("no tgpeer at %s (set ESG_TGPEER)" % TGPEER)
    NET = TgNet().__enter__()


def tearDownModule():
    if NET:
        NET.close()


def tone_check(pcm, freq, rate):
    """(share of 100 ms blocks where `freq` dominates, level in dBFS of those blocks)."""
    block = rate // 10
    blocks = [pcm[i:i + block] for i in range(0, len(pcm) - block + 1, block)]
    hits, power = 0, 0.0
    for b in blocks:
        if tone_share(b, freq, rate) > 0.5:
            hits += 1
            power += sum(x * x for x in b) / len(b)
    if not hits:
        return 0.0, -120.0
    return hits / len(blocks), 10 * math.log10(power / hits / 32768.0 ** 2 + 1e-12)


class ToneSender:
    """A PBX's endless G.711 A-law tone, 20 ms packets with one running sequence and timestamp,
    from an RtpPort's socket (which keeps recording what arrives)."""

    def __init__(self, port, dest, freq=PBX_TONE, amplitude=8000):
        self.port, self.dest, self.freq, self.amplitude = port, dest, freq, amplitude
        self._stop = False
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        start = time.time()
        n = 0
        while not self._stop:
            samples = [int(self.amplitude * math.sin(2 * math.pi * self.freq * (n * 160 + i) /
                                                     8000.0)) for i in range(160)]
            payload = audioop.lin2alaw(struct.pack("<160h", *samples), 2)
            pkt = struct.pack("!BBHII", 0x80, 8, (5000 + n) & 0xFFFF, (n * 160) & 0xFFFFFFFF,
                              0x1e5a0001) + payload
            try:
                self.port.sock.sendto(pkt, self.dest)
            except OSError:
                return
            n += 1
            self.sent = n
            time.sleep(max(0.0, start + n * 0.02 - time.time()))

    def stop(self):
        self._stop = True
        self.thread.join(timeout=1)


class EngineCase(KeepOnFailure):
    """esg with a Telegram line (as test_calls.py), the simulator and a PBX, in the namespace."""

    versions = ["9.0.0", "8.0.0"]  # the simulated users' apps
    p2p = True
    use_turn = False
    telegram_extra = {}  # more of esg's telegram section, should its engine need any
    line_extra = {}  # more fields of the line

    @classmethod
    def setUpClass(cls):
        cls.sim = TgSim()
        cls.pbx = PbxUas(PBX_IP)
        cls.esg = None
        folder = tempfile.mkdtemp(prefix="esg-e2e-")
        try:
            servers = [NET.turn()] if cls.use_turn else []
            cls.sim.ctl("call.network", servers=servers, allow_p2p=cls.p2p)
            cls.config = {"telegram": dict({"tdjson": LIB,
                                            "sessions": os.path.join(folder, "telegram")},
                                           **cls.telegram_extra),
                          "media": {"ports": [25000, 25499], "timeout": 30}}
            cls.esg = EsgProcess(cls.config, env=cls.sim.env(), folder=folder)
            cls.api = Api(cls.esg.ports["http"])
            cls.api.ok("POST", "/rest/v1/uc/pbx", {"code": "pbx1", "mode": "ip",
                                                   "address": PBX_IP, "port": cls.pbx.port})
            cls.account = cls.sim.user(phone="+79990001000", code="24680", first_name="Line")
            cls.line = cls.api.ok("POST", LINES, dict({
                "code": "tg1", "api_id": 12345, "api_hash": API_HASH, "phone": "+79990001000",
                "pbx": "pbx1", "number": "100", "ring_timeout": 10}, **cls.line_extra),
                want=(201,))
            deadline = time.time() + 10
            while cls.line_state()["state"] != "wait_phone" and time.time() < deadline:
                time.sleep(0.05)
            cls.api.ok("POST", "%s/%d/login" % (LINES, cls.line["id"]), {})
            cls.api.ok("POST", "%s/%d/login" % (LINES, cls.line["id"]), {"code": "24680"})
            while cls.line_state()["state"] != "ready" and time.time() < deadline:
                time.sleep(0.05)
            cls.api.ok("POST", "/rest/v1/routing/rules",
                       {"priority": 10, "direction": "out", "source": "pbx1",
                        "action": "telegram", "target": "tg1"})
        except Exception:
            stop_all(True, cls.esg, cls.sim, cls.pbx)
            raise

    @classmethod
    def line_state(cls):
        lines = cls.api.ok("GET", "/api/monitor/v1/telegram/lines")["data"]["lines"]
        return next(l for l in lines if l["id"] == cls.line["id"])

    @classmethod
    def tearDownClass(cls):
        stop_all(cls.failed, cls.esg, cls.sim, cls.pbx)

    def tearDown(self):
        if NET:
            NET.no_loss()

    # --- calls ---------------------------------------------------------------------------

    def user(self, **fields):
        fields.setdefault("library_versions", self.versions)
        uid = self.sim.user(first_name="Tg", tone=TG_TONE, **fields)
        self.sim.ctl("talked.add", a=self.account, b=uid)
        return uid

    def call_state(self, call_id, state, seconds=10):
        deadline = time.time() + seconds
        while True:
            s = self.sim.ctl("call.state", call_id=call_id)
            if s["state"] == state or time.time() > deadline:
                self.assertEqual(s["state"], state, s)
                return s
            time.sleep(0.1)

    def from_telegram(self, **user_fields):
        """A Telegram user calls the line; the PBX answers. (call id, the PBX's RTP port,
        where the PBX sends its audio, the INVITE)."""
        uid = self.user(**user_fields)
        before = len(self.pbx.invites)
        call_id = self.sim.ctl("call.incoming", **{"from": uid, "to": self.account})["call_id"]
        invite = self.pbx.wait("invites", before + 1)
        self.call_state(call_id, "Ready")
        return call_id, self.pbx.rtp, sdp_media(invite.split("\r\n\r\n", 1)[1]), invite

    def to_telegram(self, **user_fields):
        """The PBX calls a Telegram user, who answers. (call id, the PBX's RTP port, where the
        PBX sends its audio, the UdpCall)."""
        uid = self.user(answer={"action": "answer", "after": 0.3}, **user_fields)
        port = RtpPort(PBX_IP)
        self.addCleanup(port.close)
        call = UdpCall(self.esg.ports["udp"], PBX_IP, "*%d" % uid, port.port, timeout=20)
        self.addCleanup(call.close)
        self.assertEqual(call.status, 200, call.final)
        tg = [c for c in self.sim.ctl("calls")["calls"] if c["user_id"] == uid][-1]
        self.call_state(tg["id"], "Ready")
        return tg["id"], port, call.media_dest(), call

    def wait_peer(self, call_id, state="established", seconds=15):
        deadline = time.time() + seconds
        while True:
            peer = self.sim.ctl("call.peer", call_id=call_id)
            if peer["state"] == state or time.time() > deadline:
                self.assertEqual(peer["state"], state, peer["lines"][-8:])
                return peer
            time.sleep(0.1)

    def heard_at_pbx(self, port, seconds=2.0, since=0):
        """The last `seconds` of G.711 A-law the PBX received (after its packet `since`)."""
        heard = [p for p in list(port.packets)[since:] if p[4] == 8]
        return alaw_pcm(heard[-int(seconds * 50):])

    def heard_by_user(self, call_id, seconds=2.0):
        raw = base64.b64decode(self.sim.ctl("call.recorded", call_id=call_id)["pcm"])
        pcm = struct.unpack("<%dh" % (len(raw) // 2), raw)
        return pcm[-int(seconds * 48000):]

    def assert_tones(self, call_id, port, share=0.7, seconds=2.0, what="", since=0):
        """The PBX hears tgpeer's 440 Hz (in packets after `since`, a len(port.packets)
        taken earlier) and tgpeer hears the PBX's 1 kHz, loud enough."""
        at_pbx = self.heard_at_pbx(port, seconds, since)
        self.assertGreater(len(at_pbx), 8000 * seconds * 0.8, "the PBX got no audio " + what)
        s, level = tone_check(at_pbx, TG_TONE, 8000)
        self.assertGreater(s, share, ("at the PBX", what, s, level))
        self.assertGreater(level, MIN_DBFS, ("at the PBX", what, s, level))
        by_user = self.heard_by_user(call_id, seconds)
        self.assertGreater(len(by_user), 48000 * seconds * 0.9, "tgpeer recorded nothing " + what)
        s, level = tone_check(by_user, PBX_TONE, 48000)
        self.assertGreater(s, share, ("at tgpeer", what, s, level))
        self.assertGreater(level, MIN_DBFS, ("at tgpeer", what, s, level))

    def telegram_info(self):
        """What esg's calls API says of its Telegram call (the engine's `telegram` object)."""
        calls = self.api.ok("GET", "/api/monitor/v1/calls")["data"]["calls"]
        # On the call, or on its Telegram leg (a or b).
        found = [x["telegram"] for c in calls for x in (c, c.get("a") or {}, c.get("b") or {})
                 if isinstance(x, dict) and x.get("telegram")]
        self.assertTrue(found, calls)
        return found[-1]

    def telegram_call(self):
        """The call (of the calls API) that has a Telegram side, and that side."""
        calls = self.api.ok("GET", "/api/monitor/v1/calls")["data"]["calls"]
        for c in calls:
            for x in (c, c.get("a") or {}, c.get("b") or {}):
                if isinstance(x, dict) and x.get("telegram"):
                    return c, x["telegram"]
        self.fail("no call with a Telegram side: %s" % calls)

    def info_until(self, ready, seconds):
        """The calls API's Telegram side once `ready(info)`, or the last one after `seconds`."""
        deadline = time.time() + seconds
        while True:
            info = self.telegram_info()
            if ready(info) or time.time() > deadline:
                return info
            time.sleep(0.2)

    def lane(self, call):
        """The Telegram lane of a call's diagram: its events' texts, in the diagram's order."""
        q = "?b=%s" % urllib.parse.quote(call["b"]["call_id"]) if call.get("b") else ""
        packets = self.api.ok("GET", "/api/monitor/v1/calls/%s/packets%s" % (
            urllib.parse.quote(call["id"]), q))["data"]["packets"]
        return [p["packet"] for p in packets if p["proto"] == "telegram"], packets

    def metric(self, name, **labels):
        """A sample of /metrics (0 when absent)."""
        status, _, text = self.api.text("/metrics")
        self.assertEqual(status, 200)
        want = name + ("{" + ",".join('%s="%s"' % kv for kv in sorted(labels.items())) + "}"
                       if labels else "")
        for line in text.splitlines():
            if line.startswith(want + " "):
                return float(line.split()[-1])
        return 0.0

    def talk_both_ways(self, direction, version, path):
        call_id, port, dest, sip = getattr(self, direction)(library_versions=[version])
        self.assertEqual(self.sim.ctl("call.state", call_id=call_id)["version"], version)
        self.wait_peer(call_id)
        tone = ToneSender(port, dest)
        self.addCleanup(tone.stop)
        time.sleep(4)
        self.assert_tones(call_id, port)
        info = self.telegram_info()
        self.assertEqual(info["version"], version, info)
        self.assertEqual(info["path"], path, info)
        # The four emojis of callStateReady, as the simulator sent them.
        for emoji in ("\U0001F600", "\U0001F680", "\U0001F431", "\U0001F34E"):
            self.assertIn(emoji, "".join(info.get("emojis") or []), info)
        self.hang_up_from_pbx(call_id, sip)

    def hang_up_from_pbx(self, call_id, sip):
        if isinstance(sip, UdpCall):
            self.assertEqual(sip.bye(), 200)
        else:
            self.pbx.bye(call_id=PbxUas.header(sip, "Call-ID"))
        s = self.call_state(call_id, "Discarded")
        self.assertEqual(s["reason"], "callDiscardReasonHungUp")

    def pbx_byes(self, sip):
        """BYEs esg sent to the PBX's leg of this call."""
        if isinstance(sip, UdpCall):
            return []  # UdpCall.wait_bye() waits for it
        cid = PbxUas.header(sip, "Call-ID")
        return [b for b in self.pbx.byes if PbxUas.header(b, "Call-ID") == cid]


class P2pFromTelegram(EngineCase):
    def test_8_0_0(self):
        self.talk_both_ways("from_telegram", "8.0.0", "host")

    def test_9_0_0(self):
        self.talk_both_ways("from_telegram", "9.0.0", "host")


class P2pToTelegram(EngineCase):
    def test_8_0_0(self):
        self.talk_both_ways("to_telegram", "8.0.0", "host")

    def test_9_0_0(self):
        self.talk_both_ways("to_telegram", "9.0.0", "host")


class TurnOnly(EngineCase):
    """allow_p2p false and one TURN server (coturn in the namespace): both engines relay."""
    p2p = False
    use_turn = True

    def test_8_0_0_from_telegram(self):
        self.talk_both_ways("from_telegram", "8.0.0", "relay")

    def test_9_0_0_to_telegram(self):
        self.talk_both_ways("to_telegram", "9.0.0", "relay")


class Loss(EngineCase):
    def test_5_percent_loss_both_ways_keeps_the_tone_and_the_call(self):
        call_id, port, dest, invite = self.from_telegram(library_versions=["9.0.0"])
        self.wait_peer(call_id)
        tone = ToneSender(port, dest)
        self.addCleanup(tone.stop)
        time.sleep(2)
        NET.loss(0.05)
        mark = len(port.packets)
        time.sleep(15)
        self.assertGreater(NET.dropped(), 20)  # the loss was real
        self.assert_tones(call_id, port, share=0.5, seconds=3.0, what="with 5 % loss",
                          since=mark)
        self.assertGreater(float(self.telegram_info().get("loss") or 0), 0)  # esg saw it
        self.assertEqual(self.sim.ctl("call.state", call_id=call_id)["state"], "Ready")
        self.assertEqual(self.pbx_byes(invite), [])
        self.hang_up_from_pbx(call_id, invite)


class Mute(EngineCase):
    def test_70_s_of_mute_keep_the_call_and_the_pbx_leg_up(self):
        call_id, port, dest, invite = self.from_telegram(library_versions=["9.0.0"])
        self.wait_peer(call_id)
        tone = ToneSender(port, dest)
        self.addCleanup(tone.stop)
        time.sleep(3)
        self.assert_tones(call_id, port)
        start = len(port.packets)
        self.sim.ctl("call.mute", call_id=call_id, on=True)
        time.sleep(3)
        # Muted: tgpeer sends no RTP; nothing of its tone reaches the PBX (esg may send
        # silence or nothing; what was in flight is skipped).
        since = [p for p in list(port.packets)[start:] if p[4] == 8][25:]
        self.assertLess(tone_check(alaw_pcm(since), TG_TONE, 8000)[0], 0.2)
        time.sleep(67)
        self.assertEqual(self.sim.ctl("call.state", call_id=call_id)["state"], "Ready")
        self.assertEqual(self.pbx_byes(invite), [])
        peer = self.sim.ctl("call.peer", call_id=call_id)
        self.assertNotIn("failed", [l.get("state") for l in peer["lines"]], peer["lines"][-8:])
        # The PBX's tone still reached the muted user all along.
        self.assertGreater(tone_check(self.heard_by_user(call_id, 2.0), PBX_TONE, 48000)[0], 0.7)
        mark = len(port.packets)
        self.sim.ctl("call.mute", call_id=call_id, on=False)
        time.sleep(3)
        self.assert_tones(call_id, port, what="after unmuting", since=mark)
        self.hang_up_from_pbx(call_id, invite)


class UnsupportedVersion(EngineCase):
    def test_a_pbx_call_to_a_user_whose_app_has_only_7_0_0_is_refused_488(self):
        uid = self.user(answer={"action": "answer", "after": 0.3}, library_versions=["7.0.0"])
        port = RtpPort(PBX_IP)
        self.addCleanup(port.close)
        call = UdpCall(self.esg.ports["udp"], PBX_IP, "*%d" % uid, port.port, timeout=20)
        self.addCleanup(call.close)
        self.assertEqual(call.status, 488, call.final)
        self.assertIn("7.0.0", PbxUas.header(call.final, "Reason") or "", call.final)
        tg = [c for c in self.sim.ctl("calls")["calls"] if c["user_id"] == uid][-1]
        self.assertEqual(tg["version"], "7.0.0")
        s = self.call_state(tg["id"], "Discarded")
        self.assertEqual(s["reason"], "callDiscardReasonDisconnected")  # is_disconnected true

    def test_a_call_from_such_a_user_is_discarded_and_the_pbx_leg_ended(self):
        uid = self.user(library_versions=["7.0.0"])
        before = len(self.pbx.invites)
        call_id = self.sim.ctl("call.incoming", **{"from": uid, "to": self.account})["call_id"]
        invite = self.pbx.wait("invites", before + 1)
        s = self.call_state(call_id, "Discarded")
        self.assertEqual(s["version"], "7.0.0")
        self.assertEqual(s["reason"], "callDiscardReasonDisconnected")
        # The PBX had answered: its leg ends with a Reason naming the version.
        deadline = time.time() + 5
        while not self.pbx_byes(invite) and time.time() < deadline:
            time.sleep(0.1)
        byes = self.pbx_byes(invite)
        self.assertTrue(byes, "no BYE to the PBX")
        self.assertIn("7.0.0", PbxUas.header(byes[0], "Reason") or "", byes[0])


class Cut(EngineCase):
    """tgpeer runs under its own group; iptables drops what that group sends, so only the
    Telegram user's network goes away and the SIP side keeps working."""

    def cut_call(self, gid):
        call_id, port, dest, invite = self.from_telegram(library_versions=["9.0.0"], gid=gid)
        self.assertIn(str(gid), self.wait_peer(call_id)["argv"])
        tone = ToneSender(port, dest)
        self.addCleanup(tone.stop)
        self.addCleanup(NET.restore_gid, gid)
        time.sleep(3)
        self.assert_tones(call_id, port)
        return call_id, port, invite

    def test_a_cut_of_5_s_does_not_end_the_call(self):
        call_id, port, invite = self.cut_call(4251)
        call, before = self.telegram_call()
        self.assertEqual(before["state"], "connected", before)
        self.assertIsInstance(before.get("connect_ms"), int, before)
        self.assertEqual(before["reconnection_count"], 0, before)
        reconnections_before = self.metric("esg_telegram_reconnections_total")
        NET.cut_gid(4251)
        cut_at = time.time()
        time.sleep(5)
        # Monitoring says so while the path is gone (ICE's consent runs out 5 s after the last
        # answer, so the cut lasts until it shows, well within the 20 s rule).
        during = self.info_until(lambda i: i.get("state") == "reconnecting", 8)
        self.assertEqual(during.get("state"), "reconnecting", during)
        self.assertEqual(during["reconnection_count"], 1, during)
        self.assertNotIn("duration_ms", during["reconnections"][-1], during)
        self.assertGreater(NET.dropped(4251), 0)  # tgpeer did send into the cut
        NET.restore_gid(4251)
        cut_s = time.time() - cut_at
        mark = len(port.packets)
        time.sleep(10)
        self.assertEqual(self.sim.ctl("call.state", call_id=call_id)["state"], "Ready")
        self.assertEqual(self.pbx_byes(invite), [])
        self.assert_tones(call_id, port, what="after a 5 s cut", since=mark)
        after = self.telegram_info()
        self.assertEqual(after["state"], "connected", after)
        self.assertEqual(after["reconnection_count"], 1, after)
        lost = after["reconnections"][-1]
        # Lost a little after the cut began (consent), back a little after it ended.
        self.assertGreater(lost["duration_ms"], 0, after)
        self.assertLess(lost["duration_ms"], cut_s * 1000 + 5000, after)
        self.assertGreaterEqual(lost["at_ms"], after["connect_ms"], after)
        self.assertEqual(self.metric("esg_telegram_reconnections_total"),
                         reconnections_before + 1)
        self.assertGreaterEqual(
            self.metric("esg_telegram_calls_connected_total", path="host", version="9.0.0"), 1)
        # The diagram's Telegram lane, in order, among the SIP packets of the call.
        events, packets = self.lane(call)
        want = ["updateCall ready", "engine signaling: InitialSetup both ways",
                "engine connected: path host", "engine reconnecting", "engine reconnected"]
        at = 0
        for e in events:
            if at < len(want) and e.startswith(want[at]):
                at += 1
        self.assertEqual(at, len(want), events)
        first_sip = next(i for i, p in enumerate(packets) if p["proto"] != "telegram")
        ready = next(i for i, p in enumerate(packets) if p["packet"] == "updateCall ready")
        self.assertLess(first_sip, ready, "the INVITE to the PBX comes before the call is ready")
        self.hang_up_from_pbx(call_id, invite)

    def test_a_cut_of_more_than_20_s_ends_the_call_on_both_sides(self):
        call_id, port, invite = self.cut_call(4252)
        call, _ = self.telegram_call()
        ended_before = self.metric("esg_telegram_calls_no_path_total")
        NET.cut_gid(4252)
        cut_at = time.time()
        deadline = cut_at + 45
        while not self.pbx_byes(invite) and time.time() < deadline:
            time.sleep(0.2)
        ended_after = time.time() - cut_at
        byes = self.pbx_byes(invite)
        self.assertTrue(byes, "the PBX leg stayed up %d s into the cut" % ended_after)
        self.assertGreater(ended_after, 19.5)
        reason = PbxUas.header(byes[0], "Reason") or ""
        self.assertIn("cause=480", reason, byes[0])
        self.assertIn("Telegram call lost its connection: no media path for 20 s", reason)
        s = self.call_state(call_id, "Discarded", seconds=5)
        self.assertEqual(s["reason"], "callDiscardReasonDisconnected")
        # The CDR says the 20 s rule ended it; /metrics counted it once.
        cdrs = self.api.ok("GET", "/rest/v1/cdrs?limit=20")["items"]
        cdr = next((c for c in cdrs if c["id"] == call["id"]), None)
        self.assertIsNotNone(cdr, cdrs)
        tg = cdr.get("telegram") or {}
        self.assertEqual(tg.get("ended_by"), "no_path_20s", cdr)
        self.assertEqual(tg.get("state"), "failed", cdr)
        self.assertEqual(tg.get("version"), "9.0.0", cdr)
        self.assertEqual(tg.get("path"), "host", cdr)
        self.assertGreaterEqual(tg.get("reconnection_count", 0), 1, cdr)
        self.assertGreater(tg.get("reconnecting_ms", 0), 15000, cdr)
        self.assertEqual(self.metric("esg_telegram_calls_no_path_total"), ended_before + 1)
        events, _ = self.lane(call)
        failed = next((i for i, e in enumerate(events)
                       if e.startswith("engine failed: no media path for 20 s (no_path_20s)")), None)
        self.assertIsNotNone(failed, events)
        self.assertIn("discardCall (is_disconnected)", events[failed:], events)


if __name__ == "__main__":
    unittest.main()
