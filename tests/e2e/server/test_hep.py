"""HEP v3 export (issue 10): with `hep.address` set, every packet esg receives or sends also
goes to the collector (here a UDP socket of the test, decoded chunk by chunk as Homer's
heplify-server would): both ends' addresses and ports, the time, SIP as the protocol, the
capture agent id and password, the packet itself and its Call-ID."""

import os
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from esg_fixture import EsgProcess, KeepOnFailure, options, read_answer, stop_all  # noqa: E402


def decode_hep(data):
    """{chunk type: raw value} of one HEP v3 packet, checking its framing."""
    assert data[:4] == b"HEP3", data[:4]
    total, = struct.unpack("!H", data[4:6])
    assert total == len(data), (total, len(data))
    chunks, at = {}, 6
    while at < total:
        vendor, kind, length = struct.unpack("!HHH", data[at:at + 6])
        assert vendor == 0 and length >= 6, (vendor, length)
        chunks[kind] = data[at + 6:at + length]
        at += length
    assert at == total
    return chunks


class Hep(KeepOnFailure):
    @classmethod
    def setUpClass(cls):
        cls.collector = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        cls.collector.bind(("127.0.0.1", 0))
        cls.collector.settimeout(3)
        cls.esg = EsgProcess({"hep": {"address": "127.0.0.1:%d" % cls.collector.getsockname()[1],
                                      "id": 4242, "password": "homer-secret"}})

    @classmethod
    def tearDownClass(cls):
        stop_all(cls.failed, cls.esg)
        cls.collector.close()

    def test_each_packet_in_and_out_reaches_the_collector(self):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.3", 0))
        probe.settimeout(2)
        self.addCleanup(probe.close)
        call_id = "hep-%f" % time.time()
        probe.sendto(options(call_id), ("127.0.0.1", self.esg.ports["udp"]))
        self.assertTrue(read_answer(probe).startswith(b"SIP/2.0 200"))
        seen = {}
        deadline = time.time() + 3
        while len(seen) < 2 and time.time() < deadline:
            c = decode_hep(self.collector.recv(65535))
            if c.get(0x0011) == call_id.encode():
                seen["in" if c[0x000f].startswith(b"OPTIONS") else "out"] = c
        self.assertEqual(sorted(seen), ["in", "out"])
        esg_port = self.esg.ports["udp"]
        probe_port = probe.getsockname()[1]
        for way, (src, sport, dst, dport) in (
                ("in", ("127.0.0.3", probe_port, "127.0.0.1", esg_port)),
                ("out", ("127.0.0.1", esg_port, "127.0.0.3", probe_port))):
            c = seen[way]
            self.assertEqual(c[0x0001], b"\x02", "IPv4")
            self.assertEqual(c[0x0002], b"\x11", "UDP")
            self.assertEqual(socket.inet_ntoa(c[0x0003]), src, way)
            self.assertEqual(socket.inet_ntoa(c[0x0004]), dst, way)
            self.assertEqual(struct.unpack("!H", c[0x0007])[0], sport, way)
            self.assertEqual(struct.unpack("!H", c[0x0008])[0], dport, way)
            self.assertLess(abs(struct.unpack("!I", c[0x0009])[0] - time.time()), 60)
            self.assertLess(struct.unpack("!I", c[0x000a])[0], 1000000)
            self.assertEqual(c[0x000b], b"\x01", "SIP")
            self.assertEqual(struct.unpack("!I", c[0x000c])[0], 4242)
            self.assertEqual(c[0x000e], b"homer-secret")
        self.assertIn(b"SIP/2.0 200", seen["out"][0x000f])


if __name__ == "__main__":
    unittest.main()
