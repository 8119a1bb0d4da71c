"""The simulator's call engine harness, without esg: this process plays esg's part, as a
second Telegram "app" on libtdjson_sim.so (ctypes, as test_tgsim.py) that runs its own tgpeer
(the real tgcalls, /work/shared/tools/tgpeer) and relays that engine's signaling through
sendCallSignalingData / updateNewCallSignalingData. The simulated user's app runs the other
tgpeer (tests/tgsim). Both recordings must carry the other side's tone, for 8.0.0 and 9.0.0;
the version is the server's choice from both lists (TELEGRAM-CALLS.md §1.2). Everything runs in
a network namespace of the test's own (TgNet): WebRTC gathers no candidates on loopback."""

import base64
import ctypes
import json
import math
import os
import queue
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from sip_call import tone_share  # noqa: E402
from tgnet import TgNet  # noqa: E402
from tgsim_fixture import LIB, TGPEER, TgSim  # noqa: E402

NET = SIM = TD = None


def setUpModule():
    global NET, SIM, TD
    why = TgNet.unavailable()
    if why:
        raise unittest.SkipTest(why)
    if not os.access(TGPEER, os.X_OK):
        raise unittest.SkipTest("no tgpeer at %s (set ESG_TGPEER)" % TGPEER)
    NET = TgNet().__enter__()
    try:
        SIM = TgSim()
        os.environ["TGSIM_SOCKET"] = SIM.socket  # read by the library at its first request
        TD = ctypes.CDLL(os.path.abspath(LIB))
        TD.td_receive.restype = ctypes.c_char_p
        TD.td_receive.argtypes = [ctypes.c_double]
        TD.td_send.argtypes = [ctypes.c_int, ctypes.c_char_p]
    except Exception:
        NET.close()
        raise


def tearDownModule():
    if SIM:
        SIM.stop()
        SIM.cleanup()
    if NET:
        NET.close()


