"""The daemon's log and SIGHUP (issue 10): log levels per module over REST, the Call-ID on
every line about a call, and a reload of the config file with a call in progress (the new
token works at once, the call goes on, what needs a restart is named, a broken file changes
nothing)."""

import json
import os
import signal
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from esg_fixture import EsgProcess, KeepOnFailure, stop_all  # noqa: E402
from pbx_uas import PbxUas  # noqa: E402
from rest_api import Api  # noqa: E402
from sip_call import UdpCall  # noqa: E402

LOG = "/rest/v1/master/log"


class Reload(KeepOnFailure):
    @classmethod
    def setUpClass(cls):
        cls.pbx = PbxUas("127.0.0.5")
        folder = tempfile.mkdtemp(prefix="esg-e2e-")
        cls.esg = EsgProcess({"log": {"dir": os.path.join(folder, "log"), "log_trn": True,
                                      "level": "info", "modules": {"b2bua": "debug"}},
                              "media": {"ports": [25500, 25599]}}, folder=folder)
        cls.api = Api(cls.esg.ports["http"])
        cls.api.inbound_route(cls.pbx.port)

    @classmethod
    def tearDownClass(cls):
        stop_all(cls.failed, cls.esg, cls.pbx)

    def log_text(self):
        with open(os.path.join(self.esg.dir, "esg.out"), errors="replace") as f:
            return f.read()

    def wait_log(self, text, seconds=5):
        deadline = time.time() + seconds
        while text not in self.log_text():
            if time.time() > deadline:
                self.fail("no %r in esg's log" % text)
            time.sleep(0.05)

    def test_1_levels_per_module_change_at_run_time_and_errors_name_the_field(self):
        got = self.api.ok("GET", LOG)["modules"]
        self.assertEqual(got["b2bua"], "debug")
        self.assertEqual(got["media"], "info")
        got = self.api.ok("PATCH", LOG, {"modules": {"media": "trace", "telegram": "warn"}})
        self.assertEqual((got["modules"]["media"], got["modules"]["telegram"]), ("trace", "warn"))
        for body, field in (({"modules": {"nope": "info"}}, "modules.nope"),
                            ({"modules": {"media": "loud"}}, "modules.media"),
                            ({"level": 3}, "level"), ({"colour": "red"}, "colour")):
            status, answer = self.api.call("PATCH", LOG, body)
            self.assertEqual(status, 400, body)
            self.assertEqual(answer["field"], field, answer)
        # A refused change changes nothing, even the parts that were right.
        self.api.call("PATCH", LOG, {"modules": {"edge": "error", "nope": "info"}})
        self.assertEqual(self.api.ok("GET", LOG)["modules"]["edge"], "info")
        status, _ = self.api.call("GET", LOG, token="wrong")
        self.assertEqual(status, 401)

    def test_2_a_reload_with_a_call_up_keeps_the_call_and_applies_the_file(self):
        call = UdpCall(self.esg.ports["udp"], "127.0.0.2", "74951234567", 40000)
        self.addCleanup(call.close)
        self.assertEqual(call.status, 200, call.responses)
        # Every line about the call carries its Call-ID.
        self.wait_log("[%s] incoming call from prov-a" % call.call_id)
        self.wait_log("[%s] answered 200 by pbx1" % call.call_id)
        self.assertIn("[%s] route " % call.call_id, self.log_text())
        with open(self.esg.config_path) as f:
            config = json.load(f)
        config["http"]["token"] = "a-new-token"
        config["log"]["level"] = "warn"
        config["log"]["modules"] = {"b2bua": "info"}
        config["media"]["timeout"] = 90  # needs a restart: named, not applied
        with open(self.esg.config_path, "w") as f:
            json.dump(config, f)
        self.esg.proc.send_signal(signal.SIGHUP)
        self.wait_log("configuration reloaded")
        self.assertIn("changed but need a restart: media", self.log_text())
        status, _ = self.api.call("GET", LOG)
        self.assertEqual(status, 401, "the old token is refused at once")
        status, levels = self.api.call("GET", LOG, token="a-new-token")
        self.assertEqual(status, 200)
        self.assertEqual(levels["modules"]["b2bua"], "info")
        self.assertEqual(levels["modules"]["media"], "warn")
        # The call went on: it ends normally on both legs.
        byes = len(self.pbx.byes)
        self.assertEqual(call.bye(), 200)
        self.pbx.wait("byes", byes + 1)
        self.wait_log("[%s] ended after" % call.call_id)
        # A broken file changes nothing: the new token still works.
        with open(self.esg.config_path, "w") as f:
            f.write("{ not json")
        self.esg.proc.send_signal(signal.SIGHUP)
        self.wait_log("reload refused, the running configuration stays")
        status, _ = self.api.call("GET", LOG, token="a-new-token")
        self.assertEqual(status, 200)
        self.assertTrue(self.esg.alive())


