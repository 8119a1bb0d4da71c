"""Bans: an address that keeps failing (INVITEs for unknown accounts) is banned and then
dropped at the socket without an answer, logged as BANNED; the REST API lists and lifts bans;
a configured provider's address is never banned."""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from esg_fixture import EsgProcess, KeepOnFailure, ask_options, stop_all  # noqa: E402
from rest_api import Api  # noqa: E402
import sip_uac  # noqa: E402


class Bans(KeepOnFailure):
    @classmethod
    def setUpClass(cls):
        cls.esg = EsgProcess({"security": {"ban": {"failures": 3, "window": 60,
                                                   "duration": 600}}})
        cls.api = Api(cls.esg.ports["http"])
        cls.api.ok("POST", "/rest/v1/uc/providers",
                   {"code": "prov-a", "domain": "127.0.0.2", "reg": False, "username": ""})

    @classmethod
    def tearDownClass(cls):
        stop_all(cls.failed, cls.esg)

    def test_repeated_unknown_accounts_get_the_source_banned_until_lifted(self):
        port = self.esg.ports["udp"]
        for _ in range(3):
            a = sip_uac.invite(port, "127.0.0.50", "nobody", "127.0.0.1")
            self.assertEqual(a.status, 404, a.responses)
        # Banned now: silence, for INVITEs and everything else.
        a = sip_uac.invite(port, "127.0.0.50", "nobody", "127.0.0.1", timeout=1.0)
        self.assertEqual(a.responses, [])
        self.assertIsNone(ask_options(self.esg.ports["udp"], "127.0.0.50"))
        self.assertEqual(ask_options(self.esg.ports["udp"], "127.0.0.51"), 200)  # others are unaffected
        bans = self.api.ok("GET", "/rest/v1/master/bans")["items"]
        ban = next(b for b in bans if b["address"] == "127.0.0.50")
        self.assertEqual(ban["reason"], "unknown account")
        self.assertEqual(ban["until"] - ban["since"], 600 * 1000)
        self.assertGreaterEqual(ban["count"], 3)
        self.assertTrue(any(" Recv from udp 127.0.0.50:" in l and l.endswith(" BANNED")
                            for l in self.esg.trn_lines()))
        self.assertEqual(self.api.call("DELETE", "/rest/v1/master/bans/127.0.0.50")[0], 204)
        self.assertEqual(ask_options(self.esg.ports["udp"], "127.0.0.50"), 200)
        self.assertEqual(self.api.call("DELETE", "/rest/v1/master/bans/127.0.0.50")[0], 404)

    def test_a_configured_provider_is_never_banned(self):
        port = self.esg.ports["udp"]
        for _ in range(5):
            # Unknown user, From and Contact elsewhere: 404, counted, but 127.0.0.2 is prov-a.
            a = sip_uac.invite(port, "127.0.0.2", "nobody", "127.0.0.1", from_host="127.0.0.98",
                               contact_host="127.0.0.99", contact_user="x")
            self.assertEqual(a.status, 404, a.responses)
        self.assertEqual(ask_options(self.esg.ports["udp"], "127.0.0.2"), 200)
        bans = self.api.ok("GET", "/rest/v1/master/bans")["items"]
        self.assertFalse(any(b["address"] == "127.0.0.2" for b in bans))


if __name__ == "__main__":
    unittest.main()
