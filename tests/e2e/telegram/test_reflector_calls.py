"""Telegram calls through Telegram's reflectors only (issue 22): allow_p2p false, no TURN, and
callStateReady.servers listing UDP reflectors (callServerTypeTelegramReflector) that a test
reflector serves in the test's network namespace; the simulated user's app is tgpeer (the real
tgcalls, whose ReflectorPort is the judge). Audio both ways by frequency, 8.0.0 and 9.0.0, both
call directions; esg's calls API must say the path is "reflector" with the server id that both
sides computed (TELEGRAM-CALLS.md §5.1: the rank of the server's id among all reflectors' ids,
TCP ones included, which esg skips and counts).

The test reflector is the suite's own (tests/tgsim/reflector.py, §5.6), or ESG_REFLECTOR (a
script taking --bind, --port and --seconds, e.g. reflector_sim.py beside tgpeer). Each class starts its
own esg, simulator and reflectors and runs as its own ctest entry. ESG_REFLECTOR_REPORT=1 prints
what esg's calls API says of each call (time to connect, the pair, the reflector ports)."""

import base64
import os
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
import test_media_engine as engine  # noqa: E402
from tgnet import ADDR_A, ADDR_B, TgNet  # noqa: E402
from tgsim_fixture import TGPEER  # noqa: E402

NET = None


def reflector_script():
    if os.environ.get("ESG_REFLECTOR"):
        return os.environ["ESG_REFLECTOR"]
    return os.path.normpath(os.path.join(HERE, "..", "..", "tgsim", "reflector.py"))


def setUpModule():
    global NET
    why = TgNet.unavailable()
    if why:
        raise unittest.SkipTest(why)
    if not os.access(TGPEER, os.X_OK):
        raise unittest.SkipTest("no tgpeer at %s (set ESG_TGPEER)" % TGPEER)
    if not os.path.exists(reflector_script()):
        raise unittest.SkipTest("no test reflector at %s (set ESG_REFLECTOR)" % reflector_script())
    NET = TgNet().__enter__()
    engine.NET = NET  # the engine cases' helpers use the module's namespace


def tearDownModule():
    if NET:
        NET.close()


class Reflector:
    """A test reflector on addr:port (UDP) in the namespace, stopped by close()."""

    def __init__(self, addr, port):
        self.addr, self.port = addr, port
        self.dir = tempfile.mkdtemp(prefix="esg-reflector-")
        self.log_path = os.path.join(self.dir, "reflector.log")
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, reflector_script(), "--bind", addr, "--port", str(port),
             "--seconds", "900"], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("the test reflector exited: " + self.log())
            out = subprocess.run(["ss", "-uan"], capture_output=True, text=True).stdout
            if "%s:%d" % (addr, port) in out:
                return
            time.sleep(0.05)
        raise RuntimeError("the test reflector did not start: " + self.log())

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()[-2000:]

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def reflector_server(server_id, addr, port, peer_tag, tcp=False):
    return {"@type": "callServer", "id": str(server_id), "ip_address": addr, "ipv6_address": "",
            "port": port,
            "type": {"@type": "callServerTypeTelegramReflector",
                     "peer_tag": base64.b64encode(peer_tag).decode(), "is_tcp": tcp}}


