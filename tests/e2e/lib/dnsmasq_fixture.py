"""Debian's dnsmasq as an authoritative DNS server on loopback for the records a test writes
(`--host-record`, `--srv-host`, `--naptr-record` arguments), answering only for its own zone."""

import os
import shutil
import socket
import subprocess
import tempfile
import time


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def a_query(name):
    """A minimal DNS query for `name`'s A record, as bytes."""
    q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    for part in name.split("."):
        q += bytes([len(part)]) + part.encode()
    return q + b"\x00\x00\x01\x00\x01"


class Dnsmasq:
    def __init__(self, zone, records, probe):
        """`zone` answered locally (nothing is forwarded anywhere), `records` dnsmasq options,
        `probe` a name with an A record to know when it is up."""
        self.dir = tempfile.mkdtemp(prefix="esg-dns-")
        self.log = os.path.join(self.dir, "dnsmasq.log")
        errors = []
        # A port free for UDP may be taken for TCP (dnsmasq binds both): try a few.
        for _ in range(3):
            if self._start(zone, records, probe):
                return
            errors.append(self.proc.stderr.read().decode(errors="replace") if self.proc.stderr
                          else "")
        self.stop()
        raise RuntimeError("dnsmasq did not start: " + " | ".join(e.strip() for e in errors))

    def _start(self, zone, records, probe):
        self.port = free_port()
        self.proc = subprocess.Popen([
            "dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
            "--port=%d" % self.port, "--listen-address=127.0.0.1", "--bind-interfaces",
            "--user=root", "--local=/%s/" % zone, "--local-ttl=60", "--log-queries",
            "--log-facility=" + self.log, "--pid-file=" + os.path.join(self.dir, "pid"),
            *records], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 5
        while time.time() < deadline:  # wait until it answers
            if self.proc.poll() is not None:
                return False
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(0.2)
                try:
                    s.sendto(a_query(probe), ("127.0.0.1", self.port))
                    if s.recv(512):
                        return True
                except OSError:
                    pass
            time.sleep(0.1)
        self.proc.terminate()
        self.proc.wait(timeout=5)
        return False

    @property
    def server(self):
        return "127.0.0.1:%d" % self.port

    def queries(self, what):
        with open(self.log) as f:
            return f.read().count(what)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)

    def cleanup(self, keep):
        pass  # stop() removed the folder: the queries are only of use while it runs
