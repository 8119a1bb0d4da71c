"""RFC 3263 resolution against a real DNS server on loopback: dnsmasq with NAPTR, SRV and A
records written by the test; `esg resolve` prints the targets in the order esg tries them."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

ESG = os.environ.get("ESG_BIN", "build/esg")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rfc3263(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="esg-dns-")
        cls.log = os.path.join(cls.dir, "dnsmasq.log")
        cls.port = free_port()
        cls.dnsmasq = subprocess.Popen([
            "dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
            "--port=%d" % cls.port, "--listen-address=127.0.0.1", "--bind-interfaces",
            "--user=root", "--local=/esg.test/", "--local-ttl=60", "--log-queries",
            "--log-facility=" + cls.log, "--pid-file=" + os.path.join(cls.dir, "pid"),
            "--host-record=pbx1.esg.test,127.0.0.5", "--host-record=pbx2.esg.test,127.0.0.6",
            "--host-record=plain.esg.test,127.0.0.9",
            "--srv-host=_sip._udp.esg.test,pbx1.esg.test,5070,10,60",
            "--srv-host=_sip._udp.esg.test,pbx2.esg.test,5072,20,10",
            "--srv-host=_sip._tcp.esg.test,pbx1.esg.test,5071,10,10",
            "--naptr-record=esg.test,20,50,s,SIP+D2U,,_sip._udp.esg.test",
            "--naptr-record=esg.test,10,50,s,SIP+D2T,,_sip._tcp.esg.test",
            "--srv-host=_sip._udp.srvonly.esg.test,pbx2.esg.test,5080,0,0",
        ], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 5
        while time.time() < deadline:  # wait until it answers
            if cls.resolve_raw("sip:plain.esg.test")[0] == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("dnsmasq did not start")

    @classmethod
    def tearDownClass(cls):
        cls.dnsmasq.terminate()
        cls.dnsmasq.wait(timeout=5)
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def resolve_raw(cls, *uris):
        r = subprocess.run([ESG, "resolve", "--dns", "127.0.0.1:%d" % cls.port, *uris],
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
        with open(self.log) as f:
            before = f.read().count("query[NAPTR] esg.test ")
        code, out = self.resolve_raw("sip:esg.test", "sip:esg.test", "sip:esg.test")
        self.assertEqual(code, 0)
        self.assertEqual(out[0]["targets"], out[2]["targets"])
        time.sleep(0.2)
        with open(self.log) as f:
            after = f.read().count("query[NAPTR] esg.test ")
        self.assertEqual(after - before, 1)  # three lookups, one query


if __name__ == "__main__":
    unittest.main()
