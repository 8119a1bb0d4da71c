#!/usr/bin/env python3
"""esg past its limit: the same SIPp call load (full calls, signaling only, UAC on 127.0.0.2 ->
esg -> UAS on 127.0.0.3), well above what the machine carries, once with the overload control
(instance.overload_lag 500 ms) and once without (0). Prints for each how many calls completed,
how many were refused at once with 503, and how many failed otherwise (timeouts: the caller
waited for nothing), what esg counted, and the peak of esg's resident memory.

    bench/overload.py [RATE] [SECONDS] [LAGS]     (defaults 8000 calls/s, 10 s, "500,0,500,0")
"""

import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import b2bua_vs_kamailio as b  # noqa: E402

RATE = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 10
LAGS = [int(x) for x in (sys.argv[3] if len(sys.argv) > 3 else "500,0,500,0").split(",")]


def failures(stats):
    """SIPp's failure columns of the last statistics row that are not zero."""
    with open(stats) as f:
        rows = [l.strip().split(";") for l in f if l.strip()]
    head, last = rows[0], rows[-1]
    return {h[len("Failed"):-3]: int(v) for h, v in zip(head, last)
            if h.startswith("Failed") and h.endswith("(C)") and v.isdigit() and int(v)}


def metric(port, name):
    import urllib.request
    req = urllib.request.Request("http://127.0.0.1:%d/metrics" % port,
                                 headers={"Authorization": "Bearer " + b.TOKEN})
    with urllib.request.urlopen(req, timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


def main():
    b.STEP = SECONDS
    for lag in LAGS:
        folder = tempfile.mkdtemp(prefix="esg-bench-overload-")
        uas, uas_port = b.start_uas(folder)
        try:
            esg, ports = b.start_esg(folder, uas_port, {"overload_lag": lag})
            try:
                started = time.time()
                rss_before = peak = b.rss_kib(esg.pid)
                p = b.run_step("127.0.0.1:%d" % ports["udp"], RATE, folder, wait=False)
                while p.poll() is None:  # memory must stay bounded past the limit too
                    peak = max(peak, b.rss_kib(esg.pid))
                    time.sleep(0.25)
                out, _ = p.communicate()
                ok, failed = b.parse(out, os.path.join(folder, "uac_%d.csv" % RATE),
                                     int(RATE * SECONDS))
                took = time.time() - started
                why = failures(os.path.join(folder, "uac_%d.csv" % RATE))
                refused = metric(ports["http"], "esg_overload_refused_total")
            finally:
                b.stop(esg)
        finally:
            b.stop(uas)
        print("overload_lag %4d ms: %d calls at %d/s: %d completed (%.1f/s), %d failed %s; "
              "esg refused %d with 503; the run took %.0f s; esg's RSS %d -> peak %d MiB" % (
                  lag, RATE * SECONDS, RATE, ok, ok / took, failed, why, refused or 0, took,
                  rss_before // 1024, peak // 1024),
              flush=True)
        shutil.rmtree(folder, ignore_errors=True)
        time.sleep(2)


if __name__ == "__main__":
    main()
