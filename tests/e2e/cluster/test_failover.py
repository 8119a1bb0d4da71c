"""Several instances (issue 11): three esg instances with roleids 1, 2, 3 on one PostgreSQL
store, Kamailio as the provider's registrar (and as the registrar of a register-out PBX
connection, leased the same way). An account is served by one instance at a time
(the live one with the lowest roleid its serveridxs allow); kill -9 moves it to the next one,
a restart moves it back, in order (un-register first, or `Contact: *` after a death), so that
Kamailio never holds two contacts for it. A stopped store stops all serving; a started one
brings it back. A Telegram line moves with its session; a dead instance's calls are closed."""

import os
import re
import subprocess
import sys
import tempfile
import threading
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
from calls.test_calls import answered_call  # noqa: E402
from tgsim_fixture import LIB, TgSim  # noqa: E402
from server.test_metrics import parse as parse_metrics  # noqa: E402


def contacts(kam, user):
    """The contacts Kamailio holds for `user` now (their addresses)."""
    r = subprocess.run(["kamcmd", "-s", "unix:" + kam.ctl, "ul.dump"], capture_output=True,
                       text=True, timeout=10)
    return re.findall(r"Address: (sip:%s@[^\s]+)" % user, r.stdout)


class ContactWatch(threading.Thread):
    """Polls Kamailio's location table for the whole test: the most contacts ever held at once,
    per user, and when each contact first appeared."""

    def __init__(self, kam, users):
        super().__init__(daemon=True)
        self.kam, self.users = kam, users
        self.most = {u: 0 for u in users}
        self.seen = {}  # (user, address) -> first time seen
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            for u in self.users:
                try:
                    now = contacts(self.kam, u)
                except subprocess.SubprocessError:
                    continue
                self.most[u] = max(self.most[u], len(now))
                for a in now:
                    self.seen.setdefault((u, a), time.time())
            time.sleep(0.05)


