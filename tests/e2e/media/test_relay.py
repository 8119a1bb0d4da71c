"""The media relay with real peers on loopback: a caller (provider prov-a, 127.0.0.2) with its
own RTP socket, SIPp as the PBX (127.0.0.5) echoing RTP (-rtp_echo). esg rewrites both legs'
descriptions to its own ports from media.ports and carries the audio both ways; symmetric RTP
follows a caller that sends from another port than it signaled (a NAT); without latching the
audio goes to the signaled port and the call is flagged one-way; a call without RTP ends after
media.timeout with BYE on both legs."""

import os
import struct
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from media_case import CALLS, DID, MediaCase  # noqa: E402
from sipp_fixture import SippPeer, free_port  # noqa: E402
from sip_call import UdpCall, alaw_pcm, sdp_media, tone_share  # noqa: E402

PORTS = tuple(MediaCase.media["ports"])


class Relay(MediaCase):
    def test_audio_crosses_both_ways_through_esg_ports(self):
        pbx, pbx_media = self.echoing_pbx()
        rtp = self.port()
        c = self.call(rtp)
        # The caller is told to send to esg, on a port of the range; o= is esg's own.
        addr, port = c.media_dest()
        self.assertEqual(addr, "127.0.0.1")
        self.assertTrue(PORTS[0] <= port <= PORTS[1] and port % 2 == 0, port)
        self.assertRegex(c.answer, r"(?m)^o=esg \d+ 1 IN IP4 127\.0\.0\.1")
        self.assertIn("s=uas", c.answer)  # the rest of the PBX's description crosses
        # The PBX got an offer for another esg port, not the caller's.
        offer = pbx.received("INVITE")[0].split("\r\n\r\n", 1)[1] if "\r\n\r\n" in \
            pbx.received("INVITE")[0] else pbx.received("INVITE")[0].split("\n\n", 1)[1]
        b_addr, b_port = sdp_media(offer)
        self.assertEqual(b_addr, "127.0.0.1")
        self.assertNotEqual(b_port, port)
        self.assertTrue(PORTS[0] <= b_port <= PORTS[1], b_port)
        self.assertNotIn(str(rtp.port), offer)

        rtp.send(("127.0.0.1", port), count=50)
        time.sleep(0.5)
        echoed = [p for p in rtp.packets if p[0] == ("127.0.0.1", port)]
        self.assertGreaterEqual(len(echoed), 45, len(rtp.packets))
        self.assertEqual([p[1] for p in echoed], sorted(p[1] for p in echoed))
        self.assertEqual(echoed[0][3], bytes([0]) * 160)  # the payload is intact
        media = self.media_of(c.call_id)
        s = media["streams"][0]
        self.assertGreaterEqual(s["a"]["packets_in"], 45)
        self.assertGreaterEqual(s["b"]["packets_in"], 45)
        self.assertEqual(s["a"]["latched"], "127.0.0.2:%d" % rtp.port)
        self.assertEqual(s["b"]["latched"], "127.0.0.5:%d" % pbx_media)
        self.assertEqual(s["a"]["lost"], 0)
        self.assertFalse(media["one_way"])
        self.assertEqual(c.bye(), 200)
        self.assertEqual(pbx.wait(), 0, pbx.output())
        # The CDR keeps the statistics.
        deadline = time.time() + 5
        while time.time() < deadline:
            cdrs = [x for x in self.api.ok("GET", "/rest/v1/cdrs?limit=50")["items"]
                    if x["id"] == c.call_id and x["state"] == "ended"]
            if cdrs:
                break
            time.sleep(0.1)
        self.assertGreaterEqual(cdrs[0]["media"]["streams"][0]["b"]["packets_in"], 45)

    def test_symmetric_rtp_answers_where_the_audio_comes_from(self):
        # A NAT: the caller signals one port and its packets come from another.
        pbx, _ = self.echoing_pbx()
        signaled, actual = self.port(), self.port()
        c = self.call(signaled)
        actual.send(c.media_dest(), count=30)
        time.sleep(0.5)
        self.assertGreaterEqual(len(actual.packets), 25)
        self.assertEqual(signaled.packets, [])
        media = self.media_of(c.call_id)
        self.assertEqual(media["streams"][0]["a"]["latched"], "127.0.0.2:%d" % actual.port)
        self.assertFalse(media["one_way"])
        self.assertEqual(c.bye(), 200)
        pbx.wait()

    def test_a_second_source_with_the_same_ssrc_does_not_steal_the_stream(self):
        pbx, _ = self.echoing_pbx()
        rtp, intruder = self.port(), self.port("127.0.0.9")
        c = self.call(rtp)
        dest = c.media_dest()
        rtp.send(dest, count=10)
        intruder.send(dest, count=10)  # same SSRC, another address, while the first talks
        time.sleep(0.5)
        self.assertEqual(intruder.packets, [])
        media = self.media_of(c.call_id)
        self.assertEqual(media["streams"][0]["a"]["foreign"], 10)
        self.assertEqual(c.bye(), 200)
        pbx.wait()


