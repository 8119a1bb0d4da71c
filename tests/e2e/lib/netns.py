"""A phone behind a NAT, built from network namespaces that the test creates and removes:

    phone ns (198.18.78.2) --veth-- nat ns (198.18.78.1 | 198.18.77.2) --veth-- this host (198.18.77.1)

The NAT namespace forwards and masquerades what leaves towards this host, rewriting source
ports into 40000-40999 (iptables MASQUERADE --to-ports), as carrier-grade and home NATs do.
This host reaches the phone's private network only on-link through its veth, where nothing
answers: packets to the private address stay inside the test's links and are lost, as on the
Internet. Addresses are from 198.18.0.0/15 (RFC 2544, benchmarking), which no real network
uses. Needs root (CI runs as root); tests skip with the reason otherwise."""

import os
import subprocess

HOST_IP = "198.18.77.1"
NAT_PUBLIC = "198.18.77.2"
PHONE_IP = "198.18.78.2"
NAT_PORTS = (40000, 40999)


def _run(*args):
    subprocess.run(list(args), check=True, capture_output=True, text=True)


class NatNetwork:
    def __init__(self):
        tag = str(os.getpid() % 100000)
        self.nat = "esgnat" + tag
        self.phone = "esgphone" + tag
        self.host_link = "esgn%sh" % tag
        self.created = []

    @staticmethod
    def unavailable():
        """Why the namespaces cannot be made here, or None."""
        if os.geteuid() != 0:
            return "network namespaces need root"
        for tool in ("/usr/sbin/ip", "/usr/sbin/iptables"):
            if not os.path.exists(tool):
                return tool + " is missing (packages iproute2, iptables)"
        return None

    def __enter__(self):
        try:
            self._build()
        except subprocess.CalledProcessError as e:
            self.close()
            raise RuntimeError("%s: %s" % (" ".join(e.cmd), e.stderr)) from e
        return self

    def __exit__(self, *exc):
        self.close()

    def _build(self):
        for ns in (self.nat, self.phone):
            _run("ip", "netns", "add", ns)
            self.created.append(ns)
        nat = ("ip", "netns", "exec", self.nat)
        phone = ("ip", "netns", "exec", self.phone)
        # This host <-> the NAT's public side.
        _run("ip", "link", "add", self.host_link, "type", "veth", "peer", "name", "pub",
             "netns", self.nat)
        _run("ip", "addr", "add", HOST_IP + "/24", "dev", self.host_link)
        _run("ip", "link", "set", self.host_link, "up")
        # The private network is on-link behind our veth: nothing there answers ARP for it.
        _run("ip", "route", "add", "198.18.78.0/24", "dev", self.host_link)
        # The NAT's private side <-> the phone.
        _run(*nat, "ip", "link", "add", "priv", "type", "veth", "peer", "name", "eth0",
             "netns", self.phone)
        _run(*nat, "ip", "addr", "add", NAT_PUBLIC + "/24", "dev", "pub")
        _run(*nat, "ip", "addr", "add", "198.18.78.1/24", "dev", "priv")
        for link in ("lo", "pub", "priv"):
            _run(*nat, "ip", "link", "set", link, "up")
        _run(*nat, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        _run(*nat, "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "pub", "-p", "udp",
             "-j", "MASQUERADE", "--to-ports", "%d-%d" % NAT_PORTS)
        _run(*phone, "ip", "addr", "add", PHONE_IP + "/24", "dev", "eth0")
        for link in ("lo", "eth0"):
            _run(*phone, "ip", "link", "set", link, "up")
        _run(*phone, "ip", "route", "add", "default", "via", "198.18.78.1")

    def in_phone(self, argv, **kwargs):
        """A process started in the phone's namespace."""
        return subprocess.Popen(["ip", "netns", "exec", self.phone] + list(argv), **kwargs)

    def close(self):
        subprocess.run(["ip", "link", "del", self.host_link], capture_output=True)
        for ns in reversed(self.created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.created = []
