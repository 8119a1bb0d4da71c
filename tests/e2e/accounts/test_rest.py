"""REST provisioning of provider accounts: create, read, update (PUT and PATCH), delete, bad
input naming the field, duplicate codes, unknown ids, the bearer token, and a password that
never comes back."""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
from esg_fixture import EsgTestCase  # noqa: E402
from test_registration import Api  # noqa: E402

BASE = "/rest/v1/uc/providers"


def p2p(code, **extra):
    # Point-to-point on loopback: nothing is registered anywhere.
    a = {"code": code, "domain": "127.0.0.1", "reg": False, "username": "u1", "pwd": "s3cret"}
    a.update(extra)
    return a


class ProvidersRest(EsgTestCase):
    extra_config = {"listen": [{"proto": "udp", "addr": "127.0.0.1", "port": 0}]}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.api = Api(cls.esg.ports["http"])

    def test_crud_round_trip(self):
        status, a = self.api.call("POST", BASE, p2p("crud", trunks=5, codecs=["PCMU"]))
        self.assertEqual(status, 201, a)
        self.assertIsInstance(a["id"], int)
        self.assertNotIn("pwd", a)
        url = "%s/%d" % (BASE, a["id"])
        status, got = self.api.call("GET", url)
        self.assertEqual(status, 200)
        self.assertEqual(got, a)
        status, items = self.api.call("GET", BASE)
        self.assertIn(a["id"], [i["id"] for i in items["items"]])
        # PATCH merges.
        status, patched = self.api.call("PATCH", url, {"trunks": 7})
        self.assertEqual(status, 200, patched)
        self.assertEqual(patched["trunks"], 7)
        self.assertEqual(patched["codecs"], ["PCMU"])
        # PUT replaces: fields left out go back to their defaults.
        status, put = self.api.call("PUT", url, p2p("crud"))
        self.assertEqual(status, 200, put)
        self.assertEqual(put["trunks"], 0)
        self.assertEqual(put["codecs"], ["PCMA", "PCMU"])
        # The account is listed in the registration status as point-to-point.
        self.assertEqual(self.api.regs()["crud"]["regstate"], "none")
        self.assertEqual(self.api.call("DELETE", url)[0], 204)
        self.assertEqual(self.api.call("GET", url)[0], 404)
        self.assertEqual(self.api.call("DELETE", url)[0], 404)
        self.assertNotIn("crud", self.api.regs())

    def test_bad_input_names_the_field(self):
        for body, field in ((p2p("b1", proxyport=0), "proxyport"),
                            (p2p("b2", transport="sctp"), "transport"),
                            (p2p("b3", codecs=["G729"]), "codecs[0]"),
                            (p2p("b4", extaddrs=["/reg/("]), "extaddrs[0]"),
                            (p2p("b5", opts={"extusernames": [5]}), "opts.extusernames[0]"),
                            (p2p("b6", media=False, reinvite=False), "reinvite"),
                            (p2p("b7", pingmode="icmp"), "pingmode"),
                            (p2p("b8", colour="red"), "colour"),
                            ({"domain": "127.0.0.1"}, "code")):
            status, err = self.api.call("POST", BASE, body)
            self.assertEqual(status, 400, body)
            self.assertEqual(err["field"], field, err)
            self.assertTrue(err["error"])
        status, err = self.api.call("POST", BASE, ["not", "an", "object"])
        self.assertEqual(status, 400)

    def test_duplicate_code_is_409_and_unknown_id_404(self):
        status, a = self.api.call("POST", BASE, p2p("dup"))
        self.assertEqual(status, 201)
        status, err = self.api.call("POST", BASE, p2p("dup"))
        self.assertEqual(status, 409)
        self.assertEqual(err["field"], "code")
        status, b = self.api.call("POST", BASE, p2p("dup2"))
        self.assertEqual(self.api.call("PATCH", "%s/%d" % (BASE, b["id"]), {"code": "dup"})[0], 409)
        self.assertEqual(self.api.call("GET", BASE + "/999999")[0], 404)
        self.assertEqual(self.api.call("GET", BASE + "/abc")[0], 404)
        self.assertEqual(self.api.call("PUT", BASE + "/999999", p2p("x"))[0], 404)
        self.api.call("DELETE", "%s/%d" % (BASE, a["id"]))
        self.api.call("DELETE", "%s/%d" % (BASE, b["id"]))

    def test_every_call_needs_the_token(self):
        for method, path in (("GET", BASE), ("POST", BASE), ("GET", BASE + "/1"),
                             ("DELETE", BASE + "/1"),
                             ("GET", "/api/monitor/v1/esg/active?regs=true")):
            for token in (None, "wrong-token"):
                status, err = self.api.call(method, path, {} if method == "POST" else None,
                                            token=token)
                self.assertEqual(status, 401, (method, path, token))
                self.assertIn("error", err)

    def test_the_password_never_comes_back(self):
        status, a = self.api.call("POST", BASE, p2p("secret", pwd="do-not-show-me"))
        self.assertEqual(status, 201)
        url = "%s/%d" % (BASE, a["id"])
        bodies = [self.api.call("GET", url)[1], self.api.call("GET", BASE)[1],
                  self.api.call("PATCH", url, {"trunks": 1})[1],
                  self.api.call("GET", "/api/monitor/v1/esg/active?regs=true")[1]]
        for b in bodies:
            self.assertNotIn("do-not-show-me", str(b))
        # Nor in the logs.
        with open(self.esg.out.name) as f:
            self.assertNotIn("do-not-show-me", f.read())
        for l in self.esg.trn_lines():
            self.assertNotIn("do-not-show-me", l)
        self.api.call("DELETE", url)

    def test_monitoring_shape(self):
        status, body = self.api.call("GET", "/api/monitor/v1/esg/active?regs=true")
        self.assertEqual(status, 200)
        self.assertEqual(body["resultcode"], 0)
        self.assertEqual(body["resultmsg"], "OK")
        site = body["data"]["sites"][0]
        self.assertEqual(site["site"], "main_site")
        server = site["servers"][0]
        for key in ("srvidx", "node", "addr", "online", "regs"):
            self.assertIn(key, server)
        status, body = self.api.call("GET", "/api/monitor/v1/esg/active?regs=false")
        self.assertNotIn("regs", body["data"]["sites"][0]["servers"][0])
        self.assertEqual(self.api.call("GET", "/api/monitor/v1/esg/active?regs=maybe")[0], 400)


if __name__ == "__main__":
    unittest.main()
