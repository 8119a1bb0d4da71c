"""GET /metrics (Prometheus text format 0.0.4): the bearer token unless http.public_metrics,
every family with HELP and TYPE before its samples, and values that follow what esg does (a
point-to-point provider account, a call in progress through the relay, then its end)."""

import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from esg_fixture import EsgProcess, stop_all  # noqa: E402
from media_case import MediaCase  # noqa: E402
from rest_api import Api  # noqa: E402

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"'
                    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*)\})? '
                    # A float as Prometheus reads it: 7.3e-05 as well as 1e+06.
                    r'(-?[0-9]+(?:\.[0-9]*)?(?:e[+-]?[0-9]+)?|NaN)$')


try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # Debian's python3-prometheus-client, under another interpreter
    sys.path.append("/usr/lib/python3/dist-packages")
    from prometheus_client.parser import text_string_to_metric_families


def unescape(value):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse(text):
    """{(name, ((label, value), ...)): value}, checking the format line by line, and checking
    that Prometheus' own parser (the Python client's) reads the same samples."""
    samples = strict_parse(text)
    official = {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}
    ours = {(name, tuple(sorted((k, unescape(v)) for k, v in labels))): value
            for (name, labels), value in samples.items()}
    assert official == ours, set(official.items()) ^ set(ours.items())
    return samples


def strict_parse(text):
    samples, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            assert kind in ("counter", "gauge", "histogram"), line
            typed.add(name)
            if kind == "histogram":
                typed.update({name + "_bucket", name + "_sum", name + "_count"})
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        assert m.group(1) in typed, "%s has no TYPE before it" % m.group(1)
        labels = tuple(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"',
                                  m.group(3) or ""))
        samples[(m.group(1), labels)] = float(m.group(4))
    return samples


class Metrics(MediaCase):
    media = {"ports": [24600, 24799], "timeout": 30}

    def metrics(self):
        status, ctype, text = self.api.text("/metrics")
        self.assertEqual(status, 200, text)
        self.assertTrue(ctype.startswith("text/plain; version=0.0.4"), ctype)
        return parse(text)

    def test_malformed_packets_are_counted(self):
        import socket
        before = self.metrics()[("esg_sip_malformed_total", ())]
        self.assertIn(("esg_sip_transaction_timeouts_total", ()), self.metrics())
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"INVITE sip:x SIP/2.0\r\nVia: broken\r\n\r\n",
                     ("127.0.0.1", self.esg.ports["udp"]))
        deadline = time.time() + 3
        while self.metrics()[("esg_sip_malformed_total", ())] == before and \
                time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.metrics()[("esg_sip_malformed_total", ())], before + 1)

    def test_the_token_is_needed(self):
        status, _, _ = self.api.text("/metrics", token=None)
        self.assertEqual(status, 401)
        status, _, _ = self.api.text("/metrics", token="wrong")
        self.assertEqual(status, 401)

    def test_values_follow_accounts_and_calls(self):
        m = self.metrics()
        self.assertEqual(m[("esg_provider_accounts", (("regstate", "none"),))], 1)
        self.assertEqual(m[("esg_provider_accounts", (("regstate", "registered"),))], 0)
        # The fixture wrote an account, a PBX connection and a rule: timed store writes.
        self.assertGreaterEqual(m[("esg_store_latency_seconds_count", (("op", "write"),))], 3)
        self.assertEqual(m[("esg_store_latency_seconds_bucket",
                            (("op", "write"), ("le", "+Inf")))],
                         m[("esg_store_latency_seconds_count", (("op", "write"),))])
        self.assertIn(("esg_border_dropped_total", (("reason", "banned"),)), m)
        self.assertIn(("esg_telegram_lines", (("state", "ready"),)), m)
        sessions = m[("esg_media_sessions_total", ())]
        pbx, _ = self.echoing_pbx()
        rtp = self.port()
        c = self.call(rtp)
        rtp.send(c.media_dest(), count=10)
        deadline = time.time() + 3
        key = ("esg_calls_in_progress", (("direction", "in"), ("state", "confirmed")))
        while self.metrics()[key] != 1 and time.time() < deadline:
            time.sleep(0.1)
        m = self.metrics()
        self.assertEqual(m[key], 1)
        self.assertEqual(m[("esg_media_sessions_total", ())], sessions + 1)
        self.assertEqual(c.bye(), 200)
        self.assertEqual(pbx.wait(), 0, pbx.output())
        deadline = time.time() + 3
        while self.metrics()[key] != 0 and time.time() < deadline:
            time.sleep(0.1)
        m = self.metrics()
        self.assertEqual(m[key], 0)
        self.assertGreaterEqual(m[("esg_rtp_packets_total", ())], 20)  # 10 each way
        self.assertEqual(m[("esg_call_attempts_total", (("direction", "in"),))], 1)
        # Both sides of the stream sent packets: two jitter observations, nothing lost.
        self.assertEqual(m[("esg_rtp_jitter_ms_count", ())], 2)
        self.assertEqual(m[("esg_rtp_jitter_ms_bucket", (("le", "+Inf"),))], 2)
        self.assertEqual(m[("esg_rtp_lost_packets_total", ())], 0)
        self.assertEqual(m[("esg_calls_completed_total",
                            (("direction", "in"), ("result", "answered")))], 1)
        self.assertEqual(m[("esg_calls_completed_total",
                            (("direction", "out"), ("result", "answered")))], 0)


class PublicMetrics(unittest.TestCase):
    def test_public_metrics_need_no_token_and_the_api_still_does(self):
        esg = EsgProcess({"http": {"listen": "127.0.0.1:0", "token": "test-token",
                                   "public_metrics": True}})
        try:
            api = Api(esg.ports["http"])
            status, _, text = api.text("/metrics", token=None)
            self.assertEqual(status, 200)
            self.assertIn(("esg_build_info", (("version", text.split('version="')[1]
                                                .split('"')[0]),)), parse(text))
            status, _ = api.call("GET", "/rest/v1/uc/providers", token=None)
            self.assertEqual(status, 401)
        finally:
            stop_all(False, esg)


if __name__ == "__main__":
    unittest.main()