class Cluster(KeepOnFailure):
    @classmethod
    def setUpClass(cls):
        cls.pg = Postgres().start()
        cls.folder_kam = os.path.join(cls.pg.dir, "kamailio")
        os.makedirs(cls.folder_kam)
        cls.kam_port = free_port()
        cls.kam = registrar(cls.folder_kam, cls.kam_port, min_expires=10)
        with open(os.path.join(cls.folder_kam, "db", "subscriber"), "a") as f:
            f.write("2:bob:%s:bob-secret:x:x\n3:carol:%s:carol-secret:x:x\n" % (DOMAIN, DOMAIN))
        cls.kam.start()
        cls.esg = {}
        for srvidx in (1, 2, 3):
            cls.esg[srvidx] = cls.start_instance(srvidx)
        cls.watch = ContactWatch(cls.kam, ("alice", "bob", "carol"))
        cls.watch.start()

    @classmethod
    def start_instance(cls, srvidx, folder=None):
        return EsgProcess({
            "instance": {"srvidx": srvidx, "roleid": srvidx, "node": "esg%d" % srvidx,
                         "workers": 2},
            "listen": [{"proto": "udp", "addr": "127.0.0.1", "port": 0}],
            "store": {"postgres": cls.pg.url},
            "transport": {"t1": 50},
            "accounts": {"retry_min": 0.3, "retry_max": 2},
        }, folder=folder)

    @classmethod
    def tearDownClass(cls):
        cls.watch.halt.set()
        cls.watch.join()
        codes = []
        for e in cls.esg.values():
            codes.append(e.stop())
        cls.kam.stop()
        keep = cls.failed or any(codes)
        for e in cls.esg.values():
            e.cleanup(keep=keep)
        cls.kam.cleanup(keep=keep)
        cls.pg.stop()
        cls.pg.cleanup(keep=keep)
        if any(codes):
            raise AssertionError("an esg instance exited with %s" % codes)

    def api(self, srvidx):
        return Api(self.esg[srvidx].ports["http"])

    def contact_of(self, srvidx, user):
        return "sip:%s@127.0.0.1:%d" % (user, self.esg[srvidx].ports["udp"])

    def wait_contacts(self, user, wanted, seconds=15):
        deadline = time.time() + seconds
        now = None
        while time.time() < deadline:
            now = contacts(self.kam, user)
            if now == wanted:
                return now
            time.sleep(0.05)
        self.fail("Kamailio holds %s for %s, not %s" % (now, user, wanted))

    def servers(self, srvidx):
        status, body = self.api(srvidx).call("GET", "/api/monitor/v1/esg/active?regs=true")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["resultcode"], 0)
        return {s["srvidx"]: s for s in body["data"]["sites"][0]["servers"]}

    def served_by(self, srvidx):
        """What instance `srvidx` says it serves."""
        return {r["code"] for r in self.servers(srvidx)[srvidx]["regs"]}

    def test_accounts_follow_the_live_instance_with_the_lowest_roleid(self):
        # Created on the lowest-priority instance: the others learn it from the store.
        for code, user, extra in (("main", "alice", {}), ("pinned", "bob", {"serveridxs": [3]})):
            status, body = self.api(3).call("POST", "/rest/v1/uc/providers", {
                "code": code, "username": user, "pwd": user + "-secret", "domain": DOMAIN,
                "proxyaddr": "127.0.0.1", "proxyport": self.kam_port, "expires": 60, **extra})
            self.assertEqual(status, 201, body)
        # A PBX connection that registers to its PBX (here the same Kamailio) is leased too.
        status, body = self.api(2).call("POST", "/rest/v1/uc/pbx", {
            "code": "pbx1", "mode": "register-out", "address": "127.0.0.1",
            "port": self.kam_port, "username": "carol", "pwd": "carol-secret", "domain": DOMAIN})
        self.assertEqual(status, 201, body)
        self.wait_contacts("alice", [self.contact_of(1, "alice")])
        self.wait_contacts("carol", [self.contact_of(1, "carol")])
        self.wait_contacts("bob", [self.contact_of(3, "bob")])
        self.assertEqual(self.served_by(1), {"main", "pbx:pbx1"})
        self.assertEqual(self.served_by(2), set())
        # Any instance shows every instance with what it serves.
        for i in (1, 2, 3):
            deadline = time.time() + 5
            while time.time() < deadline:
                servers = self.servers(i)
                if len(servers[1]["regs"]) == 2 and \
                        [r["code"] for r in servers[3]["regs"]] == ["pinned"]:
                    break
                time.sleep(0.2)
            self.assertEqual(sorted(servers), [1, 2, 3])
            self.assertTrue(all(s["online"] for s in servers.values()))
            self.assertEqual(sorted((r["code"], r["regstate"]) for r in servers[1]["regs"]),
                             [("main", "registered"), ("pbx:pbx1", "registered")])
            self.assertEqual([r["code"] for r in servers[3]["regs"]], ["pinned"])
            self.assertTrue(servers[2]["node"].startswith("esg2"), servers[2])

        # kill -9 of the owner: the next one registers, after removing the dead binding.
        killed = self.esg[1]
        killed.proc.kill()
        killed.proc.wait()
        t_kill = time.time()
        self.wait_contacts("alice", [self.contact_of(2, "alice")], seconds=15)
        self.wait_contacts("carol", [self.contact_of(2, "carol")], seconds=5)
        failover = self.watch.seen.get(("alice", self.contact_of(2, "alice")), time.time()) - t_kill
        print("failover: kill -9 to the next instance's binding %.2f s" % failover)
        lines = self.esg[2].trn_lines()
        star = [i for i, l in enumerate(lines) if " REGISTER sip:" in l and "Contact: *" in l
                and " Send to " in l]
        self.assertTrue(star, "no Contact: * REGISTER from instance 2")
        # The pinned account stays where it is pinned.
        self.assertEqual(contacts(self.kam, "bob"), [self.contact_of(3, "bob")])
        deadline = time.time() + 5
        while time.time() < deadline and self.servers(2)[1]["online"]:
            time.sleep(0.2)
        self.assertFalse(self.servers(2)[1]["online"])
        self.assertEqual(self.served_by(2), {"main", "pbx:pbx1"})
        status, _, text = self.api(2).text("/metrics")
        self.assertEqual(status, 200)
        m = parse_metrics(text)
        self.assertEqual(m[("esg_cluster_store_up", ())], 1)
        self.assertEqual(m[("esg_cluster_instances", (("state", "online"),))], 2)
        self.assertEqual(m[("esg_cluster_instances", (("state", "offline"),))], 1)
        self.assertEqual(m[("esg_cluster_accounts_served", ())], 2)
        self.assertGreaterEqual(m[("esg_cluster_leases_taken_total", ())], 2)

        # The killed instance comes back: the account moves back, un-registered first.
        self.esg[1] = self.start_instance(1, folder=killed.dir)
        t_start = time.time()
        self.wait_contacts("alice", [self.contact_of(1, "alice")], seconds=15)
        self.wait_contacts("carol", [self.contact_of(1, "carol")], seconds=5)
        failback = self.watch.seen.get(("alice", self.contact_of(1, "alice")),
                                       time.time()) - t_start
        print("failback: restart (ready) to its binding %.2f s" % failback)
        unreg = [l for l in self.esg[2].trn_lines() if " Send to " in l and
                 " REGISTER sip:" in l and "Expires: 0" in l and "Contact: *" not in l]
        self.assertTrue(unreg, "instance 2 did not un-register")
        self.assertEqual(contacts(self.kam, "bob"), [self.contact_of(3, "bob")])

        # The store goes away: nobody holds a lease, so nobody serves; it comes back: all recover.
        self.pg.stop()
        try:
            self.wait_contacts("alice", [], seconds=10)
            self.wait_contacts("bob", [], seconds=10)
            self.wait_contacts("carol", [], seconds=10)
            for i in (1, 2, 3):
                self.assertEqual(self.served_by(i), set(), "instance %d" % i)
        finally:
            self.pg.start()
        self.wait_contacts("alice", [self.contact_of(1, "alice")], seconds=20)
        self.wait_contacts("bob", [self.contact_of(3, "bob")], seconds=20)
        self.wait_contacts("carol", [self.contact_of(1, "carol")], seconds=20)

        # A graceful stop hands over at once: un-registered and released, no lease to wait for.
        t_stop = time.time()
        self.assertEqual(self.esg[1].stop(), 0)
        self.wait_contacts("alice", [self.contact_of(2, "alice")], seconds=5)
        print("handover on SIGTERM: %.2f s" % (time.time() - t_stop))
        self.assertFalse(self.servers(2)[1]["online"])

        # During the whole run Kamailio never held two contacts for one account.
        self.assertEqual(self.watch.most, {"alice": 1, "bob": 1, "carol": 1})

    def test_z_a_second_instance_with_a_srvidx_in_use_serves_nothing(self):
        # After the test above instance 2 serves main and pbx1. A second start of srvidx 2
        # (roleid 0: it would take everything) must not register anything.
        serving = self.served_by(2)
        self.assertTrue(serving)
        dup = EsgProcess({
            "instance": {"srvidx": 2, "roleid": 0, "node": "esg2-again", "workers": 2},
            "listen": [{"proto": "udp", "addr": "127.0.0.1", "port": 0}],
            "store": {"postgres": self.pg.url}})
        try:
            out = os.path.join(dup.dir, "esg.out")
            deadline = time.time() + 10
            with open(out) as f:
                while time.time() < deadline and "srvidx 2 is in use" not in f.read():
                    f.seek(0)
                    time.sleep(0.1)
            with open(out) as f:
                said = f.read()
            self.assertIn("srvidx 2 is in use by node 'esg2", said)
            self.assertIn("every instance needs a srvidx of its own", said)
            status, _, text = Api(dup.ports["http"]).text("/metrics")
            self.assertEqual(status, 200)
            m = parse_metrics(text)
            self.assertEqual(m[("esg_cluster_srvidx_conflict", ())], 1)
            self.assertEqual(m[("esg_cluster_accounts_served", ())], 0)
            time.sleep(3)  # a few heartbeats: still nothing taken, the first start unharmed
            self.assertEqual(self.served_by(2), serving)
            self.assertEqual(contacts(self.kam, "alice"), [self.contact_of(2, "alice")])
        finally:
            self.assertEqual(dup.stop(), 0)
            dup.cleanup(keep=self.failed)
        # Its stop did not mark the first start stopped either.
        time.sleep(1.5)
        self.assertTrue(self.servers(3)[2]["online"])
        self.assertEqual(self.watch.most, {"alice": 1, "bob": 1, "carol": 1})


