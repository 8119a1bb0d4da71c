"""A private network namespace for Telegram media tests, entered by the test process itself:

    namespace esgtg<pid>:  lo 127.0.0.0/8 (SIP)   tgva 192.0.2.1/24 --veth-- tgvb 192.0.2.2/24

WebRTC (tgpeer, the simulated user's call engine) skips loopback interfaces when it gathers host
candidates, so the Telegram side needs real addresses: RFC 5737 TEST-NET-1 on a veth pair, both
ends inside the one namespace. Once entered (setns on the calling thread), everything the test
starts afterwards (esg, tgsim, tgpeer, the PBX, HTTP requests, threads) runs inside it, and the
namespace's own loopback serves SIP. It has no route out: nothing can leave it. On exit the test
goes back to its original namespace and deletes this one; namespaces of dead test processes
(esgtg<pid> with no such pid) are deleted at the start.

Because both veth ends are in the same namespace, traffic between 192.0.2.1 and 192.0.2.2
actually goes over lo (tgpeer's README): loss and cuts are done with iptables on addresses and
on the sending process's group, never on interfaces. Needs root (CI runs as root); tests skip
with unavailable()'s reason otherwise."""

import base64
import ctypes
import ctypes.util
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

CLONE_NEWNET = 0x40000000
ADDR_A = "192.0.2.1"
ADDR_B = "192.0.2.2"
# IPv6 documentation addresses (RFC 3849) on the same veth pair, added by ipv6() (nodad: usable
# at once, no duplicate address detection wait).
ADDR6_A = "2001:db8::1"
ADDR6_B = "2001:db8::2"
REFLECTOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tgsim",
                         "reflector.py")
NET = "192.0.2.0/24"
# second_network()'s addresses (RFC 5737 TEST-NET-2).
ADDR2_A = "198.51.100.1"
ADDR2_B = "198.51.100.2"
TURN_PORT = 3478
PREFIX = "esgtg"

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _run(*args):
    return subprocess.run(list(args), check=True, capture_output=True, text=True)


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "setns: " + os.strerror(err))


