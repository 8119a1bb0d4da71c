"""esg serving SIP on loopback: answers, where answers go, the transaction log, hostile input
(RFC 4475 over UDP and TCP, PROTOS c07-sip over UDP) and stream limits."""

import os
import re
import socket
import sys
import tarfile
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from esg_fixture import DATA, EsgTestCase, header, options, read_answer, status_of  # noqa: E402

# What esg answers to each RFC 4475 message: None means silence (a discard, or a response that
# matches no transaction). Valid requests: OPTIONS 200, unknown methods 501, INVITEs 404 (no
# provider account matches them: the B2BUA's account matching), REGISTERs 401 (esg's registrar
# for register-in PBXs challenges them; another scheme's credentials are no credentials), others
# 480 No Route. wsinv's To tag makes it a request inside a dialog esg does not know (481).
# inv2543 has no Contact, which RFC 3261 §8.1.1.8 requires of an INVITE: a B2BUA
# has no dialog to build without it (400).
TORTURE = {
    "wsinv": 481, "intmeth": 501, "esc01": 404, "escnull": 401, "esc02": 501, "lwsdisp": 200,
    "longreq": 404, "dblreq": 401, "semiuri": 200, "transports": 200, "mpart01": 480,
    "unreason": None, "noreason": None, "badinv01": 400, "clerr": 400, "ncl": 400,
    "scalar02": 400, "scalarlg": None, "quotbal": 400, "ltgtruri": 400, "lwsruri": 400,
    "lwsstart": 400, "trws": 400, "escruri": 400, "baddate": 404, "badaspec": 400,
    "baddn": 400, "badvers": 505, "mismatch01": 400, "mismatch02": 501, "bigcode": None,
    "badbranch": 200, "unkscm": 416, "novelsc": 416, "unksm2": 401,
    "bext01": 420, "invut": 404, "regaut01": 401, "multi01": 400, "mcl01": 400, "bcast": None,
    "zeromf": 200, "cparam01": 401, "cparam02": 401, "regescrt": 401, "sdp01": 404,
    "inv2543": 400,
    # Without a Via (test.dat) or without From/To/Call-ID (insuf) a 400 can still be built
    # from what is there only when a Via says where it goes back along.
    "test": None, "insuf": 400,
    # regbadct's malformed Contact is read (and answered 400) by the registrar.
    "regbadct": 400,
}


def unique(message, suffix):
    """The same message as a new transaction: Call-ID and branch made unique (a resent copy
    would be a retransmission, answered where the first copy came from)."""
    message = re.sub(rb"(?im)^((?:call-id|i)\s*:\s*\S+)", lambda m: m.group(1) + b"-" + suffix.encode(),
                     message)
    return message.replace(b"branch=z9hG4bK", b"branch=z9hG4bK" + suffix.encode())


def torture(name):
    with open(os.path.join(DATA, "rfc4475", name + ".dat"), "rb") as f:
        return f.read()


class Answers(EsgTestCase):
    def test_options_over_udp_is_answered_200_with_rport_and_received(self):
        s = self.udp()
        s.sendto(options("udp-1"), ("127.0.0.1", self.esg.ports["udp"]))
        data, _ = s.recvfrom(65535)
        self.assertEqual(status_of(data), 200)
        via = header(data, "Via")
        self.assertIn("rport=%d" % s.getsockname()[1], via)
        self.assertIn("received=127.0.0.1", via)
        self.assertRegex(header(data, "To"), r";tag=\S+")
        self.assertIn("OPTIONS", header(data, "Allow"))

    def test_unsupported_require_gets_420_listing_the_tags(self):
        s = self.udp()
        s.sendto(options("req-1", extra="Require: foo, 100rel\r\n"),
                 ("127.0.0.1", self.esg.ports["udp"]))
        data, _ = s.recvfrom(65535)
        self.assertEqual(status_of(data), 420)
        self.assertEqual(header(data, "Unsupported"), "foo, 100rel")

    def test_answers_go_to_the_source_whatever_via_says(self):
        s = self.udp()
        # Via names another port and a maddr; the answer must still come back to us.
        s.sendto(options("udp-2", via_host="127.0.0.1:9;maddr=127.0.0.77"),
                 ("127.0.0.1", self.esg.ports["udp"]))
        data, addr = s.recvfrom(65535)
        self.assertEqual(status_of(data), 200)
        self.assertEqual(addr[1], self.esg.ports["udp"])

    def test_options_over_tcp_with_keepalive_ping(self):
        c = self.tcp()
        c.sendall(b"\r\n\r\n")
        self.assertEqual(c.recv(2), b"\r\n")  # RFC 5626 pong
        c.sendall(options("tcp-1"))
        data = b""
        while b"\r\n\r\n" not in data:
            data += c.recv(65535)
        self.assertEqual(status_of(data), 200)

    def test_retransmitted_request_gets_the_same_answer(self):
        s = self.udp()
        msg = options("udp-3", branch="z9hG4bKsame")
        s.sendto(msg, ("127.0.0.1", self.esg.ports["udp"]))
        first, _ = s.recvfrom(65535)
        s.sendto(msg, ("127.0.0.1", self.esg.ports["udp"]))
        second, _ = s.recvfrom(65535)
        self.assertEqual(first, second)  # the server transaction resent its final response

    def test_transaction_log_has_every_packet(self):
        s = self.udp()
        s.sendto(options("trn-1"), ("127.0.0.1", self.esg.ports["udp"]))
        s.recvfrom(65535)
        deadline = time.time() + 5
        pattern_recv = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} <\d+\.\d+\.\d+> Recv from udp "
                                  r"127\.0\.0\.1:\d+ OPTIONS sip:esg@127\.0\.0\.1 SIP/2\.0 .*trn-1")
        pattern_send = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} <\d+\.\d+\.\d+> Send to udp "
                                  r"127\.0\.0\.1:\d+ \(ok\) SIP/2\.0 200 OK .*trn-1")
        while time.time() < deadline:
            lines = self.esg.trn_lines()
            if any(pattern_recv.match(l) for l in lines) and any(pattern_send.match(l) for l in lines):
                return
            time.sleep(0.05)
        self.fail("trn log lacks the exchange:\n" + "\n".join(self.esg.trn_lines()[-5:]))


