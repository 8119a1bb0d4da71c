"""Own worker servers (issue 23): a Telegram line's `serveridxs` name the instances that may
run it, as for a provider account. Two instances on one PostgreSQL store and one session
folder: a line with serveridxs [2] runs on instance 2 although instance 1 has the better roleid
(instance 1 keeps it on standby and names instance 2 as its runner); a change to [1] moves it,
in order (closed there, then opened here), ready without a new login. A Telegram user's call
to the line is anchored on the instance that runs it, before and after the move: the INVITE
reaches the PBX from that instance's SIP port, its SDP offers that instance's relay (media
ports of its own range), and only that instance's calls API has the call."""

import re

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from esg_fixture import EsgProcess, KeepOnFailure  # noqa: E402
from pbx_uas import PbxUas  # noqa: E402
from postgres_fixture import Postgres  # noqa: E402
from rest_api import Api  # noqa: E402
from tgsim_fixture import LIB, TgSim  # noqa: E402


class LineServeridxs(KeepOnFailure):
    def test_a_line_runs_on_the_instances_its_serveridxs_name(self):
        pg = Postgres().start()
        sim = TgSim()
        sessions = os.path.join(pg.dir, "telegram")
        # The PBX rings and never answers: the call stays up to be looked at.
        pbx = PbxUas("127.0.0.5", mode="ring")
        media = {1: (26000, 26199), 2: (26200, 26399)}
        esg = {}
        codes = []
        try:
            for i in (1, 2):
                esg[i] = EsgProcess({"store": {"postgres": pg.url},
                                     "instance": {"srvidx": i, "roleid": i, "node": "esg%d" % i},
                                     "telegram": {"tdjson": LIB, "sessions": sessions},
                                     "media": {"ports": list(media[i])}},
                                    env=sim.env())
            api = {i: Api(esg[i].ports["http"]) for i in esg}
            account = sim.user(phone="+79990000055", code="13579")
            caller = sim.user(first_name="Caller")
            api[1].ok("POST", "/rest/v1/uc/pbx",
                      {"code": "pbx1", "mode": "ip", "address": "127.0.0.5", "port": pbx.port})
            line = api[1].ok("POST", "/rest/v1/telegram/lines",
                             {"code": "tg1", "api_id": 12345, "phone": "+79990000055",
                              "api_hash": "0123456789abcdef0123456789abcdef", "pbx": "pbx1",
                              "number": "100", "serveridxs": [2]}, want=(201,))
            self.assertEqual(line["serveridxs"], [2])
            status, body = api[1].call("POST", "/rest/v1/telegram/lines",
                                       {"code": "tg2", "api_id": 12345, "pbx": "pbx1",
                                        "api_hash": "0123456789abcdef0123456789abcdef",
                                        "serveridxs": ["two"]})
            self.assertEqual((status, body.get("field")), (400, "serveridxs[0]"), body)

            def seen(i):
                lines = api[i].ok("GET", "/api/monitor/v1/telegram/lines")["data"]["lines"]
                # The other instance learns of a new line within a heartbeat.
                got = next((l for l in lines if l["id"] == line["id"]), None)
                return (got["state"], got["srvidx"]) if got else None

            def wait_seen(i, wanted, seconds=10):
                deadline = time.time() + seconds
                while seen(i) != wanted and time.time() < deadline:
                    time.sleep(0.05)
                self.assertEqual(seen(i), wanted, "instance %d" % i)

            # Instance 2 runs it (and asks for the login); instance 1 says who runs it.
            wait_seen(2, ("wait_phone", 2))
            wait_seen(1, ("standby", 2))
            api[2].ok("POST", "/rest/v1/telegram/lines/%d/login" % line["id"], {})
            answer = api[2].ok("POST", "/rest/v1/telegram/lines/%d/login" % line["id"],
                               {"code": "13579"})
            self.assertEqual(answer["state"], "ready")

            def call_is_anchored_on(i):
                other = 3 - i
                before = len(pbx.invites)
                tg_call = sim.ctl("call.incoming", **{"from": caller, "to": account})["call_id"]
                invite = pbx.wait("invites", before + 1)
                cid = PbxUas.header(invite, "Call-ID")
                src = pbx.calls[cid]["src"]
                self.assertEqual(src[1], esg[i].ports["udp"], "the INVITE's source: %s" % (src,))
                port = int(re.search(r"^m=audio (\d+) ", invite, re.M).group(1))
                self.assertTrue(media[i][0] <= port <= media[i][1],
                                "the SDP's relay port %d is not instance %d's" % (port, i))

                def calls(j):
                    return [c for c in api[j].ok("GET", "/api/monitor/v1/calls")["data"]["calls"]
                            if cid in (c.get("a", {}).get("call_id"),
                                       c.get("b", {}).get("call_id"))]
                mine = calls(i)
                self.assertEqual(len(mine), 1, "instance %d carries the call" % i)
                ports = [s["b"]["local_port"] for s in mine[0]["media"]["streams"]]
                self.assertEqual(ports, [port], mine[0]["media"])
                self.assertEqual(calls(other), [], "instance %d has no part in it" % other)
                # The caller gives up: the PBX's leg is cancelled from the same instance.
                cancels = len(pbx.cancels)
                sim.ctl("call.hangup", call_id=tg_call)
                cancel = pbx.wait("cancels", cancels + 1)
                self.assertEqual(PbxUas.header(cancel, "Call-ID"), cid)
                deadline = time.time() + 5
                while calls(i) and time.time() < deadline:
                    time.sleep(0.05)
                self.assertEqual(calls(i), [])

            call_is_anchored_on(2)

            # Moved by its serveridxs: the session goes with it, no new login.
            api[2].ok("PATCH", "/rest/v1/telegram/lines/%d" % line["id"], {"serveridxs": [1]})
            wait_seen(1, ("ready", 1))
            wait_seen(2, ("standby", 1))
            out = open(os.path.join(esg[2].dir, "esg.out")).read()
            self.assertIn("tg:%d: handing over to instance 1" % line["id"], out)
            call_is_anchored_on(1)
        finally:
            codes = [e.stop() for e in esg.values()]
            for e in esg.values():
                e.cleanup(keep=self.failed or any(codes))
            sim.stop()
            sim.cleanup(keep=self.failed)
            pg.stop()
            pg.cleanup(keep=self.failed)
            pbx.close()
        self.assertEqual(codes, [0, 0])


if __name__ == "__main__":
    unittest.main()