class Transcoding(MediaCase):
    """The PBX speaks Opus only (its connection's codecs), the provider G.711 A-law only: esg
    offers the PBX Opus and transcodes both ways."""

    def test_a_tone_in_g711_crosses_opus_and_comes_back_as_the_same_tone(self):
        self.api.ok("PATCH", "/rest/v1/uc/pbx/%d" % self.pbx["id"], {"codecs": ["opus"]})
        self.addCleanup(self.api.ok, "PATCH", "/rest/v1/uc/pbx/%d" % self.pbx["id"],
                        {"codecs": ["PCMA", "PCMU"]})
        pbx, _ = self.echoing_pbx(os.path.join(HERE, "uas_answer_opus.xml"))
        rtp = self.port()
        c = self.call(rtp)
        offer = pbx.received("INVITE")[0]
        self.assertRegex(offer, r"(?m)^m=audio \d+ RTP/AVP 96 101\s*$")
        self.assertRegex(offer, r"(?m)^a=rtpmap:96 opus/48000/2")
        self.assertNotIn("PCMA", offer)
        # A-law for the caller; no events, since the PBX answered without them.
        self.assertRegex(c.answer, r"(?m)^m=audio \d+ RTP/AVP 8\s*$")
        rtp.send_tone(c.media_dest(), 1000, count=75)
        time.sleep(0.5)
        back = [p for p in rtp.packets if p[0] == c.media_dest()]
        self.assertGreaterEqual(len(back), 60, len(rtp.packets))
        self.assertTrue(all(len(p[3]) == 160 for p in back))  # 20 ms of A-law each
        pcm = alaw_pcm(back)[1600:]  # the codec's warm-up left out
        self.assertGreater(tone_share(pcm, 1000), 0.8)
        self.assertLess(tone_share(pcm, 1300), 0.05)
        media = self.media_of(c.call_id)
        s = media["streams"][0]
        self.assertTrue(s["transcoding"])
        self.assertEqual((s["a"]["codec"], s["b"]["codec"]), ("PCMA", "opus"))
        self.assertEqual(c.bye(), 200)
        pbx.wait()



