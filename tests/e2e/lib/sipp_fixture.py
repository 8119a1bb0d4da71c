"""SIPp (Debian's sip-tester) as a peer of esg: a caller or a callee on a loopback address of
the test's choosing, with the messages it received kept for the test to read."""

import errno
import os
import shutil
import socket
import subprocess
import tempfile
import time


def free_port(ip="127.0.0.1", kind=socket.SOCK_DGRAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def _bound(ip, port, transport):
    kind = socket.SOCK_DGRAM if transport == "u1" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind((ip, port))
        except OSError as e:
            return e.errno == errno.EADDRINUSE
    return False


class SippPeer:
    """One SIPp process. `remote` set: a caller (client mode); unset: a callee that is bound
    when the constructor returns."""

    def __init__(self, scenario, ip, port=None, remote=None, transport="u1", calls=1, keys=None,
                 duration_ms=None, extra=()):
        # A port chosen here may be taken by a test running in parallel before SIPp binds it
        # (free_port can only tell it was free): then SIPp is started again on another one.
        for attempt in range(3):
            self._start(scenario, ip, port, remote, transport, calls, keys, duration_ms, extra)
            if remote is not None or self._wait_bound(transport):
                return
            if port or "errno = 98" not in self.output() or attempt == 2:
                raise RuntimeError("sipp exited: " + self.output())
            self.out.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def _start(self, scenario, ip, port, remote, transport, calls, keys, duration_ms, extra):
        self.dir = tempfile.mkdtemp(prefix="esg-sipp-")
        self.ip = ip
        self.port = port or free_port(ip, socket.SOCK_DGRAM if transport == "u1"
                                      else socket.SOCK_STREAM)
        self.messages_file = os.path.join(self.dir, "messages.log")
        cmd = ["sipp"] + ([remote] if remote else []) + [
            "-sf", scenario, "-i", ip, "-p", str(self.port), "-t", transport, "-m", str(calls),
            "-nostdin", "-timeout", "40", "-timeout_error", "-trace_msg", "-message_file",
            self.messages_file, "-trace_err", "-error_file", os.path.join(self.dir, "err.log")]
        for k, v in (keys or {}).items():
            cmd += ["-key", k, v]
        if duration_ms is not None:
            cmd += ["-d", str(duration_ms)]
        cmd += list(extra)
        self.cmd = cmd
        self.out = open(os.path.join(self.dir, "sipp.out"), "w+")
        self.proc = subprocess.Popen(cmd, cwd=self.dir, stdout=self.out, stderr=subprocess.STDOUT)

    def _wait_bound(self, transport):
        """True once the callee listens; False if SIPp exited first."""
        deadline = time.time() + 5
        while time.time() < deadline and not _bound(self.ip, self.port, transport):
            if self.proc.poll() is not None:
                return False
            time.sleep(0.02)
        return True

    def wait(self, timeout=45):
        """SIPp's exit status (0: every call succeeded)."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -1

    def output(self):
        self.out.flush()
        with open(self.out.name, errors="replace") as f:
            text = f.read()
        for name in ("err.log",):
            path = os.path.join(self.dir, name)
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    text += "\n--- " + name + "\n" + f.read()[-3000:]
        return text[-6000:]

    def messages(self):
        if not os.path.exists(self.messages_file):
            return ""
        with open(self.messages_file, errors="replace") as f:
            return f.read()

    def received(self, method):
        """The messages of `method` (a request name) SIPp received, as text."""
        out = []
        for block in self.messages().split("----------------------------------------------- "):
            if "message received" in block:
                text = block.split("\n", 2)[-1] if "\n" in block else block
                body = text.split("message received", 1)[-1]
                body = body.split("\n", 1)[1] if "\n" in body else body
                if body.lstrip().startswith(method + " "):
                    out.append(body.lstrip())
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.out.close()

    def cleanup(self, keep):
        if keep:
            print("sipp kept in", self.dir, " ".join(self.cmd))
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
