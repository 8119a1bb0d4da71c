#!/usr/bin/env python3
"""A test reflector for Telegram calls (callServerTypeTelegramReflector; TELEGRAM-CALLS.md §5.6),
for esg's tests only: bind it to loopback or a test namespace's addresses. NOT Telegram's.

Table: 16-byte key -> the last source address that used it.
  hello (>= 32 bytes, FF x12 at 16..28): table[0..16] = source; answered with the same bytes,
      or (--self-info) libtgvoip's self-info layout of §5.3 (tgcalls only checks the prefix).
  data (>= 24 bytes, anything else): learns table[0..12 ++ 16..20] = source (the sender), then
      forwards the datagram UNCHANGED to table[0..16]; an unknown destination is dropped and
      counted. Entries idle for more than 60 s expire.
Per-port tags are what make this work for tgcalls V2: each port of a call has its own last 4
bytes, so keying on all 16 bytes and fanning out (libtgvoip-era reflectors) would not.

Impairments, on command: drop a share of the data packets (seeded random), delay each forwarded
data packet by base + its own uniform jitter (so packets 20 ms apart overtake each other with
40 ms of jitter), stop forwarding for N seconds or until resumed. Hellos are never impaired
unless a stop says so ("hellos": true), so a port stays ready while its path is cut.

The logic is ReflectorCore (no sockets, `now` passed in: unit-testable); the asyncio server
around it listens on one or more addresses (one reflector id, IPv4 and IPv6) and takes JSON
lines on a control port (TCP on 127.0.0.1) or a Unix socket:
  {"op":"drop","share":0.1,"seed":1}   {"op":"jitter","base_ms":0,"jitter_ms":40,"seed":2}
  {"op":"stop","seconds":5}  {"op":"stop"} (until resumed)  {"op":"resume"}
  {"op":"stats"}  {"op":"reset"} (clears the counters, keeps the table)
each answered by one JSON line (the stats, or {} / {"error": ...}).

usage: reflector.py --listen 192.0.2.2:5600 [--listen [2001:db8::2]:5600]
                    [--control-port N | --control-file PATH] [--ready-file PATH]
                    [--drop SHARE] [--jitter-ms MS] [--delay-ms MS] [--seed N] [--self-info]
                    [--seconds S]
       reflector.py --bind ADDR --port PORT [--seconds S]   (reflector_sim.py's command line)
"""

import argparse
import asyncio
import ipaddress
import json
import os
import random
import socket
import struct
import sys
import time

FF12 = b"\xff" * 12
SELF_INFO_TL = 0xC01572C7  # libtgvoip's "self info" answer to a UDP ping
IDLE_EXPIRY = 60.0
MAX_ENTRIES = 4096  # bounded: a test never has more ports than this
MAX_PENDING = 20000  # delayed packets waiting to leave (a few seconds of a test's calls)