class Dtmf(MediaCase):
    def test_rfc4733_digits_reach_an_info_pbx_as_sip_info(self):
        self.api.ok("PATCH", "/rest/v1/uc/pbx/%d" % self.pbx["id"], {"dtmf": "info"})
        self.addCleanup(self.api.ok, "PATCH", "/rest/v1/uc/pbx/%d" % self.pbx["id"],
                        {"dtmf": "rfc2833"})
        pbx, _ = self.echoing_pbx(os.path.join(HERE, "uas_answer_info.xml"))
        rtp = self.port()
        c = self.call(rtp)
        # The caller keeps its events although the PBX has none: esg turns them into INFO.
        self.assertRegex(c.answer, r"(?m)^m=audio \d+ RTP/AVP 8 101\s*$")
        rtp.send(c.media_dest(), count=5)
        rtp.send_event(c.media_dest(), 5)
        deadline = time.time() + 5
        while not pbx.received("INFO") and time.time() < deadline:
            time.sleep(0.1)
        infos = pbx.received("INFO")
        self.assertEqual(len(infos), 1, infos)  # once per key press, not per packet
        self.assertIn("application/dtmf-relay", infos[0])
        self.assertIn("Signal=5", infos[0])
        self.assertIn("Duration=80", infos[0])
        # The events did not reach the PBX as RTP: only the 5 audio packets were echoed back.
        time.sleep(0.3)
        self.assertEqual(len([p for p in rtp.packets if p[0] == c.media_dest()]), 5)
        self.assertEqual(c.bye(), 200)
        self.assertEqual(pbx.wait(), 0, pbx.output())

    def test_in_band_tones_reach_an_info_pbx_as_sip_info(self):
        prov = next(p for p in self.api.ok("GET", "/rest/v1/uc/providers")["items"]
                    if p["code"] == "prov-a")
        self.api.ok("PATCH", "/rest/v1/uc/providers/%d" % prov["id"], {"dtmf": "inband"})
        self.addCleanup(self.api.ok, "PATCH", "/rest/v1/uc/providers/%d" % prov["id"],
                        {"dtmf": "rfc2833"})
        self.api.ok("PATCH", "/rest/v1/uc/pbx/%d" % self.pbx["id"], {"dtmf": "info"})
        self.addCleanup(self.api.ok, "PATCH", "/rest/v1/uc/pbx/%d" % self.pbx["id"],
                        {"dtmf": "rfc2833"})
        pbx, _ = self.echoing_pbx(os.path.join(HERE, "uas_answer_info.xml"))
        rtp = self.port()
        c = self.call(rtp)
        rtp.send_tones(c.media_dest(), 852, 1209)  # the key 7
        deadline = time.time() + 5
        while not pbx.received("INFO") and time.time() < deadline:
            time.sleep(0.1)
        infos = pbx.received("INFO")
        self.assertEqual(len(infos), 1, infos)
        self.assertIn("Signal=7", infos[0])
        self.assertEqual(c.bye(), 200)
        self.assertEqual(pbx.wait(), 0, pbx.output())

    def test_sipp_plays_speech_and_a_key_the_pbx_gets_the_audio_and_an_info(self):
        self.api.ok("PATCH", "/rest/v1/uc/pbx/%d" % self.pbx["id"], {"dtmf": "info"})
        self.addCleanup(self.api.ok, "PATCH", "/rest/v1/uc/pbx/%d" % self.pbx["id"],
                        {"dtmf": "rfc2833"})
        pbx, _ = self.echoing_pbx(os.path.join(HERE, "uas_answer_info.xml"))
        media_port = free_port("127.0.0.2")
        uac = SippPeer(os.path.join(HERE, "uac_pcap.xml"), "127.0.0.2",
                       remote="127.0.0.1:%d" % self.esg.ports["udp"],
                       keys={"ruri_user": DID, "to_user": DID, "to_host": "127.0.0.1",
                             "from_user": "+79161234567", "contact_user": "prov"},
                       extra=["-mi", "127.0.0.2", "-mp", str(media_port),
                              "-cid_str", "pcap-%u-%p@%s"])
        type(self).peers.append(uac)
        self.assertEqual(uac.wait(), 0, uac.output())
        self.assertEqual(pbx.wait(), 0, pbx.output())
        infos = pbx.received("INFO")
        self.assertEqual(len(infos), 1, infos)
        self.assertIn("Signal=1", infos[0])
        deadline = time.time() + 5
        while True:
            cdrs = [x for x in self.api.ok("GET", "/rest/v1/cdrs?limit=50")["items"]
                    if x["id"].startswith("pcap-") and x["state"] == "ended"]
            if cdrs or time.time() > deadline:
                break
            time.sleep(0.1)
        s = cdrs[0]["media"]["streams"][0]
        # g711a.pcap holds 236 packets of 30 ms: all of them crossed to the PBX and back, and
        # nothing else (the key's events became the INFO).
        self.assertGreater(s["a"]["packets_in"], 236, s)
        self.assertEqual(s["b"]["packets_out"], 236, s)
        self.assertEqual(s["b"]["packets_in"], 236, s)
        self.assertEqual(s["a"]["packets_out"], 236, s)

    def test_sip_info_from_the_pbx_reaches_the_caller_as_rfc4733_events(self):
        self.api.ok("PATCH", "/rest/v1/uc/pbx/%d" % self.pbx["id"], {"dtmf": "info"})
        self.addCleanup(self.api.ok, "PATCH", "/rest/v1/uc/pbx/%d" % self.pbx["id"],
                        {"dtmf": "rfc2833"})
        pbx, _ = self.echoing_pbx(os.path.join(HERE, "uas_send_info.xml"))
        rtp = self.port()
        c = self.call(rtp)
        self.assertRegex(c.answer, r"(?m)^m=audio \d+ RTP/AVP 8 101\s*$")
        # The PBX's INFO comes 600 ms after the ACK, while the echoed audio flows back.
        rtp.send(c.media_dest(), count=75)
        time.sleep(0.3)
        self.assertEqual(rtp.events(c.media_dest()), "4", "one key press, as events")
        events = [p for p in rtp.packets if p[4] == 101]
        self.assertEqual({p[2] for p in events}, {0x11223344}, "in the echoed stream's SSRC")
        self.assertEqual(struct.unpack("!H", events[-1][3][2:4])[0], 960, "120 ms at 8 kHz")
        calls = self.api.ok("GET", "/api/monitor/v1/calls/" + c.call_id)
        self.assertIn("DTMF 4 from INFO sent to prov-a as events", calls["data"]["decisions"])
        self.assertEqual(c.bye(), 200)
        self.assertEqual(pbx.wait(), 0, pbx.output())  # its INFO was answered 200

    def test_events_reach_an_in_band_pbx_as_tones_and_its_tones_come_back_as_events(self):
        self.api.ok("PATCH", "/rest/v1/uc/pbx/%d" % self.pbx["id"], {"dtmf": "inband"})
        self.addCleanup(self.api.ok, "PATCH", "/rest/v1/uc/pbx/%d" % self.pbx["id"],
                        {"dtmf": "rfc2833"})
        pbx, _ = self.echoing_pbx()
        rtp = self.port()
        c = self.call(rtp)
        self.assertRegex(c.answer, r"(?m)^m=audio \d+ RTP/AVP 8 101\s*$")
        # Audio flows; the caller presses 6 as events. esg plays the tones to the PBX over the
        # caller's audio; the PBX echoes them; esg hears them in what the PBX sends and tells
        # the caller as events: the round trip proves both translations.
        audio = threading.Thread(target=rtp.send, args=(c.media_dest(),), kwargs={"count": 75})
        audio.start()
        time.sleep(0.3)
        rtp.send_event(c.media_dest(), 6)
        audio.join()
        time.sleep(0.3)
        self.assertEqual(rtp.events(c.media_dest()), "6")
        echoed = [p for p in rtp.packets if p[4] == 101]
        self.assertEqual({p[2] for p in echoed}, {0x11223344},
                         "the caller's own events were not passed through")
        self.assertEqual(c.bye(), 200)
        self.assertEqual(pbx.wait(), 0, pbx.output())


