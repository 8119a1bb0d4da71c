"""What the cluster costs the store and the registrar (issue 20): two instances (roleids 1 and
2) on one PostgreSQL, Kamailio as the registrar of 60 provider accounts, `register_rate` 20/s.
While idle, a heartbeat reads no lease row and no lease is written (the heartbeat renews them
all), and the store sees a constant few transactions per instance per second, whatever the
number of accounts. After a kill -9 of the owner, the next instance takes the 60 accounts over
at register_rate (about 3 s from the first to the last), its first REGISTER as soon as the
dead instance's leases run out."""

import os
import re
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, ".."))
from esg_fixture import EsgProcess, KeepOnFailure  # noqa: E402
from rest_api import Api  # noqa: E402
from kamailio_fixture import free_port  # noqa: E402
from postgres_fixture import Postgres  # noqa: E402
from accounts.test_registration import registrar, DOMAIN  # noqa: E402
from server.test_metrics import parse as parse_metrics  # noqa: E402

ACCOUNTS = 60
RATE = 20.0


def register_times(esg, since):
    """The time of the first REGISTER esg sent after `since` for each Call-ID (one per
    account), from its trn log (local wall clock, HH:MM:SS.mmm), sorted."""
    day = time.strftime("%Y-%m-%d")
    first = {}
    for line in esg.trn_lines():
        if " Send to " not in line or " REGISTER sip:" not in line:
            continue
        m = re.match(r"(\d\d:\d\d:\d\d)\.(\d+)", line)
        c = re.search(r"Call-ID: (\S+)", line, re.IGNORECASE)
        if not m or not c:
            continue
        t = time.mktime(time.strptime(day + " " + m.group(1), "%Y-%m-%d %H:%M:%S")) + \
            float("0." + m.group(2))
        if t >= since:
            first[c.group(1)] = min(t, first.get(c.group(1), t))
    return sorted(first.values())


