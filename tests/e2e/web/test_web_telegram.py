"""A call's page shows its Telegram side (issue 21), in headless Chromium: a Telegram user
(tgsim with tgpeer, the real tgcalls) calls esg's line, the PBX answers and sends a tone; the
admin opens the call from the calls in progress and its page has a Telegram section: the four
emojis of the key, the version, the path, both candidates (address:port and type, the full line as
the title), the round-trip time, the loss both ways, the SRTP profile, whether the user muted.
The page refreshes on its own: the user mutes and it says so; the call ends and the last values
stay, marked. A fixture with markup in every string goes through the page's own rendering module
and comes out as text.

Everything runs in a network namespace of the test's own (TgNet, as telegram/test_media_engine.py,
whose set-up and helpers this reuses): esg, the simulator, tgpeer, the PBX and the browser."""

import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, ".."))
import telegram.test_media_engine as engine  # noqa: E402
from esg_fixture import ESG, TOKEN, EsgProcess, stop_all  # noqa: E402
from pbx_uas import PbxUas  # noqa: E402
from rest_api import Api  # noqa: E402
from tgnet import TgNet  # noqa: E402
from tgsim_fixture import LIB, TGPEER, TgSim  # noqa: E402

SOURCE = os.environ.get("ESG_SOURCE_DIR", os.path.join(HERE, "..", "..", ".."))
ARTEFACTS = os.environ.get("ESG_ARTEFACTS",
                           os.path.join(os.path.dirname(os.path.abspath(ESG)), "web-artefacts"))
EMOJIS = ["\U0001F600", "\U0001F680", "\U0001F431", "\U0001F34E"]  # what tgsim sends


def setUpModule():
    why = TgNet.unavailable()
    if why:
        raise unittest.SkipTest(why)
    if not os.access(TGPEER, os.X_OK):
        raise unittest.SkipTest("no tgpeer at %s (set ESG_TGPEER)" % TGPEER)
    # The engine tests' helpers look for the namespace in their own module.
    engine.NET = TgNet().__enter__()


def tearDownModule():
    if engine.NET:
        engine.NET.close()
        engine.NET = None


def candidate(line):
    """(address:port, transport, type) of an SDP candidate line, parsed here on its own."""
    f = line.split()
    return f[4] + ":" + f[5], f[2].lower(), f[7]


