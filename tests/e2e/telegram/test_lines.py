"""Telegram lines against the simulator (tests/tgsim: NOT Telegram): esg loads
libtdjson_sim.so through its production TDLib path. Lines are provisioned over REST, log in
step by step (phone, code, two-step password) with the errors Telegram gives (a wrong code, a
flood wait), keep their session across a restart of esg, and log out."""

import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from esg_fixture import ESG, EsgProcess, KeepOnFailure, stop_all  # noqa: E402
from rest_api import Api  # noqa: E402
from tgsim_fixture import LIB, TgSim  # noqa: E402

API_HASH = "0123456789abcdef0123456789abcdef"
LINES = "/rest/v1/telegram/lines"


class LinesCase(KeepOnFailure):
    @classmethod
    def setUpClass(cls):
        cls.sim = TgSim()
        try:
            cls.start_esg(tempfile.mkdtemp(prefix="esg-e2e-"))
            cls.api.ok("POST", "/rest/v1/uc/pbx",
                       {"code": "pbx1", "mode": "ip", "address": "127.0.0.5", "port": 5060})
        except Exception:
            cls.sim.stop()
            cls.sim.cleanup(keep=True)
            raise

    @classmethod
    def start_esg(cls, folder):
        """esg on `folder` (its store and the lines' session root stay there)."""
        cls.esg = EsgProcess({"telegram": {"tdjson": LIB,
                                           "sessions": os.path.join(folder, "telegram")}},
                             env=cls.sim.env(), folder=folder)
        cls.api = Api(cls.esg.ports["http"])

    @classmethod
    def tearDownClass(cls):
        stop_all(cls.failed, cls.esg, cls.sim)

    def account(self, phone, password=None, **more):
        """A Telegram account in the simulator that esg may log in to."""
        return self.sim.user(phone=phone, code="24680", password=password, **more)

    def line(self, code, phone, **more):
        body = dict({"code": code, "api_id": 12345, "api_hash": API_HASH, "phone": phone,
                     "pbx": "pbx1"}, **more)
        return self.api.ok("POST", LINES, body, want=(201,))

    def state(self, line_id):
        lines = self.api.ok("GET", "/api/monitor/v1/telegram/lines")["data"]["lines"]
        return next(l for l in lines if l["id"] == line_id)

    def wait_state(self, line_id, state, seconds=10):
        deadline = time.time() + seconds
        while True:
            s = self.state(line_id)
            if s["state"] == state or time.time() > deadline:
                self.assertEqual(s["state"], state, s)
                return s
            time.sleep(0.05)

    def login(self, line_id, body, want=200):
        status, answer = self.api.call("POST", "%s/%d/login" % (LINES, line_id), body)
        self.assertEqual(status, want, answer)
        return answer


class Provisioning(LinesCase):
    def test_lines_are_validated_and_the_api_hash_is_never_returned(self):
        base = {"code": "bad", "api_id": 1, "api_hash": API_HASH, "pbx": "pbx1"}
        for change, field in [({"api_id": None}, "api_id"), ({"api_hash": "xyz"}, "api_hash"),
                              ({"pbx": "nope"}, "pbx"), ({"phone": "8999"}, "phone"),
                              ({"callerid": "email"}, "callerid"), ({"color": 1}, "color"),
                              ({"callerid_prefix": "00"}, "callerid_prefix")]:
            body = {k: v for k, v in dict(base, **change).items() if v is not None}
            status, answer = self.api.call("POST", LINES, body)
            self.assertEqual(status, 400, (change, answer))
            self.assertEqual(answer["field"], field, answer)
        created = self.line("tg-prov", "+79990000001", callerid="username",
                            callername=["name", "username", "phone"], enabled=False)
        self.assertNotIn("api_hash", created)
        self.assertEqual(created["callerid_prefix"], "*")
        self.assertEqual(created["ring_timeout"], 15)
        got = self.api.ok("GET", "%s/%d" % (LINES, created["id"]))
        self.assertNotIn("api_hash", got)
        listed = self.api.ok("GET", LINES)["items"]
        self.assertTrue(all("api_hash" not in l for l in listed))
        # A PATCH without api_hash keeps it; a duplicate code is a conflict.
        self.api.ok("PATCH", "%s/%d" % (LINES, created["id"]), {"ring_timeout": 20})
        status, _ = self.api.call("POST", LINES, dict(base, code="tg-prov"))
        self.assertEqual(status, 409)
        # Disabled: no TDLib client, and no login.
        self.assertEqual(self.state(created["id"])["state"], "disabled")
        self.login(created["id"], {}, want=409)
        self.api.ok("DELETE", "%s/%d" % (LINES, created["id"]), want=(204,))


