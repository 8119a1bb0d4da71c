"""Border rules over REST and on the wire: a whitelist drops everyone else at the socket (logged
as BANNED, no answer) while configured providers pass, deny rules on parsed fields answer 403,
changes apply to the next packet; the flood limit bans a source that sends too fast; malformed
packets count towards bans."""

import os
import socket
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from esg_fixture import EsgProcess, KeepOnFailure, ask_options, options, read_answer, stop_all  # noqa: E402,E501
from rest_api import Api  # noqa: E402

RULES = "/rest/v1/master/borderrules"



class BorderRules(KeepOnFailure):
    @classmethod
    def setUpClass(cls):
        cls.esg = EsgProcess()
        cls.api = Api(cls.esg.ports["http"])
        cls.api.ok("POST", "/rest/v1/uc/providers",
                   {"code": "prov-a", "domain": "127.0.0.3", "reg": False, "username": ""})

    @classmethod
    def tearDownClass(cls):
        stop_all(cls.failed, cls.esg)

    def tearDown(self):
        for r in self.api.ok("GET", RULES)["items"]:
            self.api.ok("DELETE", "%s/%d" % (RULES, r["id"]))

    def test_rules_are_validated_and_managed_over_rest(self):
        status, body = self.api.call("POST", RULES, {"action": "drop", "address": "10.0.0.0/33"})
        self.assertEqual(status, 400, body)
        self.assertEqual(body["field"], "address")
        status, body = self.api.call("POST", RULES, {"action": "block"})
        self.assertEqual((status, body["field"]), (400, "action"))
        status, body = self.api.call("POST", RULES, {"action": "drop", "user_agent": "/reg/("})
        self.assertEqual((status, body["field"]), (400, "user_agent"))
        rule = self.api.ok("POST", RULES, {"priority": 10, "action": "deny", "method": "REGISTER",
                                           "user_agent": "*scanner*", "comment": "scanners"})
        self.assertEqual(rule["action"], "deny")
        path = "%s/%d" % (RULES, rule["id"])
        self.assertEqual(self.api.ok("GET", path)["comment"], "scanners")
        self.assertEqual(self.api.ok("PATCH", path, {"enabled": False})["enabled"], False)
        replaced = self.api.ok("PUT", path, {"priority": 5, "action": "drop", "address": "10.1.2.3"})
        self.assertEqual((replaced["priority"], replaced["action"]), (5, "drop"))
        self.assertNotIn("method", replaced)
        self.assertEqual([r["id"] for r in self.api.ok("GET", RULES)["items"]], [rule["id"]])
        self.assertEqual(self.api.call("DELETE", path)[0], 204)
        self.assertEqual(self.api.call("GET", path)[0], 404)
        self.assertEqual(self.api.call("DELETE", "/rest/v1/master/bans/not-an-ip")[0], 400)

    def test_a_whitelist_drops_everyone_else_silently_but_not_the_provider(self):
        port = self.esg.ports["udp"]
        self.api.ok("POST", RULES, {"priority": 10, "action": "allow", "address": "127.0.0.1"})
        drop_all = self.api.ok("POST", RULES, {"priority": 100, "action": "drop",
                                               "address": "0.0.0.0/0", "comment": "the rest"})
        self.assertEqual(ask_options(port, "127.0.0.1"), 200)
        self.assertIsNone(ask_options(port, "127.0.0.2"))
        # prov-a's address is not named by a rule: it passes, and esg says so.
        self.assertEqual(ask_options(port, "127.0.0.3"), 200)
        border = self.api.ok("GET", "/api/monitor/v1/border")["data"]
        self.assertIn("127.0.0.3 of provider account prov-a passes although border rule #%d "
                      "would drop it (a rule must name the address to drop it)" % drop_all["id"],
                      border["warnings"])
        self.assertGreaterEqual(border["counters"]["dropped_by_rule"], 1)
        self.assertGreaterEqual(border["counters"]["protected_passed"], 1)
        lines = self.esg.trn_lines()
        self.assertTrue(any(" Recv from udp 127.0.0.2:" in l and l.endswith(" BANNED")
                            for l in lines))
        self.assertFalse(any(" Send to udp 127.0.0.2:" in l for l in lines))
        # A rule naming the provider's address drops it, with a warning.
        named = self.api.ok("POST", RULES, {"priority": 50, "action": "drop",
                                            "address": "127.0.0.3"})
        self.assertIsNone(ask_options(port, "127.0.0.3"))
        warnings = self.api.ok("GET", "/api/monitor/v1/border")["data"]["warnings"]
        self.assertIn("border rule #%d (drop) names 127.0.0.3 of provider account prov-a: its "
                      "packets are dropped" % named["id"], warnings)
        # Changes apply to the next packet.
        self.api.ok("DELETE", "%s/%d" % (RULES, drop_all["id"]))
        self.assertEqual(ask_options(port, "127.0.0.2"), 200)

    def test_deny_rules_on_parsed_fields_answer_403(self):
        port = self.esg.ports["udp"]
        self.api.ok("POST", RULES, {"priority": 10, "action": "deny",
                                    "user_agent": "/reg/(?i).*friendly-scanner.*"})
        self.api.ok("POST", RULES, {"priority": 20, "action": "drop", "method": "OPTIONS",
                                    "from_user": "probe", "address": "127.0.0.4"})
        self.assertEqual(ask_options(port, "127.0.0.5", extra="User-Agent: friendly-scanner\r\n"), 403)
        self.assertEqual(ask_options(port, "127.0.0.5", extra="User-Agent: Asterisk\r\n"), 200)
        self.assertIsNone(ask_options(port, "127.0.0.4"))  # method, From user and address all match
        self.assertEqual(ask_options(port, "127.0.0.6"), 200)
        counters = self.api.ok("GET", "/api/monitor/v1/border")["data"]["counters"]
        self.assertGreaterEqual(counters["denied"], 1)

    def test_tcp_connections_from_dropped_addresses_are_refused(self):
        self.api.ok("POST", RULES, {"priority": 10, "action": "drop", "address": "127.0.0.7"})
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.bind(("127.0.0.7", 0))
        c.settimeout(2)
        try:
            c.connect(("127.0.0.1", self.esg.ports["tcp"]))
            c.sendall(options("tcp-drop-%f" % time.time()))
            self.assertEqual(read_answer(c), b"")  # closed without a word
        except (ConnectionResetError, BrokenPipeError):
            pass
        finally:
            c.close()