class ReflectorCase(engine.EngineCase):
    p2p = False
    use_turn = False
    # (callServer.id, address, port, is_tcp); a reflector process serves each UDP one.
    reflectors = []
    # The §5.1 id of the reflector the call should use (None: any of the UDP ones).
    expected_id = None
    skipped_tcp = 0
    with_turn = False  # a TURN server listed too (coturn in the namespace)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.procs = []
        try:
            tag = os.urandom(16)
            servers = []
            for server_id, addr, port, tcp in cls.reflectors:
                if not tcp:
                    cls.procs.append(Reflector(addr, port))
                servers.append(reflector_server(server_id, addr, port, tag, tcp))
            if cls.with_turn:
                servers.append(NET.turn())
            cls.sim.ctl("call.network", servers=servers, allow_p2p=False)
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for p in getattr(cls, "procs", []):
            p.close()
        super().tearDownClass()

    def reflector_call(self, direction, version):
        self.talk_both_ways(direction, version, "reflector")

    def talk_both_ways(self, direction, version, path):
        call_id, port, dest, sip = getattr(self, direction)(library_versions=[version])
        self.assertEqual(self.sim.ctl("call.state", call_id=call_id)["version"], version)
        self.wait_peer(call_id)
        tone = engine.ToneSender(port, dest)
        self.addCleanup(tone.stop)
        time.sleep(4)
        self.assert_tones(call_id, port, what="through the reflector")
        info = self.telegram_info()
        self.assertEqual(info["version"], version, info)
        self.assertEqual(info["path"], path, info)
        if self.expected_id is not None:
            self.assertEqual(info.get("reflector_id"), self.expected_id, info)
        else:
            self.assertIn(info.get("reflector_id"),
                          [i + 1 for i in range(len(self.reflectors))], info)
        # Both candidates of the pair are reflector names of that server.
        prefix = "reflector-%d-" % info["reflector_id"]
        self.assertIn(prefix, info["local_candidate"], info)
        self.assertIn(prefix, info["remote_candidate"], info)
        self.assertEqual(info.get("skipped_tcp_reflectors"), self.skipped_tcp, info)
        self.assertEqual(info.get("custom_parameters"), {}, info)  # the simulator sends ""
        if os.environ.get("ESG_REFLECTOR_REPORT"):
            sys.stderr.write("reflector call %s %s: %s\n" % (direction, version, {
                k: info.get(k) for k in ("connect_ms", "first_audio_ms", "rtt_ms", "reflector_id",
                                         "local_candidate", "remote_candidate", "reflectors")}))
        # The ports the call went through carried data both ways.
        used = [r for r in info.get("reflectors", []) if r["id"] == info["reflector_id"]]
        self.assertTrue(used and any(r["ready"] for r in used), info)
        self.assertGreater(sum(r["data_in"] for r in used), 50, info)
        self.assertGreater(sum(r["data_out"] for r in used), 50, info)
        call, _ = self.telegram_call()
        self.hang_up_from_pbx(call_id, sip)
        # The CDR keeps the path and the reflector's number.
        deadline = time.time() + 5
        cdr = None
        while cdr is None and time.time() < deadline:
            cdrs = self.api.ok("GET", "/rest/v1/cdrs?limit=20")["items"]
            cdr = next((c for c in cdrs if c["id"] == call["id"]), None)
            time.sleep(0.1)
        self.assertIsNotNone(cdr, "no CDR for %s" % call["id"])
        tg = cdr.get("telegram") or {}
        self.assertEqual((tg.get("path"), tg.get("reflector_id"), tg.get("version")),
                         ("reflector", info["reflector_id"], version), cdr)


class ReflectorOnly(ReflectorCase):
    """One UDP reflector (id 1001) and a TCP one with a lower id (500): the TCP one is skipped
    but numbered, so the UDP one is server 2 on both sides; a call can connect only if esg and
    tgcalls agree on that."""
    reflectors = [("1001", ADDR_B, 5960, False), ("500", ADDR_A, 5998, True)]
    expected_id = 2
    skipped_tcp = 1

    def test_8_0_0_from_telegram(self):
        self.reflector_call("from_telegram", "8.0.0")

    def test_9_0_0_from_telegram(self):
        self.reflector_call("from_telegram", "9.0.0")

    def test_8_0_0_to_telegram(self):
        self.reflector_call("to_telegram", "8.0.0")

    def test_9_0_0_to_telegram(self):
        self.reflector_call("to_telegram", "9.0.0")


class TwoReflectors(ReflectorCase):
    """Two UDP reflectors (ids 2000 and 1500: servers 2 and 1): the call uses one of them."""
    reflectors = [("2000", ADDR_B, 5961, False), ("1500", ADDR_A, 5962, False)]

    def test_9_0_0_from_telegram(self):
        self.reflector_call("from_telegram", "9.0.0")


class ReflectorAndTurn(ReflectorCase):
    """A reflector and a TURN server: esg ranks its reflector candidates above its TURN ones (no
    allocation to lose mid-call), so as the caller (the controlling agent) it nominates the
    reflector pair."""
    reflectors = [("77", ADDR_B, 5963, False)]
    with_turn = True

    def test_9_0_0_to_telegram(self):
        self.reflector_call("to_telegram", "9.0.0")


if __name__ == "__main__":
    unittest.main()
