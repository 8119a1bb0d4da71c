#!/usr/bin/env python3
"""A test reflector (TELEGRAM-CALLS.md §5: hellos echoed as special packets, data forwarded to the
address that registered the target tag) that also impairs the path, for test_media_jitter.py:
each data packet it forwards is dropped with probability ESG_REFLECTOR_LOSS, or else delayed by
a uniform random 0..ESG_REFLECTOR_JITTER_MS, so packets also overtake each other. Hellos are
never dropped or delayed (the port stays ready). Bind it only to loopback or a test namespace.

usage: jitter_reflector.py --bind ADDR --port PORT [--seconds S]   (the environment sets the
impairment: the command line is the one test_reflector_calls.py's Reflector uses)"""

import argparse
import heapq
import os
import random
import select
import socket
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=3479)
    ap.add_argument("--seconds", type=float, default=60)
    args = ap.parse_args()
    loss = float(os.environ.get("ESG_REFLECTOR_LOSS", "0"))
    jitter = float(os.environ.get("ESG_REFLECTOR_JITTER_MS", "0")) / 1000.0
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((args.bind, args.port))
    by_tag = {}
    queue = []  # (due, n, data, address)
    n = 0
    stats = {"hello": 0, "forwarded": 0, "dropped": 0, "lost": 0, "reordered": 0}
    last_due = {}
    end = time.time() + args.seconds
    print("jitter_reflector on %s:%d, loss %.2f, jitter %.0f ms" %
          (args.bind, args.port, loss, jitter * 1000), file=sys.stderr, flush=True)
    while time.time() < end:
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, data, dst = heapq.heappop(queue)
            s.sendto(data, dst)
            stats["forwarded"] += 1
        wait = min(0.5, max(0.0, queue[0][0] - now)) if queue else 0.5
        if not select.select([s], [], [], wait)[0]:
            continue
        data, addr = s.recvfrom(65536)
        if len(data) < 24:
            stats["dropped"] += 1
            continue
        tag = data[:16]
        if data[16:28] == b"\xff" * 12:
            by_tag[tag] = addr
            stats["hello"] += 1
            s.sendto(data, addr)
            continue
        by_tag[data[:12] + data[16:20]] = addr
        dst = by_tag.get(tag)
        if dst is None:
            stats["dropped"] += 1
            continue
        if random.random() < loss:
            stats["lost"] += 1
            continue
        due = time.monotonic() + random.uniform(0, jitter)
        if due < last_due.get(dst, 0):
            stats["reordered"] += 1
        last_due[dst] = max(due, last_due.get(dst, 0))
        n += 1
        heapq.heappush(queue, (due, n, data, dst))
    print("jitter_reflector stats %s" % stats, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
