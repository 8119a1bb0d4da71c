"""A phone behind a masquerading NAT (network namespaces made by the test, lib/netns.py) calls
through esg to a SIPp PBX that echoes RTP. The phone signals its private address; the NAT
rewrites its source port. With symmetric RTP (latching) esg sends the audio back to where it
comes from and the phone hears its echo; with latching off esg sends it to the signaled private
address, the phone hears nothing, and the call's media statistics flag one-way audio."""

import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from media_case import DID, MediaCase  # noqa: E402
from netns import HOST_IP, NAT_PORTS, NAT_PUBLIC, PHONE_IP, NatNetwork  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
NETWORK = None


def setUpModule():
    global NETWORK
    why = NatNetwork.unavailable()
    if why:
        raise unittest.SkipTest(why)
    NETWORK = NatNetwork().__enter__()


def tearDownModule():
    if NETWORK:
        NETWORK.close()


class NatCase(MediaCase):
    listen = (("udp", "0.0.0.0"),)  # the phone reaches esg at HOST_IP, the PBX at 127.0.0.1
    media = {"ports": [23000, 23499], "timeout": 30}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The phone's account: it names its private address, its packets come from the NAT's.
        cls.api.ok("POST", "/rest/v1/uc/providers",
                   {"code": "prov-nat", "domain": PHONE_IP, "extaddrs": [NAT_PUBLIC],
                    "reg": False, "username": ""})

    def phone_call(self):
        """The phone's call; returns (first report, the process)."""
        proc = NETWORK.in_phone(
            [sys.executable, os.path.join(HERE, "nat_phone.py"), HOST_IP,
             str(self.esg.ports["udp"]), PHONE_IP, DID, "50"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (proc.kill(), proc.wait(), proc.stdin.close(), proc.stdout.close()))
        report = json.loads(proc.stdout.readline() or "{}")
        self.assertEqual(report.get("status"), 200, report)
        return report, proc

    def hang_up(self, proc):
        proc.stdin.write("bye\n")
        proc.stdin.flush()
        self.assertEqual(json.loads(proc.stdout.readline())["bye"], 200)
        proc.wait(timeout=10)

    def leg_a(self, report):
        """The call's media statistics once they count every packet the phone sent (they are
        published once a second)."""
        deadline = time.time() + 3
        while True:
            status, body = self.api.call("GET", "/api/monitor/v1/calls/" + report["call_id"])
            self.assertEqual(status, 200, body)
            media = body["data"]["media"]
            if (media and media["streams"][0]["a"]["packets_in"] >= report["sent"]) or \
                    time.time() > deadline:
                return media
            time.sleep(0.1)


class Latching(NatCase):
    def test_symmetric_rtp_gives_two_way_audio_through_the_nat(self):
        pbx, _ = self.echoing_pbx()
        report, proc = self.phone_call()
        self.assertEqual(report["media_dest"][0], HOST_IP)  # esg's relay, as the phone sees it
        self.assertEqual(report["received"], report["sent"], report)  # every packet came back
        media = self.leg_a(report)
        a = media["streams"][0]["a"]
        self.assertEqual(a["signaled"], "%s:%d" % (PHONE_IP, report["rtp_port"]))
        latched_ip, latched_port = a["latched"].rsplit(":", 1)
        self.assertEqual(latched_ip, NAT_PUBLIC)
        self.assertTrue(NAT_PORTS[0] <= int(latched_port) <= NAT_PORTS[1], a["latched"])
        self.assertFalse(media["one_way"], media)
        self.hang_up(proc)
        self.assertEqual(pbx.wait(), 0, pbx.output())


class NoLatching(NatCase):
    media = dict(NatCase.media, latching=False)

    def test_without_latching_the_phone_hears_nothing_and_the_call_is_flagged_one_way(self):
        pbx, _ = self.echoing_pbx()
        report, proc = self.phone_call()
        self.assertEqual(report["received"], 0, report)  # sent to the private address: lost
        media = self.leg_a(report)
        a = media["streams"][0]["a"]
        self.assertEqual(a["packets_in"], report["sent"])
        self.assertGreater(a["mismatch"], 0, a)
        self.assertTrue(media["one_way"], media)
        self.hang_up(proc)
        self.assertEqual(pbx.wait(), 0, pbx.output())


if __name__ == "__main__":
    unittest.main()