class TgNet:
    """with TgNet() as net: ... (the process is inside the namespace until the block ends)."""

    def __init__(self):
        self.name = PREFIX + str(os.getpid())
        self._home = None  # fd of the namespace we came from
        self._rules = []  # iptables rules we added, as argument lists after -D
        self._turn = None
        self._dir = None
        self._reflectors = []
        self._next_reflector_id = 7000000000000000001  # int64 ids, as Telegram's are
        self._v6 = False
        self.created = False

    @staticmethod
    def unavailable():
        """Why the namespace cannot be made here, or None."""
        if os.geteuid() != 0:
            return "network namespaces need root"
        for tool in ("/usr/sbin/ip", "/usr/sbin/iptables"):
            if not os.path.exists(tool):
                return tool + " is missing (packages iproute2, iptables)"
        return None

    @staticmethod
    def remove_stale():
        """Deletes esgtg<pid> namespaces whose process is gone (a test killed by a timeout)."""
        out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            m = re.match(r"(%s(\d+))\b" % PREFIX, line)
            if m and not os.path.exists("/proc/" + m.group(2)):
                subprocess.run(["ip", "netns", "del", m.group(1)], capture_output=True)

    def __enter__(self):
        self.remove_stale()
        try:
            self._build()
            self._home = os.open("/proc/self/ns/net", os.O_RDONLY)
            fd = os.open("/var/run/netns/" + self.name, os.O_RDONLY)
            try:
                _setns(fd)
            finally:
                os.close(fd)
        except (subprocess.CalledProcessError, OSError) as e:
            self.close()
            if isinstance(e, subprocess.CalledProcessError):
                raise RuntimeError("%s: %s" % (" ".join(e.cmd), e.stderr)) from e
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def _build(self):
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)  # a pid reused
        _run("ip", "netns", "add", self.name)
        self.created = True
        ns = ("ip", "-n", self.name)
        _run(*ns, "link", "set", "lo", "up")
        _run(*ns, "link", "add", "tgva", "type", "veth", "peer", "name", "tgvb")
        _run(*ns, "addr", "add", ADDR_A + "/24", "dev", "tgva")
        _run(*ns, "addr", "add", ADDR_B + "/24", "dev", "tgvb")
        _run(*ns, "link", "set", "tgva", "up")
        _run(*ns, "link", "set", "tgvb", "up")

    def second_network(self):
        """Another network appears, as when a phone's LTE comes up beside its Wi-Fi: a veth pair
        tgvc 198.51.100.1/24 --- tgvd 198.51.100.2/24 (RFC 5737 TEST-NET-2) in the namespace,
        routed only inside it like the first. WebRTC's network monitor sees a new interface and
        gathers on it. Returns the two addresses; the namespace's deletion removes it."""
        ns = ("ip", "-n", self.name)
        _run(*ns, "link", "add", "tgvc", "type", "veth", "peer", "name", "tgvd")
        _run(*ns, "addr", "add", ADDR2_A + "/24", "dev", "tgvc")
        _run(*ns, "addr", "add", ADDR2_B + "/24", "dev", "tgvd")
        _run(*ns, "link", "set", "tgvc", "up")
        _run(*ns, "link", "set", "tgvd", "up")
        return ADDR2_A, ADDR2_B

    def inside(self):
        """True when this thread is in the namespace (its inode differs from the one we left)."""
        return self._home is not None and \
            os.stat("/proc/self/ns/net").st_ino != os.fstat(self._home).st_ino

    # --- network conditions (iptables inside the namespace) -------------------------------

    def _add(self, chain_rule):
        _run("iptables", "-w", "-I", *chain_rule)
        self._rules.append(chain_rule)

    def _delete(self, chain_rule):
        while chain_rule in self._rules:
            self._rules.remove(chain_rule)
            subprocess.run(["iptables", "-w", "-D"] + list(chain_rule), capture_output=True)

    def _loss_rule(self, p):
        # Packets between the two veth addresses are delivered over lo and pass OUTPUT once
        # (then INPUT): one rule in OUTPUT drops a share p of each direction, and the SIP side
        # on 127.0.0.0/8 is not touched.
        return ["OUTPUT", "-p", "udp", "-d", NET, "-m", "statistic", "--mode", "random",
                "--probability", "%.4f" % p, "-j", "DROP"]

    def loss(self, p):
        """Drops a random share p (0..1) of the UDP packets to 192.0.2.0/24, each way."""
        self.no_loss()
        rule = self._loss_rule(p)
        self._add(rule)
        self._loss = rule

    def no_loss(self):
        rule = getattr(self, "_loss", None)
        if rule:
            self._delete(rule)
            self._loss = None

    @staticmethod
    def _gid_rule(gid):
        return ["OUTPUT", "-m", "owner", "--gid-owner", str(int(gid)), "-j", "DROP"]

    def cut_gid(self, gid):
        """Everything processes of group `gid` send is dropped (tgpeer run under setpriv
        --regid gid): its network is gone, the rest of the namespace keeps working. The owner
        match covers every socket of the process, also ones opened later. Only sending is cut:
        iptables cannot match the receiving process, and the ports tgpeer uses change (WebRTC
        regathers with new sockets every 8 s), so an INPUT rule on ports would not hold; with
        nothing sent, no ICE check of the other side gets an answer, so the path is dead both
        ways (tgpeer's README, 'Cutting only tgpeer')."""
        rule = self._gid_rule(gid)
        if rule not in self._rules:
            self._add(rule)

    def restore_gid(self, gid):
        self._delete(self._gid_rule(gid))

    def dropped(self, gid=None):
        """Packets the loss rule (or the gid's cut) dropped so far, from iptables' counters."""
        out = _run("iptables", "-w", "-L", "OUTPUT", "-v", "-n", "-x").stdout
        want = ("owner GID match %d" % gid) if gid is not None else "statistic mode random"
        return sum(int(line.split()[0]) for line in out.splitlines()[2:] if want in line)

    # --- TURN ------------------------------------------------------------------------------

    def turn(self, user="esgturn", password="esgturnpw", realm="esg.test"):
        """Debian's coturn on 192.0.2.2:3478 (UDP only, long-term credentials, relay addresses
        from 192.0.2.2 too: no outside relay), stopped on exit. Returns the TDLib callServer
        object for it (callServerTypeWebrtc, TURN and STUN)."""
        if self._turn is None:
            self._dir = tempfile.mkdtemp(prefix="esg-tgnet-")
            log = open(os.path.join(self._dir, "turnserver.log"), "w")
            self._turn = subprocess.Popen(
                ["turnserver", "-n", "--listening-ip", ADDR_B, "--relay-ip", ADDR_B,
                 "--listening-port", str(TURN_PORT), "--no-tcp", "--no-tls", "--no-dtls",
                 "--no-tcp-relay", "--lt-cred-mech", "--user", "%s:%s" % (user, password),
                 "--realm", realm, "--no-cli", "--log-file", "stdout", "--simple-log",
                 "--min-port", "49160", "--max-port", "49400", "--pidfile",
                 os.path.join(self._dir, "turnserver.pid")],
                stdout=log, stderr=subprocess.STDOUT)
            log.close()
            self._wait_turn()
            # A rule without a target only counts: what reached the TURN server (turn_packets).
            self._add(["INPUT", "-p", "udp", "-d", ADDR_B, "--dport", str(TURN_PORT)])
        return {"@type": "callServer", "id": "1", "ip_address": ADDR_B, "ipv6_address": "",
                "port": TURN_PORT,
                "type": {"@type": "callServerTypeWebrtc", "username": user, "password": password,
                         "supports_turn": True, "supports_stun": True}}

    def _wait_turn(self):
        deadline = time.time() + 10
        while time.time() < deadline:
            if self._turn.poll() is not None:
                raise RuntimeError("turnserver exited: " + self.turn_log())
            out = subprocess.run(["ss", "-uanp"], capture_output=True, text=True).stdout
            if "%s:%d" % (ADDR_B, TURN_PORT) in out:
                return
            time.sleep(0.05)
        raise RuntimeError("turnserver did not listen: " + self.turn_log())

    def turn_packets(self):
        """UDP packets that reached the TURN server's port so far."""
        out = _run("iptables", "-w", "-L", "INPUT", "-v", "-n", "-x").stdout
        return sum(int(line.split()[0]) for line in out.splitlines()[2:]
                   if "dpt:%d" % TURN_PORT in line and ADDR_B in line)

    def turn_log(self):
        try:
            with open(os.path.join(self._dir, "turnserver.log"), errors="replace") as f:
                return f.read()[-4000:]
        except (OSError, TypeError):
            return ""

    # --- reflectors --------------------------------------------------------------------------

    def ipv6(self):
        """Gives the veth pair ADDR6_A and ADDR6_B (once)."""
        if not self._v6:
            ns = ("ip", "-n", self.name)
            _run(*ns, "-6", "addr", "add", ADDR6_A + "/64", "dev", "tgva", "nodad")
            _run(*ns, "-6", "addr", "add", ADDR6_B + "/64", "dev", "tgvb", "nodad")
            self._v6 = True

    def _reflector_id(self, server_id):
        if server_id is None:
            server_id = self._next_reflector_id
            self._next_reflector_id += 1
        return str(server_id)

    def reflector(self, port=5600, server_id=None, ipv6=False, self_info=False, drop=0.0,
                  jitter_ms=0.0, delay_ms=0.0, seed=None):
        """The test reflector (tests/tgsim/reflector.py) on ADDR_B:port (UDP) and, with ipv6,
        also on [ADDR6_B]:port under the same server id; stopped on exit. Returns its handle:
        .entry for tgsim's call.network reflectors, .server() a callServer object, and the
        impairment controls (drop, jitter, stop, resume, stats)."""
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="esg-tgnet-")
        if ipv6:
            self.ipv6()
        r = Reflector(self._dir, self._reflector_id(server_id), port, ipv6, self_info, drop,
                      jitter_ms, delay_ms, seed)
        self._reflectors.append(r)
        return r

    def tcp_reflector(self, port=5699, server_id=None):
        """A TCP reflector entry (is_tcp true) nobody listens on: clients must skip it (and
        it still takes its rank in the server id numbering, TELEGRAM-CALLS.md §5.1)."""
        return {"id": self._reflector_id(server_id), "ip_address": ADDR_B, "ipv6_address": "",
                "port": port, "is_tcp": True}

    # --- the end ---------------------------------------------------------------------------

    def close(self):
        for r in self._reflectors:
            r.close()
        self._reflectors = []
        if self._turn is not None:
            self._turn.terminate()
            try:
                self._turn.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._turn.kill()
                self._turn.wait()
            self._turn = None
        for rule in list(self._rules):
            self._delete(rule)
        if self._home is not None:
            try:
                _setns(self._home)
            finally:
                os.close(self._home)
                self._home = None
        if self.created:
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
            self.created = False
        if self._dir:
            import shutil
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