class ReflectorCore:
    """The forwarding table and the impairments. packet(data, src, now) returns what to send:
    a list of (due, data, dst), due >= now being when to send it (delayed packets). `src` and
    `dst` are opaque to the core (the server passes (socket index, address))."""

    def __init__(self, self_info=False, expiry=IDLE_EXPIRY, seed=None):
        self.self_info = self_info
        self.expiry = expiry
        self.table = {}  # key16 -> [src, last_used]
        self.drop_share = 0.0
        self.base_delay = 0.0
        self.jitter = 0.0
        self.stopped_until = None  # None: forwarding; float('inf'): until resume()
        self.stop_hellos = False
        self._drop_rng = random.Random(seed)
        self._jitter_rng = random.Random(None if seed is None else seed + 1)
        self.reset()

    def reset(self):
        self.hellos = 0
        self.forwarded = 0
        self.bytes = 0
        self.dropped = {"unknown_destination": 0, "short": 0, "random": 0, "stopped": 0,
                        "stopped_hello": 0, "queue_full": 0}
        self.peers = {}  # key16 hex -> {"hellos", "sent", "received", "bytes"}

    # --- commands ------------------------------------------------------------------------

    def set_drop(self, share, seed=None):
        self.drop_share = max(0.0, min(1.0, float(share)))
        if seed is not None:
            self._drop_rng.seed(seed)

    def set_jitter(self, base_ms=0.0, jitter_ms=0.0, seed=None):
        self.base_delay = max(0.0, float(base_ms)) / 1000.0
        self.jitter = max(0.0, float(jitter_ms)) / 1000.0
        if seed is not None:
            self._jitter_rng.seed(seed)

    def stop(self, now, seconds=None, hellos=False):
        self.stopped_until = float("inf") if seconds is None else now + float(seconds)
        self.stop_hellos = bool(hellos)

    def resume(self):
        self.stopped_until = None
        self.stop_hellos = False

    def stopped(self, now):
        if self.stopped_until is not None and now >= self.stopped_until:
            self.resume()
        return self.stopped_until is not None

    def stats(self, now=None):
        return {"hellos": self.hellos, "forwarded": self.forwarded, "bytes": self.bytes,
                "dropped": dict(self.dropped), "entries": len(self.table),
                "peers": {k: dict(v) for k, v in self.peers.items()},
                "drop_share": self.drop_share, "base_delay_ms": self.base_delay * 1000,
                "jitter_ms": self.jitter * 1000,
                "stopped": self.stopped(now) if now is not None else
                self.stopped_until is not None}

    # --- packets ---------------------------------------------------------------------------

    def _peer(self, key):
        k = key.hex()
        p = self.peers.get(k)
        if p is None:
            if len(self.peers) >= MAX_ENTRIES:
                return {"hellos": 0, "sent": 0, "received": 0, "bytes": 0}  # not kept
            p = self.peers[k] = {"hellos": 0, "sent": 0, "received": 0, "bytes": 0}
        return p

    def _learn(self, key, src, now):
        entry = self.table.get(key)
        if entry is None and len(self.table) >= MAX_ENTRIES:
            self.expire(now)
            if len(self.table) >= MAX_ENTRIES:
                return
        self.table[key] = [src, now]

    def expire(self, now):
        for key in [k for k, (_, t) in self.table.items() if now - t > self.expiry]:
            del self.table[key]

    def lookup(self, key, now):
        entry = self.table.get(key)
        if entry is None:
            return None
        if now - entry[1] > self.expiry:
            del self.table[key]
            return None
        return entry[0]

    def answer(self, data, src_ip=None, src_port=0, now=None):
        """The hello's reply: the hello itself, or libtgvoip's self-info: tag(16), FF x12,
        TL id (LE), date (int32 LE), the query id echoed, the source IP (16 bytes,
        v4-mapped) and port (int32 LE)."""
        if not self.self_info:
            return data
        ip = b"\x00" * 16
        if src_ip:
            try:
                a = ipaddress.ip_address(src_ip.split("%")[0])
                ip = (a.packed if a.version == 6 else b"\x00" * 10 + b"\xff\xff" + a.packed)
            except ValueError:
                pass
        date = int(now if now is not None else time.time()) & 0x7FFFFFFF
        query = data[32:40].ljust(8, b"\x00")
        return data[:16] + FF12 + struct.pack("<Ii", SELF_INFO_TL, date) + query + ip + \
            struct.pack("<i", src_port)

    def packet(self, data, src, now, src_ip=None, src_port=0):
        if len(data) >= 32 and data[16:28] == FF12:
            if self.stopped(now) and self.stop_hellos:
                self.dropped["stopped_hello"] += 1
                return []
            key = data[:16]
            self._learn(key, src, now)
            self.hellos += 1
            self._peer(key)["hellos"] += 1
            return [(now, self.answer(data, src_ip, src_port, now), src)]
        if len(data) < 24:
            self.dropped["short"] += 1
            return []
        sender = data[:12] + data[16:20]
        self._learn(sender, src, now)
        self._peer(sender)["sent"] += 1
        dst_key = data[:16]
        dst = self.lookup(dst_key, now)
        if dst is None:
            self.dropped["unknown_destination"] += 1
            return []
        if self.stopped(now):
            self.dropped["stopped"] += 1
            return []
        if self.drop_share > 0 and self._drop_rng.random() < self.drop_share:
            self.dropped["random"] += 1
            return []
        self.table[dst_key][1] = now  # traffic towards a port keeps its entry too
        self.forwarded += 1
        self.bytes += len(data)
        p = self._peer(dst_key)
        p["received"] += 1
        p["bytes"] += len(data)
        delay = self.base_delay
        if self.jitter > 0:
            delay += self._jitter_rng.uniform(0.0, self.jitter)
        return [(now + delay, data, dst)]

    def command(self, cmd, now):
        """One control command (a dict); its answer."""
        op = cmd.get("op")
        if op == "drop":
            self.set_drop(cmd.get("share", 0.0), cmd.get("seed"))
        elif op == "jitter":
            self.set_jitter(cmd.get("base_ms", 0.0), cmd.get("jitter_ms", 0.0), cmd.get("seed"))
        elif op == "stop":
            self.stop(now, cmd.get("seconds"), cmd.get("hellos", False))
        elif op == "resume":
            self.resume()
        elif op == "reset":
            self.reset()
        elif op == "stats":
            return self.stats(now)
        else:
            return {"error": "unknown op %r" % op}
        return {}


# --- the asyncio server ------------------------------------------------------------------------

class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server, index):
        self.server, self.index = server, index

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.server.received(self.index, data, addr)

    def error_received(self, exc):
        pass  # an ICMP error for a port that left: nothing to do