class Torture(EsgTestCase):
    extra_config = {"transport": {"message_timeout": 1.0}}

    def expect(self, name, data):
        want = TORTURE[name]
        got = status_of(data) if data else None
        self.assertEqual(got, want, "%s: got %r" % (name, data[:80] if data else data))

    def test_every_message_over_udp(self):
        for name in sorted(TORTURE):
            with self.subTest(name=name):
                # A socket per message, so retransmissions of earlier answers never mix in.
                s = self.udp(timeout=0.4)
                s.sendto(unique(torture(name), "u"), ("127.0.0.1", self.esg.ports["udp"]))
                try:
                    data, _ = s.recvfrom(65535)
                except socket.timeout:
                    data = None
                self.expect(name, data)
        self.assertTrue(self.esg.alive())

    def run_tcp(self, name, payload, bytewise):
        with socket.create_connection(("127.0.0.1", self.esg.ports["tcp"]),
                                      timeout=3.0 if name == "clerr" else 1.0) as c:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return self.exchange(c, payload, bytewise)

    def exchange(self, c, payload, bytewise):
        if bytewise:
            for i in range(len(payload)):
                c.send(payload[i:i + 1])
        else:
            c.sendall(payload)
        return read_answer(c)

    def test_every_message_over_tcp_whole_and_byte_by_byte(self):
        for n, name in enumerate(sorted(TORTURE)):
            # Over TCP, clerr's Content-Length is not a lie yet, and baddn (no empty line after
            # its headers) is not finished: esg waits, then cuts the connection at the message
            # timeout (RFC 4475 §3.1.2.2) without an answer.
            want = None if name in ("clerr", "baddn") else TORTURE[name]
            # dblreq's two requests (a REGISTER, then an INVITE without Contact) arrive in one
            # stream and run on two workers: either answer may come back first.
            wants = (401, 400) if name == "dblreq" else (want,)
            for bytewise in (False, True):
                if name == "clerr" and bytewise:
                    continue
                with self.subTest(name=name, bytewise=bytewise):
                    payload = unique(torture(name), "t%d%d" % (bytewise, n))
                    data = self.run_tcp(name, payload, bytewise)
                    got = status_of(data) if data else None
                    self.assertIn(got, wants, "%s: %r" % (name, data[:80]))
        self.assertTrue(self.esg.alive())


class Protos(EsgTestCase):
    def test_c07_sip_suite_over_udp_leaves_esg_answering(self):
        with tempfile.TemporaryDirectory() as tmp:
            with tarfile.open(os.path.join(DATA, "protos-c07-sip/cases.tar.xz")) as t:
                t.extractall(tmp)
            folder = os.path.join(tmp, "cases")
            with open(os.path.join(folder, "0000.sip"), "rb") as f:
                valid = f.read()
            s = self.udp(timeout=2.0)
            target = ("127.0.0.1", self.esg.ports["udp"])
            cases = sorted(n for n in os.listdir(folder) if not n.endswith(".teardown.sip"))
            self.assertEqual(len(cases), 4527)
            for n, name in enumerate(cases[1:], start=1):
                with open(os.path.join(folder, name), "rb") as f:
                    s.sendto(f.read(), target)
                # A fresh copy of the valid case: new Call-ID and branch.
                probe = (valid.replace(b"Call-ID: 0@127.0.0.1", b"Call-ID: probe-%d@127.0.0.1" % n)
                         .replace(b"branch=z9hG4bK00000000000", b"branch=z9hG4bKprobe%d" % n))
                s.sendto(probe, target)
                want = b"probe-%d@" % n
                deadline = time.time() + 2
                while True:
                    self.assertLess(time.time(), deadline, "no answer after case " + name)
                    data, _ = s.recvfrom(65535)
                    if want in data and status_of(data):
                        break
            self.assertTrue(self.esg.alive())


class StreamLimits(EsgTestCase):
    extra_config = {"transport": {"message_timeout": 1.0, "max_connections_per_address": 8}}

    def test_a_peer_that_never_ends_its_headers_is_cut_off(self):
        slow = self.tcp(timeout=5)
        slow.sendall(b"INVITE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bKs\r\n")
        started = time.time()
        self.assertEqual(slow.recv(100), b"")  # closed by esg
        self.assertLess(time.time() - started, 4)
        # Others are served meanwhile and after.
        c = self.tcp()
        c.sendall(options("after-slow"))
        self.assertEqual(status_of(c.recv(65535)), 200)

    def test_connections_per_address_are_bounded(self):
        conns = []
        for _ in range(8):
            conns.append(self.tcp())
        extra = socket.create_connection(("127.0.0.1", self.esg.ports["tcp"]), timeout=2)
        self.addCleanup(extra.close)
        self.assertEqual(extra.recv(10), b"")  # refused: closed at once
        for c in conns:
            c.close()
        time.sleep(0.2)
        again = self.tcp()
        again.sendall(options("after-limit"))
        self.assertEqual(status_of(again.recv(65535)), 200)


if __name__ == "__main__":
    unittest.main()