class Reflector:
    """One test reflector process (one server id; IPv4 and maybe IPv6), driven over its control
    port (JSON lines on 127.0.0.1 of the namespace)."""

    def __init__(self, work_dir, server_id, port, ipv6, self_info, drop, jitter_ms, delay_ms,
                 seed):
        self.id, self.port = server_id, port
        self.ip_address = ADDR_B
        self.ipv6_address = ADDR6_B if ipv6 else ""
        self.peer_tag = base64.b64encode(os.urandom(16)).decode()  # for server() without one
        base = os.path.join(work_dir, "reflector-%s-%d" % (server_id, port))
        self.log_path = base + ".log"
        ready = base + ".ready"
        argv = [sys.executable, REFLECTOR, "--listen", "%s:%d" % (ADDR_B, port),
                "--control-port", "0", "--ready-file", ready, "--drop", str(drop),
                "--jitter-ms", str(jitter_ms), "--delay-ms", str(delay_ms)]
        if ipv6:
            argv += ["--listen", "[%s]:%d" % (ADDR6_B, port)]
        if self_info:
            argv.append("--self-info")
        if seed is not None:
            argv += ["--seed", str(seed)]
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while not os.path.exists(ready):
            if self.proc.poll() is not None or time.time() > deadline:
                self.close()
                raise RuntimeError("reflector did not start: " + self.log())
            time.sleep(0.02)
        with open(ready) as f:
            control_port = json.load(f)["control_port"]
        self._sock = socket.create_connection(("127.0.0.1", control_port), timeout=10)
        self._file = self._sock.makefile("rwb")

    @property
    def entry(self):
        """For tgsim's call.network {"reflectors": [...]} (the simulator adds the peer_tag)."""
        return {"id": self.id, "ip_address": self.ip_address,
                "ipv6_address": self.ipv6_address, "port": self.port, "is_tcp": False}

    def server(self, peer_tag=None):
        """The TDLib callServer object, with peer_tag (base64) or this handle's own."""
        return {"@type": "callServer", "id": self.id, "ip_address": self.ip_address,
                "ipv6_address": self.ipv6_address, "port": self.port,
                "type": {"@type": "callServerTypeTelegramReflector",
                         "peer_tag": peer_tag or self.peer_tag, "is_tcp": False}}

    def ctl(self, op, **fields):
        self._file.write(json.dumps(dict(fields, op=op)).encode() + b"\n")
        self._file.flush()
        answer = json.loads(self._file.readline())
        if "error" in answer:
            raise AssertionError("reflector %s: %s" % (op, answer["error"]))
        return answer

    def drop(self, share, seed=None):
        """Drops a random share (0..1) of the data packets it would forward."""
        return self.ctl("drop", share=share, **({} if seed is None else {"seed": seed}))

    def jitter(self, jitter_ms, base_ms=0.0, seed=None):
        """Delays each forwarded data packet by base_ms + its own uniform 0..jitter_ms."""
        return self.ctl("jitter", base_ms=base_ms, jitter_ms=jitter_ms,
                        **({} if seed is None else {"seed": seed}))

    def stop(self, seconds=None, hellos=False):
        """Stops forwarding data for `seconds` (None: until resume()); hellos too if asked."""
        return self.ctl("stop", hellos=hellos, **({} if seconds is None else
                                                  {"seconds": seconds}))

    def resume(self):
        return self.ctl("resume")

    def stats(self):
        """hellos, forwarded, bytes, dropped{unknown_destination, short, random, stopped,
        stopped_hello}, entries, peers{key16 hex: hellos, sent, received, bytes}."""
        return self.ctl("stats")

    def reset(self):
        return self.ctl("reset")

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def close(self):
        for c in (getattr(self, "_file", None), getattr(self, "_sock", None)):
            if c is not None:
                try:
                    c.close()
                except OSError:
                    pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
