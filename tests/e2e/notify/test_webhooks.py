"""CRM events (issue 23): esg POSTs call.ringing, call.answered and call.ended to a webhook, a
small HTTP receiver on loopback here. A call from provider prov-a (127.0.0.2) to a SIPp PBX
(127.0.0.5) produces the three events, signed with HMAC-SHA256 of the body; a receiver that
answers 503, or does not listen at all, gets them later, in order; events queued while the
receiver was down survive a restart of esg. Nothing leaves loopback."""

import json
import os
import sys
import tempfile
import shutil
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from esg_fixture import EsgProcess, KeepOnFailure  # noqa: E402
from media_case import CALLS, DID  # noqa: E402
from rest_api import Api  # noqa: E402
from sip_call import RtpPort, UdpCall  # noqa: E402
from sipp_fixture import SippPeer  # noqa: E402
from webhook_receiver import Receiver, free_tcp_port, signed_event  # noqa: E402

SECRET = "s3cret-of-the-crm"
EVENTS = ["call.ringing", "call.answered", "call.ended"]


class Webhooks(KeepOnFailure):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="esg-webhooks-")
        self.addCleanup(lambda: shutil.rmtree(self.dir, ignore_errors=True))
        self.hook_port = free_tcp_port()

    def esg(self, folder=None):
        hook = {"url": "http://127.0.0.1:%d/crm/events" % self.hook_port, "secret": SECRET,
                "retry_min_ms": 200, "retry_max_ms": 800, "timeout_ms": 1000}
        esg = EsgProcess({"instance": {"workers": 2}, "media": {"ports": [24900, 24999]},
                          "webhooks": [hook],
                          "webhook_queue": {"dir": os.path.join(self.dir, "queue")}},
                         folder=folder)
        self.addCleanup(lambda: esg.cleanup(keep=self.failed))
        self.addCleanup(esg.stop)
        return esg, Api(esg.ports["http"])

    def receiver(self, fail=0):
        r = Receiver(self.hook_port, fail)
        self.addCleanup(r.stop)
        return r

    def call(self, esg, api):
        pbx = SippPeer(os.path.join(CALLS, "uas_answer.xml"), "127.0.0.5")
        self.addCleanup(lambda: pbx.cleanup(keep=self.failed))
        self.addCleanup(pbx.stop)
        api.inbound_route(pbx.port)
        rtp = RtpPort("127.0.0.2")
        self.addCleanup(rtp.close)
        call = UdpCall(esg.ports["udp"], "127.0.0.2", DID, rtp.port)
        self.addCleanup(call.close)
        self.assertEqual(call.status, 200, call.responses)
        time.sleep(0.3)
        self.assertEqual(call.bye(), 200)
        self.assertEqual(pbx.wait(), 0, pbx.output())
        return call

    def check_signed(self, headers, body):
        return signed_event(self, SECRET, headers, body)

    def assert_metrics(self, api, *lines):
        """The receiver holds an event once its request arrived, before esg has read the 2xx
        that answers it: the counters follow a moment later."""
        deadline = time.time() + 5
        while True:
            _, _, text = api.text("/metrics")
            if all(line in text.splitlines() for line in lines) or time.time() > deadline:
                break
            time.sleep(0.05)
        for line in lines:
            self.assertIn(line, text.splitlines())

    def test_a_call_gives_ringing_answered_ended_signed_with_its_fields(self):
        receiver = self.receiver()
        esg, api = self.esg()
        call = self.call(esg, api)
        events = [self.check_signed(h, b) for h, b in receiver.wait(3)]
        self.assertEqual([e["event"] for e in events], EVENTS)
        self.assertEqual(len({e["id"] for e in events}), 3)
        for e in events:
            self.assertRegex(e["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            c = e["call"]
            self.assertEqual(c["call_id"], call.call_id)
            self.assertEqual(c["direction"], "in")
            self.assertEqual(c["provider"], "prov-a")
            self.assertIsNone(c["line"])
            self.assertEqual(c["pbx"], "pbx1")
            self.assertEqual(c["caller"], {"received": "caller", "sent": "caller"})
            self.assertEqual(c["called"]["received"], DID)
            self.assertIsNone(c["telegram"])
        ended = events[2]["call"]
        self.assertEqual(ended["result"], "answered")
        self.assertEqual(ended["status"], 200)
        self.assertEqual(ended["hangup_by"], "caller")
        self.assertGreater(ended["duration"], 0.2)
        self.assertGreaterEqual(ended["ring_duration"], 0)
        self.assertIsNotNone(ended["answered"])
        self.assertIsNotNone(ended["ended"])
        self.assertIsNone(events[0]["call"]["answered"])
        # The metrics count them.
        self.assert_metrics(api, "esg_webhook_delivered_total 3", "esg_webhook_queue_depth 0")

    def test_a_receiver_answering_503_gets_the_events_later_in_order(self):
        receiver = self.receiver(fail=3)
        esg, api = self.esg()
        self.call(esg, api)
        events = [self.check_signed(h, b) for h, b in receiver.wait(3)]
        self.assertEqual([e["event"] for e in events], EVENTS)
        # The refused attempts carried the first event each time, with the same id (dedupe).
        refused = [json.loads(b)["id"] for h, b, s in receiver.posts if s == 503]
        self.assertEqual(refused, [events[0]["id"]] * 3)
        self.assert_metrics(api, "esg_webhook_failed_attempts_total 3",
                            "esg_webhook_delivered_total 3")

    def test_events_queued_while_the_receiver_is_down_survive_a_restart(self):
        esg, api = self.esg()  # nothing listens on the webhook's port
        self.call(esg, api)
        deadline = time.time() + 10
        while time.time() < deadline:
            data = api.ok("GET", "/api/monitor/v1/webhooks")["data"]
            if data["queue_depth"] == 3 and data["failed_attempts"] >= 1:
                break
            time.sleep(0.1)
        self.assertEqual(data["queue_depth"], 3, data)
        hook = data["webhooks"][0]
        self.assertEqual(hook["queued"], 3, data)
        self.assertIn("cannot connect", hook["last_error"], data)
        self.assertIsNone(hook["last_delivered_at"], data)
        self.assertEqual(esg.stop(), 0)
        _, api2 = self.esg(folder=esg.dir)
        receiver = self.receiver()
        events = [self.check_signed(h, b) for h, b in receiver.wait(3)]
        self.assertEqual([e["event"] for e in events], EVENTS)
        self.assertEqual(len({e["call"]["call_id"] for e in events}), 1)
        self.assert_metrics(api2, "esg_webhook_queue_depth 0")


class WebhooksRest(KeepOnFailure):
    def test_create_list_delete_and_bad_input(self):
        esg = EsgProcess()
        self.addCleanup(lambda: esg.cleanup(keep=self.failed))
        self.addCleanup(esg.stop)
        api = Api(esg.ports["http"])
        base = "/rest/v1/master/webhooks"
        status, body = api.call("POST", base, {"url": "ftp://127.0.0.1/x"})
        self.assertEqual(status, 400, body)
        self.assertEqual(body["field"], "url")
        self.assertIn("http://", body["error"])
        status, body = api.call("POST", base, {"url": "http://127.0.0.1:9/x",
                                               "events": ["call.started"]})
        self.assertEqual((status, body["field"]), (400, "events[0]"), body)
        status, body = api.call("POST", base, {"events": ["call.ended"]})
        self.assertEqual((status, body["field"]), (400, "url"), body)
        made = api.ok("POST", base, {"url": "http://127.0.0.1:9/x", "events": ["call.ended"],
                                     "secret": "k"})
        self.assertIsInstance(made["id"], int)
        self.assertNotIn("secret", made)
        self.assertTrue(made["secret_set"])
        items = api.ok("GET", base)["items"]
        self.assertEqual([w["url"] for w in items], ["http://127.0.0.1:9/x"])
        self.assertEqual(items[0]["events"], ["call.ended"])
        # A PUT without the secret keeps it (write-only).
        put = api.ok("PUT", "%s/%d" % (base, made["id"]), {"url": "http://127.0.0.1:9/y"})
        self.assertTrue(put["secret_set"])
        self.assertEqual(api.call("DELETE", "%s/%d" % (base, made["id"]))[0], 204)
        self.assertEqual(api.call("GET", "%s/%d" % (base, made["id"]))[0], 404)
        self.assertEqual(api.ok("GET", base)["items"], [])


if __name__ == "__main__":
    unittest.main()
