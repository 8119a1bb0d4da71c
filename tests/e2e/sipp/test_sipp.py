"""SIPp (Debian's sip-tester) against esg on loopback, over UDP and TCP, with and without loss."""

import os
import re
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from esg_fixture import EsgTestCase  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port(kind=socket.SOCK_DGRAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sipp(EsgTestCase):
    def sipp(self, scenario, transport, calls, *extra):
        port = self.esg.ports["udp" if transport == "u1" else "tcp"]
        for _ in range(3):  # a free port can be taken by another test before SIPp binds it
            cmd = ["sipp", "127.0.0.1:%d" % port, "-sf", os.path.join(HERE, scenario),
                   "-t", transport, "-i", "127.0.0.1", "-p", str(free_port()), "-m", str(calls),
                   "-r", "100", "-timeout", "60", "-timeout_error", "-nostdin", "-nd", *extra]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                               cwd=self.esg.dir)
            if "Unable to bind main socket" not in r.stdout + r.stderr:
                return r
        return r

    def assertAllCallsSucceeded(self, r, calls):
        self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
        m = re.findall(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", r.stdout)
        if m:  # the final statistics screen, when SIPp prints it
            self.assertEqual(int(m[-1]), calls)

    def test_options_over_udp(self):
        self.assertAllCallsSucceeded(self.sipp("options.xml", "u1", 200), 200)

    def test_options_over_tcp(self):
        self.assertAllCallsSucceeded(self.sipp("options.xml", "t1", 200), 200)

    def test_rejected_invite_over_udp_and_tcp(self):
        self.assertAllCallsSucceeded(self.sipp("invite_rejected.xml", "u1", 100), 100)
        self.assertAllCallsSucceeded(self.sipp("invite_rejected.xml", "t1", 100), 100)

    def test_every_call_completes_with_loss_and_esg_retransmits(self):
        # SIPp drops 10% of what it receives; the transactions on both sides retransmit.
        r = self.sipp("invite_rejected.xml", "u1", 100, "-lost", "10", "-max_retrans", "20",
                      "-recv_timeout", "30000")
        self.assertAllCallsSucceeded(r, 100)
        sends = {}
        for line in self.esg.trn_lines():
            m = re.search(r" Send to udp \S+ \(ok\) SIP/2\.0 404 .*Call-ID: (\S+)", line)
            if m:
                sends[m.group(1)] = sends.get(m.group(1), 0) + 1
        self.assertTrue(any(n > 1 for n in sends.values()),
                        "no 404 was retransmitted by esg (Timer G)")


if __name__ == "__main__":
    unittest.main()
