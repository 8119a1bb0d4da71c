"""A PBX that takes calls over UDP, for tests that must look at what arrives (the From, the
display name, headers, the audio): every INVITE is kept; it rings, then answers with an SDP
for its own RTP port (G.711 A-law and telephone-event/8000), rejects with a status, or just
rings, as `mode` says ("early": 183 with that SDP at once, for early media, then the answer). ACK, BYE and CANCEL are answered and kept; bye() hangs up."""

import hashlib
import re
import socket
import threading
import time

from sip_call import RtpPort


def _header(text, name):
    m = re.search(r"(?im)^%s\s*:\s*(.*?)\r?$" % re.escape(name), text.split("\r\n\r\n")[0])
    return m.group(1) if m else None


class PbxUas:
    def __init__(self, ip, mode="answer", status=486, ring_s=0.3):
        self.ip = ip
        self.mode = mode
        self.status = status
        self.ring_s = ring_s
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.rtp = RtpPort(ip)
        self.invites, self.acks, self.byes, self.cancels, self.infos = [], [], [], [], []
        self.notifies, self.responses, self.registers, self.updates = [], [], [], []
        self.reinvites = []
        self.answer_extra = ""  # more header lines in the 200 to an INVITE
        self.calls = {}  # Call-ID -> {"invite", "src", "tag", "answered"}
        self._stop = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    # --- what arrived ---------------------------------------------------------------------

    def wait(self, what, count=1, timeout=10):
        """The first `count` messages of a list (`invites`, `byes`...), waiting for them."""
        deadline = time.time() + timeout
        items = getattr(self, what)
        while len(items) < count and time.time() < deadline:
            time.sleep(0.05)
        if len(items) < count:
            raise AssertionError("no %s at the PBX within %s s (got %d)" % (what, timeout,
                                                                              len(items)))
        return items[count - 1]

    @staticmethod
    def header(text, name):
        return _header(text, name)

    # --- acting ---------------------------------------------------------------------------

    def bye(self, call_id=None):
        """Hangs up the answered call (the last one unless named)."""
        self._in_dialog("BYE", call_id)

    def refer(self, target_user, call_id=None):
        """Transfers the call (the last one unless named) to `target_user` at esg."""
        c = self.calls[call_id or next(reversed(self.calls))]
        host = "%s:%d" % c["src"]
        self._in_dialog("REFER", call_id, "Refer-To: <sip:%s@%s>\r\nReferred-By: <sip:pbx@%s>\r\n"
                        % (target_user, host, self.ip))

    def reinvite(self, direction, call_id=None, timeout=5):
        """A re-INVITE with our description marked `direction` (hold: sendonly); its final
        response (ACKed)."""
        before = len(self.responses)
        self._in_dialog("INVITE", call_id, body=self._sdp().replace("a=sendrecv",
                                                                     "a=" + direction))
        deadline = time.time() + timeout
        while time.time() < deadline:
            for r in self.responses[before:]:
                if "INVITE" in (_header(r, "CSeq") or "") and int(r[8:11]) >= 200:
                    return r
            time.sleep(0.05)
        raise AssertionError("no answer to the re-INVITE")

    def register(self, esg_port, user, pwd, timeout=5):
        """Registers to esg (a register-in PBX connection) from this PBX's own port, answering
        the digest challenge (MD5, qop=auth); the final status."""
        call_id = "reg%d@%s" % (time.time_ns(), self.ip)
        uri = "sip:127.0.0.1:%d" % esg_port

        def send(cseq, auth=""):
            msg = (f"REGISTER {uri} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP {self.ip}:{self.port};rport;branch=z9hG4bKr{time.time_ns()}\r\n"
                   f"From: <sip:{user}@127.0.0.1>;tag=r{cseq}\r\nTo: <sip:{user}@127.0.0.1>\r\n"
                   f"Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n"
                   f"Contact: <sip:{user}@{self.ip}:{self.port}>\r\nExpires: 300\r\n{auth}"
                   "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
            before = len(self.responses)
            self.sock.sendto(msg.encode(), ("127.0.0.1", esg_port))
            deadline = time.time() + timeout
            while time.time() < deadline:
                for r in self.responses[before:]:
                    if _header(r, "Call-ID") == call_id and int(r[8:11]) >= 200:
                        return r
                time.sleep(0.02)
            raise AssertionError("no answer to REGISTER")

        r = send(1)
        if r.startswith("SIP/2.0 401"):
            ch = _header(r, "WWW-Authenticate")
            realm = re.search(r'realm="([^"]*)"', ch).group(1)
            nonce = re.search(r'nonce="([^"]*)"', ch).group(1)
            md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
            ha1, ha2 = md5("%s:%s:%s" % (user, realm, pwd)), md5("REGISTER:" + uri)
            nc, cnonce = "00000001", "0a4f113b"
            resp = md5("%s:%s:%s:%s:auth:%s" % (ha1, nonce, nc, cnonce, ha2))
            auth = ('Authorization: Digest username="%s", realm="%s", nonce="%s", uri="%s", '
                    'response="%s", algorithm=MD5, qop=auth, nc=%s, cnonce="%s"\r\n'
                    % (user, realm, nonce, uri, resp, nc, cnonce))
            r = send(2, auth)
        return int(r[8:11])

    def _in_dialog(self, method, call_id=None, extra="", body=""):
        with self._lock:
            cid = call_id or next(reversed(self.calls))
            c = self.calls[cid]
            c["cseq"] = c.get("cseq", 100) + 1
        inv = c["invite"]
        contact = re.search(r"<([^>]+)>", _header(inv, "Contact")).group(1)
        msg = (f"{method} {contact} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP {self.ip}:{self.port};rport;branch=z9hG4bKpbx{time.time_ns()}\r\n"
               f"From: {_header(inv, 'To')};tag={c['tag']}\r\nTo: {_header(inv, 'From')}\r\n"
               f"Call-ID: {cid}\r\nCSeq: {c['cseq']} {method}\r\nMax-Forwards: 70\r\n"
               f"Contact: <sip:pbx@{self.ip}:{self.port}>\r\n{extra}")
        if body:
            msg += "Content-Type: application/sdp\r\n"
        msg += "Content-Length: %d\r\n\r\n%s" % (len(body), body)
        c["last_request"] = msg
        self.sock.sendto(msg.encode(), c["src"])

    def stop(self):
        self.close()

    def cleanup(self, keep=False):
        pass  # nothing on disk

    def close(self):
        if self._stop:
            return
        self._stop = True
        self._thread.join(timeout=1)
        self.sock.close()
        self.rtp.close()

    # --- the loop -------------------------------------------------------------------------

    def _reply(self, req, src, status, reason, tag=None, body="", extra=""):
        lines = [l for l in req.split("\r\n\r\n")[0].split("\r\n")[1:]
                 if l.split(":")[0].strip().lower() in ("via", "v", "from", "f", "call-id", "i",
                                                        "cseq")]
        to = _header(req, "To")
        if tag and ";tag=" not in to:
            to += ";tag=" + tag
        msg = "SIP/2.0 %d %s\r\n%s\r\nTo: %s\r\n%s" % (status, reason, "\r\n".join(lines), to,
                                                       extra)
        if body:
            msg += "Content-Type: application/sdp\r\n"
        msg += "Content-Length: %d\r\n\r\n%s" % (len(body), body)
        self.sock.sendto(msg.encode(), src)

    def _sdp(self):
        return ("v=0\r\no=pbx 1 1 IN IP4 {ip}\r\ns=pbx\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
                "m=audio {port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n"
                "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"
                ).format(ip=self.ip, port=self.rtp.port)

    def _answer_later(self, req, src, cid):
        time.sleep(self.ring_s)
        with self._lock:
            c = self.calls.get(cid)
            if not c or c.get("cancelled"):
                return
            c["answered"] = True
        contact = "Contact: <sip:pbx@%s:%d>\r\n" % (self.ip, self.port)
        if self.mode in ("answer", "early"):
            self._reply(req, src, 200, "OK", c["tag"], self._sdp(), contact + self.answer_extra)
        elif self.mode == "reject":
            self._reply(req, src, self.status, "Rejected", c["tag"])

    def _run(self):
        while not self._stop:
            try:
                data, src = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            text = data.decode(errors="replace")
            if text.startswith("SIP/2.0"):
                self.responses.append(text)
                cseq = _header(text, "CSeq") or ""
                cid = _header(text, "Call-ID")
                if cseq.endswith("INVITE") and 200 <= int(text[8:11]) < 300 and cid in self.calls:
                    # The ACK of our re-INVITE's 2xx.
                    head = self.calls[cid]["last_request"].split("\r\n\r\n")[0].split("\r\n")
                    keep = [l for l in head[1:] if not l.startswith(("Content-", "CSeq:", "Via:"))]
                    n = re.match(r"(\d+)", _header(text, "CSeq")).group(1)
                    ack = (head[0].replace("INVITE ", "ACK ", 1) + "\r\n" +
                           "Via: SIP/2.0/UDP %s:%d;rport;branch=z9hG4bKack%d\r\n"
                           % (self.ip, self.port, time.time_ns()) +
                           "\r\n".join(keep) + "\r\nCSeq: %s ACK\r\nContent-Length: 0\r\n\r\n" % n)
                    self.sock.sendto(ack.encode(), src)
                continue
            method = text.split(" ", 1)[0]
            cid = _header(text, "Call-ID")
            if method == "INVITE" and ";tag=" not in (_header(text, "To") or ""):
                with self._lock:
                    if cid in self.calls:
                        continue  # a retransmission
                    self.calls[cid] = {"invite": text, "src": src, "tag": "pbx%d" % len(self.calls)}
                self.invites.append(text)
                if self.mode == "early":
                    self._reply(text, src, 183, "Session Progress", self.calls[cid]["tag"],
                                self._sdp(), "Contact: <sip:pbx@%s:%d>\r\n" % (self.ip, self.port))
                else:
                    self._reply(text, src, 180, "Ringing", self.calls[cid]["tag"])
                if self.mode in ("answer", "reject", "early"):
                    threading.Thread(target=self._answer_later, args=(text, src, cid),
                                     daemon=True).start()
            elif method == "INVITE":  # a re-INVITE: the same description back
                self.reinvites.append(text)
                self._reply(text, src, 200, "OK", None, self._sdp(),
                            "Contact: <sip:pbx@%s:%d>\r\n" % (self.ip, self.port))
            elif method == "ACK":
                self.acks.append(text)
            elif method == "BYE":
                self.byes.append(text)
                self._reply(text, src, 200, "OK")
            elif method == "CANCEL":
                self.cancels.append(text)
                self._reply(text, src, 200, "OK")
                with self._lock:
                    c = self.calls.get(cid)
                    if c and not c.get("answered"):
                        c["cancelled"] = True
                        inv = c["invite"]
                if c and c.get("cancelled"):
                    self._reply(inv, src, 487, "Request Terminated", c["tag"])
            elif method == "REGISTER":
                self.registers.append(text)
                self._reply(text, src, 200, "OK", None, "",
                            "Contact: %s;expires=300\r\n" % _header(text, "Contact"))
            elif method == "NOTIFY":
                self.notifies.append(text)
                self._reply(text, src, 200, "OK")
            elif method == "INFO":
                self.infos.append(text)
                self._reply(text, src, 200, "OK")
            elif method == "UPDATE":
                self.updates.append(text)
                self._reply(text, src, 200, "OK")
            else:
                self._reply(text, src, 200, "OK")
