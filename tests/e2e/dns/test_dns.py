"""RFC 3263 resolution against a real DNS server on loopback: dnsmasq with NAPTR, SRV and A
records written by the test; `esg resolve` prints the targets in the order esg tries them."""

import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from dnsmasq_fixture import Dnsmasq  # noqa: E402

ESG = os.environ.get("ESG_BIN", "build/esg")


class Rfc3263(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = Dnsmasq("esg.test", [
            "--host-record=pbx1.esg.test,127.0.0.5", "--host-record=pbx2.esg.test,127.0.0.6",
            "--host-record=plain.esg.test,127.0.0.9",
            "--srv-host=_sip._udp.esg.test,pbx1.esg.test,5070,10,60",
            "--srv-host=_sip._udp.esg.test,pbx2.esg.test,5072,20,10",
            "--srv-host=_sip._tcp.esg.test,pbx1.esg.test,5071,10,10",
            "--naptr-record=esg.test,20,50,s,SIP+D2U,,_sip._udp.esg.test",
            "--naptr-record=esg.test,10,50,s,SIP+D2T,,_sip._tcp.esg.test",
            "--srv-host=_sip._udp.srvonly.esg.test,pbx2.esg.test,5080,0,0",
        ], probe="plain.esg.test")

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()

    @classmethod
    def resolve_raw(cls, *uris):
        r = subprocess.run([ESG, "resolve", "--dns", cls.dns.server, *uris],
                           capture_output=True, text=True, timeout=30)
        return r.returncode, [json.loads(l) for l in r.stdout.splitlines()]

    def targets(self, uri):
        code, out = self.resolve_raw(uri)
        return [(t["transport"], t["addr"], t["port"]) for t in out[0]["targets"]]

    def test_naptr_orders_transports_then_srv_priorities(self):
        self.assertEqual(self.targets("sip:esg.test"), [
            ("tcp", "127.0.0.5", 5071),   # NAPTR order 10
            ("udp", "127.0.0.5", 5070),   # NAPTR order 20, SRV priority 10
            ("udp", "127.0.0.6", 5072),   # SRV priority 20
        ])

    def test_transport_parameter_skips_naptr(self):
        self.assertEqual(self.targets("sip:esg.test;transport=udp"),
                         [("udp", "127.0.0.5", 5070), ("udp", "127.0.0.6", 5072)])

    def test_srv_without_naptr(self):
        self.assertEqual(self.targets("sip:srvonly.esg.test"), [("udp", "127.0.0.6", 5080)])

    def test_address_records_alone_mean_udp_on_5060(self):
        self.assertEqual(self.targets("sip:plain.esg.test"), [("udp", "127.0.0.9", 5060)])

    def test_an_explicit_port_asks_only_for_addresses(self):
        self.assertEqual(self.targets("sip:pbx1.esg.test:5999"), [("udp", "127.0.0.5", 5999)])

    def test_unknown_name_resolves_to_nothing(self):
        code, out = self.resolve_raw("sip:nothere.esg.test")
        self.assertEqual(code, 1)
        self.assertEqual(out[0]["targets"], [])

    def test_answers_are_cached_for_their_ttl(self):
        before = self.dns.queries("query[NAPTR] esg.test ")
        code, out = self.resolve_raw("sip:esg.test", "sip:esg.test", "sip:esg.test")
        self.assertEqual(code, 0)
        self.assertEqual(out[0]["targets"], out[2]["targets"])
        time.sleep(0.2)
        after = self.dns.queries("query[NAPTR] esg.test ")
        self.assertEqual(after - before, 1)  # three lookups, one query


if __name__ == "__main__":
    unittest.main()
