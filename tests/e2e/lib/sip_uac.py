"""A minimal SIP caller over UDP for answers that SIPp scenarios cannot assert on easily (the
status and Reason of a refusal): one INVITE from a chosen loopback address, its responses, and
the ACK of a failure."""

import re
import socket
import uuid

SDP = ("v=0\r\no=py 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
       "m=audio 40000 RTP/AVP 8\r\n")


def header(text, name):
    m = re.search(r"(?im)^" + name + r"\s*:\s*(.*?)\r?$", text)
    return m.group(1) if m else None


class Answer:
    def __init__(self, responses, call_id):
        self.responses = responses
        self.call_id = call_id
        self.final = responses[-1] if responses else ""
        m = re.match(r"SIP/2\.0 (\d{3})", self.final)
        self.status = int(m.group(1)) if m else None

    def header(self, name):
        return header(self.final, name)


def invite(esg_port, src_ip, to_user=None, to_host=None, from_host=None, contact_user="caller",
           contact_host=None, ruri_user=None, raw=None, timeout=5.0):
    """Sends one INVITE (or `raw`, a whole message with {via_port} in it) from src_ip to esg on
    127.0.0.1 and returns its responses up to the final one, which is ACKed when it fails."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((src_ip, 0))
    sock.settimeout(timeout)
    port = sock.getsockname()[1]
    try:
        if raw is None:
            call_id = uuid.uuid4().hex
            branch = "z9hG4bK" + uuid.uuid4().hex[:16]
            from_host = from_host or src_ip
            contact_host = contact_host or src_ip
            ruri_user = ruri_user if ruri_user is not None else to_user
            body = SDP.format(ip=src_ip)
            msg = (f"INVITE sip:{ruri_user}@127.0.0.1:{esg_port} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP {src_ip}:{port};rport;branch={branch}\r\n"
                   f"From: <sip:caller@{from_host}>;tag=py{call_id[:8]}\r\n"
                   f"To: <sip:{to_user}@{to_host}>\r\n"
                   f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
                   f"Contact: <sip:{contact_user}@{contact_host}:{port}>\r\n"
                   "Max-Forwards: 70\r\nContent-Type: application/sdp\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n{body}")
        else:
            msg = raw.format(via_port=port)
        sock.sendto(msg.encode(), ("127.0.0.1", esg_port))
        responses = []
        while True:
            try:
                data, _ = sock.recvfrom(65535)
            except socket.timeout:
                break
            text = data.decode(errors="replace")
            responses.append(text)
            m = re.match(r"SIP/2\.0 (\d{3})", text)
            if m and int(m.group(1)) >= 200:
                if int(m.group(1)) >= 300:
                    sock.sendto(ack_for(msg, text).encode(), ("127.0.0.1", esg_port))
                break
        return Answer(responses, header(msg, "Call-ID"))
    finally:
        sock.close()


def ack_for(invite_text, response):
    """RFC 3261 §17.1.1.3: the ACK of a failure, on the INVITE's branch."""
    first = invite_text.split("\r\n", 1)[0]
    ruri = first.split(" ")[1]
    lines = ["ACK %s SIP/2.0" % ruri,
             "Via: " + header(invite_text, "Via"),
             "From: " + header(invite_text, "From"),
             "To: " + header(response, "To"),
             "Call-ID: " + header(invite_text, "Call-ID"),
             "CSeq: %s ACK" % header(invite_text, "CSeq").split()[0],
             "Max-Forwards: 70", "Content-Length: 0", "", ""]
    return "\r\n".join(lines)
