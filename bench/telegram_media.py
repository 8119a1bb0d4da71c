#!/usr/bin/env python3
"""N simultaneous Telegram calls through esg, transcoded Opus <-> G.711 A-law (issue 21):
esg's CPU per call, its memory per call and the time from the answer to the first audio.

    sudo bench/telegram_media.py [N] [SECONDS]      (defaults 10 and 30; run as root)

Everything runs in a network namespace of its own (tests/e2e/lib/tgnet.py: the engines gather
no candidates on loopback): esg with a Telegram line on the simulator (tests/tgsim) and a PBX
connection, the simulator, one tgpeer_lite per call as the Telegram user's app (bench/
tgpeer_lite.cpp: esg's own call engine behind tgpeer's command line, with a pre-encoded 440 Hz
Opus tone, so that N peers cost little next to esg), and a PBX here in one thread that answers
every INVITE and sends a 1 kHz A-law tone from its own RTP port per call. N Telegram users call
the line (tgsim's call.incoming) at RATE a second (default 2); esg sends each to the PBX, which
answers.

Measured, with every call up: esg's CPU (user+sys from /proc/<pid>/stat) over a steady window
of SECONDS, as cores (calls per core = N / cores), its RSS then minus its RSS before the calls,
per call, and from the PBX's 200 OK to the first audio at the Telegram user (tgpeer_lite's
first decoded frame above -50 dBFS) and at the PBX (the first non-silent A-law packet). The
audio is checked on every call (packets and level at both ends in the window) and by frequency
on a sample (the PBX hears 440 Hz, the user 1 kHz). A table, then one JSON line; exit 1 when
a call carried no audio, 0 otherwise (the goals are reported, not enforced: CI's smoke run is
too small and too shared to judge them). Exit 77 (ctest's skip) when not root.

Binaries come from $ESG_BUILD (default build/): esg, tests/tgsim/libtdjson_sim.so and
bench/tgpeer_lite; $ESG_BIN, $ESG_TGSIM_LIB and $ESG_TGPEER override each."""

