"""The Telegram user's network changes mid-call (issue 22), as when a phone leaves Wi-Fi for
LTE: a new network comes up beside tgpeer's (TgNet.second_network(), TEST-NET-2 on a new veth
pair) and everything tgpeer (the real tgcalls) sends from its old one, 192.0.2.0/24, is dropped
(iptables on its group and the source network). WebRTC's network monitor sees the new interface,
gathers candidates on it, signals them through Telegram and checks pairs from them. esg must take
the candidates that arrive mid-call, answer checks from an address it has not seen before and
move the call to the new pair: the call goes on, the PBX leg never gets a BYE, and the audio comes
back both ways from a remote candidate on the new network, within the 20 s rule.

(Dropping only tgpeer's current ports instead, with no new network, is no network change for
WebRTC: it keeps its sockets and does not gather again before esg's 20 s rule ends the call.)"""

import os
import re
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
import test_media_engine as engine  # noqa: E402
from test_media_engine import setUpModule, tearDownModule  # noqa: E402,F401
from tgnet import NET as NET_A  # noqa: E402

GID = 4261


class PeerMoves(engine.EngineCase):
    versions = ["9.0.0"]

    def test_the_call_follows_the_peer_to_a_new_network(self):
        call_id, port, dest, invite = self.from_telegram(library_versions=["9.0.0"], gid=GID)
        self.wait_peer(call_id)
        tone = engine.ToneSender(port, dest)
        self.addCleanup(tone.stop)
        time.sleep(3)
        self.assert_tones(call_id, port)
        before = self.telegram_info()
        self.assertEqual(before["state"], "connected", before)
        old = before["remote_candidate"]
        new_a, _ = engine.NET.second_network()
        rule = ["OUTPUT", "-s", NET_A, "-m", "owner", "--gid-owner", str(GID), "-j", "DROP"]
        engine.NET._add(rule)
        self.addCleanup(engine.NET._delete, rule)
        moved_at = time.time()
        # The old path goes (esg may show `reconnecting` for a moment), and the new network's
        # candidates bring it back.
        back = self.info_until(lambda i: i.get("state") == "connected" and
                               new_a in (i.get("remote_candidate") or ""), 25)
        took = time.time() - moved_at
        self.assertEqual(back.get("state"), "connected", back)
        self.assertNotEqual(back["remote_candidate"], old, back)
        m = re.search(r" (\S+) (\d+) typ ", back["remote_candidate"])
        self.assertTrue(m, back)
        self.assertEqual(m.group(1), new_a, back)
        mark = len(port.packets)
        time.sleep(4)
        self.assert_tones(call_id, port, what="after the move (%.1f s)" % took, since=mark)
        self.assertEqual(self.sim.ctl("call.state", call_id=call_id)["state"], "Ready")
        self.assertEqual(self.pbx_byes(invite), [])
        self.assertGreater(engine.NET.dropped(GID), 0)  # tgpeer did send from its old sockets
        after = self.telegram_info()
        self.assertLessEqual(after["reconnection_count"], 1, after)
        sys.stderr.write("moved in %.1f s: %s -> %s, reconnections %s\n" % (
            took, old, back["remote_candidate"], after.get("reconnections")))
        self.hang_up_from_pbx(call_id, invite)


if __name__ == "__main__":
    unittest.main()
