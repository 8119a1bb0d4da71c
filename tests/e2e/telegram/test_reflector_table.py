"""The test reflector's forwarding table (tests/tgsim/reflector.py, TELEGRAM-CALLS.md §5.6),
without sockets: ReflectorCore on a simulated clock. What tgcalls V2 needs of it: hellos learn
their 16-byte key and are answered, data is forwarded unchanged to the port whose own tag is in
bytes 12..16 (two ports of one call differ only there), calls are isolated by their 12-byte
prefix, and the impairments (drop share, jitter, stop/resume) do what the e2e tests rely on."""

import os
import struct
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tgsim"))
from reflector import SELF_INFO_TL, ReflectorCore  # noqa: E402

CALL = bytes(range(1, 13))  # call_tag12 of one call
OTHER_CALL = bytes(range(101, 113))
A = (0, ("192.0.2.1", 40001))
A2 = (1, ("2001:db8::1", 40002))
B = (0, ("192.0.2.1", 40003))


def tag(n):
    return struct.pack("<I", n)


def hello(call, my, query=123):
    return call + tag(my) + b"\xff" * 12 + b"\xfe\xff\xff\xff" + struct.pack(">Q", query)


def data(call, dst, src, payload):
    pkt = call + tag(dst) + tag(src) + struct.pack(">I", len(payload)) + payload
    return pkt + b"\x00" * (-len(pkt) % 4)