class DeadInstanceCalls(KeepOnFailure):
    """A call in progress on an instance that dies is lost with it; another instance notices
    the death and closes the call's record as interrupted."""

    def test_the_instance_that_notices_closes_the_calls(self):
        pg = Postgres().start()
        self.addCleanup(pg.cleanup, False)
        self.addCleanup(pg.stop)
        config = {"store": {"postgres": pg.url}}
        first = EsgProcess(dict(config, instance={"srvidx": 1, "roleid": 1}))
        second = EsgProcess(dict(config, instance={"srvidx": 2, "roleid": 2}))
        peers = []
        try:
            api = Api(first.ports["http"])
            call = answered_call(api, first.ports["udp"], peers)
            self.assertIsNotNone(call)
            first.proc.kill()
            first.proc.wait()
            # The second instance sees the first dead (3 s of silence) and closes its calls.
            other = Api(second.ports["http"])
            deadline = time.time() + 10
            mine = []
            while time.time() < deadline:
                mine = [c for c in other.ok("GET", "/rest/v1/cdrs")["items"]
                        if c["id"] == call["id"]]
                if mine and mine[0]["state"] == "interrupted":
                    break
                time.sleep(0.2)
            self.assertEqual([c["state"] for c in mine], ["interrupted"])
            # By the second instance (the log line follows the update by a moment).
            out = os.path.join(second.dir, "esg.out")
            deadline = time.time() + 5
            while time.time() < deadline and "1 of its call(s) closed as interrupted" not in \
                    open(out).read():
                time.sleep(0.1)
            self.assertIn("instance 1 (esg@127.0.0.1) is dead; 1 of its call(s) closed as "
                          "interrupted", open(out).read())
        finally:
            for p in peers:
                p.stop()
                p.cleanup(keep=False)
            code = second.stop()
            second.cleanup(keep=self.failed or code != 0)
            first.cleanup(keep=self.failed)
        self.assertEqual(code, 0)


