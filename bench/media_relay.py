#!/usr/bin/env python3
"""esg's RTP relay side by side with rtpengine's (Debian's, userspace forwarding, driven over
its ng control protocol) under the same load: CALLS concurrent G.711 calls, each 50 packets a
second both ways (bench's rtp_load), for SECONDS. Prints, for each relay, the packets relayed
per second, its CPU, the packets relayed per CPU-second, the CPU per 100 calls and the loss;
then the ratio. Both relays run one thread. Everything on loopback: callers on 127.0.0.2, the
callee side on 127.0.0.5, the relays on 127.0.0.1.

    bench/media_relay.py [CALLS] [SECONDS]      (after scripts/test; defaults 300 and 10)
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e", "lib"))
os.environ.setdefault("ESG_BIN", os.path.join(ROOT, "build", "esg"))
from esg_fixture import EsgProcess  # noqa: E402
from rest_api import Api  # noqa: E402
from sipp_fixture import SippPeer, free_port  # noqa: E402
from sip_call import UdpCall  # noqa: E402

CALLS = int(sys.argv[1]) if len(sys.argv) > 1 else 300
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 10
LOAD = os.path.join(ROOT, "build", "bench", "rtp_load")
SDP = ("v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
       "m=audio {port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_load(pid, calls):
    """(packets relayed per second, CPU seconds of `pid`, loss) for `calls` [(a_port, b_port)]."""
    lines = "".join("127.0.0.2 %d 127.0.0.5 %d\n" % c for c in calls)
    before = cpu_seconds(pid)
    start = time.time()
    out = subprocess.run([LOAD, "127.0.0.1", str(SECONDS)], input=lines, capture_output=True,
                         text=True, check=True).stdout.split()
    elapsed = time.time() - start
    cpu = cpu_seconds(pid) - before
    sent, received = int(out[0]), int(out[1])
    return received / elapsed, cpu, elapsed, 1.0 - received / max(sent, 1)


def report(name, pps, cpu, elapsed, loss):
    per_cpu = pps * elapsed / max(cpu, 1e-9)
    per_100 = 100.0 * (cpu / elapsed) / (CALLS / 100.0)
    print("%-10s relayed %8.0f pkt/s  CPU %5.1f %%  %8.0f pkt per CPU-s  %5.2f %% CPU per 100 "
          "calls  loss %.3f %%" % (name, pps, 100 * cpu / elapsed, per_cpu, per_100, 100 * loss))
    return per_cpu


def esg_calls():
    esg = EsgProcess({"instance": {"workers": 1}, "media": {"ports": [30000, 39999]},
                      "log": {"log_trn": False}})
    api = Api(esg.ports["http"])
    api.ok("POST", "/rest/v1/uc/providers",
           {"code": "prov", "domain": "127.0.0.2", "reg": False, "username": "", "trunks": 0})
    uas = SippPeer(os.path.join(ROOT, "tests", "e2e", "calls", "uas_answer.xml"), "127.0.0.5",
                   calls=CALLS, extra=["-mi", "127.0.0.5", "-mp", str(free_port("127.0.0.5"))])
    pbx = api.ok("POST", "/rest/v1/uc/pbx",
                 {"code": "pbx", "mode": "ip", "address": "127.0.0.5", "port": uas.port})
    api.ok("POST", "/rest/v1/routing/rules", {"direction": "in", "action": "pbx", "target": "pbx"})
    calls = []
    for i in range(CALLS):
        c = UdpCall(esg.ports["udp"], "127.0.0.2", "100", 20000 + 2 * i)
        assert c.status == 200, c.responses
        calls.append(c)
    deadline = time.time() + 10
    while time.time() < deadline:
        board = api.ok("GET", "/api/monitor/v1/calls")["data"]["calls"]
        ports = {x["id"]: x["media"]["streams"][0]["b"]["local_port"] for x in board
                 if x.get("media") and x["media"]["streams"]}
        if len(ports) >= CALLS:
            break
        time.sleep(0.2)
    pairs = [(c.media_dest()[1], ports[c.call_id]) for c in calls]
    return esg, uas, calls, pairs, pbx


def bencode(x):
    if isinstance(x, int):
        return b"i%de" % x
    if isinstance(x, str):
        x = x.encode()
    if isinstance(x, bytes):
        return b"%d:%s" % (len(x), x)
    return b"d" + b"".join(bencode(k) + bencode(v) for k, v in sorted(x.items())) + b"e"


def rtpengine_calls(folder):
    ng = free_port()
    proc = subprocess.Popen(
        ["rtpengine", "--foreground", "--table=-1", "--interface=lo/127.0.0.1",
         "--listen-ng=127.0.0.1:%d" % ng, "--port-min=40000", "--port-max=49999",
         "--num-threads=1", "--log-level=3", "--log-stderr", "--pidfile",
         os.path.join(folder, "pid")],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(folder, "rtpengine.log"), "w"))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)

    def command(n, body):
        cookie = b"c%d " % n
        for _ in range(20):
            try:
                s.sendto(cookie + bencode(body), ("127.0.0.1", ng))
                answer = s.recv(65535)
                break
            except (socket.timeout, ConnectionRefusedError):
                time.sleep(0.2)
        text = answer.decode(errors="replace")
        return int(text.split("m=audio ", 1)[1].split()[0])

    pairs = []
    for i in range(CALLS):
        a = command(2 * i, {"command": "offer", "call-id": "bench-%d" % i, "from-tag": "a",
                            "sdp": SDP.format(ip="127.0.0.2", port=20000 + 2 * i)})
        b = command(2 * i + 1, {"command": "answer", "call-id": "bench-%d" % i, "from-tag": "a",
                                "to-tag": "b", "sdp": SDP.format(ip="127.0.0.5", port=24000 + 2 * i)})
        # The offer's answer port is where the caller sends; the answer's is the callee's.
        pairs.append((b, a))
    return proc, pairs


def main():
    with open("/proc/cpuinfo") as f:
        model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    print("machine: %d cores, %s; %d calls, %.0f s, G.711 20 ms both ways" %
          (os.cpu_count(), model, CALLS, SECONDS))
    esg, uas, calls, pairs, _ = esg_calls()
    try:
        esg_rate = report("esg", *run_load(esg.proc.pid, pairs))
    finally:
        for c in calls:
            c.close()
        esg.stop()
        uas.stop()
        esg.cleanup(keep=False)
        uas.cleanup(keep=False)
    folder = tempfile.mkdtemp(prefix="esg-rtpengine-")
    proc, pairs = rtpengine_calls(folder)
    try:
        rtpe_rate = report("rtpengine", *run_load(proc.pid, pairs))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)
    print("esg / rtpengine packets per CPU-second: %.2f" % (esg_rate / max(rtpe_rate, 1e-9)))


if __name__ == "__main__":
    main()