class Login(LinesCase):
    def test_the_whole_login_code_then_two_step_password(self):
        uid = self.account("+79990000002", password="s3cret", username="esg_line2",
                           first_name="Line", hint="the usual")
        line = self.line("tg-login", "+79990000002")
        self.wait_state(line["id"], "wait_phone")
        # A step out of turn is refused with the state the line is in.
        answer = self.login(line["id"], {"code": "24680"}, want=409)
        self.assertEqual(answer["state"], "wait_phone")
        answer = self.login(line["id"], {})  # the line's own phone
        self.assertEqual(answer["state"], "wait_code")
        self.assertEqual(answer["code_type"], "authenticationCodeTypeTelegramMessage")
        answer = self.login(line["id"], {"code": "11111"}, want=400)
        self.assertEqual(answer["error"], "PHONE_CODE_INVALID")
        self.assertEqual(answer["state"], "wait_code")
        answer = self.login(line["id"], {"code": "24680"})
        self.assertEqual(answer["state"], "wait_password")
        self.assertEqual(answer["password_hint"], "the usual")
        answer = self.login(line["id"], {"password": "guess"}, want=400)
        self.assertEqual(answer["error"], "PASSWORD_HASH_INVALID")
        answer = self.login(line["id"], {"password": "s3cret"})
        self.assertEqual(answer["state"], "ready")
        s = self.wait_state(line["id"], "ready")
        deadline = time.time() + 5
        while not s["user"] and time.time() < deadline:
            time.sleep(0.05)
            s = self.state(line["id"])
        self.assertEqual(s["user"]["id"], uid)
        self.assertEqual(s["user"]["username"], "esg_line2")
        self.assertEqual(s["connection"], "ready")
        self.assertEqual(s["calls_in_progress"], 0)
        self.assertIsNone(s["flood_until"])
        # What esg told TDLib: the application's credentials and the line's own folder.
        params = [r["request"] for r in self.sim.ctl("requests")["requests"]
                  if r["request"].get("@type") == "setTdlibParameters"]
        self.assertTrue(params)
        self.assertEqual(params[-1]["api_id"], 12345)
        self.assertEqual(params[-1]["api_hash"], API_HASH)
        self.assertTrue(params[-1]["database_directory"].endswith(
            "line-%d/db" % line["id"]), params[-1])
        self.assertFalse(params[-1]["use_test_dc"])
        # The api_hash is in no log esg writes.
        for root, _, files in os.walk(self.esg.dir):
            for name in files:
                if name.endswith((".log", ".out")):
                    with open(os.path.join(root, name), errors="replace") as f:
                        self.assertNotIn(API_HASH, f.read(), name)

    def test_a_flood_wait_at_login_says_how_long(self):
        self.account("+79990000003")
        line = self.line("tg-flood", "+79990000003")
        self.wait_state(line["id"], "wait_phone")
        self.sim.ctl("flood", what="login", seconds=42)
        answer = self.login(line["id"], {"phone": "+79990000003"}, want=429)
        self.assertEqual(answer["retry_after"], 42)
        self.assertIn("retry after 42", answer["error"])
        self.assertEqual(answer["state"], "wait_phone")
        self.assertIsNotNone(self.state(line["id"])["flood_until"])
        # Once the wait is over (the simulator's flood is for one request), the login goes on.
        self.assertEqual(self.login(line["id"], {})["state"], "wait_code")
        self.assertEqual(self.login(line["id"], {"code": "24680"})["state"], "ready")

    def test_an_unknown_phone_is_refused(self):
        line = self.line("tg-nophone", "+79990000099")
        self.wait_state(line["id"], "wait_phone")
        answer = self.login(line["id"], {}, want=400)
        self.assertEqual(answer["error"], "PHONE_NUMBER_UNOCCUPIED")
        status, answer = self.api.call("POST", "%s/%d/login" % (LINES, line["id"]),
                                       {"phone": 79990000099})
        self.assertEqual((status, answer["field"]), (400, "phone"))
        status, answer = self.api.call("POST", "%s/%d/login" % (LINES, line["id"]),
                                       {"pin": "1"})
        self.assertEqual((status, answer["field"]), (400, "pin"))
        status, _ = self.api.call("POST", "%s/999999/login" % LINES, {})
        self.assertEqual(status, 404)


