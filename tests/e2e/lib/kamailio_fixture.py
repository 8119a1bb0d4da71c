"""Starts Debian's Kamailio on loopback with a config the test writes (the routing block and
the modules it needs), in the foreground, logging to a file in its own folder, and stops it."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from esg_fixture import make_certificate  # noqa: F401  (the tests take it from here too)

MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules/"


def free_port(kind=socket.SOCK_DGRAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Kamailio:
    """`listen` is a list of "udp:127.0.0.1:PORT" strings; `modules` the .so names beyond the
    core set; `params` lines of modparam(); `routes` the routing blocks."""

    CORE = ("tm", "sl", "rr", "pv", "xlog", "siputils", "textops", "maxfwd")

    def __init__(self, listen, routes, modules=(), params=(), tls=None, folder=None):
        self.dir = folder or tempfile.mkdtemp(prefix="esg-kamailio-")
        self.log = os.path.join(self.dir, "kamailio.log")
        lines = ["#!KAMAILIO", "debug=2", "log_stderror=yes", "children=2", "tcp_children=2",
                 "auto_aliases=no", "dns=no", "rev_dns=no", 'mpath="%s"' % MODULES]
        lines += ["listen=%s" % l for l in listen]
        mods = list(self.CORE) + [m for m in modules if m not in self.CORE]
        if tls:
            lines.append("enable_tls=yes")
            mods.insert(0, "tls")
            tls_cfg = os.path.join(self.dir, "tls.cfg")
            with open(tls_cfg, "w") as f:
                f.write(tls)
            params = list(params) + ['modparam("tls", "config", "%s")' % tls_cfg]
        lines += ['loadmodule "%s.so"' % m for m in mods]
        lines += list(params)
        lines.append(routes)
        self.cfg = os.path.join(self.dir, "kamailio.cfg")
        with open(self.cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.listen = listen
        self.proc = None

    def start(self):
        check = subprocess.run(["kamailio", "-c", "-f", self.cfg], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError("kamailio config rejected:\n" + check.stdout + check.stderr)
        out = open(self.log, "a")
        self.proc = subprocess.Popen(["kamailio", "-f", self.cfg, "-DD", "-E", "-Y", self.dir,
                                      "-P", os.path.join(self.dir, "kamailio.pid")],
                                     stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        # Ready when every listener is bound (UDP: the port is taken; TCP/TLS: it accepts).
        deadline = time.time() + 15
        for l in self.listen:
            proto, addr, port = l.split(":")
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError("kamailio exited; see " + self.log)
                if time.time() > deadline:
                    raise RuntimeError("kamailio did not listen on " + l)
                if self._bound(proto, addr, int(port)):
                    break
                time.sleep(0.05)
        return self

    @staticmethod
    def _bound(proto, addr, port):
        try:
            if proto in ("tcp", "tls"):
                socket.create_connection((addr, port), timeout=0.2).close()
                return True
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((addr, port))
            return False
        except OSError:
            return proto not in ("tcp", "tls")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def log_text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def cleanup(self, keep):
        if keep:
            print("kamailio folder kept:", self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