import json
import math
import os
import re
import selectors
import socket
import struct
import sys
import tempfile
import threading
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("ESG_BUILD", os.path.join(ROOT, "build"))
os.environ.setdefault("ESG_BIN", os.path.join(BUILD, "esg"))
os.environ.setdefault("ESG_TGSIM_LIB", os.path.join(BUILD, "tests", "tgsim", "libtdjson_sim.so"))
os.environ.setdefault("ESG_TGPEER", os.path.join(BUILD, "bench", "tgpeer_lite"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e", "lib"))
from esg_fixture import EsgProcess  # noqa: E402
from rest_api import Api  # noqa: E402
from sip_call import sdp_media, tone_share  # noqa: E402
from tgnet import TgNet  # noqa: E402
from tgsim_fixture import LIB, TGPEER, TgSim  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

N = int(sys.argv[1]) if len(sys.argv) > 1 else 10
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 30
# Calls placed per second ($RATE). Each call starts a process (the user's engine) and a DTLS
# handshake at both ends; at 5 a second on this 2-core machine shared with other work, the
# setups of the last calls wait behind the media of the first and the tail of the answer-to-
# audio time grows to 1.5-2.5 s at 40 calls (0.45 s p95 at 2 a second).
RATE = float(os.environ.get("RATE", "2"))
SAMPLE = 4  # calls whose tones are checked by frequency
PBX_IP = "127.0.0.5"
PBX_TONE, TG_TONE = 1000, 440
API_HASH = "0123456789abcdef0123456789abcdef"
LINES = "/rest/v1/telegram/lines"
GOALS = {"calls_per_core": 40, "mib_per_call": 2.0, "first_audio_s": 1.0}
SILENT_RMS = 100  # 16-bit: about -50 dBFS


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_of(name):
    """CPU seconds of every running process whose command is `name` (the users' engines)."""
    total = 0.0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                head, tail = f.read().rsplit(")", 1)
        except OSError:
            continue
        if head.split("(", 1)[1] == name[:15]:
            fields = tail.split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def machine_ticks():
    """(busy, steal, total) jiffies of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    steal = v[7] if len(v) > 7 else 0
    return sum(v) - idle - steal, steal, sum(v)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def header(text, name):
    m = re.search(r"(?im)^%s\s*:\s*(.*?)\r?$" % re.escape(name), text.split("\r\n\r\n")[0])
    return m.group(1) if m else None


def dbfs(pcm):
    if not pcm:
        return -120.0
    return 10 * math.log10(sum(x * x for x in pcm) / len(pcm) / 32768.0 ** 2 + 1e-12)


class Call:
    def __init__(self, cid, invite, src, rtp):
        self.cid, self.invite, self.src, self.rtp = cid, invite, src, rtp
        self.tag = "pbx%d" % rtp.getsockname()[1]
        self.dest = sdp_media(invite.split("\r\n\r\n", 1)[1])
        self.answered_at = None  # wall time of our 200
        self.first_audio = None  # wall time of the first non-silent packet after it
        self.received = 0
        self.sent = 0
        self.bye_ok = False
        self.stop_sending = False  # after our BYE
        self.keep = []  # A-law payloads (sampled calls only), bounded by the caller


class Pbx:
    """A UAS for N calls in one thread: answers each INVITE after `ring` s with an SDP for a
    port of the call's own, then sends 20 ms A-law packets of a 1 kHz tone (the same payload
    each time: 160 samples are 20 periods) and counts what arrives."""

    def __init__(self, ip, ring=0.1):
        self.ip, self.ring = ip, ring
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sip.bind((ip, 0))
        self.sip.setblocking(False)
        self.port = self.sip.getsockname()[1]
        samples = [int(8000 * math.sin(2 * math.pi * PBX_TONE * i / 8000.0)) for i in range(160)]
        self.payload = audioop.lin2alaw(struct.pack("<160h", *samples), 2)
        self.calls = {}  # Call-ID -> Call
        self.sampled = set()
        self.lock = threading.Lock()
        self.pending = []  # (when, Call-ID) to answer
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.sip, selectors.EVENT_READ, None)
        self.stop_flag = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def reply(self, req, src, status, reason, tag=None, body="", extra=""):
        lines = [l for l in req.split("\r\n\r\n")[0].split("\r\n")[1:]
                 if l.split(":")[0].strip().lower() in ("via", "v", "from", "f", "call-id", "i",
                                                        "cseq")]
        to = header(req, "To")
        if tag and ";tag=" not in to:
            to += ";tag=" + tag
        msg = "SIP/2.0 %d %s\r\n%s\r\nTo: %s\r\n%s" % (status, reason, "\r\n".join(lines), to,
                                                       extra)
        if body:
            msg += "Content-Type: application/sdp\r\n"
        msg += "Content-Length: %d\r\n\r\n%s" % (len(body), body)
        self.sip.sendto(msg.encode(), src)

    def sdp(self, port):
        return ("v=0\r\no=pbx 1 1 IN IP4 {ip}\r\ns=pbx\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
                "m=audio {port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n"
                ).format(ip=self.ip, port=port)

    def on_sip(self, data, src):
        text = data.decode(errors="replace")
        cid = header(text, "Call-ID")
        if text.startswith("SIP/2.0"):
            if "BYE" in (header(text, "CSeq") or "") and cid in self.calls:
                self.calls[cid].bye_ok = True
            return
        method = text.split(" ", 1)[0]
        if method == "INVITE":
            if cid in self.calls:  # a retransmission
                c = self.calls[cid]
                if c.answered_at:
                    self.answer(c)
                return
            rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            rtp.bind((self.ip, 0))
            rtp.setblocking(False)
            c = Call(cid, text, src, rtp)
            with self.lock:
                self.calls[cid] = c
                if len(self.sampled) < SAMPLE:
                    self.sampled.add(cid)
            self.sel.register(rtp, selectors.EVENT_READ, c)
            self.reply(text, src, 180, "Ringing", c.tag)
            self.pending.append((time.time() + self.ring, cid))
        elif method == "BYE":
            self.reply(text, src, 200, "OK")
            c = self.calls.get(cid)
            if c:
                c.bye_ok = True
        elif method in ("OPTIONS", "UPDATE", "INFO"):
            self.reply(text, src, 200, "OK")
        # ACK: nothing to do

    def answer(self, c):
        contact = "Contact: <sip:pbx@%s:%d>\r\n" % (self.ip, self.port)
        self.reply(c.invite, c.src, 200, "OK", c.tag, self.sdp(c.rtp.getsockname()[1]), contact)
        if c.answered_at is None:
            c.answered_at = time.time()

    def bye_all(self):
        with self.lock:
            calls = list(self.calls.values())
        for c in calls:
            inv = c.invite
            contact = re.search(r"<([^>]+)>", header(inv, "Contact")).group(1)
            msg = (f"BYE {contact} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP {self.ip}:{self.port};rport"
                   f";branch=z9hG4bKbye{time.time_ns()}\r\n"
                   f"From: {header(inv, 'To')};tag={c.tag}\r\nTo: {header(inv, 'From')}\r\n"
                   f"Call-ID: {c.cid}\r\nCSeq: 101 BYE\r\nMax-Forwards: 70\r\n"
                   "Content-Length: 0\r\n\r\n")
            c.stop_sending = True
            self.sip.sendto(msg.encode(), c.src)

    def on_rtp(self, c):
        while True:
            try:
                data = c.rtp.recv(2048)
            except (BlockingIOError, OSError):
                return
            if len(data) < 12 or data[1] & 0x7F != 8:
                continue
            c.received += 1
            payload = data[12:]
            if c.first_audio is None and c.answered_at is not None:
                if audioop.rms(audioop.alaw2lin(payload, 2), 2) > SILENT_RMS:
                    c.first_audio = time.time()
            if c.cid in self.sampled:
                c.keep.append(payload)
                if len(c.keep) > 250:
                    del c.keep[:50]

    def run(self):
        next_tick = time.time()
        while not self.stop_flag:
            timeout = max(0.0, next_tick - time.time())
            for key, _ in self.sel.select(timeout):
                if key.data is None:
                    while True:
                        try:
                            data, src = self.sip.recvfrom(65535)
                        except (BlockingIOError, OSError):
                            break
                        self.on_sip(data, src)
                else:
                    self.on_rtp(key.data)
            now = time.time()
            while self.pending and self.pending[0][0] <= now:
                _, cid = self.pending.pop(0)
                self.answer(self.calls[cid])
            if now >= next_tick:
                next_tick += 0.02
                if next_tick < now - 0.2:  # we fell behind: no burst to catch up
                    next_tick = now + 0.02
                for c in list(self.calls.values()):
                    if c.answered_at is None or c.stop_sending:
                        continue
                    pkt = struct.pack("!BBHII", 0x80, 8, c.sent & 0xFFFF, (c.sent * 160) &
                                      0xFFFFFFFF, 0x1e5a0000 + c.rtp.getsockname()[1]) + \
                        self.payload
                    try:
                        c.rtp.sendto(pkt, c.dest)
                    except OSError:
                        pass
                    c.sent += 1

    def close(self):
        self.stop_flag = True
        self.thread.join(timeout=2)
        for c in self.calls.values():
            c.rtp.close()
        self.sip.close()


def wav_tail(path, seconds):
    """The last `seconds` of a 16-bit mono 48 kHz WAV that is still being written."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            want = int(seconds * 48000) * 2
            f.seek(max(44, size - want))
            raw = f.read()
    except OSError:
        return ()
    raw = raw[:len(raw) // 2 * 2]
    return struct.unpack("<%dh" % (len(raw) // 2), raw)


def share(pcm, freq, rate):
    """The share of 100 ms blocks where `freq` dominates."""
    block = rate // 10
    blocks = [pcm[i:i + block] for i in range(0, len(pcm) - block + 1, block)]
    return sum(tone_share(b, freq, rate) > 0.5 for b in blocks) / max(len(blocks), 1)


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def machine():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return {"cpu": model, "cores": os.cpu_count(), "load": load}


def peer_of(sim, call_id):
    """tgsim's call.peer, or {} before the call's engine runs."""
    try:
        return sim.ctl("call.peer", call_id=call_id)
    except AssertionError:
        return {}


def run(net):
    sim = TgSim()
    pbx = Pbx(PBX_IP)
    esg = None
    folder = tempfile.mkdtemp(prefix="esg-bench-tg-")
    try:
        sim.ctl("call.network", servers=[], allow_p2p=True)
        sim.ctl("timeouts", ring=60)
        config = {"telegram": {"tdjson": LIB, "sessions": os.path.join(folder, "telegram")},
                  "media": {"ports": [25000, 29999], "timeout": 30},
                  "log": {"log_trn": False}}
        esg = EsgProcess(config, env=sim.env(), folder=folder)
        api = Api(esg.ports["http"])
        api.ok("POST", "/rest/v1/uc/pbx", {"code": "pbx1", "mode": "ip", "address": PBX_IP,
                                          "port": pbx.port})
        account = sim.user(phone="+79990001000", code="24680", first_name="Line")
        line = api.ok("POST", LINES, {
            "code": "tg1", "api_id": 12345, "api_hash": API_HASH, "phone": "+79990001000",
            "pbx": "pbx1", "number": "100", "ring_timeout": 30}, want=(201,))

        def line_state():
            lines = api.ok("GET", "/api/monitor/v1/telegram/lines")["data"]["lines"]
            return next(x for x in lines if x["id"] == line["id"])["state"]

        deadline = time.time() + 15
        while line_state() != "wait_phone" and time.time() < deadline:
            time.sleep(0.05)
        api.ok("POST", "%s/%d/login" % (LINES, line["id"]), {})
        api.ok("POST", "%s/%d/login" % (LINES, line["id"]), {"code": "24680"})
        while line_state() != "ready" and time.time() < deadline:
            time.sleep(0.05)
        if line_state() != "ready":
            raise RuntimeError("the Telegram line did not get ready")
        users = []
        for i in range(N):
            uid = sim.user(first_name="Tg%d" % i, tone=TG_TONE, library_versions=["9.0.0"],
                           peer_log=os.environ.get("PEER_LOG", "warning"))
            sim.ctl("talked.add", a=account, b=uid)
            users.append(uid)
        time.sleep(1.0)
        idle_rss = rss_kib(esg.proc.pid)
        # esg's CPU with the line up and no call: its timers, the library's polling.
        c0, t0 = cpu_seconds(esg.proc.pid), time.time()
        time.sleep(3.0)
        idle_cores = (cpu_seconds(esg.proc.pid) - c0) / (time.time() - t0)

        # Place the calls at RATE a second.
        t0 = time.time()
        tg_calls = []
        for i, uid in enumerate(users):
            time.sleep(max(0.0, t0 + i / RATE - time.time()))
            tg_calls.append(sim.ctl("call.incoming", **{"from": uid, "to": account})["call_id"])
        # Every call up: the user's engine established and the PBX hearing sound.
        deadline = time.time() + 20 + N / RATE
        peers = {}
        while time.time() < deadline:
            peers = {c: peer_of(sim, c) for c in tg_calls}
            up = sum(p.get("state") == "established" for p in peers.values())
            heard = sum(c.first_audio is not None for c in list(pbx.calls.values()))
            if up == N and heard == N:
                break
            time.sleep(0.5)
        setup_s = time.time() - t0
        time.sleep(2.0)  # past the first seconds' jitter buffers and RTCP

        # The steady window.
        pid = esg.proc.pid
        with pbx.lock:
            calls = list(pbx.calls.values())
        rx_before = {c.cid: c.received for c in calls}
        tx_before = {c.cid: c.sent for c in calls}
        peers0, sim0, me0 = cpu_of("tgpeer_lite"), cpu_seconds(sim.proc.pid), time.process_time()
        m0 = machine_ticks()
        cpu0, w0 = cpu_seconds(pid), time.time()
        rss_peak = 0
        while time.time() < w0 + SECONDS:
            time.sleep(min(1.0, max(0.0, w0 + SECONDS - time.time())))
            rss_peak = max(rss_peak, rss_kib(pid))
        cpu1, w1 = cpu_seconds(pid), time.time()
        window = w1 - w0
        m1 = machine_ticks()
        # The harness's own CPU in the window (the users' engines, the simulator, this PBX)
        # and the whole machine's: when it is near 2 cores the harness and the other tenants
        # starve the peers, and their packets come late or not at all.
        harness = {"peers_cores": round((cpu_of("tgpeer_lite") - peers0) / window, 3),
                   "tgsim_cores": round((cpu_seconds(sim.proc.pid) - sim0) / window, 3),
                   "pbx_cores": round((time.process_time() - me0) / window, 3),
                   "machine_busy_cores": round((m1[0] - m0[0]) / (m1[2] - m0[2]) *
                                               os.cpu_count(), 2),
                   "machine_steal_cores": round((m1[1] - m0[1]) / (m1[2] - m0[2]) *
                                                os.cpu_count(), 2)}
        cores = (cpu1 - cpu0) / window

        # Audio on every call, in the window: packets and level at the PBX, level at the user.
        peers = {c: peer_of(sim, c) for c in tg_calls}
        pbx_ok = sum((c.received - rx_before[c.cid]) >= 0.9 * 50 * window for c in calls)
        # Packets a second per call in the window: what the PBX sent (50 unless this harness
        # fell behind) and what reached it from esg (50 when the user's engine sends 50).
        pbx_tx = [(c.sent - tx_before[c.cid]) / window for c in calls]
        pbx_rx = [(c.received - rx_before[c.cid]) / window for c in calls]
        levels = []
        first_tg, first_frame_tg, first_pbx = [], [], []
        established = 0
        answered = {c.cid: c.answered_at for c in calls}
        # The PBX's call of each Telegram user: the user's name ("Tg<i>") is the INVITE's
        # display name; by order of arrival when it is not.
        by_user = {}
        for c in calls:
            m = re.search(r"Tg(\d+)", header(c.invite, "From") or "")
            if m:
                by_user[int(m.group(1))] = c
        by_order = sorted(calls, key=lambda c: c.answered_at or 1e18)
        phases = {"answer_to_peer_start": [], "peer_start_to_established": [],
                  "established_to_first_audio": []}
        for i, c in enumerate(tg_calls):
            lines = peers[c].get("lines", [])
            established += peers[c].get("state") == "established"
            lv = [x["audio_level"] for x in lines if "audio_level" in x]
            levels.append(lv[-1] if lv else 0.0)
            fa = next((x["wall"] for x in lines if "first_audio" in x), None)
            ff = next((x["wall"] for x in lines if "first_frame" in x), None)
            est = next((x for x in lines if x.get("state") == "established" and "wall" in x),
                       None)
            pbx_call = by_user.get(i) or (by_order[i] if i < len(by_order) else None)
            ans = pbx_call.answered_at if pbx_call else None
            if fa and ans:
                first_tg.append(fa - ans)
            if ff and ans:
                first_frame_tg.append(ff - ans)
            if est and ans and fa:
                start = est["wall"] - est["t"]
                phases["answer_to_peer_start"].append(start - ans)
                phases["peer_start_to_established"].append(est["t"])
                phases["established_to_first_audio"].append(fa - est["wall"])
        for c in calls:
            if c.first_audio and c.answered_at:
                first_pbx.append(c.first_audio - c.answered_at)
        tg_ok = sum(l > 0.01 for l in levels)  # -40 dBFS; the tone is sent at -13.5
        # Frequencies on a sample.
        checks = []
        for c in calls:
            if c.cid not in pbx.sampled:
                continue
            raw = audioop.alaw2lin(b"".join(c.keep[-100:]), 2)
            pcm = struct.unpack("<%dh" % (len(raw) // 2), raw)
            checks.append(("pbx", share(pcm, TG_TONE, 8000), dbfs(pcm)))
        for c in tg_calls[:SAMPLE]:
            pcm = wav_tail(peers[c].get("recording", ""), 2.0)
            checks.append(("tg", share(pcm, PBX_TONE, 48000), dbfs(pcm)))
        rss_delta = (rss_peak - idle_rss) / 1024.0
        # Calls that did not come up: what the user's engine and the simulator said.
        down = [{"call": c, "sim": sim.ctl("call.state", call_id=c).get("history"),
                 "peer": peers[c].get("state"), "last": peers[c].get("lines", [])[-3:]}
                for c in tg_calls if peers[c].get("state") != "established"]

        # Hang up from the PBX; every BYE answered.
        pbx.bye_all()
        deadline = time.time() + 10
        while time.time() < deadline and not all(c.bye_ok for c in calls):
            time.sleep(0.1)
        byes = sum(c.bye_ok for c in calls)
        time.sleep(1.0)
        after_rss = rss_kib(pid)

        engine_ms = []
        try:
            with open(os.path.join(esg.dir, "esg.out"), errors="replace") as f:
                engine_ms = [int(m.group(1)) for m in
                             re.finditer(r"Telegram call media connected \((\d+) ms\)", f.read())]
        except OSError:
            pass
        result = {
            "calls": N, "up": established, "window_s": round(window, 1),
            "setup_s": round(setup_s, 1),
            "esg_cores": round(cores, 4),
            "esg_cpu_per_call_pct": round(100 * cores / N, 3),
            "calls_per_core": round(N / cores, 1) if cores > 0 else None,
            "esg_idle_cores": round(idle_cores, 4),
            "esg_cpu_per_call_marginal_pct": round(100 * (cores - idle_cores) / N, 3),
            "rss_idle_mib": round(idle_rss / 1024.0, 1),
            "rss_calls_mib": round(rss_peak / 1024.0, 1),
            "rss_after_mib": round(after_rss / 1024.0, 1),
            "mib_per_call": round(rss_delta / N, 3),
            "first_audio_tg_s": {"median": pct(first_tg, 50), "p95": pct(first_tg, 95),
                                 "max": pct(first_tg, 100), "n": len(first_tg)},
            "first_frame_tg_s": {"median": pct(first_frame_tg, 50),
                                 "max": pct(first_frame_tg, 100)},
            "first_audio_pbx_s": {"median": pct(first_pbx, 50), "p95": pct(first_pbx, 95),
                                  "max": pct(first_pbx, 100), "n": len(first_pbx)},
            "first_audio_phases_s": {k: {"median": pct(v, 50), "max": pct(v, 100)}
                                     for k, v in phases.items()},
            "esg_engine_connect_ms": {"median": pct(engine_ms, 50), "p95": pct(engine_ms, 95),
                                      "max": pct(engine_ms, 100), "n": len(engine_ms)},
            "first_audio_tg_all_s": [round(x, 3) for x in first_tg],
            "pbx_pps_sent": {"min": pct(pbx_tx, 0), "median": pct(pbx_tx, 50)},
            "pbx_pps_received": {"min": pct(pbx_rx, 0), "median": pct(pbx_rx, 50)},
            "audio_pbx_ok": pbx_ok, "audio_tg_ok": tg_ok,
            "tone_checks": [{"at": a, "share": round(s, 2), "dbfs": round(d, 1)}
                            for a, s, d in checks],
            "byes_answered": byes,
            "harness": harness,
            "down": down,
            "machine": machine(),
        }
        return result
    finally:
        pbx.close()
        # A call that did not come up, or KEEP=1: esg's and the simulator's folders (esg.out,
        # each user's engine log tgpeer-call<N>.log) stay for a look.
        keep = os.environ.get("KEEP") == "1" or bool(locals().get("down"))
        if esg:
            esg.stop()
            esg.cleanup(keep)
        sim.stop()
        sim.cleanup(keep)


def fmt(v, f="%.3f"):
    return "-" if v is None else f % v


def main():
    why = TgNet.unavailable()
    if why:
        print("SKIP: telegram_media needs a network namespace: %s" % why)
        return 77
    for path in (os.environ["ESG_BIN"], LIB, TGPEER):
        if not os.path.exists(path):
            print("SKIP: %s is not built (set ESG_BUILD)" % path)
            return 77
    with TgNet() as net:
        r = run(net)
    fa, fp = r["first_audio_tg_s"], r["first_audio_pbx_s"]
    goals = {
        "calls_per_core": r["calls_per_core"] is not None and
        r["calls_per_core"] >= GOALS["calls_per_core"],
        "mib_per_call": r["mib_per_call"] <= GOALS["mib_per_call"],
        "first_audio_s": fa["max"] is not None and fp["max"] is not None and
        max(fa["max"], fp["max"]) < GOALS["first_audio_s"],
    }
    r["goals_met"] = goals
    print("Telegram calls through esg, Opus <-> PCMA, %d calls up %d/%d, %.0f s window "
          "(%s, %d cores, load %s)" % (r["calls"], r["up"], r["calls"], r["window_s"],
                                      r["machine"]["cpu"], r["machine"]["cores"],
                                      r["machine"]["load"]))
    print("  esg CPU          %6.1f %% of a core   %.3f %% per call   %s calls per core  [goal >= "
          "40: %s]" % (100 * r["esg_cores"], r["esg_cpu_per_call_pct"],
                       fmt(r["calls_per_core"], "%.1f"), goals["calls_per_core"]))
    print("  esg idle         %6.1f %% of a core (line up, no call): %.3f %% per call above it"
          % (100 * r["esg_idle_cores"], r["esg_cpu_per_call_marginal_pct"]))
    print("  esg RSS          idle %.1f MiB, with calls %.1f MiB, after %.1f MiB: %.3f MiB per "
          "call  [goal <= 2: %s]" % (r["rss_idle_mib"], r["rss_calls_mib"], r["rss_after_mib"],
                                     r["mib_per_call"], goals["mib_per_call"]))
    print("  answer -> audio  at Telegram median %s p95 %s max %s s; at the PBX median %s p95 %s "
          "max %s s  [goal < 1 s: %s]" % (fmt(fa["median"]), fmt(fa["p95"]), fmt(fa["max"]),
                                          fmt(fp["median"]), fmt(fp["p95"]), fmt(fp["max"]),
                                          goals["first_audio_s"]))
    ph = r["first_audio_phases_s"]
    print("  of which         answer -> user's engine runs %s/%s, -> established %s/%s, -> audio "
          "%s/%s s (median/max)" % tuple(fmt(ph[k][q]) for k in (
              "answer_to_peer_start", "peer_start_to_established", "established_to_first_audio")
              for q in ("median", "max")))
    em = r["esg_engine_connect_ms"]
    print("  esg's engine     start -> connected median %s p95 %s max %s ms (its log, %d calls)"
          % (em["median"], em["p95"], em["max"], em["n"]))
    h = r["harness"]
    print("  harness          users' engines %.2f, tgsim %.2f, PBX %.2f cores; machine busy %.2f "
          "of %d cores (steal %.2f)" % (h["peers_cores"], h["tgsim_cores"], h["pbx_cores"],
                                        h["machine_busy_cores"], os.cpu_count(),
                                        h["machine_steal_cores"]))
    print("  PBX packets/s    sent per call min %.1f median %.1f, received min %.1f median %.1f"
          % (r["pbx_pps_sent"]["min"], r["pbx_pps_sent"]["median"],
             r["pbx_pps_received"]["min"], r["pbx_pps_received"]["median"]))
    print("  audio            PBX hears %d/%d, Telegram hears %d/%d; tones: %s" % (
        r["audio_pbx_ok"], r["calls"], r["audio_tg_ok"], r["calls"],
        ", ".join("%s %.2f@%.0fdB" % (c["at"], c["share"], c["dbfs"])
                  for c in r["tone_checks"])))
    for d in r["down"]:
        print("  not up: %s" % json.dumps(d))
    print(json.dumps(r))
    tones_ok = all(c["share"] > 0.7 for c in r["tone_checks"])
    flowing = r["up"] == N and r["audio_pbx_ok"] == N and r["audio_tg_ok"] == N and tones_ok
    return 0 if flowing else 1


if __name__ == "__main__":
    sys.exit(main())