class TelegramLineMoves(KeepOnFailure):
    """A Telegram line is leased like an account: one instance runs it; when that one dies the
    next opens the same session (on storage both reach) and the line is ready again, without a
    new login."""

    def test_the_next_instance_takes_the_line_with_its_session(self):
        pg = Postgres().start()
        sim = TgSim()
        sessions = os.path.join(pg.dir, "telegram")
        esg = {}
        try:
            for i in (1, 2):
                esg[i] = EsgProcess({"store": {"postgres": pg.url},
                                     "instance": {"srvidx": i, "roleid": i},
                                     "telegram": {"tdjson": LIB, "sessions": sessions}},
                                    env=sim.env())
            api = {i: Api(esg[i].ports["http"]) for i in esg}
            sim.user(phone="+79990000044", code="24680")
            api[2].ok("POST", "/rest/v1/uc/pbx",
                      {"code": "pbx1", "mode": "ip", "address": "127.0.0.5", "port": 5060})
            line = api[2].ok("POST", "/rest/v1/telegram/lines",
                             {"code": "tg1", "api_id": 12345, "phone": "+79990000044",
                              "api_hash": "0123456789abcdef0123456789abcdef", "pbx": "pbx1"},
                             want=(201,))

            def state(i):
                lines = api[i].ok("GET", "/api/monitor/v1/telegram/lines")["data"]["lines"]
                return next((l["state"] for l in lines if l["id"] == line["id"]), None)

            def wait_state(i, wanted, seconds=10):
                deadline = time.time() + seconds
                while state(i) != wanted and time.time() < deadline:
                    time.sleep(0.05)
                self.assertEqual(state(i), wanted, "instance %d" % i)

            # The better instance runs it (and asks for the login); the other keeps it idle.
            wait_state(1, "wait_phone")
            self.assertEqual(state(2), "standby")
            api[1].ok("POST", "/rest/v1/telegram/lines/%d/login" % line["id"], {})
            answer = api[1].ok("POST", "/rest/v1/telegram/lines/%d/login" % line["id"],
                               {"code": "24680"})
            self.assertEqual(answer["state"], "ready")
            esg[1].proc.kill()
            esg[1].proc.wait()
            wait_state(2, "ready")
            self.assertIn("tg:%d" % line["id"], open(os.path.join(esg[2].dir, "esg.out")).read())
        finally:
            codes = [esg[2].stop()] if 2 in esg else []
            for e in esg.values():
                e.cleanup(keep=self.failed or any(codes))
            sim.stop()
            sim.cleanup(keep=self.failed)
            pg.stop()
            pg.cleanup(keep=self.failed)
        self.assertEqual(codes, [0])


