"""The fixture of the media tests: esg with its relay on a port range of the test's, provider
prov-a calling from 127.0.0.2, PBX connection pbx1 at 127.0.0.5 (a SIPp callee that echoes RTP)
and a route from one to the other; helpers for a call with an RTP port of its own and for the
call's media statistics."""

import os
import time

from esg_fixture import EsgProcess, KeepOnFailure, stop_all
from rest_api import Api
from sipp_fixture import SippPeer, free_port
from sip_call import RtpPort, UdpCall

CALLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "calls")
DID = "74951234567"


class MediaCase(KeepOnFailure):
    media = {"ports": [21000, 21999], "timeout": 30}  # the config's media section
    instance = {}  # more of the config's instance section
    listen = (("udp", "127.0.0.1"), ("tcp", "127.0.0.1"))

    @classmethod
    def setUpClass(cls):
        cls.esg = EsgProcess({"instance": dict({"workers": 2, "domain": "pbx.esg.test"},
                                               **cls.instance),
                              "media": cls.media}, listen=cls.listen)
        cls.api = Api(cls.esg.ports["http"])
        cls.peers = []
        cls.pbx = cls.api.inbound_route(5060)

    @classmethod
    def tearDownClass(cls):
        stop_all(cls.failed, cls.esg, *cls.peers)

    def echoing_pbx(self, scenario=os.path.join(CALLS, "uas_answer.xml")):
        """A SIPp callee at 127.0.0.5 echoing RTP, as pbx1."""
        # SIPp binds the media port and the two after it (RTCP, video): a test running in
        # parallel may take one of them after free_port looked; then another media port.
        for attempt in range(3):
            media_port = free_port("127.0.0.5")
            try:
                pbx = SippPeer(scenario, "127.0.0.5",
                               extra=["-mi", "127.0.0.5", "-mp", str(media_port), "-rtp_echo"])
                break
            except RuntimeError as e:
                if "errno = 98" not in str(e) or attempt == 2:
                    raise
        type(self).peers.append(pbx)
        self.api.ok("PATCH", "/rest/v1/uc/pbx/%d" % self.pbx["id"], {"port": pbx.port})
        return pbx, media_port

    def call(self, signaled, caller="127.0.0.2", **kwargs):
        c = UdpCall(self.esg.ports["udp"], caller, DID, signaled.port, **kwargs)
        self.addCleanup(c.close)
        self.assertEqual(c.status, 200, c.responses)
        return c

    def media_of(self, call_id, seconds=3):
        """The call's media statistics from the calls API (published once a second)."""
        deadline = time.time() + seconds
        while True:
            status, body = self.api.call("GET", "/api/monitor/v1/calls/" + call_id)
            self.assertEqual(status, 200, body)
            media = body["data"]["media"]
            if media and media["streams"] and media["streams"][0]["a"]["packets_in"] > 0 or \
                    time.time() > deadline:
                return media
            time.sleep(0.2)

    def port(self, caller_ip="127.0.0.2"):
        p = RtpPort(caller_ip)
        self.addCleanup(p.close)
        return p
