"""A PostgreSQL server of the test's own: a fresh cluster in a temporary folder, listening on
127.0.0.1 on a free port only (no Unix socket in the system's folder). initdb and the server
refuse to run as root, so they run as the `postgres` user via runuser when the tests run as root
(CI does)."""

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time


def _bin(name):
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/" + name))
    if not found:
        raise RuntimeError("PostgreSQL's %s not found (package postgresql)" % name)
    return found[-1]


def _free_tcp_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="esg-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = _free_tcp_port()
        self.proc = None
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(self.as_user + [_bin("initdb"), "-D", self.data, "-A", "trust",
                                       "-U", "postgres", "--no-sync", "-E", "UTF8"],
                       check=True, capture_output=True)
        self.url = "postgresql://postgres@127.0.0.1:%d/postgres" % self.port

    def start(self):
        log = open(os.path.join(self.dir, "postgres.log"), "a")
        # fsync off: a test cluster, thrown away afterwards; speed matters more than durability.
        self.proc = subprocess.Popen(
            self.as_user + [_bin("postgres"), "-D", self.data, "-p", str(self.port),
                            "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" +
                            self.dir, "-c", "fsync=off", "-c", "synchronous_commit=off",
                            "-c", "full_page_writes=off", "-c", "max_connections=50"],
            stdout=log, stderr=log)
        deadline = time.time() + 30
        while time.time() < deadline:
            r = subprocess.run([_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                               capture_output=True)
            if r.returncode == 0:
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("PostgreSQL did not start; see " + self.dir)

    def stop(self):
        """Fast shutdown: clients are disconnected at once (as when the server goes away)."""
        if self.proc and self.proc.poll() is None:
            # To the postmaster itself: runuser does not pass SIGINT on.
            try:
                with open(os.path.join(self.data, "postmaster.pid")) as f:
                    os.kill(int(f.readline()), signal.SIGINT)
            except (OSError, ValueError):
                self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def query(self, sql):
        r = subprocess.run([_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
                            "postgres", "-At", "-c", sql],
                           capture_output=True, text=True, timeout=20)
        if r.returncode != 0:
            raise RuntimeError(r.stderr)
        return r.stdout

    def cleanup(self, keep):
        if keep:
            print("postgres folder kept:", self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