class Session(LinesCase):
    def test_a_restart_keeps_the_login_and_logout_ends_it(self):
        self.account("+79990000004")
        line = self.line("tg-keep", "+79990000004")
        self.wait_state(line["id"], "wait_phone")
        self.login(line["id"], {})
        self.assertEqual(self.login(line["id"], {"code": "24680"})["state"], "ready")
        folder = self.esg.dir
        self.assertEqual(self.esg.stop(), 0)  # SIGTERM: esg closes its TDLib clients
        closes = [r for r in self.sim.ctl("requests")["requests"]
                  if r["request"].get("@type") == "close"]
        self.assertTrue(closes, "esg closed its TDLib clients before exiting")
        type(self).start_esg(folder)
        s = self.wait_state(line["id"], "ready")  # no login asked
        self.assertEqual(s["code"], "tg-keep")
        session = os.path.join(folder, "telegram", "line-%d" % line["id"], "db")
        self.assertTrue(os.path.isdir(session), session)
        # Logout: the session is gone, and the line waits for a new login.
        status, answer = self.api.call("POST", "%s/%d/logout" % (LINES, line["id"]))
        self.assertEqual(status, 200, answer)
        self.wait_state(line["id"], "wait_phone")
        self.assertFalse(os.path.exists(os.path.join(session, "tgsim-session.json")))
        status, answer = self.api.call("POST", "%s/%d/logout" % (LINES, line["id"]))
        self.assertEqual(status, 409, answer)
        # A deleted line closes its client and takes its session folder with it.
        self.api.ok("DELETE", "%s/%d" % (LINES, line["id"]), want=(204,))
        deadline = time.time() + 5
        while os.path.exists(os.path.dirname(session)) and time.time() < deadline:
            time.sleep(0.05)
        self.assertFalse(os.path.exists(os.path.dirname(session)))


class CommandLine(LinesCase):
    def cli(self, code, stdin):
        return subprocess.run(
            [ESG, "telegram", "login", code, "--config", self.esg.config_path,
             "--http", "127.0.0.1:%d" % self.esg.ports["http"]],
            input=stdin, capture_output=True, text=True, timeout=60)

    def test_esg_telegram_login_prompts_for_each_step(self):
        uid = self.account("+79990000005", password="pw5", username="esg_cli")
        line = self.line("tg-cli", "+79990000005")
        self.wait_state(line["id"], "wait_phone")
        # Enter for the line's own phone, a wrong code, the right one, the password.
        r = self.cli("tg-cli", "\n00000\n24680\npw5\n")
        self.assertEqual(r.returncode, 0, (r.stdout, r.stderr))
        self.assertIn("Phone number [+79990000005]:", r.stdout)
        self.assertEqual(r.stdout.count("Code Telegram sent"), 2, r.stdout)
        self.assertIn("PHONE_CODE_INVALID", r.stderr)
        self.assertIn("Two-step verification password", r.stdout)
        self.assertIn("tg-cli: logged in as @esg_cli, user id %d" % uid, r.stdout)
        self.assertEqual(self.state(line["id"])["state"], "ready")
        # Already in: nothing to ask.
        r = self.cli("tg-cli", "")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("Phone number", r.stdout)

    def test_an_unknown_line_or_a_bad_call_exits_2(self):
        r = self.cli("no-such-line", "")
        self.assertEqual(r.returncode, 2)
        self.assertIn("no Telegram line with code no-such-line", r.stderr)
        r = subprocess.run([ESG, "telegram", "logon"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage: esg telegram login CODE", r.stderr)


if __name__ == "__main__":
    unittest.main()
