"""The firewall list (issue 23): two esg instances on one PostgreSQL store, each on a loopback
address of its own (127.0.0.2, 127.0.0.3) for SIP and media. /fw.txt of either lists the
addresses of both, each once, sorted, with a comment naming the instance; it needs the token
unless http.public_fw; the monitoring API's JSON form lists the same. An instance's address
change is seen by the other: a restart with another extaddrs, a reload (SIGHUP) with fwaddrs."""

import ipaddress
import json
import os
import signal
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from esg_fixture import EsgProcess, KeepOnFailure  # noqa: E402
from postgres_fixture import Postgres  # noqa: E402
from rest_api import Api  # noqa: E402


def entries(text):
    """address -> comment of each line of a /fw.txt that is not a comment."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        addr, _, comment = line.partition("#")
        assert addr.strip() not in out, "%s twice in:\n%s" % (addr, text)
        out[addr.strip()] = comment.strip()
    return out


def sort_key(addr):
    n = ipaddress.ip_network(addr, strict=False)
    return (n.version, n.network_address, n.prefixlen)


class FirewallList(KeepOnFailure):
    @classmethod
    def setUpClass(cls):
        cls.pg = Postgres().start()
        cls.esg = {}
        cls.esg[1] = cls.start_instance(1, extaddrs=["127.0.0.12"])
        cls.esg[2] = cls.start_instance(2, public_fw=True)

    @classmethod
    def start_instance(cls, srvidx, extaddrs=(), fwaddrs=(), public_fw=False, folder=None):
        addr = "127.0.0.%d" % (srvidx + 1)
        return EsgProcess({
            "instance": {"srvidx": srvidx, "roleid": srvidx, "node": "esg%d" % srvidx,
                         "workers": 2, "extaddrs": list(extaddrs), "fwaddrs": list(fwaddrs)},
            "listen": [{"proto": "udp", "addr": addr, "port": 0},
                       {"proto": "tcp", "addr": addr, "port": 0}],
            "http": {"listen": "127.0.0.1:0", "token": "test-token", "public_fw": public_fw},
            "media": {"address": addr,
                      "ports": [26000 + 100 * srvidx, 26000 + 100 * srvidx + 99]},
            "store": {"postgres": cls.pg.url},
        }, folder=folder)

    @classmethod
    def tearDownClass(cls):
        codes = [e.stop() for e in cls.esg.values()]
        keep = cls.failed or any(codes)
        for e in cls.esg.values():
            e.cleanup(keep=keep)
        cls.pg.stop()
        cls.pg.cleanup(keep=keep)
        if any(codes):
            raise AssertionError("an esg instance exited with %s" % codes)

    def api(self, srvidx):
        return Api(self.esg[srvidx].ports["http"])

    def wait_list(self, srvidx, want, seconds=10):
        """/fw.txt of `srvidx` once `want(entries)` holds: (text, entries)."""
        deadline = time.time() + seconds
        text = ""
        while time.time() < deadline:
            status, ctype, text = self.api(srvidx).text("/fw.txt")
            self.assertEqual(status, 200, text)
            self.assertTrue(ctype.startswith("text/plain"), ctype)
            got = entries(text)
            if want(got):
                return text, got
            time.sleep(0.1)
        self.fail("/fw.txt of instance %d never got there:\n%s" % (srvidx, text))

    def test_either_instance_lists_both(self):
        for srvidx in (1, 2):
            text, got = self.wait_list(
                srvidx, lambda e: "127.0.0.2" in e and "127.0.0.3" in e and "127.0.0.12" in e)
            self.assertIn("instance 1 (srvidx 1, esg1@", got["127.0.0.2"])
            self.assertTrue(got["127.0.0.2"].endswith(": sip, rtp"), got["127.0.0.2"])
            self.assertIn("instance 2 (srvidx 2, esg2@", got["127.0.0.3"])
            self.assertTrue(got["127.0.0.3"].endswith(": sip, rtp"), got["127.0.0.3"])
            self.assertIn("instance 1 (srvidx 1", got["127.0.0.12"])
            # Sorted, each once (entries() refuses duplicates), a header with the time.
            self.assertEqual(list(got), sorted(got, key=sort_key))
            self.assertTrue(text.startswith("# esg firewall list"), text)
            self.assertRegex(text, r"# Generated \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ from 2 instance")
            self.assertIn("0.0.0.0, ::", text)

    def test_anonymous_refused_unless_public_fw(self):
        status, _, body = self.api(1).text("/fw.txt", token=None)
        self.assertEqual(status, 401, body)
        status, _, body = self.api(1).text("/fw.txt", token="wrong")
        self.assertEqual(status, 401, body)
        # Instance 2 has http.public_fw: the list (and only the list) is open.
        status, _, body = self.api(2).text("/fw.txt", token=None)
        self.assertEqual(status, 200, body)
        self.assertIn("127.0.0.3", body)
        status, _ = self.api(2).call("GET", "/api/monitor/v1/esg/fw", token=None)
        self.assertEqual(status, 401)

    def test_json_form_matches_the_text(self):
        _, got = self.wait_list(1, lambda e: "127.0.0.3" in e)
        status, body = self.api(1).call("GET", "/api/monitor/v1/esg/fw")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["resultcode"], 0)
        data = body["data"]
        self.assertEqual([a["addr"] for a in data["addresses"]], list(got))
        by_addr = {a["addr"]: a["instances"] for a in data["addresses"]}
        self.assertEqual([(i["srvidx"], i["uses"]) for i in by_addr["127.0.0.3"]],
                         [(2, ["sip", "rtp"])])
        self.assertEqual(by_addr["127.0.0.3"][0]["from"], ["listen", "media"])
        self.assertEqual(by_addr["127.0.0.12"][0]["from"], ["extaddrs"])
        instances = {i["srvidx"]: i for i in data["instances"]}
        self.assertEqual(sorted(instances), [1, 2])
        self.assertTrue(instances[1]["self"])
        self.assertTrue(instances[2]["online"])

    def test_z_address_changes_are_seen_by_the_other_instance(self):
        self.wait_list(1, lambda e: "127.0.0.3" in e)
        # A restart of instance 2 with an external address.
        self.assertEqual(self.esg[2].stop(), 0)
        self.esg[2] = self.start_instance(2, extaddrs=["127.0.0.13"], public_fw=True,
                                          folder=self.esg[2].dir)
        _, got = self.wait_list(1, lambda e: "127.0.0.13" in e)
        self.assertIn("instance 2 (srvidx 2", got["127.0.0.13"])
        # A reload of instance 1: a CIDR added, the external address dropped.
        e1 = self.esg[1]
        with open(e1.config_path) as f:
            config = json.load(f)
        config["instance"]["fwaddrs"] = ["127.0.0.70/28"]
        config["instance"]["extaddrs"] = []
        with open(e1.config_path, "w") as f:
            json.dump(config, f)
        e1.proc.send_signal(signal.SIGHUP)
        _, got = self.wait_list(2, lambda e: "127.0.0.64/28" in e and "127.0.0.12" not in e)
        self.assertIn("instance 1 (srvidx 1", got["127.0.0.64/28"])
        self.assertIn("127.0.0.2", got)
        self.assertIn("127.0.0.13", got)


if __name__ == "__main__":
    unittest.main()
