"""TLS against a real peer: Kamailio with its TLS module. Kamailio relays SIPp's OPTIONS and
INVITEs from UDP to esg's TLS listener (verifying esg's certificate), and esg-ua calls through
Kamailio's TLS listener to a SIPp UAS (verifying Kamailio's certificate)."""

import os
import re
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "sipp"))
from esg_fixture import EsgProcess, KeepOnFailure, stop_all  # noqa: E402
from kamailio_fixture import Kamailio, free_port, make_certificate  # noqa: E402
from test_ua import UA, wait_listening  # noqa: E402

ROUTES = """
request_route {
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
  if (has_totag()) {
    # SIPp's built-in UAS does not echo Record-Route: in-dialog requests then come without
    # Route and go to their Request-URI, the UAS's Contact.
    loose_route();
    t_relay();
    exit;
  }
  if (is_method("INVITE")) record_route();
  if ($proto == "tls") {
    $du = "sip:127.0.0.1:%(sipp)d";
  } else {
    $du = "sip:127.0.0.1:%(esg_tls)d;transport=tls";
  }
  if (!t_relay()) sl_reply_error();
}
"""

TLS = """
[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
private_key = %(key)s
certificate = %(cert)s

[client:default]
method = TLSv1.2+
verify_certificate = yes
require_certificate = yes
ca_list = %(cert)s
"""


def sipp(args, cwd):
    return subprocess.run(["sipp", "-i", "127.0.0.1", "-nostdin", "-nd", "-timeout", "30",
                           "-timeout_error", "-trace_err", *args],
                          capture_output=True, text=True, timeout=60, cwd=cwd)


class KamailioTls(KeepOnFailure):
    @classmethod
    def setUpClass(cls):
        cls.folder = tempfile.mkdtemp(prefix="esg-kam-tls-")
        cls.cert, cls.key = make_certificate(cls.folder)
        cls.esg = EsgProcess({"listen": [
            {"proto": "udp", "addr": "127.0.0.1", "port": 0},
            {"proto": "tls", "addr": "127.0.0.1", "port": 0, "cert": cls.cert, "key": cls.key}]})
        cls.kam_udp = free_port()
        cls.kam_tls = free_port()
        cls.sipp_uas = free_port()
        cls.kam = Kamailio(
            ["udp:127.0.0.1:%d" % cls.kam_udp, "tls:127.0.0.1:%d" % cls.kam_tls],
            ROUTES % {"sipp": cls.sipp_uas, "esg_tls": cls.esg.ports["tls"]},
            tls=TLS % {"cert": cls.cert, "key": cls.key}, folder=cls.folder).start()

    @classmethod
    def tearDownClass(cls):
        stop_all(cls.failed, cls.esg, cls.kam)

    def test_kamailio_relays_to_esg_over_tls(self):
        with tempfile.TemporaryDirectory() as cwd:
            r = sipp(["127.0.0.1:%d" % self.kam_udp, "-p", str(free_port()), "-m", "10",
                      "-sf", os.path.join(HERE, "..", "sipp", "options.xml")], cwd)
            self.assertEqual(r.returncode, 0, r.stdout[-1500:] + self.kam.log_text()[-3000:])
        lines = self.esg.trn_lines()
        got = [l for l in lines if re.search(r" Recv from tls \S+ OPTIONS ", l)]
        answered = [l for l in lines if re.search(r" Send to tls \S+ \(ok\) SIP/2\.0 200 ", l)]
        self.assertGreaterEqual(len(got), 10)
        self.assertGreaterEqual(len(answered), 10)
        # Kamailio's own Via is on top: it came through the proxy, over TLS.
        self.assertTrue(all("Via: SIP/2.0/TLS 127.0.0.1:%d" % self.kam_tls in l for l in got))

    def test_esg_ua_calls_through_kamailio_over_tls(self):
        with tempfile.TemporaryDirectory() as cwd:
            uas = subprocess.Popen(["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p",
                                    str(self.sipp_uas), "-t", "u1", "-nostdin", "-nd", "-m", "10",
                                    "-trace_err"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   cwd=cwd)
            try:
                wait_listening(self.sipp_uas, "u1")
                r = subprocess.run([UA, "--udp", "127.0.0.1:0", "--tcp", "127.0.0.1:0", "--via",
                                    "tls", "--tls-ca", self.cert, "--call",
                                    "sip:service@127.0.0.1:%d" % self.kam_tls, "--calls", "10",
                                    "--rate", "20", "--hold-ms", "50"],
                                   capture_output=True, text=True, timeout=60)
                self.assertIn("calls 10 ok 10 failed 0", r.stdout,
                              r.stdout + r.stderr + self.kam.log_text()[-3000:])
                out, _ = uas.communicate(timeout=30)
                self.assertEqual(uas.returncode, 0, out[-2000:])
            finally:
                if uas.poll() is None:
                    uas.kill()
                    uas.wait()

    def test_esg_ua_refuses_a_peer_it_cannot_verify(self):
        # Without our CA, the system's trust store does not know Kamailio's certificate: the
        # handshake fails and no call is placed (verification is on by default). The INVITE's
        # transaction learns it by Timer B (64*T1, T1 shortened here).
        r = subprocess.run([UA, "--udp", "127.0.0.1:0", "--tcp", "127.0.0.1:0", "--via", "tls",
                            "--t1-ms", "50",
                            "--call", "sip:service@127.0.0.1:%d" % self.kam_tls, "--calls", "1"],
                           capture_output=True, text=True, timeout=60)
        self.assertIn("calls 1 ok 0 failed 1", r.stdout, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