class ReflectorServer:
    """ReflectorCore on real sockets. Replies and forwards leave from the socket the
    destination's packets arrived on (a client accepts only the reflector's exact address)."""

    def __init__(self, core=None):
        self.core = core or ReflectorCore()
        self.transports = []
        self.loop = None
        self.pending = 0  # delayed sends scheduled, bounded by MAX_PENDING

    async def listen(self, host, port):
        self.loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        transport, _ = await self.loop.create_datagram_endpoint(
            lambda: _Udp(self, len(self.transports)), sock=sock)
        self.transports.append(transport)
        return sock.getsockname()[1]

    def received(self, index, data, addr):
        now = time.monotonic()
        for due, out, (i, dst) in self.core.packet(data, (index, addr), now, addr[0], addr[1]):
            if due <= now:
                self._send(i, out, dst)
            elif self.pending >= MAX_PENDING:
                self.core.dropped["queue_full"] += 1
            else:
                self.pending += 1
                self.loop.call_at(self.loop.time() + (due - now), self._send_later, i, out, dst)

    def _send_later(self, index, data, dst):
        self.pending -= 1
        self._send(index, data, dst)

    def _send(self, index, data, dst):
        t = self.transports[index]
        if not t.is_closing():
            t.sendto(data, dst)

    def command(self, cmd):
        return self.core.command(cmd, time.monotonic())

    def close(self):
        for t in self.transports:
            t.close()


class _Control(asyncio.Protocol):
    def __init__(self, server):
        self.server = server
        self.buf = b""

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buf += data
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            if not line.strip():
                continue
            try:
                answer = self.server.command(json.loads(line))
            except Exception as e:  # a test's mistake: said, not fatal
                answer = {"error": "%s: %s" % (type(e).__name__, e)}
            self.transport.write(json.dumps(answer).encode() + b"\n")


def parse_listen(text):
    """'192.0.2.2:5600' or '[2001:db8::2]:5600' -> (host, port)."""
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
    else:
        host, _, port = text.rpartition(":")
    return host, int(port)


async def main(argv=None):
    ap = argparse.ArgumentParser(description="test reflector (TELEGRAM-CALLS.md §5.6)")
    ap.add_argument("--listen", action="append", default=[], help="addr:port or [addr6]:port")
    ap.add_argument("--bind", help="reflector_sim.py's form: address (with --port)")
    ap.add_argument("--port", type=int, default=3479)
    ap.add_argument("--control-port", type=int, help="JSON lines on 127.0.0.1 (0: any port)")
    ap.add_argument("--control-file", help="JSON lines on this Unix socket")
    ap.add_argument("--ready-file", help="written (control port, UDP ports) once listening")
    ap.add_argument("--drop", type=float, default=float(os.environ.get("ESG_REFLECTOR_LOSS", 0)))
    ap.add_argument("--delay-ms", type=float, default=0.0)
    ap.add_argument("--jitter-ms", type=float,
                    default=float(os.environ.get("ESG_REFLECTOR_JITTER_MS", 0)))
    ap.add_argument("--seed", type=int)
    ap.add_argument("--self-info", action="store_true", help="answer hellos in libtgvoip's way")
    ap.add_argument("--seconds", type=float, help="exit after this long")
    args = ap.parse_args(argv)
    listens = [parse_listen(x) for x in args.listen]
    if args.bind:
        listens.append((args.bind, args.port))
    if not listens:
        ap.error("nothing to listen on (--listen)")
    core = ReflectorCore(self_info=args.self_info, seed=args.seed)
    core.set_drop(args.drop)
    core.set_jitter(args.delay_ms, args.jitter_ms)
    server = ReflectorServer(core)
    ports = [await server.listen(h, p) for h, p in listens]
    loop = asyncio.get_running_loop()
    ctl_port = None
    if args.control_file:
        if os.path.exists(args.control_file):
            os.unlink(args.control_file)
        await loop.create_unix_server(lambda: _Control(server), args.control_file)
    if args.control_port is not None:
        ctl = await loop.create_server(lambda: _Control(server), "127.0.0.1", args.control_port)
        ctl_port = ctl.sockets[0].getsockname()[1]
    print("reflector: listening on %s, control %s" %
          (", ".join("%s:%d" % (h, p) for (h, _), p in zip(listens, ports)),
           ctl_port if ctl_port is not None else args.control_file), file=sys.stderr, flush=True)
    if args.ready_file:
        with open(args.ready_file + ".tmp", "w") as f:
            json.dump({"control_port": ctl_port, "ports": ports}, f)
        os.rename(args.ready_file + ".tmp", args.ready_file)
    stopped = asyncio.Event()
    import signal
    loop.add_signal_handler(signal.SIGTERM, stopped.set)
    loop.add_signal_handler(signal.SIGINT, stopped.set)
    if args.seconds:
        loop.call_later(args.seconds, stopped.set)
    await stopped.wait()
    print("reflector: stats %s" % json.dumps(core.stats(time.monotonic())), file=sys.stderr,
          flush=True)
    server.close()
    if args.control_file:
        try:
            os.unlink(args.control_file)
        except OSError:
            pass


if __name__ == "__main__":
    asyncio.run(main())
