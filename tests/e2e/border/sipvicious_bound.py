"""Runs one SIPVicious tool (svmap, svwar, svcrack) with its `-b` address honoured and nothing
sent beyond loopback.

Debian's sipvicious 0.3.3 parses `-b` in every tool, but svwar and svcrack never hand it to
their socket: they bind to every address and, on loopback, send from 127.0.0.1, the trusted
peer's address. The attacker must come from its own address, so unbound sockets are bound to
the `-b` address here. The tests also must never reach outside loopback (`-A` would connect to
msn.com to learn an external address): any other destination raises instead.

    python3 sipvicious_bound.py svcrack -b 127.0.0.2 -x 127.0.0.2 -p 5060 -u 101 -d words 127.0.0.1
"""

import ipaddress
import os
import runpy
import shutil
import socket
import sys


def main():
    tool, args = sys.argv[1], sys.argv[2:]
    path = shutil.which(tool)
    # The tool's own interpreter (Debian's python3 has its package), whichever ran this.
    with open(path) as f:
        interpreter = f.readline()[2:].split()[0]
    if os.path.realpath(interpreter) != os.path.realpath(sys.executable):
        os.execv(interpreter, [interpreter, os.path.abspath(__file__)] + sys.argv[1:])
    bind_ip = args[args.index("-b") + 1]
    original_bind = socket.socket.bind
    original_sendto = socket.socket.sendto
    original_connect = socket.socket.connect

    def loopback_only(address):
        host = address[0] if isinstance(address, tuple) else address
        if not ipaddress.ip_address(socket.gethostbyname(host)).is_loopback:
            raise PermissionError("tests send only to loopback, not to %r" % (host,))

    def bind(self, address):
        if isinstance(address, tuple) and address[0] in ("", "0.0.0.0"):
            address = (bind_ip,) + tuple(address[1:])
        return original_bind(self, address)

    def sendto(self, data, *rest):
        loopback_only(rest[-1])
        return original_sendto(self, data, *rest)

    def connect(self, address):
        loopback_only(address)
        return original_connect(self, address)

    socket.socket.bind = bind
    socket.socket.sendto = sendto
    socket.socket.connect = connect
    sys.argv = [tool] + args
    # Where the entry script really lives holds the package and its metadata (a symlink).
    sys.path.insert(0, os.path.dirname(os.path.realpath(path)))
    runpy.run_path(path, run_name="__main__")


if __name__ == "__main__":
    main()
