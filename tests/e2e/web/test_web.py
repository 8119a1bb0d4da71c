"""The admin web page in headless Chromium (issue 10): a visitor without a session gets the
sign-in page; the admin signs in, sees a provider registered to Kamailio, finds a call placed
with SIPp in the history and opens its diagram (the INVITE, the 200 and the BYE on both legs,
the matched account and the normalization rule among esg's decisions, the raw packet on
click), runs a substitution test, edits the configuration (a PBX connection created, refused with the field named, deleted),
logs a Telegram line in (the simulator's: tests/tgsim) step by step (the page links the firewall
list there, which opens with the session), and signs out. Screenshots of the providers page and the diagram are kept in
build/web-artefacts/ (README's pictures come from there)."""

import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, ".."))
from accounts.test_registration import account, registrar  # noqa: E402
from esg_fixture import ESG, TOKEN, EsgProcess, KeepOnFailure, stop_all  # noqa: E402
from kamailio_fixture import free_port  # noqa: E402
from rest_api import Api  # noqa: E402
from sipp_fixture import SippPeer  # noqa: E402
from tgsim_fixture import LIB, TgSim  # noqa: E402

SOURCE = os.environ.get("ESG_SOURCE_DIR", os.path.join(HERE, "..", "..", ".."))
CALLS = os.path.join(HERE, "..", "calls")
ARTEFACTS = os.environ.get("ESG_ARTEFACTS",
                           os.path.join(os.path.dirname(os.path.abspath(ESG)), "web-artefacts"))


