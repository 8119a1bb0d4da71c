"""Provider accounts against a real registrar: Kamailio (registrar, usrloc, auth_db over
db_text) on loopback with digest authentication against its own subscriber table. Accounts
point `proxyaddr` at Kamailio; their domain is only a name in the Request-URI and realm."""

import os
import re
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from esg_fixture import EsgProcess, KeepOnFailure, stop_all  # noqa: E402
from rest_api import Api  # noqa: E402
from dnsmasq_fixture import Dnsmasq  # noqa: E402
from kamailio_fixture import Kamailio, free_port  # noqa: E402

DOMAIN = "provider.test"
DBTEXT = "/usr/share/kamailio/dbtext/kamailio"

ROUTES = """
request_route {
  if (is_method("REGISTER")) {
    if (!auth_check("$fd", "subscriber", "1")) {
      auth_challenge("$fd", "1");
      exit;
    }
    consume_credentials();
    if (!save("location")) sl_reply_error();
    exit;
  }
  if (is_method("OPTIONS")) { sl_send_reply("200", "OK"); exit; }
  sl_send_reply("404", "Not Here");
}
"""


def registrar(folder, port, min_expires=10, reply_423=False):
    db = os.path.join(folder, "db")
    os.makedirs(db, exist_ok=True)
    with open(os.path.join(db, "version"), "w") as f:
        f.write("id(int,auto) table_name(string) table_version(int) \n"
                "0:subscriber:7\n0:location:9\n")
    with open(os.path.join(DBTEXT, "subscriber")) as src:
        header = src.readline()
    with open(os.path.join(db, "subscriber"), "w") as f:
        f.write(header + "1:alice:%s:alice-secret:x:x\n" % DOMAIN)
    with open(os.path.join(DBTEXT, "location")) as src:
        header = src.readline()
    with open(os.path.join(db, "location"), "w") as f:
        f.write(header)
    ctl = os.path.join(folder, "ctl.sock")
    params = [
        'modparam("usrloc", "db_url", "text://%s")' % db,
        'modparam("usrloc", "db_mode", 0)',
        'modparam("auth_db", "db_url", "text://%s")' % db,
        'modparam("auth_db", "calculate_ha1", 1)',
        'modparam("auth_db", "password_column", "password")',
        'modparam("auth_db", "load_credentials", "")',
        'modparam("registrar", "min_expires", %d)' % min_expires,
        'modparam("registrar", "min_expires_mode", %d)' % (1 if reply_423 else 0),
        'modparam("ctl", "binrpc", "unix:%s")' % ctl,
    ]
    k = Kamailio(["udp:127.0.0.1:%d" % port], ROUTES,
                 modules=("db_text", "usrloc", "registrar", "auth", "auth_db", "ctl", "kex"),
                 params=params, folder=folder)
    k.ctl = ctl
    return k


def locations(kam):
    r = subprocess.run(["kamcmd", "-s", "unix:" + kam.ctl, "ul.dump"], capture_output=True,
                       text=True, timeout=10)
    return r.stdout


def account(code, kam_port, pwd="alice-secret", **extra):
    a = {"code": code, "username": "alice", "pwd": pwd, "domain": DOMAIN,
         "proxyaddr": "127.0.0.1", "proxyport": kam_port, "expires": 60}
    a.update(extra)
    return a


class Base(KeepOnFailure):
    min_expires = 10
    reply_423 = False
    esg_extra = {}

    @classmethod
    def setUpClass(cls):
        cls.folder = tempfile.mkdtemp(prefix="esg-kam-reg-")
        if "kam_port" not in cls.__dict__:  # a subclass may have published it in DNS already
            cls.kam_port = free_port()
        cls.kam = registrar(cls.folder, cls.kam_port, cls.min_expires, cls.reply_423).start()
        cls.esg = EsgProcess(dict({"listen": [{"proto": "udp", "addr": "127.0.0.1", "port": 0}],
                                   "transport": {"t1": 50},
                                   "accounts": {"retry_min": 0.3, "retry_max": 2}},
                                  **cls.esg_extra))
        cls.api = Api(cls.esg.ports["http"])

    @classmethod
    def tearDownClass(cls):
        stop_all(cls.failed, cls.esg, cls.kam)

    def create(self, body):
        status, a = self.api.call("POST", "/rest/v1/uc/providers", body)
        self.assertEqual(status, 201, a)
        self.addCleanup(self.forget, a["id"])
        return a

    def forget(self, pid):
        # Every account here shares one Contact URI: the un-REGISTER of a deleted one must reach
        # Kamailio before the next test registers, or it removes the next test's binding.
        self.api.call("DELETE", "/rest/v1/uc/providers/%d" % pid)
        deadline = time.time() + 5
        while time.time() < deadline and "sip:alice@" in locations(self.kam):
            time.sleep(0.1)