class TelegramSessionInTheStore(KeepOnFailure):
    """No shared disk (issue 23): each instance has its own session folder; the one serving the
    line keeps its TDLib session in the store (`telegram.session_store`, `store` by default on
    PostgreSQL), and the next one restores it before it opens TDLib: ready without a login."""

    def test_a_line_taken_over_from_a_killed_instance_needs_no_login(self):
        pg = Postgres().start()
        sim = TgSim()
        esg = {}
        folders = {}
        try:
            for i in (1, 2):
                folders[i] = tempfile.mkdtemp(prefix="esg-e2e-")
                esg[i] = EsgProcess({"store": {"postgres": pg.url},
                                     "instance": {"srvidx": i, "roleid": i},
                                     "telegram": {"tdjson": LIB, "session_snapshot": 5,
                                                  "sessions": os.path.join(folders[i], "tg")}},
                                    env=sim.env(), folder=folders[i])
            api = {i: Api(esg[i].ports["http"]) for i in esg}
            sim.user(phone="+79990000055", code="13579")
            api[2].ok("POST", "/rest/v1/uc/pbx",
                      {"code": "pbx1", "mode": "ip", "address": "127.0.0.5", "port": 5060})
            line = api[2].ok("POST", "/rest/v1/telegram/lines",
                             {"code": "tg1", "api_id": 12345, "phone": "+79990000055",
                              "api_hash": "0123456789abcdef0123456789abcdef", "pbx": "pbx1"},
                             want=(201,))

            def state(i):
                lines = api[i].ok("GET", "/api/monitor/v1/telegram/lines")["data"]["lines"]
                return next((l["state"] for l in lines if l["id"] == line["id"]), None)

            def wait_state(i, wanted, seconds=10):
                deadline = time.time() + seconds
                while state(i) != wanted and time.time() < deadline:
                    time.sleep(0.05)
                self.assertEqual(state(i), wanted, "instance %d" % i)

            def log(i):
                with open(os.path.join(esg[i].dir, "esg.out")) as f:
                    return f.read()

            wait_state(1, "wait_phone")
            self.assertEqual(state(2), "standby")
            api[1].ok("POST", "/rest/v1/telegram/lines/%d/login" % line["id"], {})
            answer = api[1].ok("POST", "/rest/v1/telegram/lines/%d/login" % line["id"],
                               {"code": "13579"})
            self.assertEqual(answer["state"], "ready")
            deadline = time.time() + 5
            while "session (ready): snapshot stored" not in log(1) and time.time() < deadline:
                time.sleep(0.1)
            self.assertIn("line tg1: session (ready): snapshot stored", log(1))
            folder = os.path.join(folders[2], "tg", "line-%d" % line["id"])
            self.assertFalse(os.path.exists(os.path.join(folder, "db", "tgsim-session.json")))
            esg[1].proc.kill()
            esg[1].proc.wait()
            # The lease moves; the second instance restores the session and needs no login.
            wait_state(2, "ready", seconds=15)
            self.assertIn("line tg1: session: restored snapshot", log(2))
            self.assertTrue(os.path.exists(os.path.join(folder, "db", "tgsim-session.json")))
        finally:
            codes = [esg[2].stop()] if 2 in esg else []
            for e in esg.values():
                e.cleanup(keep=self.failed or any(codes))
            sim.stop()
            sim.cleanup(keep=self.failed)
            pg.stop()
            pg.cleanup(keep=self.failed)
        self.assertEqual(codes, [0])

if __name__ == "__main__":
    unittest.main()