class Srtp(MediaCase):
    def test_srtp_towards_a_pbx_that_requires_it_with_plain_rtp_on_the_other_leg(self):
        self.api.ok("PATCH", "/rest/v1/uc/pbx/%d" % self.pbx["id"], {"srtp": "required"})
        self.addCleanup(self.api.ok, "PATCH", "/rest/v1/uc/pbx/%d" % self.pbx["id"],
                        {"srtp": "off"})
        pbx, _ = self.echoing_pbx(os.path.join(HERE, "uas_answer_srtp.xml"))
        rtp = self.port()
        c = self.call(rtp)
        offer = pbx.received("INVITE")[0]
        self.assertRegex(offer, r"(?m)^m=audio \d+ RTP/SAVP 8")
        self.assertRegex(offer, r"(?m)^a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:[A-Za-z0-9+/]{40}\s*$")
        self.assertNotIn("crypto", c.answer)  # the provider's leg stays plain
        self.assertRegex(c.answer, r"(?m)^m=audio \d+ RTP/AVP 8")
        rtp.send(c.media_dest(), count=30)
        time.sleep(0.5)
        back = [p for p in rtp.packets if p[0] == c.media_dest()]
        # Encrypted towards the PBX, echoed, checked and decrypted: the caller gets its audio.
        self.assertGreaterEqual(len(back), 25)
        self.assertTrue(all(len(p[3]) == 160 for p in back))
        self.assertEqual(back[3][3], bytes([21]) * 160)  # packet 3's payload, intact
        s = self.media_of(c.call_id)["streams"][0]
        self.assertEqual(s["b"]["srtp"]["in"], True)
        self.assertEqual(s["b"]["srtp"]["out"], True)
        self.assertEqual(s["b"]["srtp"]["failures"], 0)
        self.assertEqual(s["a"]["srtp"]["out"], False)
        self.assertEqual(c.bye(), 200)
        self.assertEqual(pbx.wait(), 0, pbx.output())

    def test_a_pbx_that_requires_srtp_and_answers_plain_rtp_fails_the_attempt(self):
        self.api.ok("PATCH", "/rest/v1/uc/pbx/%d" % self.pbx["id"], {"srtp": "required"})
        self.addCleanup(self.api.ok, "PATCH", "/rest/v1/uc/pbx/%d" % self.pbx["id"],
                        {"srtp": "off"})
        pbx, _ = self.echoing_pbx()  # answers RTP/AVP without a=crypto
        rtp = self.port()
        c = UdpCall(self.esg.ports["udp"], "127.0.0.2", DID, rtp.port)
        self.addCleanup(c.close)
        self.assertEqual(c.status, 488, c.responses)
        self.assertEqual(pbx.wait(), 0, pbx.output())  # answered, then hung up
        bye = pbx.received("BYE")[0]
        self.assertIn('Reason: SIP;cause=488;text="media: SRTP required', bye)

    def test_a_caller_that_requires_srtp_and_offers_plain_rtp_gets_488(self):
        prov = next(p for p in self.api.ok("GET", "/rest/v1/uc/providers")["items"]
                    if p["code"] == "prov-a")
        self.api.ok("PATCH", "/rest/v1/uc/providers/%d" % prov["id"], {"srtp": "required"})
        self.addCleanup(self.api.ok, "PATCH", "/rest/v1/uc/providers/%d" % prov["id"],
                        {"srtp": "off"})
        rtp = self.port()
        c = UdpCall(self.esg.ports["udp"], "127.0.0.2", DID, rtp.port)
        self.addCleanup(c.close)
        self.assertEqual(c.status, 488, c.responses)
        self.assertIn("SRTP required", c.final)