class OlderCalls(KeepOnFailure):
    def test_a_calls_packets_after_a_restart_come_from_the_trn_log(self):
        pbx = PbxUas("127.0.0.5")
        self.addCleanup(pbx.close)
        folder = tempfile.mkdtemp(prefix="esg-e2e-")
        config = {"media": {"ports": [25700, 25799]}}
        esg = EsgProcess(config, folder=folder)
        try:
            api = Api(esg.ports["http"])
            api.ok("POST", "/rest/v1/uc/providers",
                   {"code": "prov-a", "domain": "127.0.0.2", "reg": False, "username": ""})
            api.ok("POST", "/rest/v1/uc/pbx", {"code": "pbx1", "mode": "ip",
                                               "address": "127.0.0.5", "port": pbx.port})
            api.ok("POST", "/rest/v1/routing/rules",
                   {"priority": 100, "direction": "in", "action": "pbx", "target": "pbx1"})
            call = UdpCall(esg.ports["udp"], "127.0.0.2", "74951234567", 40000)
            self.assertEqual(call.status, 200, call.responses)
            self.assertEqual(call.bye(), 200)
            call.close()
            cdr = api.ok("GET", "/rest/v1/cdrs?limit=1")["items"][0]
            self.assertEqual(esg.stop(), 0)
            # The packet index went with the process: the trn log has the call.
            esg = EsgProcess(config, folder=folder)
            api = Api(esg.ports["http"])
            path = "/api/monitor/v1/calls/%s/packets?b=%s&started=%d" % (
                cdr["a"]["call_id"], cdr["b"]["call_id"], cdr["started"])
            packets = api.ok("GET", path.replace("@", "%40"))["data"]["packets"]
            self.assertTrue(all(p["source"] == "trn" for p in packets))
            kinds = {True: set(), False: set()}  # A leg, B leg: methods and statuses
            for p in packets:
                words = p["packet"].split(" ")
                kind = words[0] if words[0] != "SIP/2.0" else "SIP/2.0 " + words[1]
                kinds[p["call_id"] == cdr["a"]["call_id"]].add(kind)
            for leg in kinds.values():
                self.assertTrue({"INVITE", "SIP/2.0 200", "ACK", "BYE"} <= leg, kinds)
            status, answer = api.call("GET", path.replace("started=", "started=x"))
            self.assertEqual((status, answer["field"]), (400, "started"))
        finally:
            code = esg.stop()
            esg.cleanup(keep=self.failed or code != 0)

class LogToFile(KeepOnFailure):
    def test_the_log_goes_to_its_file_in_the_log_folder(self):
        folder = tempfile.mkdtemp(prefix="esg-e2e-")
        esg = EsgProcess({"log": {"dir": os.path.join(folder, "log"), "to": "file"}},
                         folder=folder)
        try:
            api = Api(esg.ports["http"])
            api.ok("PATCH", LOG, {"modules": {"api": "info"}})
        finally:
            code = esg.stop()
        with open(os.path.join(folder, "log", "esg.log")) as f:
            text = f.read()
        self.assertRegex(text, r"(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} info  app +esg .* starting")
        self.assertIn("log levels changed", text)
        esg.cleanup(keep=self.failed or code != 0)
        self.assertEqual(code, 0)

if __name__ == "__main__":
    unittest.main()