class TelegramCallPage(engine.EngineCase):
    @classmethod
    def setUpClass(cls):
        # EngineCase's set-up, with the web page and an admin to sign in as.
        cls.sim = TgSim()
        cls.pbx = PbxUas(engine.PBX_IP)
        cls.esg = None
        folder = tempfile.mkdtemp(prefix="esg-e2e-")
        try:
            hashed = subprocess.run([ESG, "hash-password"], input="web-secret\n", text=True,
                                    capture_output=True, timeout=30).stdout.strip()
            cls.sim.ctl("call.network", servers=[], allow_p2p=True)
            cls.esg = EsgProcess({
                "http": {"listen": "127.0.0.1:0", "token": TOKEN,
                         "ui_dir": os.path.join(SOURCE, "web", "dist"),
                         "admin": {"user": "admin", "password_hash": hashed}},
                "telegram": {"tdjson": LIB, "sessions": os.path.join(folder, "telegram")},
                "media": {"ports": [25500, 25599], "timeout": 30}},
                env=cls.sim.env(), folder=folder)
            cls.api = Api(cls.esg.ports["http"])
            cls.api.ok("POST", "/rest/v1/uc/pbx", {"code": "pbx1", "mode": "ip",
                                                   "address": engine.PBX_IP,
                                                   "port": cls.pbx.port})
            cls.account = cls.sim.user(phone="+79990001000", code="24680", first_name="Line")
            cls.line = cls.api.ok("POST", engine.LINES, {
                "code": "tg1", "api_id": 12345, "api_hash": engine.API_HASH,
                "phone": "+79990001000", "pbx": "pbx1", "number": "100", "ring_timeout": 10},
                want=(201,))
            deadline = time.time() + 10
            while cls.line_state()["state"] != "wait_phone" and time.time() < deadline:
                time.sleep(0.05)
            cls.api.ok("POST", "%s/%d/login" % (engine.LINES, cls.line["id"]), {})
            cls.api.ok("POST", "%s/%d/login" % (engine.LINES, cls.line["id"]), {"code": "24680"})
            while cls.line_state()["state"] != "ready" and time.time() < deadline:
                time.sleep(0.05)
        except Exception:
            stop_all(True, cls.esg, cls.sim, cls.pbx)
            raise

    def info_when(self, ready, seconds=10):
        deadline = time.time() + seconds
        while True:
            info = self.telegram_info()
            if ready(info) or time.time() > deadline:
                return info
            time.sleep(0.2)

    def test_the_calls_page_shows_its_telegram_side(self):
        call_id, port, dest, invite = self.from_telegram(library_versions=["9.0.0"])
        self.wait_peer(call_id)
        tone = engine.ToneSender(port, dest)
        self.addCleanup(tone.stop)
        # What the calls API says once the media is up, to compare the page with.
        info = self.info_when(lambda i: i.get("state") == "connected" and "rtt_ms" in i
                              and len(i.get("emojis") or []) == 4)
        self.assertEqual(info.get("state"), "connected", info)
        os.makedirs(ARTEFACTS, exist_ok=True)
        # Its stderr to a file: a pipe nobody reads while the script waits would block both.
        errors = tempfile.TemporaryFile("w+")
        self.addCleanup(errors.close)
        node = subprocess.Popen(
            ["node", os.path.join(HERE, "telegram_call.mjs"), json.dumps({
                "url": "http://127.0.0.1:%d" % self.esg.ports["http"], "user": "admin",
                "password": "web-secret", "artefacts": ARTEFACTS})],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True, cwd=HERE)
        self.addCleanup(lambda: node.poll() is None and node.kill())

        def stderr():
            errors.seek(0)
            return errors.read()

        def step(name, word=None):
            if word:
                node.stdin.write(word + "\n")
                node.stdin.flush()
            line = node.stdout.readline()
            if not line:
                self.fail("the browser script ended: " + stderr())
            found = json.loads(line)
            self.assertNotIn("error", found, found)
            self.assertEqual(found["step"], name, found)
            return found

        found = step("shown")
        self.assertEqual(found["heading"], "Telegram")
        self.assertEqual(found["emojis"], EMOJIS, found)
        self.assertEqual(found["emojis"], info["emojis"])
        self.assertIn("Telegram app", found["hint"])
        self.assertEqual(found["version"], "9.0.0")
        self.assertEqual(found["state"], "connected")
        self.assertEqual(found["path"], "peer to peer (host)")
        self.assertEqual(found["connect_ms"], "%d ms" % info["connect_ms"])
        self.assertEqual(found["reconnections"], "none")
        self.assertRegex(found["packets"], r"^\d+, \d+$")
        for side in ("local", "remote"):
            line = info[side + "_candidate"]
            self.assertEqual(found[side + "_title"], line)
            address, transport, kind = candidate(line)
            self.assertTrue(address.startswith("192.0.2."), line)  # TgNet's veth addresses
            self.assertEqual(found[side + "_candidate"], "%s %s %s" % (address, transport, kind))
        self.assertRegex(found["rtt"], r"^(< 1|\d+) ms$")
        self.assertRegex(found["loss"], r"^\d+\.\d %$")
        self.assertEqual(found["srtp"], info["srtp"])
        self.assertTrue(found["srtp"])
        self.assertEqual(found["remote_muted"], "no")
        self.assertTrue(found["diagram"], "the section sits on the call's diagram page")
        # The diagram's Telegram lane: TDLib's states and the engine's events, in order.
        self.assertEqual(found["lane_heading"], "Telegram")
        lane = found["lane"]
        for want in ("updateCall pending", "updateCall ready", "engine signaling",
                     "engine connected: path host"):
            self.assertTrue(any(e.startswith(want) for e in lane), (want, lane))
        at = [next(i for i, e in enumerate(lane) if e.startswith(w))
              for w in ("updateCall pending", "updateCall ready", "engine connected")]
        self.assertEqual(at, sorted(at), lane)
        # On the SIP packets' time line: TDLib's incoming call before esg's INVITE, the keys
        # exchanged once the PBX's 200 made esg accept the call.
        rows = found["rows"]
        first = lambda p: next(i for i, r in enumerate(rows) if r.startswith(p))  # noqa: E731
        self.assertLess(first("updateCall pending"), first("INVITE"), rows)
        self.assertLess(first("200 OK (INVITE)"), first("updateCall exchanging keys"), rows)
        self.assertGreater(os.path.getsize(os.path.join(ARTEFACTS, "telegram-call.png")), 10000)

        # The page refreshes on its own.
        self.sim.ctl("call.mute", call_id=call_id, on=True)
        self.assertEqual(step("muted", "muted")["muted"], "yes")
        self.assertTrue(self.telegram_info()["remote_muted"])

        self.hang_up_from_pbx(call_id, invite)
        found = step("ended", "ended")
        # The PBX hung up: the call left the board before its Telegram side heard of it, so
        # the page keeps the last values it saw (connected), marked as such.
        self.assertIn("connected", found["ended_state"])
        self.assertIn("ended", found["ended_state"])
        self.assertEqual(found["ended_emojis"], EMOJIS)

        found = step("last", "done")
        fixture = found["fixture"]
        self.assertEqual(fixture["elements"], 0, fixture)
        self.assertFalse(fixture["injected"], fixture)
        bad = '<img src=x onerror="window.injected=true">'
        self.assertEqual(fixture["emojis"], [bad, "\U0001F600", "<b>x</b>", "&amp;"])
        self.assertEqual(fixture["version"], bad)
        self.assertEqual(fixture["path"], "<i>relay</i>")
        self.assertEqual(fixture["remote"], "[2001:db8::1]:3478 udp relay (from 10.0.0.2:9)")
        self.assertEqual(fixture["rtt"], "12 ms")
        self.assertEqual(fixture["loss"], "25.0 %")
        self.assertIsNone(fixture["none"])
        self.assertEqual(fixture["reflector"], {
            "path": "Telegram reflector 3", "connect": "412 ms",
            "reconnections": "2, 5.3 s in all (at 10.2 s for 5.1 s; at 40.0 s, still reconnecting)",
            "jitter": "13 ms", "buffer": "80 ms", "late": "4", "concealed": "7",
            "custom": "a=true, b=x", "tcp": "1", "emojis": "(not kept after the call)"})
        self.assertEqual(node.wait(timeout=30), 0, stderr())
        node.stdin.close()
        node.stdout.close()


if __name__ == "__main__":
    unittest.main()
