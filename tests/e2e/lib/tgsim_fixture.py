"""Starts the Telegram simulator (tests/tgsim/tgsim.py) for a test and drives it through its
control port. esg reaches it through libtdjson_sim.so: point `telegram.tdjson` at `LIB` and
give esg the environment `env()`."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TGSIM = os.path.join(HERE, "..", "..", "tgsim", "tgsim.py")
LIB = os.environ.get("ESG_TGSIM_LIB", "build/tests/tgsim/libtdjson_sim.so")
TDJSON = os.environ.get("ESG_TDJSON",
                        "third_party/node_modules/@prebuilt-tdlib/linux-x64-glibc/libtdjson.so")
# The reference call engine (the real tgcalls) the simulated users' apps run; tgsim.py finds it
# the same way.
TGPEER = os.environ.get("ESG_TGPEER") or os.path.normpath(
    os.path.join(HERE, "..", "..", "..", "..", "shared", "tools", "tgpeer", "tgpeer"))


class TgSim:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="esg-tgsim-")
        self.socket = os.path.join(self.dir, "tgsim.sock")
        ready = os.path.join(self.dir, "ready")
        self.out = open(os.path.join(self.dir, "tgsim.out"), "w")
        self.proc = subprocess.Popen(
            [sys.executable, TGSIM, "--socket", self.socket, "--ready-file", ready],
            stdout=self.out, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while not os.path.exists(ready):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("tgsim did not start: " + self.output())
            time.sleep(0.02)
        with open(ready) as f:
            self.port = int(f.read())
        self.ctl_sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.ctl_file = self.ctl_sock.makefile("rwb")

    def env(self):
        return {"TGSIM_SOCKET": self.socket}

    def ctl(self, op, **fields):
        """One control command; its answer (an {"error": ...} answer raises)."""
        self.ctl_file.write(json.dumps(dict(fields, op=op)).encode() + b"\n")
        self.ctl_file.flush()
        answer = json.loads(self.ctl_file.readline())
        if "error" in answer:
            raise AssertionError("tgsim %s: %s" % (op, answer["error"]))
        return answer

    def user(self, **fields):
        return self.ctl("user.create", **fields)["id"]

    def output(self):
        self.out.flush()
        with open(os.path.join(self.dir, "tgsim.out"), errors="replace") as f:
            return f.read()

    def stop(self):
        try:
            self.ctl_sock.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.out.closed:
            self.out.close()

    def cleanup(self, keep=False):
        if keep:
            print("tgsim kept in", self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