class Fax(MediaCase):
    def test_a_reinvite_to_t38_crosses_through_the_relay(self):
        pbx = SippPeer(os.path.join(HERE, "uas_t38.xml"), "127.0.0.5")
        type(self).peers.append(pbx)
        self.api.ok("PATCH", "/rest/v1/uc/pbx/%d" % self.pbx["id"], {"port": pbx.port})
        uac = SippPeer(os.path.join(HERE, "uac_t38.xml"), "127.0.0.2",
                       remote="127.0.0.1:%d" % self.esg.ports["udp"], duration_ms=200,
                       keys={"ruri_user": DID, "to_user": DID, "to_host": "127.0.0.1",
                             "from_user": "+79161234567", "contact_user": "prov"})
        type(self).peers.append(uac)
        self.assertEqual(uac.wait(), 0, uac.output())
        self.assertEqual(pbx.wait(), 0, pbx.output())
        reinvite = pbx.received("INVITE")[1]
        addr, port = sdp_media(reinvite)
        self.assertEqual(addr, "127.0.0.1")  # esg's relay carries the fax too
        self.assertTrue(PORTS[0] <= port <= PORTS[1], port)
        self.assertRegex(reinvite, r"(?m)^m=image \d+ udptl t38")
        self.assertIn("a=T38FaxVersion:0", reinvite)



