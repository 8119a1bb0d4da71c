#!/usr/bin/env python3
"""Failover and failback times of several instances (issue 11), and what the leases cost.

PostgreSQL (a fresh cluster on loopback), Kamailio as the registrar, three esg instances with
roleids 1, 2, 3 (the defaults: heartbeat 1 s, dead after 3 s) and ACCOUNTS provider accounts.
Each cycle kills the owner (instance 1) with SIGKILL and measures the time until instance 2 sends
its first REGISTER (the `Contact: *` that removes the dead binding) and until instance 2 has
every account registered; then starts instance 1 again and measures from the
spawn of the process to its first REGISTER and to every account registered from it, and how
the takeover's REGISTERs are spread (the busiest second at the registrar). Also: store
transactions per second while idle (heartbeats of three instances) and the lease rows read and
written meanwhile.

    bench/cluster_failover.py [CYCLES] [ACCOUNTS] [RATE]   (defaults 5, 50 and 500: the
                                                            accounts.register_rate)

ESG_BIN overrides the binary (default build/esg).
"""

import datetime
import os
import re
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e", "lib"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
os.environ.setdefault("ESG_BIN", os.path.join(ROOT, "build", "esg"))
from esg_fixture import EsgProcess  # noqa: E402
from kamailio_fixture import free_port  # noqa: E402
from postgres_fixture import Postgres  # noqa: E402
from rest_api import Api  # noqa: E402
from accounts.test_registration import registrar, DOMAIN  # noqa: E402

CYCLES = int(sys.argv[1]) if len(sys.argv) > 1 else 5
ACCOUNTS = int(sys.argv[2]) if len(sys.argv) > 2 else 50
RATE = float(sys.argv[3]) if len(sys.argv) > 3 else 500.0
# A takeover is paced at RATE: allow for it.
TAKEOVER = 30 + ACCOUNTS / RATE


def registers_after(esg, t0):
    """Unix times of the REGISTERs esg sent after t0 (its trn log, local wall clock)."""
    day = datetime.date.today()
    out = []
    for line in esg.trn_lines():
        if " Send to " not in line or " REGISTER sip:" not in line:
            continue
        m = re.match(r"(\d\d):(\d\d):(\d\d\.\d+)", line)
        if not m:
            continue
        t = datetime.datetime.combine(day, datetime.time()) + datetime.timedelta(
            hours=int(m.group(1)), minutes=int(m.group(2)), seconds=float(m.group(3)))
        ts = t.timestamp()
        if ts >= t0:
            out.append(ts)
    return out


def busiest_second(times):
    """The most REGISTERs within any one second (a sliding window)."""
    times, most, j = sorted(times), 0, 0
    for i, t in enumerate(times):
        while times[j] < t - 1.0:
            j += 1
        most = max(most, i - j + 1)
    return most


def wait_registered(esg, seconds=30):
    """Until esg says every account is registered from it (Kamailio's ul.dump of thousands of
    contacts overflows kamcmd's reply)."""
    api = Api(esg.ports["http"])
    deadline = time.time() + seconds
    n = 0
    while time.time() < deadline:
        status, body = api.call("GET", "/api/monitor/v1/esg/active?regs=true")
        if status == 200:
            mine = [s for s in body["data"]["sites"][0]["servers"] if s["online"] and
                    s["addr"] and s["srvidx"] == esg.srvidx]
            n = sum(1 for r in (mine[0]["regs"] if mine else []) if r["regstate"] == "registered")
            if n == ACCOUNTS:
                return time.time()
        # Each answer lists every account: asked too often it would load the instance.
        time.sleep(0.02 if ACCOUNTS <= 1000 else 0.5)
    raise RuntimeError("instance %d has %d of %d accounts registered" % (esg.srvidx, n, ACCOUNTS))


