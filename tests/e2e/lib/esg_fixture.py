"""Starts build/esg on a config written by the test, with ports chosen at run time, and stops it.
A failed test keeps the process output and the transaction log in the printed folder."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

ESG = os.environ.get("ESG_BIN", "build/esg")
DATA = os.environ.get("ESG_TEST_DATA", "tests/data")
TOKEN = "test-token"


def make_certificate(folder):
    """A self-signed certificate for 127.0.0.1 (the test's own CA)."""
    cert = os.path.join(folder, "cert.pem")
    key = os.path.join(folder, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


class EsgProcess:
    def __init__(self, extra=None, listen=(("udp", "127.0.0.1"), ("tcp", "127.0.0.1")),
                 env=None, folder=None):
        """`env`: more environment for esg; `folder`: an earlier EsgProcess's folder, to start
        esg again on the same store (a restart)."""
        self.dir = folder or tempfile.mkdtemp(prefix="esg-e2e-")
        self.log_dir = os.path.join(self.dir, "log")
        config = {
            "instance": {"workers": 2},
            "listen": [{"proto": p, "addr": a, "port": 0} for p, a in listen],
            "log": {"dir": self.log_dir, "log_trn": True},
            "store": {"sqlite": os.path.join(self.dir, "esg.db")},
            "http": {"listen": "127.0.0.1:0", "token": TOKEN},
            # The parser and transport tests send hundreds of INVITEs for unknown accounts from
            # 127.0.0.1, quickly; bans and the flood limit are tested with their own thresholds
            # (border/).
            "security": {"ban": {"failures": 1000000}, "pike": {"requests": 0}},
        }
        pg = os.environ.get("ESG_TEST_POSTGRES")
        if pg and "store" not in (extra or {}):
            config["store"] = {"postgres": self._postgres_database(pg)}
        for key, value in (extra or {}).items():
            config[key] = value
        # SIGTERM ends calls still up after this long: tests stop esg with calls up at times.
        config["instance"] = dict(config.get("instance") or {})
        config["instance"].setdefault("stop_timeout", 1)
        self.config_path = os.path.join(self.dir, "esg.json")
        with open(self.config_path, "w") as f:
            json.dump(config, f)
        self.out = open(os.path.join(self.dir, "esg.out"), "a+")
        self.proc = subprocess.Popen([ESG, "run", "--config", self.config_path],
                                     stdout=subprocess.PIPE, stderr=self.out, text=True,
                                     env=dict(os.environ, **(env or {})))
        self.ports = {}
        deadline = time.time() + 15
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.out.write(line)
            m = re.match(r"listening on (\w+) [\d.:a-f\[\]]+:(\d+)", line)
            if m:
                self.ports.setdefault(m.group(1), int(m.group(2)))
            if line.startswith("ready"):
                return
        self.stop()
        raise RuntimeError("esg did not start; see " + self.dir)

    def _postgres_database(self, server):
        """ESG_TEST_POSTGRES names a server (cluster/test_store_pg.py starts one): each esg
        gets a database of its own there, the same one again when restarted on its folder."""
        path = os.path.join(self.dir, "postgres-url")
        if os.path.exists(path):
            with open(path) as f:
                return f.read()
        name = "esg_" + os.path.basename(self.dir).replace("-", "_").lower()
        subprocess.run(["psql", server, "-q", "-c", "CREATE DATABASE %s" % name], check=True,
                       capture_output=True)
        url = server.rsplit("/", 1)[0] + "/" + name
        with open(path, "w") as f:
            f.write(url)
        return url

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rest = self.proc.stdout.read() if self.proc.stdout else ""
        self.out.write(rest or "")
        self.out.flush()
        return self.proc.returncode

    def trn_lines(self):
        # The writer gathers a burst's lines for 20 ms (TrnLog::kGather) and writes them in one
        # go: what happened before this call is in the files a moment later.
        time.sleep(0.1)
        lines = []
        for name in sorted(os.listdir(self.log_dir)) if os.path.isdir(self.log_dir) else []:
            with open(os.path.join(self.log_dir, name), errors="replace") as f:
                lines += f.read().splitlines()
        return lines

    def cleanup(self, keep):
        if keep:
            print("esg fixture kept in", self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


class KeepOnFailure(unittest.TestCase):
    """Remembers, per class, that a test failed, so the class keeps its folders for a look."""

    failed = False

    def run(self, result=None):
        result = super().run(result)
        if result and (result.failures or result.errors):
            type(self).failed = True
        return result


def stop_all(failed, esg, *peers):
    """Stops esg first (it may still un-register from its peers), then the peers; keeps every
    folder when a test failed or esg did not exit cleanly. A clean stop is part of every test:
    sanitizer reports and leaks end in a non-zero exit. `esg` may be None (a set-up that failed
    before it started): the peers are still stopped and their folders kept."""
    code = esg.stop() if esg else 0
    for p in peers:
        p.stop()
    keep = failed or code != 0
    if esg:
        esg.cleanup(keep=keep)
    for p in peers:
        p.cleanup(keep=keep)
    if code != 0:
        raise AssertionError("esg exited with %d; output kept in %s" % (code, esg.dir))


class EsgTestCase(KeepOnFailure):
    """One esg per test class; its folder is kept when a test failed."""

    extra_config = None

    @classmethod
    def setUpClass(cls):
        cls.esg = EsgProcess(cls.extra_config)
        cls.failed = False

    @classmethod
    def tearDownClass(cls):
        stop_all(cls.failed, cls.esg)

    # Helpers

    def udp(self, timeout=2.0):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(timeout)
        self.addCleanup(s.close)
        return s

    def tcp(self, timeout=2.0):
        c = socket.create_connection(("127.0.0.1", self.esg.ports["tcp"]), timeout=timeout)
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.addCleanup(c.close)
        return c


def options(call_id, branch=None, via_host="127.0.0.1:5999", extra=""):
    # A new transaction each time unless the test says otherwise: same branch and sent-by would
    # make it a retransmission of an earlier one (RFC 3261 §17.2.3).
    branch = branch or "z9hG4bK" + re.sub(r"[^A-Za-z0-9]", "", call_id)
    return ("OPTIONS sip:esg@127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {via_host};rport;branch={branch}\r\n"
            "From: <sip:probe@127.0.0.1>;tag=p1\r\nTo: <sip:esg@127.0.0.1>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n{extra}"
            "Content-Length: 0\r\n\r\n").encode()


def ask_options(esg_port, ip, extra="", timeout=1.0):
    """An OPTIONS to esg's UDP port from a socket of our own at `ip`: the status of the answer,
    or None for silence (border drops and bans)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, 0))
    s.settimeout(timeout)
    try:
        s.sendto(options("ask-%s-%f" % (ip, time.time()), extra=extra), ("127.0.0.1", esg_port))
        return status_of(read_answer(s))
    finally:
        s.close()


def read_answer(sock):
    """Bytes up to the end of a response's headers, or what came before a timeout or close."""
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65535)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, OSError):
        pass
    return data


def status_of(packet):
    m = re.match(rb"SIP/2\.0 (\d{3}) ", packet)
    return int(m.group(1)) if m else None


def header(packet, name):
    m = re.search(rb"(?im)^" + name.encode() + rb"\s*:\s*(.*?)\r?$", packet)
    return m.group(1).decode(errors="replace") if m else None