class Table(unittest.TestCase):
    def test_hello_learns_and_is_echoed(self):
        r = ReflectorCore()
        h = hello(CALL, 7)
        self.assertEqual(r.packet(h, A, 0.0), [(0.0, h, A)])
        self.assertEqual(r.lookup(CALL + tag(7), 0.0), A)
        self.assertEqual(r.stats()["hellos"], 1)

    def test_hello_answered_as_self_info(self):
        r = ReflectorCore(self_info=True)
        h = hello(CALL, 7, query=0x1122334455667788)
        [(_, out, dst)] = r.packet(h, A, 0.0, "192.0.2.1", 40001)
        self.assertEqual(dst, A)
        self.assertEqual(out[:16], CALL + tag(7))
        self.assertEqual(out[16:28], b"\xff" * 12)  # still "special" to tgcalls
        self.assertEqual(struct.unpack("<I", out[28:32])[0], SELF_INFO_TL)
        self.assertEqual(out[36:44], struct.pack(">Q", 0x1122334455667788))
        self.assertEqual(out[44:60], b"\x00" * 10 + b"\xff\xff" + bytes([192, 0, 2, 1]))
        self.assertEqual(struct.unpack("<i", out[60:64])[0], 40001)

    def test_data_goes_unchanged_to_the_port_named_by_its_tag(self):
        # One call, the peer has two ports (IPv4, IPv6) with different last-4-byte tags: each
        # packet reaches exactly the port whose tag it names.
        r = ReflectorCore()
        r.packet(hello(CALL, 10), A, 0.0)
        r.packet(hello(CALL, 11), A2, 0.0)
        r.packet(hello(CALL, 20), B, 0.0)
        p1 = data(CALL, 10, 20, b"stun to port 10")
        p2 = data(CALL, 11, 20, b"dtls to port 11")
        self.assertEqual(r.packet(p1, B, 0.1), [(0.1, p1, A)])
        self.assertEqual(r.packet(p2, B, 0.1), [(0.1, p2, A2)])
        back = data(CALL, 20, 11, b"srtp back")
        self.assertEqual(r.packet(back, A2, 0.2), [(0.2, back, B)])
        st = r.stats()
        self.assertEqual(st["forwarded"], 3)
        self.assertEqual(st["bytes"], len(p1) + len(p2) + len(back))
        self.assertEqual(st["peers"][(CALL + tag(10)).hex()]["received"], 1)
        self.assertEqual(st["peers"][(CALL + tag(20)).hex()]["sent"], 2)

    def test_data_teaches_the_sender_address(self):
        # No hello from B: its first data packet registers it, so the answer finds it.
        r = ReflectorCore()
        r.packet(hello(CALL, 10), A, 0.0)
        r.packet(data(CALL, 10, 20, b"x"), B, 0.0)
        answer = data(CALL, 20, 10, b"y")
        self.assertEqual(r.packet(answer, A, 0.0), [(0.0, answer, B)])

    def test_unknown_destination_and_short_packets_are_dropped(self):
        r = ReflectorCore()
        r.packet(hello(CALL, 10), A, 0.0)
        self.assertEqual(r.packet(data(CALL, 99, 10, b"x"), A, 0.0), [])
        self.assertEqual(r.packet(b"\x01" * 20, A, 0.0), [])
        st = r.stats()
        self.assertEqual(st["dropped"]["unknown_destination"], 1)
        self.assertEqual(st["dropped"]["short"], 1)
        self.assertEqual(st["forwarded"], 0)

    def test_calls_are_isolated_by_their_prefix(self):
        # Same port tags, other call: not forwarded across calls.
        r = ReflectorCore()
        r.packet(hello(CALL, 10), A, 0.0)
        r.packet(hello(OTHER_CALL, 20), B, 0.0)
        self.assertEqual(r.packet(data(OTHER_CALL, 10, 20, b"x"), B, 0.0), [])
        self.assertEqual(r.packet(data(CALL, 20, 10, b"x"), A, 0.0), [])
        self.assertEqual(r.stats()["dropped"]["unknown_destination"], 2)

    def test_entries_idle_for_a_minute_expire(self):
        r = ReflectorCore()
        r.packet(hello(CALL, 10), A, 0.0)
        r.packet(hello(CALL, 20), B, 0.0)
        self.assertTrue(r.packet(data(CALL, 10, 20, b"x"), B, 50.0))
        # A's entry was used at 50 (traffic towards it); B said nothing after 50 either.
        self.assertTrue(r.packet(data(CALL, 10, 20, b"x"), B, 109.0))
        self.assertEqual(r.packet(data(CALL, 20, 99, b"x"), A, 170.0), [])  # B idle 61 s
        r.expire(200.0)
        self.assertEqual(r.stats()["entries"], 1)  # only the sender key just learnt at 170
        # A keep-alive hello every 10 s keeps an entry alive.
        r2 = ReflectorCore()
        for t in range(0, 130, 10):
            r2.packet(hello(CALL, 10), A, float(t))
        self.assertEqual(r2.lookup(CALL + tag(10), 125.0), A)

    def test_drop_share_is_random_seeded_and_counted(self):
        r = ReflectorCore(seed=5)
        r.packet(hello(CALL, 10), A, 0.0)
        r.packet(hello(CALL, 20), B, 0.0)
        r.set_drop(0.25)
        sent = sum(len(r.packet(data(CALL, 10, 20, b"x"), B, i * 0.02)) for i in range(2000))
        st = r.stats()
        self.assertEqual(sent + st["dropped"]["random"], 2000)
        self.assertAlmostEqual(st["dropped"]["random"] / 2000, 0.25, delta=0.04)
        # Hellos are never dropped: the port stays ready.
        self.assertTrue(all(r.packet(hello(CALL, 10), A, 50.0) for _ in range(100)))
        # Same seed, same choices.
        r2 = ReflectorCore(seed=5)
        r2.packet(hello(CALL, 10), A, 0.0)
        r2.packet(hello(CALL, 20), B, 0.0)
        r2.set_drop(0.25)
        sent2 = sum(len(r2.packet(data(CALL, 10, 20, b"x"), B, i * 0.02)) for i in range(2000))
        self.assertEqual(sent, sent2)

    def test_jitter_is_per_packet_and_reorders_20ms_frames(self):
        r = ReflectorCore(seed=1)
        r.packet(hello(CALL, 10), A, 0.0)
        r.packet(hello(CALL, 20), B, 0.0)
        r.set_jitter(base_ms=10, jitter_ms=40)
        dues = []
        for i in range(500):
            now = i * 0.020
            [(due, _, _)] = r.packet(data(CALL, 10, 20, struct.pack(">I", i)), B, now)
            self.assertGreaterEqual(due - now, 0.010 - 1e-9)
            self.assertLessEqual(due - now, 0.050 + 1e-9)
            dues.append(due)
        overtaken = sum(1 for i in range(1, len(dues)) if dues[i] < dues[i - 1])
        self.assertGreater(overtaken, 50)  # each packet its own delay: real reordering
        self.assertGreater(len(set(round(d - i * 0.02, 6) for i, d in enumerate(dues))), 400)
        # Hellos are answered at once.
        self.assertEqual(r.packet(hello(CALL, 10), A, 20.0)[0][0], 20.0)

    def test_stop_for_seconds_then_forwarding_resumes_by_itself(self):
        r = ReflectorCore()
        r.packet(hello(CALL, 10), A, 0.0)
        r.packet(hello(CALL, 20), B, 0.0)
        r.command({"op": "stop", "seconds": 5}, 1.0)
        self.assertEqual(r.packet(data(CALL, 10, 20, b"x"), B, 2.0), [])
        self.assertTrue(r.packet(hello(CALL, 10), A, 3.0))  # hellos still answered
        self.assertTrue(r.command({"op": "stats"}, 3.0)["stopped"])
        self.assertTrue(r.packet(data(CALL, 10, 20, b"x"), B, 6.0))
        self.assertEqual(r.stats()["dropped"]["stopped"], 1)

    def test_stop_until_resumed_and_with_hellos(self):
        r = ReflectorCore()
        r.packet(hello(CALL, 10), A, 0.0)
        r.packet(hello(CALL, 20), B, 0.0)
        r.command({"op": "stop", "hellos": True}, 0.0)
        self.assertEqual(r.packet(data(CALL, 10, 20, b"x"), B, 10.0), [])
        self.assertEqual(r.packet(hello(CALL, 10), A, 10.0), [])
        self.assertEqual(r.command({"op": "resume"}, 10.0), {})
        self.assertTrue(r.packet(hello(CALL, 10), A, 10.5))
        self.assertTrue(r.packet(data(CALL, 10, 20, b"x"), B, 10.5))
        st = r.stats()
        self.assertEqual((st["dropped"]["stopped"], st["dropped"]["stopped_hello"]), (1, 1))

    def test_commands(self):
        r = ReflectorCore()
        self.assertEqual(r.command({"op": "drop", "share": 0.1, "seed": 3}, 0.0), {})
        self.assertEqual(r.command({"op": "jitter", "base_ms": 5, "jitter_ms": 40}, 0.0), {})
        st = r.command({"op": "stats"}, 0.0)
        self.assertEqual((st["drop_share"], st["base_delay_ms"], st["jitter_ms"]), (0.1, 5, 40))
        self.assertIn("error", r.command({"op": "nope"}, 0.0))