class LeaseTraffic(KeepOnFailure):
    def setUp(self):
        self.pg = Postgres().start()
        # Every statement in the server's log: what the instances send, counted exactly.
        self.pg.query("ALTER SYSTEM SET log_statement = 'all'")
        self.pg.query("SELECT pg_reload_conf()")
        self.addCleanup(self.pg.cleanup, False)
        self.addCleanup(self.pg.stop)
        folder = os.path.join(self.pg.dir, "kamailio")
        os.makedirs(folder)
        self.kam_port = free_port()
        self.kam = registrar(folder, self.kam_port, min_expires=10)
        with open(os.path.join(folder, "db", "subscriber"), "a") as f:
            for i in range(ACCOUNTS):
                f.write("%d:user%d:%s:secret:x:x\n" % (10 + i, i, DOMAIN))
        self.kam.start()
        self.esg = {}
        for i in (1, 2):
            self.esg[i] = EsgProcess({
                "instance": {"srvidx": i, "roleid": i, "node": "esg%d" % i, "workers": 2},
                "listen": [{"proto": "udp", "addr": "127.0.0.1", "port": 0}],
                "store": {"postgres": self.pg.url},
                "accounts": {"register_rate": RATE}})

    def tearDown(self):
        # The one the test killed exits with -9; the others must stop cleanly.
        codes = [e.stop() for e in self.esg.values() if e.proc.poll() is None]
        self.kam.stop()
        for e in self.esg.values():
            e.cleanup(keep=self.failed or any(codes))
        self.kam.cleanup(keep=self.failed)
        self.assertFalse(any(codes), "an esg instance exited with %s" % codes)

    def registered(self, srvidx):
        status, body = Api(self.esg[srvidx].ports["http"]).call(
            "GET", "/api/monitor/v1/esg/active?regs=true")
        self.assertEqual(status, 200, body)
        mine = [s for s in body["data"]["sites"][0]["servers"] if s["srvidx"] == srvidx]
        return sum(1 for r in mine[0]["regs"] if r["regstate"] == "registered")

    def wait_registered(self, srvidx, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline and self.registered(srvidx) < ACCOUNTS:
            time.sleep(0.1)
        self.assertEqual(self.registered(srvidx), ACCOUNTS, "instance %d" % srvidx)

    def metric(self, srvidx, name):
        status, _, text = Api(self.esg[srvidx].ports["http"]).text("/metrics")
        self.assertEqual(status, 200)
        return parse_metrics(text)[(name, ())]

    def statements(self):
        """The statements the server has logged so far (each its own transaction)."""
        with open(os.path.join(self.pg.dir, "postgres.log"), errors="replace") as f:
            return [l.split(": ", 2)[-1] for l in f.read().splitlines()
                    if "LOG:  execute " in l or "LOG:  statement: " in l]

    def test_idle_heartbeats_read_no_lease_and_a_takeover_is_paced(self):
        api = Api(self.esg[2].ports["http"])
        for i in range(ACCOUNTS):
            api.ok("POST", "/rest/v1/uc/providers", {
                "code": "acc%d" % i, "username": "user%d" % i, "pwd": "secret",
                "domain": DOMAIN, "proxyaddr": "127.0.0.1", "proxyport": self.kam_port,
                "expires": 60})
        t_created = time.time()
        self.wait_registered(1, seconds=30)
        # Start-up in leased mode is paced too: 60 accounts at 20/s take about 3 s.
        t_start = register_times(self.esg[1], t_created - 5)
        self.assertEqual(len(t_start), ACCOUNTS)
        self.assertGreaterEqual(t_start[-1] - t_start[0], (ACCOUNTS - 1) / RATE * 0.9)

        # Idle: nothing changes, so the heartbeats read no lease row and write none.
        time.sleep(3)  # the statistics of the start-up arrive up to a second late
        rows = {i: self.metric(i, "esg_cluster_lease_rows_read_total") for i in (1, 2)}
        before = len(self.statements())
        idle = 6
        time.sleep(idle)
        sent = self.statements()[before:]
        for i in (1, 2):
            self.assertEqual(self.metric(i, "esg_cluster_lease_rows_read_total"), rows[i],
                             "instance %d read lease rows while idle" % i)
        writes = [s for s in sent if "INSERT INTO leases" in s or "UPDATE leases" in s or
                  "DELETE FROM leases" in s]
        self.assertEqual(writes, [], "lease rows written while idle")
        rate = len(sent) / idle
        print("idle: %.1f store statements/s for 2 instances and %d accounts" % (rate, ACCOUNTS))
        # Two statements per heartbeat per instance (write the heartbeat, read what changed);
        # a full read of the leases and the renewal of every lease made it five.
        self.assertLessEqual(rate, 2 * 2.5)

        # kill -9 of the owner: instance 2 takes the 60 accounts over at register_rate.
        time.sleep(0.5)
        t_kill = time.time()
        self.esg[1].proc.kill()
        self.esg[1].proc.wait()
        self.wait_registered(2, seconds=30)
        times = register_times(self.esg[2], t_kill)
        self.assertEqual(len(times), ACCOUNTS)
        spread = times[-1] - times[0]
        print("takeover: first REGISTER %.2f s after the kill, the %d spread over %.2f s"
              % (times[0] - t_kill, ACCOUNTS, spread))
        # The first as soon as the leases run out (dead_after 3 s after the last heartbeat).
        self.assertLess(times[0] - t_kill, 3.8)
        self.assertGreaterEqual(spread, (ACCOUNTS - 1) / RATE * 0.9)
        # No two in the same slot: at 20/s at most ~2 start within any 100 ms.
        for a, b in zip(times, times[3:]):
            self.assertGreaterEqual(b - a, 3 / RATE * 0.7, "a burst of REGISTERs")


if __name__ == "__main__":
    unittest.main()