class FloodAndMalformed(KeepOnFailure):
    @classmethod
    def setUpClass(cls):
        cls.esg = EsgProcess({"security": {"ban": {"failures": 3, "window": 60, "duration": 600},
                                           "pike": {"requests": 10, "window": 2,
                                                    "duration": 300}}})
        cls.api = Api(cls.esg.ports["http"])

    @classmethod
    def tearDownClass(cls):
        stop_all(cls.failed, cls.esg)

    def test_a_flooding_source_is_dropped_and_listed_with_the_bans(self):
        port = self.esg.ports["udp"]
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.20", 0))
        self.addCleanup(s.close)
        for i in range(30):
            s.sendto(options("flood-%d-%f" % (i, time.time())), ("127.0.0.1", port))
        time.sleep(0.3)
        s.settimeout(0.2)
        answers = 0
        try:
            while True:
                s.recv(65535)
                answers += 1
        except socket.timeout:
            pass
        self.assertEqual(answers, 10)  # the first ten, then silence
        self.assertIsNone(ask_options(port, "127.0.0.20"))
        self.assertEqual(ask_options(port, "127.0.0.21"), 200)
        ban = next(b for b in self.api.ok("GET", "/rest/v1/master/bans")["items"]
                   if b["address"] == "127.0.0.20")
        self.assertEqual(ban["reason"], "flood: more than 10 requests in 2 s")
        self.assertEqual(ban["until"] - ban["since"], 300 * 1000)
        counters = self.api.ok("GET", "/api/monitor/v1/border")["data"]["counters"]
        self.assertEqual(counters["flood_bans"], 1)

    def test_malformed_packets_count_towards_a_ban(self):
        port = self.esg.ports["udp"]
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.22", 0))
        self.addCleanup(s.close)
        for i in range(3):
            s.sendto(b"INVITE sip:x SIP/2.0\r\nVia: broken\r\n\r\n", ("127.0.0.1", port))
            time.sleep(0.05)
        time.sleep(0.2)
        self.assertIsNone(ask_options(port, "127.0.0.22"))
        ban = next(b for b in self.api.ok("GET", "/rest/v1/master/bans")["items"]
                   if b["address"] == "127.0.0.22")
        self.assertEqual(ban["reason"], "malformed request")


if __name__ == "__main__":
    unittest.main()
