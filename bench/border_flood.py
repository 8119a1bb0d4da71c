#!/usr/bin/env python3
"""The border's drop path over loopback sockets: esg (2 workers, recvmmsg batches) behind a
whitelist (allow 127.0.0.1, drop everything else) takes a UDP flood of SIP requests from
127.0.0.2 sent by bench's udp_flood (sendmmsg). Prints what the generator sent per second and
what esg dropped per second, then checks that the trusted peer is still answered. On a small
machine the generator and esg share the cores: the generator is the limit, so both are shown.

    bench/border_flood.py [SECONDS]      (after scripts/test; default 5)
"""

import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e", "lib"))
os.environ.setdefault("ESG_BIN", os.path.join(ROOT, "build", "esg"))
from esg_fixture import EsgProcess, ask_options  # noqa: E402
from rest_api import Api  # noqa: E402

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 5
FLOOD = os.path.join(ROOT, "build", "bench", "udp_flood")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def counters(api):
    return api.ok("GET", "/api/monitor/v1/border")["data"]["counters"]


def main():
    with open("/proc/cpuinfo") as f:
        model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    print("machine: %d cores, %s" % (os.cpu_count(), model))
    esg = EsgProcess({"instance": {"workers": 2}})
    try:
        api = Api(esg.ports["http"])
        api.ok("POST", "/rest/v1/master/borderrules",
               {"priority": 10, "action": "allow", "address": "127.0.0.1"})
        api.ok("POST", "/rest/v1/master/borderrules",
               {"priority": 100, "action": "drop", "address": "0.0.0.0/0"})
        before = counters(api)["dropped_by_rule"]
        cpu_before = cpu_seconds(esg.proc.pid)
        start = time.time()
        flood = subprocess.Popen([FLOOD, "127.0.0.2", "127.0.0.1", str(esg.ports["udp"]),
                                  str(SECONDS)], stdout=subprocess.PIPE, text=True)
        time.sleep(min(1.0, SECONDS / 2))
        answered = sum(ask_options(esg.ports["udp"], "127.0.0.1") == 200 for _ in range(10))
        out, _ = flood.communicate()
        time.sleep(0.5)  # what is still queued in the socket buffer
        elapsed = time.time() - start - 0.5
        cpu = cpu_seconds(esg.proc.pid) - cpu_before
        sent = int(out.strip())
        dropped = counters(api)["dropped_by_rule"] - before
        print("generator sent:  %10.0f packets/s (%d in %.1f s)" % (sent / elapsed, sent, elapsed))
        print("esg dropped:     %10.0f packets/s (%d, %.1f %% of sent)"
              % (dropped / elapsed, dropped, 100.0 * dropped / max(sent, 1)))
        print("esg CPU:         %10.2f s for them: %.0f packets per CPU-second"
              % (cpu, dropped / max(cpu, 1e-9)))
        print("trusted peer (127.0.0.1) answered during the flood: %d of 10 OPTIONS" % answered)
    finally:
        esg.stop()
        esg.cleanup(keep=False)


if __name__ == "__main__":
    main()
