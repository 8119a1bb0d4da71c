"""The stack end to end: SIPp against esg-ua (esg's transport, transactions and dialogs) as
UAC and UAS, over UDP and TCP: full calls, CANCEL, a busy reject, and calls through 10% loss."""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
UA = os.environ.get("ESG_UA_BIN", "build/esg-ua")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, transport, seconds=10):
    """Until SIPp has bound its port: a TCP connect succeeds, or the UDP port is taken."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if transport == "t1":
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", port))  # still free: SIPp is not there yet
        except OSError:
            if transport != "t1":
                return
        time.sleep(0.05)
    raise RuntimeError("sipp did not start listening")


class UaProcess:
    def __init__(self, *args):
        self.dir = tempfile.mkdtemp(prefix="esg-ua-")
        self.trn = os.path.join(self.dir, "trn")
        self.proc = subprocess.Popen([UA, "--udp", "127.0.0.1:0", "--tcp", "127.0.0.1:0",
                                      "--workers", "2", "--trn", self.trn, *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.ports = {}
        for line in self.proc.stdout:
            m = re.match(r"listening on (\w+) [\d.]+:(\d+)", line)
            if m:
                self.ports[m.group(1)] = int(m.group(2))
            if line.startswith("ready"):
                return
        raise RuntimeError("esg-ua did not start")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=10)
        return code

    def trn_lines(self):
        out = []
        for name in sorted(os.listdir(self.trn)):
            with open(os.path.join(self.trn, name), errors="replace") as f:
                out += f.read().splitlines()
        return out


def sipp(target_port, transport, calls, *args):
    for _ in range(3):  # a free port can be taken by another test before SIPp binds it
        cmd = ["sipp", "127.0.0.1:%d" % target_port, "-t", transport, "-i", "127.0.0.1",
               "-p", str(free_port()), "-m", str(calls), "-r", "100", "-timeout", "90",
               "-timeout_error", "-nostdin", "-nd", *args]
        with tempfile.TemporaryDirectory() as cwd:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=150, cwd=cwd)
        if "Unable to bind main socket" not in r.stdout + r.stderr:
            return r
    return r


def successful(r):
    m = re.findall(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", r.stdout)
    return int(m[-1]) if m else -1


class UaTestCase(unittest.TestCase):
    ua_args = ()

    def setUp(self):
        self.ua = UaProcess(*self.ua_args)

    def tearDown(self):
        code = self.ua.stop()
        failed = any(e for _, e in (self._outcome.result.errors + self._outcome.result.failures))
        if failed:
            print("esg-ua folder kept:", self.ua.dir)
        else:
            shutil.rmtree(self.ua.dir, ignore_errors=True)
        self.assertEqual(code, 0, "esg-ua did not stop cleanly")

    def assertCalls(self, r, calls):
        self.assertEqual(r.returncode, 0, r.stdout[-1500:] + r.stderr[-1500:])
        self.assertEqual(successful(r), calls, r.stdout[-1500:])


class SippCallsEsgUa(UaTestCase):
    ua_args = ("--ring-ms", "50")

    def test_full_calls_over_udp_and_tcp(self):
        # SIPp's uac: INVITE, 100, 180, 200, ACK, BYE, 200.
        self.assertCalls(sipp(self.ua.ports["udp"], "u1", 50, "-sn", "uac", "-d", "100"), 50)
        self.assertCalls(sipp(self.ua.ports["tcp"], "t1", 50, "-sn", "uac", "-d", "100"), 50)
        # The transaction log holds every packet SIPp exchanged with esg-ua.
        lines = self.ua.trn_lines()
        invites = [l for l in lines if " Recv from " in l and re.search(r"\) ?INVITE |> Recv from \S+ \S+ INVITE ", l)]
        self.assertGreaterEqual(len(invites), 100)
        for what in (r"Recv from udp \S+ ACK ", r"Recv from tcp \S+ BYE ",
                     r"Send to udp \S+ \(ok\) SIP/2\.0 180 ", r"Send to tcp \S+ \(ok\) SIP/2\.0 200 "):
            self.assertTrue(any(re.search(what, l) for l in lines), what)

    def test_calls_complete_through_ten_percent_loss(self):
        r = sipp(self.ua.ports["udp"], "u1", 100, "-sn", "uac", "-d", "100", "-lost", "10",
                 "-max_retrans", "20", "-recv_timeout", "60000")
        self.assertCalls(r, 100)
        # esg-ua retransmitted: some 200 OK (or BYE answer) left more than once for a call.
        sends = {}
        for l in self.ua.trn_lines():
            m = re.search(r" Send to udp \S+ \(ok\) SIP/2\.0 200 OK .*?Call-ID: (\S+) CSeq: (\d+ \w+)", l)
            if m:
                sends[m.groups()] = sends.get(m.groups(), 0) + 1
        self.assertTrue(any(n > 1 for n in sends.values()), "no retransmission in the trn log")

    def test_cancel_before_answer(self):
        self.ua.stop()
        self.ua = UaProcess("--ring-ms", "5000")
        self.assertCalls(sipp(self.ua.ports["udp"], "u1", 20,
                              "-sf", os.path.join(HERE, "cancel.xml")), 20)
        self.assertCalls(sipp(self.ua.ports["tcp"], "t1", 20,
                              "-sf", os.path.join(HERE, "cancel.xml")), 20)


class SippCallsEsgUaWith100rel(UaTestCase):
    ua_args = ("--100rel", "--ring-ms", "100")

    def test_reliable_ringing_is_pracked_before_the_answer(self):
        scenario = os.path.join(HERE, "uac_100rel.xml")
        self.assertCalls(sipp(self.ua.ports["udp"], "u1", 20, "-sf", scenario), 20)
        self.assertCalls(sipp(self.ua.ports["tcp"], "t1", 20, "-sf", scenario), 20)
        lines = self.ua.trn_lines()
        self.assertTrue(any(re.search(r"Send to udp \S+ \(ok\) SIP/2\.0 180 .*Require: 100rel RSeq: \d+", l)
                            for l in lines))
        self.assertTrue(any(re.search(r"Recv from tcp \S+ PRACK .*RAck: \d+ 1 INVITE", l) for l in lines))


class SippRejected(UaTestCase):
    ua_args = ("--reject", "486")

    def test_busy_reject_is_acknowledged(self):
        self.assertCalls(sipp(self.ua.ports["udp"], "u1", 30,
                              "-sf", os.path.join(HERE, "invite_busy.xml")), 30)


class EsgUaCallsSipp(unittest.TestCase):
    def run_calls(self, transport, scenario=("-sn", "uas")):
        with tempfile.TemporaryDirectory() as cwd:
            errors = os.path.join(cwd, "errors.log")
            for _ in range(3):  # a free port can be taken by another test before SIPp binds it
                port = free_port()
                uas = subprocess.Popen(["sipp", *scenario, "-i", "127.0.0.1", "-p", str(port),
                                        "-t", transport, "-nostdin", "-nd", "-m", "30",
                                        "-trace_err", "-error_file", errors],
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True, cwd=cwd)
                try:
                    wait_listening(port, transport)
                except RuntimeError:
                    uas.kill()
                    uas.wait()
                    continue
                if uas.poll() is None:
                    break
            try:
                r = subprocess.run([UA, "--udp", "127.0.0.1:0", "--tcp", "127.0.0.1:0", "--via",
                                    "tcp" if transport == "t1" else "udp", "--call",
                                    "sip:service@127.0.0.1:%d" % port, "--calls", "30", "--rate",
                                    "50", "--hold-ms", "50",
                                    # SIPp's UAS pauses 4 s after each call: over TCP, keep the
                                    # connection until it is done (a close fails its calls).
                                    "--linger-ms", "4500" if transport == "t1" else "0"],
                                   capture_output=True, text=True, timeout=60)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertIn("calls 30 ok 30 failed 0", r.stdout)
                out, _ = uas.communicate(timeout=30)
                log = open(errors).read() if os.path.exists(errors) else ""
                self.assertEqual(uas.returncode, 0, out[-2000:] + log[-3000:])
            finally:
                if uas.poll() is None:
                    uas.kill()
                    uas.wait()

    def test_calls_to_sipp_uas_over_udp(self):
        self.run_calls("u1")

    def test_calls_to_sipp_uas_over_tcp(self):
        self.run_calls("t1")

    def test_reliable_ringing_from_sipp_is_pracked(self):
        for transport in ("u1", "t1"):
            self.run_calls(transport, ("-sf", os.path.join(HERE, "uas_100rel.xml")))


if __name__ == "__main__":
    unittest.main()