class Server(unittest.TestCase):
    """The asyncio server around the core, on loopback (IPv4 and, where the host has it, IPv6):
    replies and forwards leave from the socket the destination's packets came to, and the
    control port drives the core. The script's own command line, as a test would start it."""

    def test_the_script_on_loopback(self):
        import json
        import socket
        import subprocess
        import tempfile
        import time
        v6 = socket.has_ipv6
        try:
            probe = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            probe.bind(("::1", 0))
            probe.close()
        except OSError:
            v6 = False
        folder = tempfile.mkdtemp(prefix="esg-reflector-")
        ready = os.path.join(folder, "ready")
        argv = [sys.executable, os.path.join(HERE, "..", "..", "tgsim", "reflector.py"),
                "--listen", "127.0.0.1:0", "--control-port", "0", "--ready-file", ready]
        if v6:
            argv += ["--listen", "[::1]:0"]
        proc = subprocess.Popen(argv, stderr=subprocess.PIPE)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.terminate)
        deadline = time.time() + 10
        while not os.path.exists(ready):
            self.assertIsNone(proc.poll())
            self.assertLess(time.time(), deadline)
            time.sleep(0.02)
        with open(ready) as f:
            info = json.load(f)
        ctl = socket.create_connection(("127.0.0.1", info["control_port"]), timeout=5)
        self.addCleanup(ctl.close)
        ctl_file = ctl.makefile("rwb")

        def command(**cmd):
            ctl_file.write(json.dumps(cmd).encode() + b"\n")
            ctl_file.flush()
            return json.loads(ctl_file.readline())

        def udp(family, host):
            s = socket.socket(family, socket.SOCK_DGRAM)
            s.bind((host, 0))
            s.settimeout(2)
            self.addCleanup(s.close)
            return s
        a = udp(socket.AF_INET, "127.0.0.1")
        b = (udp(socket.AF_INET6, "::1"), ("::1", info["ports"][1])) if v6 else \
            (udp(socket.AF_INET, "127.0.0.1"), ("127.0.0.1", info["ports"][0]))
        to4 = ("127.0.0.1", info["ports"][0])
        a.sendto(hello(CALL, 10), to4)
        self.assertEqual(a.recvfrom(100), (hello(CALL, 10), to4))
        b[0].sendto(hello(CALL, 20), b[1])
        got, frm = b[0].recvfrom(100)
        self.assertEqual((got, frm[:2]), (hello(CALL, 20), b[1]))
        p = data(CALL, 20, 10, b"from the v4 port to the other")
        a.sendto(p, to4)
        got, frm = b[0].recvfrom(100)
        self.assertEqual((got, frm[:2]), (p, b[1]))  # from the address b talks to
        q = data(CALL, 10, 20, b"and back")
        b[0].sendto(q, b[1])
        self.assertEqual(a.recvfrom(100), (q, to4))
        self.assertEqual(command(op="stop"), {})
        a.sendto(p, to4)
        b[0].settimeout(0.3)
        self.assertRaises(socket.timeout, b[0].recvfrom, 100)
        command(op="resume")
        a.sendto(p, to4)
        self.assertEqual(b[0].recvfrom(100)[0], p)
        # A delayed packet leaves later, from the same socket.
        self.assertEqual(command(op="jitter", base_ms=150, jitter_ms=0), {})
        b[0].settimeout(2)
        t0 = time.monotonic()
        a.sendto(p, to4)
        got, frm = b[0].recvfrom(100)
        self.assertEqual((got, frm[:2]), (p, b[1]))
        self.assertGreater(time.monotonic() - t0, 0.14)
        st = command(op="stats")
        self.assertEqual((st["hellos"], st["forwarded"], st["dropped"]["stopped"]), (2, 4, 1))
        self.assertIn("error", command(op="bogus"))


if __name__ == "__main__":
    unittest.main()