def pcm_of_wav(path):
    """A tgpeer recording's samples (48 kHz mono), to the end of the file: its header is
    rewritten only once a second."""
    with open(path, "rb") as f:
        data = f.read()
    at = data.find(b"data", 12)
    raw = data[at + 8:] if at >= 0 else b""
    return struct.unpack("<%dh" % (len(raw) // 2), raw[:len(raw) // 2 * 2])


def tone_check(pcm, freq, rate=48000, block=4800):
    """(share of 100 ms blocks where `freq` dominates, level in dBFS of those blocks)."""
    hits, power = 0, 0.0
    blocks = [pcm[i:i + block] for i in range(0, len(pcm) - block + 1, block)]
    for b in blocks:
        if tone_share(b, freq, rate) > 0.5:
            hits += 1
            power += sum(x * x for x in b) / len(b)
    if not hits:
        return 0.0, -120.0
    return hits / len(blocks), 10 * math.log10(power / hits / 32768.0 ** 2 + 1e-12)


class App:
    """One TDLib client of the library, with a tgpeer as its call engine (esg's role)."""
    extra = 0

    def __init__(self):
        self.id = TD.td_create_client_id()
        self.updates = []
        self.lock = threading.Lock()

    def send(self, request):
        with self.lock:
            App.extra += 1
            extra = App.extra
        TD.td_send(self.id, json.dumps(dict(request, **{"@extra": extra})).encode())
        return extra

    def call(self, request, timeout=5):
        extra = self.send(request)
        deadline = time.time() + timeout
        while time.time() < deadline:
            msg = self.receive(0.05)
            if msg and msg.get("@extra") == extra:
                return msg
        raise AssertionError("no answer to %s" % request)

    def receive(self, timeout):
        text = TD.td_receive(timeout)
        if not text:
            return None
        msg = json.loads(text)
        if "@extra" not in msg:
            if msg["@type"] == "updateNewCallSignalingData" and self.engine:
                self.engine.give(msg["data"])
            else:
                self.updates.append(msg)
        elif msg["@type"] == "error" and msg.get("@extra") in self.relayed:
            self.relay_errors.append(msg)
        return msg

    engine = None
    relayed = set()
    relay_errors = []

    def wait(self, pred, timeout=10):
        deadline = time.time() + timeout
        while True:
            for u in self.updates:
                if pred(u):
                    self.updates.remove(u)
                    return u
            if time.time() > deadline:
                raise AssertionError("no such update; got %s" % [u["@type"] for u in self.updates])
            self.receive(0.05)

    def pump(self, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline:
            self.receive(0.05)

    def auth_state(self, state):
        return self.wait(lambda u: u["@type"] == "updateAuthorizationState" and
                         u["authorization_state"]["@type"] == "authorizationState" + state)

    def call_state(self, call_id, state, timeout=10):
        return self.wait(lambda u: u["@type"] == "updateCall" and u["call"]["id"] == call_id and
                         u["call"]["state"]["@type"] == "callState" + state, timeout)["call"]


class Engine:
    """The app's tgpeer: its signaling lines go out through sendCallSignalingData."""

    def __init__(self, app, call_id, ready, outgoing, tone, folder):
        self.app, self.call_id = app, call_id
        self.wav = os.path.join(folder, "app-call%d.wav" % call_id)
        self.lines = queue.Queue()
        self.states = []
        argv = [TGPEER, "--version", ready["protocol"]["library_versions"][0],
                "--outgoing" if outgoing else "--incoming",
                "--key-hex", base64.b64decode(ready["encryption_key"]).hex(),
                "--servers", json.dumps(ready["servers"]), "--tone", str(tone),
                "--record", self.wav, "--log-level", "warning"]
        if ready["allow_p2p"]:
            argv.append("--p2p")
        self.err = open(os.path.join(folder, "app-call%d.log" % call_id), "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.err)
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if "signaling" in msg:
                extra = self.app.send({"@type": "sendCallSignalingData", "call_id": self.call_id,
                                       "data": msg["signaling"]})
                self.app.relayed.add(extra)
            else:
                if "state" in msg:
                    self.states.append(msg["state"])
                self.lines.put(msg)

    def give(self, data):
        if self.proc.poll() is None:
            self.proc.stdin.write(json.dumps({"signaling": data}).encode() + b"\n")
            self.proc.stdin.flush()

    def wait_line(self, pred, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                msg = self.lines.get(timeout=0.05)
            except queue.Empty:
                self.app.receive(0)
                continue
            if pred(msg):
                return msg
        return None

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b'{"stop":true}\n')
                self.proc.stdin.flush()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.err):
            try:
                f.close()
            except OSError:
                pass
        self.thread.join(timeout=2)


class HarnessBase(unittest.TestCase):
    """The app's login and a whole call (test_reflector_sim.py runs its calls this way too)."""

    @classmethod
    def setUpClass(cls):
        cls.account = SIM.user(phone="+79995551000", code="11223", first_name="App")
        cls.folder = tempfile.mkdtemp(prefix="esg-harness-", dir=SIM.dir)
        cls.app = App()
        cls.app.call({"@type": "getOption", "name": "version"})
        cls.app.auth_state("WaitTdlibParameters")
        cls.app.call({"@type": "setTdlibParameters", "api_id": 1, "api_hash": "x" * 32,
                      "database_directory": os.path.join(cls.folder, "db")})
        cls.app.auth_state("WaitPhoneNumber")
        cls.app.call({"@type": "setAuthenticationPhoneNumber", "phone_number": "+79995551000"})
        cls.app.auth_state("WaitCode")
        cls.app.call({"@type": "checkAuthenticationCode", "code": "11223"})
        cls.app.auth_state("Ready")

    def start_call(self, offer, incoming=False, **user_fields):
        """The app calls a simulated user who answers (or, `incoming`, the user calls and the
        app accepts), offering `offer`; (call id, callStateReady)."""
        user = SIM.user(first_name="Peer", tone=440, answer={"action": "answer", "after": 0.2},
                        **user_fields)
        SIM.ctl("talked.add", a=self.account, b=user)
        protocol = {"@type": "callProtocol", "udp_p2p": True, "udp_reflector": True,
                    "min_layer": 65, "max_layer": 92, "library_versions": offer}
        if incoming:
            call_id = SIM.ctl("call.incoming", **{"from": user, "to": self.account})["call_id"]
            self.assertFalse(self.app.call_state(call_id, "Pending")["is_outgoing"])
        else:
            call_id = self.app.call({"@type": "createCall", "user_id": user, "is_video": False,
                                     "protocol": protocol})["id"]
        # TDLib refuses signaling before the call is ready.
        early = self.app.call({"@type": "sendCallSignalingData", "call_id": call_id,
                               "data": base64.b64encode(b"early").decode()})
        self.assertEqual((early["@type"], early.get("code"), early.get("message")),
                         ("error", 400, "Call is not active"))
        if incoming:
            self.assertEqual(self.app.call({"@type": "acceptCall", "call_id": call_id,
                                            "protocol": protocol})["@type"], "ok")
        ready = self.app.call_state(call_id, "Ready")["state"]
        return call_id, ready

    def talk(self, offer, want, servers=(), p2p=True, during=None, share=0.7, incoming=False,
             **user_fields):
        """A call, both engines up; `during(call_id, engine)` runs before both recordings'
        last 3 s are checked for the other side's tone. `servers`: the callStateReady.servers
        expected, or a function that checks them (reflectors carry a tag of the call's own)."""
        call_id, ready = self.start_call(offer, incoming, **user_fields)
        self.assertEqual(ready["protocol"]["library_versions"], [want])
        if callable(servers):
            servers(ready["servers"])
        else:
            self.assertEqual(ready["servers"], list(servers))  # no reflector of the simulator's
        self.assertEqual(ready["allow_p2p"], p2p)
        engine = Engine(self.app, call_id, ready, outgoing=not incoming, tone=1000,
                        folder=self.folder)
        self.app.engine = engine
        try:
            self.assertIsNotNone(engine.wait_line(lambda m: m.get("state") == "established", 15),
                                 engine.states)
            self.app.pump(4.0)
            peer = SIM.ctl("call.peer", call_id=call_id)
            self.assertEqual(peer["state"], "established", peer["lines"][-5:])
            # The other role than the app's.
            self.assertIn("--outgoing" if incoming else "--incoming", peer["argv"])
            self.assertIn(want, peer["argv"])
            state = SIM.ctl("call.state", call_id=call_id)
            self.assertEqual((state["engine"], state["version"]), ("tgpeer", want))
            self.assertGreater(state["signaling_in"], 2)
            self.assertGreater(state["signaling_out"], 2)
            self.assertEqual(App.relay_errors, [])
            if during:
                during(call_id, engine)
            # Each recording carries the other side's tone, loud enough (tgpeer's AGC/NS take
            # about 9 dB off a sine: a threshold, not the sent level).
            rec = SIM.ctl("call.recorded", call_id=call_id)
            raw = base64.b64decode(rec["pcm"])
            heard_by_user = struct.unpack("<%dh" % (len(raw) // 2), raw)
            heard_by_app = pcm_of_wav(engine.wav)
            for pcm, freq, other in ((heard_by_user, 1000, 440), (heard_by_app, 440, 1000)):
                self.assertGreater(len(pcm), 48000 * 3, freq)
                got, level = tone_check(pcm[-48000 * 3:], freq)
                self.assertGreater(got, share, (freq, got, level))
                self.assertGreater(level, -40.0, (freq, got, level))
                self.assertLess(tone_check(pcm[-48000 * 3:], other)[0], 0.1, freq)
            # The user's mute button reaches the app's engine as the peer's media state.
            SIM.ctl("call.mute", call_id=call_id, on=True)
            self.assertIsNotNone(engine.wait_line(lambda m: m.get("remote_audio") == "muted", 5))
            SIM.ctl("call.mute", call_id=call_id, on=False)
            self.assertIsNotNone(engine.wait_line(lambda m: m.get("remote_audio") == "active", 5))
            # The app hangs up: the call ends and the user's engine is stopped.
            self.app.call({"@type": "discardCall", "call_id": call_id, "is_disconnected": False,
                           "duration": 5})
            end = self.app.call_state(call_id, "Discarded")
            self.assertEqual(end["state"]["reason"]["@type"], "callDiscardReasonHungUp")
            deadline = time.time() + 5
            while SIM.ctl("call.peer", call_id=call_id)["running"] and time.time() < deadline:
                time.sleep(0.1)
            peer = SIM.ctl("call.peer", call_id=call_id)
            self.assertFalse(peer["running"], peer)
            self.assertTrue(any("stats" in l for l in peer["lines"]), peer["lines"][-3:])
        finally:
            self.app.engine = None
            engine.stop()


class Harness(HarnessBase):
    def test_9_0_0_both_ways(self):
        self.talk(["9.0.0", "8.0.0"], "9.0.0")

    def test_a_call_from_the_user_accepted_by_the_app(self):
        # acceptCall's protocol is the app's offer: the best common version, 8.0.0 here.
        self.talk(["8.0.0"], "8.0.0", incoming=True)

    def test_8_0_0_both_ways(self):
        # The server's best common version: the user's app has only 8.0.0.
        self.talk(["9.0.0", "8.0.0"], "8.0.0", library_versions=["8.0.0"])

    def test_through_turn_only(self):
        """allow_p2p false and coturn in the namespace: both engines relay through it."""
        server = NET.turn()
        before = NET.turn_packets()
        SIM.ctl("call.network", servers=[server], allow_p2p=False)
        try:
            self.talk(["9.0.0", "8.0.0"], "9.0.0", servers=[server], p2p=False)
        finally:
            SIM.ctl("call.network", servers=[], allow_p2p=True)
        # Both engines' media went through it (about 700 packets in such a call here).
        self.assertGreater(NET.turn_packets() - before, 300)

    def test_5_percent_loss_both_ways(self):
        def lossy(call_id, engine):
            NET.loss(0.05)
            try:
                self.app.pump(6)
                self.assertGreater(NET.dropped(), 0)  # the rule drops: how many is chance
            finally:
                NET.no_loss()
        self.talk(["9.0.0", "8.0.0"], "9.0.0", during=lossy, share=0.5)

    def test_cutting_the_users_group_silences_it_until_restored(self):
        gid = 4299

        def cut(call_id, engine):
            before = len(pcm_of_wav(engine.wav))
            NET.cut_gid(gid)
            try:
                self.app.pump(3)
                self.assertGreater(NET.dropped(gid), 20)
            finally:
                NET.restore_gid(gid)
            # What the app heard from 1 s into the cut: nothing of the user's tone.
            silent = pcm_of_wav(engine.wav)[before + 48000:before + 48000 * 2]
            self.assertLess(tone_check(silent, 440)[0], 0.2)
            self.app.pump(5)  # the path comes back: the tone is checked after this
        self.talk(["9.0.0", "8.0.0"], "9.0.0", during=cut, gid=gid)

    def test_a_version_only_the_user_has_is_what_the_app_gets(self):
        call_id, ready = self.start_call(["9.0.0", "8.0.0"], library_versions=["7.0.0"])
        self.assertEqual(ready["protocol"]["library_versions"], ["7.0.0"])
        self.assertIsNone(SIM.ctl("call.state", call_id=call_id)["engine"])  # nothing runs
        # The app cannot speak it and discards the call as a network failure.
        self.app.call({"@type": "discardCall", "call_id": call_id, "is_disconnected": True})
        end = self.app.call_state(call_id, "Discarded")
        self.assertEqual(end["state"]["reason"]["@type"], "callDiscardReasonDisconnected")

    def test_the_call_servers_and_p2p_come_from_the_network_control(self):
        server = {"@type": "callServer", "id": "7", "ip_address": "192.0.2.2",
                  "ipv6_address": "", "port": 3478,
                  "type": {"@type": "callServerTypeWebrtc", "username": "u", "password": "p",
                           "supports_turn": True, "supports_stun": False}}
        SIM.ctl("call.network", servers=[server], allow_p2p=False)
        try:
            call_id, ready = self.start_call(["9.0.0", "8.0.0"], library_versions=["6.0.0"])
            self.assertEqual(ready["servers"], [server])
            self.assertFalse(ready["allow_p2p"])
            self.app.call({"@type": "discardCall", "call_id": call_id, "is_disconnected": True})
            self.app.call_state(call_id, "Discarded")
        finally:
            SIM.ctl("call.network", servers=[], allow_p2p=True)


if __name__ == "__main__":
    unittest.main()