class KamailioRegistrar(Base):
    def test_registers_with_the_right_password(self):
        self.create(account("good", self.kam_port))
        reg = self.api.wait_reg("good", ("registered",))
        self.assertEqual(reg["last_response"][0], "SIP/2.0 200 OK")
        self.assertEqual(reg["user"], "alice")
        self.assertEqual(reg["domain"], DOMAIN)
        self.assertEqual(reg["proto"], "udp")
        self.assertEqual(reg["pingstate"], "disabled")
        self.assertEqual(reg["onlinetrunkcount"], 0)
        # Kamailio's location table holds our contact.
        self.assertIn("sip:alice@127.0.0.1:%d" % self.esg.ports["udp"], locations(self.kam))
        # The REGISTER went to the proxy with the Route of the field manual.
        sent = [l for l in self.esg.trn_lines() if " Send to udp 127.0.0.1:%d " % self.kam_port in l
                and " REGISTER sip:%s " % DOMAIN in l]
        self.assertTrue(sent)
        self.assertIn("Route: <sip:127.0.0.1:%d;lr>" % self.kam_port, sent[0])
        self.assertIn("Supported: path", sent[0])
        self.assertRegex(sent[0], r"User-Agent: esg/\d")
        # Deleting it un-registers: Kamailio forgets the contact.
        status, body = self.api.call("GET", "/rest/v1/uc/providers")
        pid = [a["id"] for a in body["items"] if a["code"] == "good"][0]
        self.assertEqual(self.api.call("DELETE", "/rest/v1/uc/providers/%d" % pid)[0], 204)
        deadline = time.time() + 5
        while time.time() < deadline and "sip:alice@" in locations(self.kam):
            time.sleep(0.1)
        self.assertNotIn("sip:alice@", locations(self.kam))
        self.assertNotIn("good", self.api.regs())

    def test_a_wrong_password_is_auth_failed_and_retried_with_a_growing_pause(self):
        self.create(account("bad", self.kam_port, pwd="wrong"))
        reg = self.api.wait_reg("bad", ("auth_failed",))
        self.assertRegex(reg["last_response"][0], r"SIP/2\.0 (401|403) ")
        time.sleep(3)
        # Attempts (first REGISTERs without credentials) with growing gaps between them.
        times = []
        for l in self.esg.trn_lines():
            if " Send to udp " in l and " REGISTER " in l and "Authorization:" not in l \
                    and "Call-ID: reg-" in l and "Expires: 60" in l:
                h, m, s = l.split()[0].split(":")
                times.append(int(h) * 3600 + int(m) * 60 + float(s))
        self.assertGreaterEqual(len(times), 3, times)
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertGreater(gaps[-1], gaps[0] * 1.5, gaps)
        # Fixing the password over REST applies at once.
        status, body = self.api.call("GET", "/rest/v1/uc/providers")
        pid = [a["id"] for a in body["items"] if a["code"] == "bad"][0]
        status, _ = self.api.call("PATCH", "/rest/v1/uc/providers/%d" % pid, {"pwd": "alice-secret"})
        self.assertEqual(status, 200)
        self.api.wait_reg("bad", ("registered",))

    def test_re_registers_by_itself_after_the_registrar_comes_back(self):
        self.create(account("back", self.kam_port, expires=10))
        self.api.wait_reg("back", ("registered",))
        self.kam.stop()
        try:
            # The refresh (at 80-90% of 10 s) gets no answer (Timer F = 64 * T1 = 3.2 s).
            self.api.wait_reg("back", ("failed",), seconds=20)
        finally:
            self.kam.start()
        reg = self.api.wait_reg("back", ("registered",), seconds=15)
        self.assertEqual(reg["last_response"][0], "SIP/2.0 200 OK")
        self.assertIn("sip:alice@", locations(self.kam))


class KamailioIntervalTooBrief(Base):
    min_expires = 120
    reply_423 = True

    def test_min_expires_from_423_is_honoured(self):
        self.create(account("brief", self.kam_port, expires=60))
        reg = self.api.wait_reg("brief", ("registered",))
        self.assertEqual(reg["expires"], 120)
        lines = self.esg.trn_lines()
        self.assertTrue(any(re.search(r"Recv from udp \S+ SIP/2\.0 423 .*Min-Expires: 120", l)
                            for l in lines))
        self.assertTrue(any(" REGISTER " in l and "Expires: 120" in l for l in lines))


class KamailioFoundBySrv(Base):
    """No proxy: the account's domain is resolved per RFC 3263 (SRV here) to the registrar."""

    @classmethod
    def setUpClass(cls):
        cls.kam_port = free_port()
        cls.dns = Dnsmasq(DOMAIN, ["--host-record=registrar.%s,127.0.0.1" % DOMAIN,
                                   "--srv-host=_sip._udp.%s,registrar.%s,%d,10,10" %
                                   (DOMAIN, DOMAIN, cls.kam_port)],
                          probe="registrar." + DOMAIN)
        cls.esg_extra = {"dns": {"servers": [cls.dns.server]}}
        try:
            super().setUpClass()
        except Exception:
            cls.dns.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.dns.stop()

    def test_the_domain_s_srv_record_names_the_registrar(self):
        a = account("srv", self.kam_port)
        del a["proxyaddr"], a["proxyport"]
        self.create(a)
        reg = self.api.wait_reg("srv", ("registered",))
        self.assertEqual(reg["last_response"][0], "SIP/2.0 200 OK")
        self.assertIn("sip:alice@127.0.0.1:%d" % self.esg.ports["udp"], locations(self.kam))
        self.assertGreaterEqual(self.dns.queries("query[SRV] _sip._udp.%s " % DOMAIN), 1)
        sent = [l for l in self.esg.trn_lines() if " REGISTER sip:%s " % DOMAIN in l]
        self.assertTrue(sent)
        self.assertNotIn("Route:", sent[0])  # no proxy, no Route


if __name__ == "__main__":
    unittest.main()
