"""A caller that completes a call over UDP and carries RTP: an INVITE with an SDP offer for a
chosen media port, the ACK of its 2xx, in-dialog BYEs either way; and an RTP port that sends
numbered G.711 packets and keeps what arrives. For the media tests, where SIPp cannot assert on
the audio it receives."""

import math
import re
import socket
import struct
import threading
import time
import uuid
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # G.711 A-law in the standard library (3.11)

from sip_uac import header


def sdp_media(body):
    """(address, port) of the first m= line of an SDP body, the media-level c= first."""
    session_c = re.search(r"(?m)^c=IN IP[46] (\S+)", body.split("m=", 1)[0])
    m = re.search(r"(?ms)^m=\w+ (\d+) [^\r\n]*(.*)", body)
    media_c = re.search(r"(?m)^c=IN IP[46] (\S+)", m.group(2)) if m else None
    addr = (media_c or session_c).group(1)
    return addr, int(m.group(1))


class RtpPort:
    """A UDP socket for RTP that records every packet it receives: (source, seq, ssrc, payload,
    payload type, timestamp)."""

    def __init__(self, ip, port=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, port))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.packets = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop:
            try:
                data, src = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(data) >= 12:
                seq, = struct.unpack("!H", data[2:4])
                ssrc, = struct.unpack("!I", data[8:12])
                ts, = struct.unpack("!I", data[4:8])
                self.packets.append((src, seq, ssrc, data[12:], data[1] & 0x7F, ts))

    def send(self, dest, count=50, ssrc=0x11223344, pt=8, interval=0.02, first_seq=1000):
        """G.711 A-law packets of 20 ms, each payload marked with its number."""
        for i in range(count):
            seq = (first_seq + i) & 0xFFFF
            payload = bytes([(i * 7) & 0xFF]) * 160
            pkt = struct.pack("!BBHII", 0x80, pt, seq, (i * 160) & 0xFFFFFFFF, ssrc) + payload
            self.sock.sendto(pkt, dest)
            time.sleep(interval)

    def send_tone(self, dest, freq, count=50, ssrc=0x55667788, pt=8):
        """`count` 20 ms packets of a `freq` Hz sine in G.711 A-law."""
        for i in range(count):
            samples = [int(8000 * math.sin(2 * math.pi * freq * (i * 160 + n) / 8000.0))
                       for n in range(160)]
            payload = audioop.lin2alaw(struct.pack("<160h", *samples), 2)
            pkt = struct.pack("!BBHII", 0x80, pt, (2000 + i) & 0xFFFF, i * 160, ssrc) + payload
            self.sock.sendto(pkt, dest)
            time.sleep(0.02)

    def send_tones(self, dest, low, high, ms=100, gap_ms=100, ssrc=0x55667788):
        """A DTMF key as in-band audio: `low` + `high` Hz for `ms`, then silence, in G.711
        A-law packets of 20 ms."""
        frames = (ms + gap_ms) // 20
        for i in range(frames):
            on = i * 20 < ms
            samples = [int(6000 * (math.sin(2 * math.pi * low * (i * 160 + n) / 8000.0) +
                                   math.sin(2 * math.pi * high * (i * 160 + n) / 8000.0)))
                       if on else 0 for n in range(160)]
            payload = audioop.lin2alaw(struct.pack("<160h", *samples), 2)
            pkt = struct.pack("!BBHII", 0x80, 8, (4000 + i) & 0xFFFF, i * 160, ssrc) + payload
            self.sock.sendto(pkt, dest)
            time.sleep(0.02)

    def send_event(self, dest, event, pt=101, ssrc=0x55667788, ts=80000):
        """One key press as RFC 4733 telephone-events: three updates, then the end three
        times, all with the event's timestamp."""
        for i, (end, duration) in enumerate([(0, 160), (0, 320), (0, 480), (1, 640), (1, 640),
                                             (1, 640)]):
            payload = struct.pack("!BBH", event, (0x80 if end else 0) | 10, duration)
            pkt = struct.pack("!BBHII", 0x80, pt | (0x80 if i == 0 else 0), 3000 + i, ts,
                              ssrc) + payload
            self.sock.sendto(pkt, dest)
            time.sleep(0.02)

    def events(self, source=None):
        """The RFC 4733 key presses received (payload type 101): one key per event (its end
        packets share one timestamp), as a string."""
        keys, seen = "", set()
        for src, seq, ssrc, payload, pt, ts in list(self.packets):
            if pt != 101 or len(payload) < 4 or (source and src != source):
                continue
            if payload[1] & 0x80 and (ssrc, ts) not in seen:
                seen.add((ssrc, ts))
                keys += "0123456789*#ABCD"[payload[0]] if payload[0] < 16 else "?"
        return keys

    def close(self):
        self._stop = True
        self.sock.close()
        self._thread.join(timeout=1)


