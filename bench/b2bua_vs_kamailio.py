#!/usr/bin/env python3
"""The same SIPp call load (UAC -> target -> UAS, full calls, signaling only) against esg as a
B2BUA and against Kamailio as a tuned stateful proxy, one after the other: the rate steps up
until more than 0.1 % of the calls fail; prints each one's highest clean rate and the ratio,
then the memory esg spends per call in progress.

    bench/b2bua_vs_kamailio.py [STEP_SECONDS] [HELD_CALLS]     (defaults 5 and 3000)

CPU per call (issue 24): the same offered rate against each, CPU-seconds of each process tree
(esg's threads; all of Kamailio's processes) over the run divided by the calls completed;
esg as operators run it (transaction log and CDRs on) and with both off:

    bench/b2bua_vs_kamailio.py --cpu [RATE] [SECONDS]           (defaults 1500 and 10)

Only esg's memory per call in progress:

    bench/b2bua_vs_kamailio.py --memory [HELD_CALLS]               (default 3000)

Everything runs on loopback: UAC on 127.0.0.2, target on 127.0.0.1, UAS on 127.0.0.3.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ESG = os.environ.get("ESG_BIN", os.path.join(ROOT, "build", "esg"))
CPU_MODE = "--cpu" in sys.argv
MEMORY_MODE = "--memory" in sys.argv
ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
if MEMORY_MODE:
    STEP = 5
    HELD = int(ARGS[0]) if len(ARGS) > 0 else 3000
elif CPU_MODE:
    CPU_RATE = int(ARGS[0]) if len(ARGS) > 0 else 1500
    STEP = float(ARGS[1]) if len(ARGS) > 1 else 10
    HELD = 0
else:
    STEP = float(ARGS[0]) if len(ARGS) > 0 else 5
    HELD = int(ARGS[1]) if len(ARGS) > 1 else 3000
RATES = [1000, 2000, 3000, 4000, 4500, 5000, 5500, 6000, 6500, 7000, 8000, 10000]
TOKEN = "bench"


def free_port(ip="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def api(port, method, path, body=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Authorization", "Bearer " + TOKEN)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read().decode()
        return json.loads(text) if text else None


def start_uas(folder):
    port = free_port("127.0.0.3")
    p = subprocess.Popen(["sipp", "-sf", os.path.join(ROOT, "bench", "uas_200.xml"),
                          "-i", "127.0.0.3", "-p", str(port), "-nostdin",
                          "-buff_size", str(4 << 20)],
                         cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return p, port


def run_step(target, rate, folder, duration_ms=0, calls=None, wait=True):
    """One SIPp UAC run: `rate` calls per second for STEP seconds. Returns (ok, failed)."""
    calls = calls or int(rate * STEP)
    stats = os.path.join(folder, "uac_%d.csv" % rate)
    cmd = ["sipp", target, "-sn", "uac", "-i", "127.0.0.2", "-p", str(free_port("127.0.0.2")),
           "-r", str(rate), "-m", str(calls), "-d", str(duration_ms), "-nostdin",
           "-recv_timeout", "8000", "-timeout", str(int(STEP * 3 + 30 + duration_ms / 1000)),
           "-buff_size", str(4 << 20), "-l", str(max(rate * 3, calls if duration_ms else 0)),
           "-trace_stat", "-stf", stats, "-fd", "1",
           "-trace_err", "-error_file", os.path.join(folder, "uac_%d_errors.log" % rate)]
    p = subprocess.Popen(cmd, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    if not wait:
        return p
    out, _ = p.communicate()
    return parse(out, stats, calls)


def parse(out, stats, calls):
    ok = failed = None
    if os.path.exists(stats):
        with open(stats) as f:
            rows = [l.strip().split(";") for l in f if l.strip()]
        if len(rows) >= 2:
            head, last = rows[0], rows[-1]
            ok = int(last[head.index("SuccessfulCall(C)")])
            failed = int(last[head.index("FailedCall(C)")])
    if ok is None:
        m = re.findall(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", out)
        f = re.findall(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", out)
        ok = int(m[-1]) if m else 0
        failed = int(f[-1]) if f else calls - ok
    # Calls SIPp never finished (the run timed out) count as failed too.
    return ok, max(failed, calls - ok)


def ramp(name, target, folder):
    best = 0
    for rate in RATES:
        ok, failed = run_step(target, rate, folder)
        total = ok + failed
        share = failed / total if total else 1
        print("  %-9s %6d calls/s: %6d ok, %5d failed (%.2f %%)" % (name, rate, ok, failed,
                                                                    share * 100), flush=True)
        if total == 0 or share > 0.001:
            break
        best = rate
        time.sleep(1)
    return best


def cpu_seconds(pids):
    """utime + stime of the processes (all their threads), in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return total / ticks


