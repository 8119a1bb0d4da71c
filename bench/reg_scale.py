#!/usr/bin/env python3
"""10,000 provider accounts on one esg against a SIPp registrar on loopback: how the start-up
REGISTERs are spread over time, how long until all are registered, and the memory each
registered account costs (RSS with the accounts minus RSS of the same esg without them).

    bench/reg_scale.py [ACCOUNTS] [RATE]     (defaults 10000 and 500 REGISTERs/s)
    ESG_BIN=build/other/esg bench/reg_scale.py ...   (another build than build/esg)
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# ESG_BIN runs another build (a helper's own build directory); the lead's build by default.
ESG = os.environ.get("ESG_BIN") or os.path.join(ROOT, "build", "esg")
N = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
RATE = float(sys.argv[2]) if len(sys.argv) > 2 else 500


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start_esg(folder, providers):
    config = {"instance": {"workers": 2},
              "listen": [{"proto": "udp", "addr": "127.0.0.1", "port": 0}],
              "http": {"listen": "127.0.0.1:0", "token": "bench"},
              "store": {"sqlite": os.path.join(folder, "esg.db")},
              "log": {"dir": os.path.join(folder, "log"), "log_trn": False},
              "accounts": {"register_rate": RATE},
              "providers": providers}
    path = os.path.join(folder, "esg.json")
    with open(path, "w") as f:
        json.dump(config, f)
    p = subprocess.Popen([ESG, "run", "--config", path], stdout=subprocess.PIPE, text=True)
    http = None
    for line in p.stdout:
        if line.startswith("listening on http"):
            http = int(line.rsplit(":", 1)[1])
        if line.startswith("ready"):
            break
    return p, http


def regs(http):
    req = urllib.request.Request("http://127.0.0.1:%d/api/monitor/v1/esg/active?regs=true" % http,
                                 headers={"Authorization": "Bearer bench"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)["data"]["sites"][0]["servers"][0]["regs"]


def main():
    folder = tempfile.mkdtemp(prefix="esg-reg-scale-")
    port = free_port()
    sipp = subprocess.Popen(["sipp", "-sf", os.path.join(ROOT, "bench", "registrar_200.xml"),
                             "-i", "127.0.0.1", "-p", str(port), "-nostdin", "-nd",
                             "-trace_stat", "-fd", "1", "-max_socket", "50000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=folder)
    time.sleep(0.5)
    try:
        base_folder = os.path.join(folder, "base")
        os.makedirs(base_folder)
        base, _ = start_esg(base_folder, [])
        time.sleep(1)
        base_rss = rss_kib(base.pid)
        base.send_signal(signal.SIGTERM)
        base.wait()

        providers = [{"code": "b%d" % i, "username": "u%d" % i, "pwd": "x", "domain": "bench.test",
                      "proxyaddr": "127.0.0.1", "proxyport": port, "expires": 3600}
                     for i in range(N)]
        t0 = time.time()
        esg, http = start_esg(folder, providers)
        t_ready = time.time() - t0
        rates = []  # registrations per second between two polls
        last, last_t = 0, time.time()
        while True:
            now = regs(http)
            done = sum(1 for r in now if r["regstate"] == "registered")
            t = time.time()
            if done > last:
                rates.append((done - last) / (t - last_t))
            last, last_t = done, t
            if done >= N or time.time() - t0 > N / RATE * 3 + 60:
                break
            time.sleep(1)
        t_all = time.time() - t0
        # Steady state: the last REGISTER transactions linger for Timer K (T4 = 5 s) first.
        time.sleep(6)
        rss = rss_kib(esg.pid)
        per_second = sorted(rates)
        print("accounts %d, register_rate %.0f/s, machine: %d cores, %s" %
              (N, RATE, os.cpu_count(), os.uname().release))
        print("esg ready (store import of %d accounts) after %.1f s" % (N, t_ready))
        print("all registered after %.1f s (%d registered)" % (t_all, last))
        print("registrations per second between polls: max %.0f, median %.0f (configured %.0f; "
              "a burst would be %d at once)" %
              (per_second[-1], per_second[len(per_second) // 2], RATE, N))
        print("RSS %d KiB with the accounts, %d KiB without: %.2f KiB per registered account" %
              (rss, base_rss, (rss - base_rss) / max(1, last)))
        esg.send_signal(signal.SIGTERM)
        esg.wait(timeout=60)
    finally:
        sipp.kill()
        sipp.wait()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
