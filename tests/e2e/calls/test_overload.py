"""Overload control (issue 24): a worker whose loop keeps running late refuses a share of the
new calls at once, with 503, Retry-After and a Reason naming the share, keeps the calls it has,
and takes new calls again once it has caught up.

The worker is starved the way a saturated machine starves it, but on a schedule the test
controls: esg is stopped (SIGSTOP) for 300 ms and let run for 20 ms, again and again, so that
every one of its 100 ms load probes fires about 200 ms late, past instance.overload_lag (100 ms
here). Offering more calls than the CPU can take would starve it too, but how many that is
depends on the machine the suite runs on."""

import os
import re
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from esg_fixture import EsgProcess, KeepOnFailure  # noqa: E402
from media_case import CALLS, DID  # noqa: E402
from rest_api import Api  # noqa: E402
from sip_call import RtpPort, UdpCall  # noqa: E402
from sip_uac import header  # noqa: E402
from sipp_fixture import SippPeer  # noqa: E402

STOPPED_S, RUNNING_S, CYCLES = 0.3, 0.02, 12


class Overload(KeepOnFailure):
    def setUp(self):
        self.esg = EsgProcess({"instance": {"workers": 1, "overload_lag": 100},
                               "media": {"ports": [24900, 24999]}})
        self.addCleanup(lambda: self.esg.cleanup(keep=self.failed))
        self.addCleanup(self.esg.stop)
        # Never left stopped, whatever fails.
        self.addCleanup(lambda: self.esg.alive() and os.kill(self.esg.proc.pid, signal.SIGCONT))
        self.api = Api(self.esg.ports["http"])
        # The PBX answers every call esg lets through and waits for its BYE.
        self.pbx = SippPeer(os.path.join(CALLS, "uas_answer.xml"), "127.0.0.5", calls=20)
        self.addCleanup(lambda: self.pbx.cleanup(keep=self.failed))
        self.addCleanup(self.pbx.stop)
        self.api.inbound_route(self.pbx.port)

    def call(self):
        rtp = RtpPort("127.0.0.2")
        self.addCleanup(rtp.close)
        c = UdpCall(self.esg.ports["udp"], "127.0.0.2", DID, rtp.port)
        self.addCleanup(c.close)
        return c

    def metric(self, sample):
        status, _, text = self.api.text("/metrics")
        self.assertEqual(status, 200, text)
        m = re.search("^" + re.escape(sample) + r" (\d+)", text, re.M)
        self.assertTrue(m, text)
        return int(m.group(1))

    def refusing(self):
        return self.metric('esg_worker_refusing_percent{worker="0"}')

    def starve(self):
        pid = self.esg.proc.pid
        for _ in range(CYCLES):
            os.kill(pid, signal.SIGSTOP)
            time.sleep(STOPPED_S)
            os.kill(pid, signal.SIGCONT)
            time.sleep(RUNNING_S)

    def test_a_late_worker_refuses_new_calls_at_once_keeps_its_calls_and_recovers(self):
        up = self.call()
        self.assertEqual(up.status, 200, up.responses)
        self.assertEqual(self.refusing(), 0)

        self.starve()
        self.assertGreaterEqual(self.refusing(), 50, "refusing after a run of late probes")
        # Right after: most new calls get their 503 at once, none waits for a timeout.
        calls, started = [], time.time()
        for _ in range(5):
            calls.append(self.call())
        self.assertLess(time.time() - started, 5, [c.responses for c in calls])
        refused = [c for c in calls if c.status == 503]
        self.assertGreaterEqual(len(refused), 3, [c.responses for c in calls])
        for c in refused:
            self.assertEqual(len(c.responses), 1, c.responses)  # no 100 Trying: no state kept
            self.assertEqual(header(c.final, "Retry-After"), "5")
            self.assertRegex(header(c.final, "Reason"),
                             r"Overloaded: worker 0 runs \d+ ms late, queue \d+ % full, "
                             r"refusing [1-9]\d* % of new calls")
        # The calls it took, and the one up before, work and end.
        for c in [up] + [c for c in calls if c.status != 503]:
            self.assertEqual(c.status, 200, c.responses)
            self.assertEqual(c.bye(), 200)

        # On time again, the share falls (5 % a probe) and new calls go through.
        deadline = time.time() + 20
        while self.refusing() and time.time() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.refusing(), 0)
        after = self.call()
        self.assertEqual(after.status, 200, after.responses)
        self.assertEqual(after.bye(), 200)
        self.assertEqual(self.metric("esg_overload_refused_total"), len(refused))


if __name__ == "__main__":
    unittest.main()