class RelayOff(MediaCase):
    """media.relay off: descriptions cross untouched and media flows directly, unless the legs
    share no codec."""
    media = {"ports": list(PORTS), "relay": False}

    def test_shared_codecs_let_media_flow_directly(self):
        pbx, pbx_media = self.echoing_pbx()
        rtp = self.port()
        c = self.call(rtp)
        self.assertEqual(c.media_dest(), ("127.0.0.5", pbx_media))  # the PBX's own address
        self.assertIn("c=IN IP4 127.0.0.2", pbx.received("INVITE")[0])  # the caller's own
        call = self.api.ok("GET", "/api/monitor/v1/calls/" + c.call_id)["data"]
        self.assertIsNone(call["media"])
        self.assertEqual(c.bye(), 200)
        pbx.wait()

    def test_no_shared_codec_brings_the_relay_in(self):
        self.api.ok("PATCH", "/rest/v1/uc/pbx/%d" % self.pbx["id"], {"codecs": ["opus"]})
        self.addCleanup(self.api.ok, "PATCH", "/rest/v1/uc/pbx/%d" % self.pbx["id"],
                        {"codecs": ["PCMA", "PCMU"]})
        pbx, _ = self.echoing_pbx(os.path.join(HERE, "uas_answer_opus.xml"))
        rtp = self.port()
        c = self.call(rtp)
        self.assertEqual(c.media_dest()[0], "127.0.0.1")
        self.assertIn("opus", pbx.received("INVITE")[0])
        call = self.api.ok("GET", "/api/monitor/v1/calls/" + c.call_id)["data"]
        self.assertIn("media relayed by esg: no codec or SRTP in common with pbx1", call["decisions"])
        self.assertEqual(c.bye(), 200)
        pbx.wait()



class NoLatching(MediaCase):
    media = {"ports": list(PORTS), "timeout": 30, "latching": False}

    def test_audio_goes_to_the_signaled_port_and_the_call_is_flagged_one_way(self):
        pbx, _ = self.echoing_pbx()
        signaled, actual = self.port(), self.port()
        c = self.call(signaled)
        actual.send(c.media_dest(), count=30)
        time.sleep(0.5)
        self.assertEqual(actual.packets, [])  # the phone behind the NAT hears nothing
        self.assertGreaterEqual(len(signaled.packets), 25)
        media = self.media_of(c.call_id)
        self.assertTrue(media["one_way"], media)
        self.assertEqual(media["streams"][0]["a"]["mismatch"], 30)
        self.assertEqual(c.bye(), 200)
        pbx.wait()

    # The tests of the class above assume latching.


class MediaTimeout(MediaCase):
    media = {"ports": list(PORTS), "timeout": 2}

    def test_a_call_on_hold_is_not_ended_for_its_silence(self):
        # The caller puts the call on hold (re-INVITE, sendonly) and stays silent for twice the
        # timeout before it hangs up itself: esg must not end it.
        pbx = SippPeer(os.path.join(CALLS, "uas_reinvite.xml"), "127.0.0.5")
        type(self).peers.append(pbx)
        self.api.ok("PATCH", "/rest/v1/uc/pbx/%d" % self.pbx["id"], {"port": pbx.port})
        uac = SippPeer(os.path.join(CALLS, "uac_reinvite.xml"), "127.0.0.2",
                       remote="127.0.0.1:%d" % self.esg.ports["udp"], duration_ms=4500,
                       keys={"ruri_user": DID, "to_user": DID, "to_host": "127.0.0.1",
                             "from_user": "+79161234567", "contact_user": "prov"})
        type(self).peers.append(uac)
        self.assertEqual(uac.wait(), 0, uac.output())  # its own BYE got its 200
        self.assertEqual(pbx.wait(), 0, pbx.output())
        self.assertRegex(pbx.received("INVITE")[1], r"(?m)^a=sendonly")

    def test_a_call_without_rtp_ends_with_bye_on_both_legs(self):
        pbx, _ = self.echoing_pbx()
        rtp = self.port()
        c = self.call(rtp)
        started = time.time()
        bye = c.wait_bye(timeout=10)
        self.assertGreaterEqual(time.time() - started, 1.5)
        self.assertRegex(bye, r'(?m)^Reason: SIP;cause=500;text="EB2B\. Media timeout: no RTP for '
                              r'2 s"')
        self.assertEqual(pbx.wait(), 0, pbx.output())  # its BYE came too



if __name__ == "__main__":
    unittest.main()