def alaw_pcm(packets):
    """The 16-bit samples of G.711 A-law payloads, in order of arrival."""
    raw = audioop.alaw2lin(b"".join(p[3] for p in packets), 2)
    return struct.unpack("<%dh" % (len(raw) // 2), raw)


def tone_share(pcm, freq, rate=8000):
    """The share of the signal's power at `freq` (Goertzel)."""
    k = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = total = 0.0
    for x in pcm:
        s1, s2 = x + k * s1 - s2, s1
        total += x * x
    power = s1 * s1 + s2 * s2 - k * s1 * s2
    return power / (total * len(pcm) / 2) if total else 0.0


class UdpCall:
    """One call from `ip` to esg: INVITE (SDP for `media_port`), the answer, ACK; bye() ends it,
    wait_bye() waits for esg's BYE and answers it."""

    def __init__(self, esg_port, ip, ruri_user, media_port, to_host="127.0.0.1", timeout=10,
                 esg_host="127.0.0.1", until_ringing=False, headers="", from_uri=None):
        # `from_uri`: the From header's value before its tag ('"Name" <sip:user@host>'); lone
        # surrogates in it (as from bytes.decode(errors="surrogateescape")) go out as raw bytes.
        self.esg = (esg_host, esg_port)
        self.ip = ip
        self.from_uri = from_uri or f"<sip:caller@{ip}>"
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, 0))
        self.sock.settimeout(timeout)
        self.port = self.sock.getsockname()[1]
        self.call_id = uuid.uuid4().hex
        self.tag = "py" + self.call_id[:8]
        self.cseq = 1
        body = ("v=0\r\no=caller 1 1 IN IP4 {ip}\r\ns=caller\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
                "m=audio {port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n"
                "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n").format(ip=ip, port=media_port)
        self.body = body
        self.branch = self._branch()
        self.invite = (f"INVITE sip:{ruri_user}@{esg_host}:{esg_port} SIP/2.0\r\n"
                       f"Via: SIP/2.0/UDP {ip}:{self.port};rport;branch={self.branch}\r\n"
                       f"From: {self.from_uri};tag={self.tag}\r\n"
                       f"To: <sip:{ruri_user}@{to_host}>\r\n"
                       f"Call-ID: {self.call_id}\r\nCSeq: 1 INVITE\r\n"
                       f"Contact: <sip:caller@{ip}:{self.port}>\r\nMax-Forwards: 70\r\n"
                       f"{headers}Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}")
        self.sock.sendto(self.invite.encode(errors="surrogateescape"), self.esg)
        self.responses = []
        self.status = None
        while True:
            text = self._recv()
            m = re.match(r"SIP/2\.0 (\d{3})", text)
            if not m:
                continue
            self.responses.append(text)
            if int(m.group(1)) >= 200:
                self.status = int(m.group(1))
                break
            if until_ringing and int(m.group(1)) in (180, 183):
                return  # cancel() or finish() next
        self._final()

    def cancel(self):
        """CANCELs the ringing INVITE; returns the INVITE's final status (487)."""
        lines = self.invite.split("\r\n\r\n")[0].split("\r\n")
        keep = [l for l in lines[1:] if l.split(":")[0] in ("Via", "From", "To", "Call-ID")]
        msg = ("CANCEL " + lines[0].split(" ")[1] + " SIP/2.0\r\n" + "\r\n".join(keep) +
               "\r\nCSeq: 1 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
        self.sock.sendto(msg.encode(errors="surrogateescape"), self.esg)
        self.finish()
        return self.status

    def finish(self):
        """Waits for the final answer of an INVITE left ringing."""
        while self.status is None:
            text = self._recv()
            m = re.match(r"SIP/2\.0 (\d{3})", text)
            if m and "INVITE" in (header(text, "CSeq") or ""):
                self.responses.append(text)
                if int(m.group(1)) >= 200:
                    self.status = int(m.group(1))
        self._final()

    def _final(self):
        self.final = self.responses[-1]
        self.answer = self.final.split("\r\n\r\n", 1)[1] if "\r\n\r\n" in self.final else ""
        if 200 <= self.status < 300:
            self.to = header(self.final, "To")
            contact = header(self.final, "Contact")
            self.target = re.search(r"<([^>]+)>", contact).group(1) if contact else None
            self._request("ACK", cseq=1)

    @staticmethod
    def _branch():
        return "z9hG4bK" + uuid.uuid4().hex[:16]

    def _recv(self):
        data, _ = self.sock.recvfrom(65535)
        return data.decode(errors="replace")

    def _request(self, method, cseq=None, extra="", body=""):
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        msg = (f"{method} {self.target} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP {self.ip}:{self.port};rport;branch={self._branch()}\r\n"
               f"From: {self.from_uri};tag={self.tag}\r\nTo: {self.to}\r\n"
               f"Call-ID: {self.call_id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n"
               f"Contact: <sip:caller@{self.ip}:{self.port}>\r\n{extra}"
               + ("Content-Type: application/sdp\r\n" if body else "") +
               f"Content-Length: {len(body)}\r\n\r\n{body}")
        self.sock.sendto(msg.encode(errors="surrogateescape"), self.esg)

    def in_dialog(self, method, extra="", body=""):
        """Sends a request inside the call (an UPDATE, a re-INVITE: ACKed) and returns its final
        answer."""
        self._request(method, extra=extra, body=body)
        cseq = self.cseq
        deadline = time.time() + 5
        while time.time() < deadline:
            text = self._recv()
            m = re.match(r"SIP/2\.0 (\d{3})", text)
            if m and (header(text, "CSeq") or "").startswith("%d " % cseq) and int(m.group(1)) >= 200:
                if method == "INVITE" and int(m.group(1)) < 300:
                    self._request("ACK", cseq=cseq)
                return text
        return None

    def serve(self, seconds, ok_extra=""):
        """Answers what esg sends inside the call for `seconds` (UPDATE, re-INVITE, BYE: 200
        with `ok_extra`; a BYE ends it) and returns the requests, in order."""
        got = []
        deadline = time.time() + seconds
        while time.time() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.time()))
            try:
                text = self._recv()
            except socket.timeout:
                break
            if text.startswith("SIP/2.0"):
                continue
            got.append(text)
            lines = [l for l in text.split("\r\n\r\n")[0].split("\r\n")
                     if l.split(":")[0].lower() in ("via", "from", "to", "call-id", "cseq")]
            ok = ("SIP/2.0 200 OK\r\n" + "\r\n".join(lines) + "\r\n" + ok_extra +
                  "Content-Length: 0\r\n\r\n")
            self.sock.sendto(ok.encode(), self.esg)
            if text.startswith("BYE "):
                break
        return got

    def media_dest(self):
        return sdp_media(self.answer)

    def bye(self):
        self._request("BYE")
        deadline = time.time() + 5
        while time.time() < deadline:
            text = self._recv()
            if text.startswith("SIP/2.0 ") and "BYE" in (header(text, "CSeq") or ""):
                return int(text[8:11])
        return None

    def wait_bye(self, timeout=10):
        """esg's BYE (the request text), answered 200."""
        self.sock.settimeout(timeout)
        while True:
            text = self._recv()
            if text.startswith("BYE "):
                lines = [l for l in text.split("\r\n") if l.split(":")[0].lower() in
                         ("via", "from", "to", "call-id", "cseq")]
                ok = "SIP/2.0 200 OK\r\n" + "\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n"
                self.sock.sendto(ok.encode(), self.esg)
                return text

    def close(self):
        self.sock.close()