class Browser(KeepOnFailure):
    @classmethod
    def setUpClass(cls):
        cls.folder = tempfile.mkdtemp(prefix="esg-web-")
        cls.kam = registrar(cls.folder, free_port()).start()
        cls.sim = TgSim()
        hashed = subprocess.run([ESG, "hash-password"], input="web-secret\n", text=True,
                                capture_output=True, timeout=30).stdout.strip()
        cls.peers = []
        cls.esg = EsgProcess({
            "http": {"listen": "127.0.0.1:0", "token": TOKEN,
                     "ui_dir": os.path.join(SOURCE, "web", "dist"),
                     "admin": {"user": "admin", "password_hash": hashed}},
            "media": {"ports": [25600, 25699]},
            "telegram": {"tdjson": LIB, "sessions": os.path.join(cls.folder, "telegram")}},
            env=cls.sim.env())
        cls.api = Api(cls.esg.ports["http"])
        cls.api.ok("POST", "/rest/v1/uc/providers", account("prov-kam", cls.kam_port()))
        cls.api.ok("POST", "/rest/v1/uc/providers",
                   {"code": "prov-a", "domain": "127.0.0.2", "reg": False, "username": ""})

    @classmethod
    def kam_port(cls):
        return int(cls.kam.listen[0].rsplit(":", 1)[1])

    @classmethod
    def tearDownClass(cls):
        stop_all(cls.failed, cls.esg, cls.kam, cls.sim, *cls.peers)

    def test_an_operator_walks_the_page(self):
        pbx = SippPeer(os.path.join(CALLS, "uas_answer.xml"), "127.0.0.5", calls=2)
        self.peers.append(pbx)
        self.api.ok("POST", "/rest/v1/uc/pbx", {"code": "pbx1", "mode": "ip",
                                                "address": "127.0.0.5", "port": pbx.port})
        self.api.ok("POST", "/rest/v1/routing/rules",
                    {"priority": 100, "direction": "in", "action": "pbx", "target": "pbx1"})
        # A normalization rule the call and the substitution test both go through.
        self.api.ok("POST", "/rest/v1/routing/normalization", {
            "direction": "in", "providercode": "prov-a", "field": "from_user",
            "match": r"^8(\d{10})$", "replace": "+7$1"})
        # A Telegram line waiting for its login (done through the page below).
        self.sim.user(phone="+79990007000", code="24680", first_name="Web line")
        line = self.api.ok("POST", "/rest/v1/telegram/lines",
                           {"code": "tg-web", "api_id": 12345, "phone": "+79990007000",
                            "api_hash": "0123456789abcdef0123456789abcdef", "pbx": "pbx1"})
        deadline = time.time() + 10
        while time.time() < deadline and [
                l["state"] for l in self.api.ok("GET", "/api/monitor/v1/telegram/lines")["data"]
                ["lines"] if l["id"] == line["id"]] != ["wait_phone"]:
            time.sleep(0.05)
        def call(duration_ms, from_user):
            return SippPeer(os.path.join(CALLS, "uac_call.xml"), "127.0.0.2",
                            remote="127.0.0.1:%d" % self.esg.ports["udp"],
                            duration_ms=duration_ms,
                            keys={"ruri_user": "74951234567", "to_user": "74951234567",
                                  "to_host": "127.0.0.1", "from_user": from_user,
                                  "contact_user": "prov"})
        # A call still up while the page is looked at, then one over (the history's newest).
        held = call(30000, "89160000001")
        self.peers.append(held)
        deadline = time.time() + 5
        while time.time() < deadline and not self.api.ok(
                "GET", "/api/monitor/v1/calls")["data"]["calls"]:
            time.sleep(0.05)
        caller = call(300, "89161234567")
        self.peers.append(caller)
        self.assertEqual(caller.wait(), 0, caller.output())
        os.makedirs(ARTEFACTS, exist_ok=True)
        run = subprocess.run(
            ["node", os.path.join(HERE, "ui.mjs"), json.dumps({
                "url": "http://127.0.0.1:%d" % self.esg.ports["http"], "user": "admin",
                "password": "web-secret", "account": "prov-a", "registered": "prov-kam",
                "artefacts": ARTEFACTS})],
            capture_output=True, text=True, timeout=90, cwd=HERE)
        self.assertEqual(run.returncode, 0, run.stderr)
        found = json.loads(run.stdout.strip().splitlines()[-1])
        self.assertNotIn("error", found, found)
        self.assertTrue(found["anonymous_form"])
        self.assertFalse(found["anonymous_nav"])
        self.assertEqual(found["anonymous_api"], 401)
        self.assertEqual(found["wrong_password"], "wrong user or password")
        self.assertTrue(found["provider_registered"])
        self.assertIn("SIP/2.0 200", found["last_response"])
        # Calls in progress: both legs, the numbers before and after normalization, the state.
        row = found["call_row"]
        self.assertEqual(row[1:4], ["in", "prov-a", "pbx1"], row)
        self.assertEqual(row[4], "89160000001 → +79160000001", row)
        self.assertEqual(row[6], "confirmed", row)
        for leg in ("a", "b"):
            for label in ("INVITE", "200 OK (INVITE)", "ACK", "BYE", "200 OK (BYE)"):
                self.assertIn("%s:%s" % (leg, label), found["arrows"], found["arrows"])
        self.assertTrue(any("prov-a" in d for d in found["decisions"]), found["decisions"])
        self.assertTrue(any(d.startswith("normalization rule") and "+79161234567" in d
                            for d in found["decisions"]), found["decisions"])
        self.assertTrue(any(l.startswith("prov-a") for l in found["lanes"]), found["lanes"])
        self.assertIn("esg", found["lanes"])
        self.assertIn("INVITE sip:", found["raw_packet"])
        self.assertEqual(found["substitution"]["account"], "prov-a")
        self.assertEqual(found["substitution"]["result"]["from_user"], "+79161234567",
                         found["substitution"])
        self.assertIn("mode", found["config_error"])
        self.assertEqual(found["config_saved"], "saved")
        self.assertTrue(found["config_deleted"])
        self.assertEqual([p["code"] for p in self.api.ok("GET", "/rest/v1/uc/pbx")["items"]],
                         ["pbx1"], "created and deleted through the page")
        self.assertEqual(found["fw_link"], "/fw.txt")
        self.assertEqual(found["fw_text"]["status"], 200, found["fw_text"])
        self.assertTrue(found["fw_text"]["type"].startswith("text/plain"), found["fw_text"])
        self.assertIn("\n127.0.0.1 ", found["fw_text"]["text"])  # the instance's listeners
        self.assertEqual(found["telegram_login"], ["The code Telegram sent", "line tg-web: ready"])
        lines = self.api.ok("GET", "/api/monitor/v1/telegram/lines")["data"]["lines"]
        self.assertEqual([l["state"] for l in lines if l["id"] == line["id"]], ["ready"])
        self.assertEqual(found["after_signout_api"], 401)
        for shot in ("providers.png", "diagram.png"):
            self.assertGreater(os.path.getsize(os.path.join(ARTEFACTS, shot)), 10000)


if __name__ == "__main__":
    unittest.main()
