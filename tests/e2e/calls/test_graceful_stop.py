"""SIGTERM stops esg gracefully: no new calls (503 with Retry-After), calls in progress may end
by themselves within instance.stop_timeout, and esg ends the rest with BYE on both legs and a
Reason; it exits 0 either way."""

import os
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


class GracefulStop(KeepOnFailure):
    def start(self, stop_timeout):
        esg = EsgProcess({"instance": {"workers": 2, "stop_timeout": stop_timeout},
                          "media": {"ports": [24800, 24899]}})
        self.addCleanup(lambda: esg.cleanup(keep=self.failed))
        self.addCleanup(esg.stop)
        api = Api(esg.ports["http"])
        pbx = SippPeer(os.path.join(CALLS, "uas_answer.xml"), "127.0.0.5")
        self.addCleanup(lambda: pbx.cleanup(keep=self.failed))
        self.addCleanup(pbx.stop)
        api.inbound_route(pbx.port)
        rtp = RtpPort("127.0.0.2")
        self.addCleanup(rtp.close)
        call = UdpCall(esg.ports["udp"], "127.0.0.2", DID, rtp.port)
        self.addCleanup(call.close)
        self.assertEqual(call.status, 200, call.responses)
        return esg, pbx, call

    def test_new_calls_are_refused_and_a_call_that_ends_lets_esg_exit_early(self):
        esg, pbx, call = self.start(stop_timeout=20)
        started = time.time()
        esg.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        self.assertTrue(esg.alive(), "esg waits for the call in progress")
        rtp = RtpPort("127.0.0.2")
        self.addCleanup(rtp.close)
        late = UdpCall(esg.ports["udp"], "127.0.0.2", DID, rtp.port)
        self.addCleanup(late.close)
        self.assertEqual(late.status, 503, late.responses)
        self.assertTrue(header(late.final, "Retry-After"))
        self.assertIn("shutting down", header(late.final, "Reason"))
        self.assertEqual(call.bye(), 200)  # the call in progress still works, and ends
        self.assertEqual(esg.proc.wait(timeout=10), 0)
        self.assertLess(time.time() - started, 10, "esg did not wait the whole stop_timeout")
        self.assertEqual(pbx.wait(), 0, pbx.output())

    def test_calls_still_up_after_the_timeout_end_with_bye_on_both_legs(self):
        esg, pbx, call = self.start(stop_timeout=1)
        esg.proc.send_signal(signal.SIGTERM)
        bye = call.wait_bye(timeout=10)
        self.assertIn("esg is shutting down", header(bye, "Reason"))
        self.assertEqual(esg.proc.wait(timeout=10), 0)
        self.assertEqual(pbx.wait(), 0, pbx.output())  # it got its BYE and answered it
        self.assertIn("esg is shutting down", header(pbx.received("BYE")[0], "Reason"))


if __name__ == "__main__":
    unittest.main()