def main():
    pg = Postgres().start()
    folder = os.path.join(pg.dir, "kamailio")
    os.makedirs(folder)
    kam_port = free_port()
    kam = registrar(folder, kam_port, min_expires=10)
    with open(os.path.join(folder, "db", "subscriber"), "a") as f:
        for i in range(ACCOUNTS):
            f.write("%d:user%d:%s:secret:x:x\n" % (10 + i, i, DOMAIN))
    kam.start()

    def instance(srvidx, folder=None):
        e = EsgProcess({"instance": {"srvidx": srvidx, "roleid": srvidx, "workers": 2},
                        "accounts": {"register_rate": RATE},
                           "listen": [{"proto": "udp", "addr": "127.0.0.1", "port": 0}],
                           "store": {"postgres": pg.url}}, folder=folder)
        e.srvidx = srvidx
        return e

    esg = {i: instance(i) for i in (1, 2, 3)}
    api = Api(esg[3].ports["http"])
    api.ok("POST", "/rest/v1/uc/providers", {
        "code": "acc0", "username": "user0", "pwd": "secret", "domain": DOMAIN,
        "proxyaddr": "127.0.0.1", "proxyport": kam_port, "expires": 60})
    # The others in bulk, copies of the first in the store (one REST call each would take
    # minutes for thousands: every change makes every instance re-read the providers), and
    # one bump of the configuration's version, as a REST change makes.
    pg.query("INSERT INTO providers (code, data, updated_at) SELECT 'acc' || i, "
             "replace(replace(p.data, '\"acc0\"', '\"acc' || i || '\"'), '\"user0\"', "
             "'\"user' || i || '\"'), CURRENT_TIMESTAMP FROM providers p, "
             "generate_series(1, %d) AS i WHERE p.code = 'acc0'; "
             "UPDATE config_version SET version = version + 1 WHERE id = 1" % (ACCOUNTS - 1))
    t0 = time.time()
    wait_registered(esg[1], seconds=max(300, TAKEOVER))
    print("%d accounts registered from instance 1 in %.1f s after they were created"
          % (ACCOUNTS, time.time() - t0))
    idle = 10
    time.sleep(3)  # PostgreSQL's statistics of the start-up burst arrive up to a second late
    stats = ("SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = 'postgres'), "
             "seq_tup_read + COALESCE(idx_tup_fetch, 0), n_tup_ins + n_tup_upd + n_tup_del "
             "FROM pg_stat_user_tables WHERE relname = 'leases'")
    before = [int(x) for x in pg.query(stats).strip().split("|")]
    time.sleep(idle)
    after = [int(x) for x in pg.query(stats).strip().split("|")]
    print("store: %.1f transactions/s for 3 instances and %d accounts while idle; lease rows "
          "read %.0f/s, written %.0f/s" % ((after[0] - before[0]) / idle, ACCOUNTS,
                                           (after[1] - before[1]) / idle,
                                           (after[2] - before[2]) / idle))

    failover, failover_all, failback, failback_ready, failback_all = [], [], [], [], []
    burst_over, burst_back = [], []
    for cycle in range(CYCLES):
        time.sleep(1.5)  # somewhere in the heartbeat period
        t_kill = time.time()
        esg[1].proc.kill()
        esg[1].proc.wait()
        t_all = wait_registered(esg[2], TAKEOVER)
        times = registers_after(esg[2], t_kill)
        failover.append(times[0] - t_kill)
        failover_all.append(t_all - t_kill)
        burst_over.append(busiest_second(times))
        t_spawn = time.time()
        esg[1] = instance(1, esg[1].dir)
        t_ready = time.time()
        t_all = wait_registered(esg[1], TAKEOVER)
        times = registers_after(esg[1], t_spawn)
        t_reg = times[0]
        burst_back.append(busiest_second(times))
        failback.append(t_reg - t_spawn)
        failback_ready.append(t_reg - t_ready)
        failback_all.append(t_all - t_spawn)
        print("cycle %d: failover %.2f s (all %d registered %.2f s, busiest second %d "
              "REGISTERs), failback %.2f s from spawn (%.2f s from ready; all %.2f s, busiest "
              "second %d)" % (cycle + 1, failover[-1], ACCOUNTS, failover_all[-1], burst_over[-1],
                              failback[-1], failback_ready[-1], failback_all[-1], burst_back[-1]))

    def summary(name, xs):
        print("%-34s median %.2f s, max %.2f s" % (name, statistics.median(xs), max(xs)))

    summary("failover (kill -9 -> REGISTER)", failover)
    summary("failover (all registered)", failover_all)
    summary("failback (spawn -> REGISTER)", failback)
    summary("failback (ready -> REGISTER)", failback_ready)
    summary("failback (all registered)", failback_all)
    print("busiest second of REGISTERs: failover max %d, failback max %d (register_rate %g; an "
          "account sends up to 4 with Contact: * and digest challenges)"
          % (max(burst_over), max(burst_back), RATE))
    for e in esg.values():
        e.stop()
        e.cleanup(keep=False)
    kam.stop()
    kam.cleanup(keep=False)
    pg.stop()
    pg.cleanup(keep=False)


if __name__ == "__main__":
    main()