def group_pids(pgid):
    """The processes of a process group (Kamailio's children, started in a session of its own)."""
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid:
                    pids.append(int(name))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                pass
    return pids


def cpu_per_call(name, target, pids, folder):
    """One run at CPU_RATE for STEP seconds: (µs of CPU per completed call, ok, failed)."""
    time.sleep(1)
    before = cpu_seconds(pids)
    ok, failed = run_step(target, CPU_RATE, folder)
    # What the target still does for these calls after SIPp's last one (CDRs, log flushes).
    time.sleep(1)
    used = cpu_seconds(pids) - before
    us = used / ok * 1e6 if ok else float("inf")
    print("  %-22s %5d calls/s for %g s: %6d ok, %4d failed, %.2f CPU-s, %.0f us per call" % (
        name, CPU_RATE, STEP, ok, failed, used, us), flush=True)
    return us


def start_esg(folder, uas_port, instance=None, log_trn=False, cdrs=True):
    config = {"instance": dict({"workers": 2, "domain": "bench.esg"}, **(instance or {})),
              "listen": [{"proto": "udp", "addr": "127.0.0.1", "port": 0}],
              "http": {"listen": "127.0.0.1:0", "token": TOKEN},
              "store": {"sqlite": os.path.join(folder, "esg.db"), "cdrs": cdrs},
              # Signaling only, like the proxy it is compared with: the relay would hand out a
              # port pair per call (bench/media_relay.py measures it).
              "media": {"relay": False},
              "log": {"dir": os.path.join(folder, "log"), "log_trn": log_trn}}
    path = os.path.join(folder, "esg.json")
    with open(path, "w") as f:
        json.dump(config, f)
    p = subprocess.Popen([ESG, "run", "--config", path], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    ports = {}
    while "udp" not in ports or "http" not in ports:
        m = re.match(r"listening on (\w+) [\d.:]+:(\d+)", p.stdout.readline())
        if m:
            ports[m.group(1)] = int(m.group(2))
    api(ports["http"], "POST", "/rest/v1/uc/providers",
        {"code": "uac", "domain": "127.0.0.2", "reg": False, "username": ""})
    api(ports["http"], "POST", "/rest/v1/uc/pbx",
        {"code": "uas", "mode": "ip", "address": "127.0.0.3", "port": uas_port})
    api(ports["http"], "POST", "/rest/v1/routing/rules",
        {"direction": "in", "action": "pbx", "target": "uas"})
    return p, ports


def start_kamailio(folder, uas_port):
    port = free_port()
    cfg = os.path.join(folder, "kamailio.cfg")
    with open(cfg, "w") as f:
        f.write("""#!KAMAILIO
debug=1
log_stderror=yes
children=2
auto_aliases=no
dns=no
rev_dns=no
maxbuffer=4194304
listen=udp:127.0.0.1:%d
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
request_route {
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
  if (has_totag()) {
    if (loose_route()) { t_relay(); exit; }
    if (is_method("ACK") && t_check_trans()) { t_relay(); exit; }
    # SIPp's built-in UAC ignores Record-Route: its ACK and BYE come without Route.
    $du = "sip:127.0.0.3:%d";
    t_relay();
    exit;
  }
  if (is_method("CANCEL")) { if (t_check_trans()) { t_relay(); } exit; }
  record_route();
  $du = "sip:127.0.0.3:%d";
  t_relay();
}
""" % (port, uas_port, uas_port))
    p = subprocess.Popen(["kamailio", "-f", cfg, "-DD", "-E", "-x", "tlsf", "-X", "tlsf",
                          "-m", "512", "-M", "32", "-Y", folder],
                         stdout=open(os.path.join(folder, "kamailio.log"), "w"),
                         stderr=subprocess.STDOUT, start_new_session=True)
    time.sleep(1.5)
    if p.poll() is not None:
        raise RuntimeError("kamailio did not start; see " + folder)
    return p, port


def stop(p):
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except (PermissionError, ProcessLookupError):
            p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def memory_per_call(esg, ports, folder):
    """RSS with HELD calls in progress minus RSS before them, per call."""
    time.sleep(2)
    before = rss_kib(esg.pid)
    rate = 500
    hold_ms = int(HELD / rate * 1000) + 6000
    p = run_step("127.0.0.1:%d" % ports["udp"], rate, folder, duration_ms=hold_ms, calls=HELD,
                 wait=False)
    deadline = time.time() + HELD / rate + 5
    peak, calls = before, 0
    while time.time() < deadline:
        time.sleep(0.5)
        peak = max(peak, rss_kib(esg.pid))
        calls = max(calls, len(api(ports["http"], "GET", "/api/monitor/v1/calls")["data"]["calls"]))
    p.communicate()
    return before, peak, calls


def cpu_main(folder):
    uas, uas_port = start_uas(folder)
    results = {}
    try:
        for label, trn, cdrs in (("esg (trn log, CDRs)", True, True),
                                 ("esg (no trn log, no CDRs)", False, False)):
            sub = os.path.join(folder, "esg-%d" % len(results))
            os.makedirs(sub)
            esg, ports = start_esg(sub, uas_port, log_trn=trn, cdrs=cdrs)
            try:
                results[label] = cpu_per_call(label, "127.0.0.1:%d" % ports["udp"], [esg.pid],
                                              folder)
            finally:
                stop(esg)
        kam, kport = start_kamailio(folder, uas_port)
        try:
            results["kamailio"] = cpu_per_call("Kamailio", "127.0.0.1:%d" % kport,
                                               group_pids(kam.pid), folder)
        finally:
            stop(kam)
    finally:
        stop(uas)
    print()
    kam_us = results.pop("kamailio")
    for label, us in results.items():
        print("CPU per call: %s %.0f us, Kamailio %.0f us, ratio (Kamailio / esg) %.2f" % (
            label, us, kam_us, kam_us / us if us else 0))


def main():
    for knob in ("net.core.rmem_max=4194304", "net.core.wmem_max=4194304"):
        subprocess.run(["sysctl", "-w", knob], capture_output=True)
    folder = tempfile.mkdtemp(prefix="esg-bench-b2bua-")
    if CPU_MODE:
        try:
            cpu_main(folder)
        finally:
            if "--keep" in sys.argv:
                print("kept", folder)
            else:
                shutil.rmtree(folder, ignore_errors=True)
        return
    uas, uas_port = start_uas(folder)
    results = {}
    try:
        esg, ports = start_esg(folder, uas_port)
        if MEMORY_MODE:
            try:
                before, peak, calls = memory_per_call(esg, ports, folder)
            finally:
                stop(esg)
            print("esg memory: %d calls in progress, RSS %d -> %d KiB: %.1f KiB per call" % (
                calls, before, peak, (peak - before) / calls if calls else 0))
            shutil.rmtree(folder, ignore_errors=True)
            return
        try:
            # Memory first, on a fresh process: after the ramp's overload step the allocator
            # keeps what the queues grew to.
            before, peak, calls = memory_per_call(esg, ports, folder)
            time.sleep(HELD / 500 + 8)  # the held calls end
            print("esg (B2BUA, 2 workers):", flush=True)
            results["esg"] = ramp("esg", "127.0.0.1:%d" % ports["udp"], folder)
        finally:
            stop(esg)
        kam, kport = start_kamailio(folder, uas_port)
        try:
            print("Kamailio (stateful proxy, TLSF, 2 children, record-route):", flush=True)
            results["kamailio"] = ramp("kamailio", "127.0.0.1:%d" % kport, folder)
        finally:
            stop(kam)
    finally:
        stop(uas)
    print()
    print("highest rate with < 0.1 %% failed calls: esg %d/s, Kamailio %d/s, ratio %.2f" % (
        results["esg"], results["kamailio"],
        results["esg"] / results["kamailio"] if results["kamailio"] else 0))
    if calls:
        print("esg memory: %d calls in progress, RSS %d -> %d KiB: %.1f KiB per call" % (
            calls, before, peak, (peak - before) / calls))
    if "--keep" in sys.argv:
        print("kept", folder)
    else:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
