"""esg's command line, end to end: version, check, run (start and stop), parse over captures."""

import contextlib
import json
import os
import re
import signal
import subprocess
import tarfile
import tempfile
import time
import unittest
import urllib.request

ESG = os.environ["ESG_BIN"]
SRC = os.environ["ESG_SOURCE_DIR"]
DATA = os.environ["ESG_TEST_DATA"]


def esg(*args, **kw):
    return subprocess.run([ESG, *args], capture_output=True, text=True, timeout=60, **kw)


@contextlib.contextmanager
def running(config_path):
    """`esg run` on a config; it must stop with 0 on SIGTERM (killed if the test fails first)."""
    p = subprocess.Popen([ESG, "run", "--config", config_path], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        yield p
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=10) == 0, "esg did not stop cleanly"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def lines_until_ready(p, seconds):
    """What `esg run` printed on stdout up to its "ready" line (or its end, or `seconds`)."""
    lines = []
    deadline = time.time() + seconds
    while time.time() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("ready"):
            break
    return lines


class CommandLine(unittest.TestCase):
    def test_version(self):
        r = esg("version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^esg \d+\.\d+\.\d+")

    def test_bad_command_and_no_command_exit_2(self):
        self.assertEqual(esg("frobnicate").returncode, 2)
        self.assertEqual(esg().returncode, 2)
        self.assertEqual(esg("check").returncode, 2)  # --config is required


class Check(unittest.TestCase):
    def write(self, text):
        f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        f.write(text)
        f.close()
        self.addCleanup(os.unlink, f.name)
        return f.name

    def test_sample_config_prints_effective_config(self):
        r = esg("check", "--config", os.path.join(SRC, "config/esg.json"))
        self.assertEqual(r.returncode, 0, r.stderr)
        effective = json.loads(r.stdout)
        self.assertEqual(effective["listen"][0], {"proto": "udp", "addr": "0.0.0.0", "port": 5080})
        self.assertEqual(effective["http"]["token"], "(set)")  # secrets never printed
        self.assertNotIn("change-me", r.stdout)
        # A newcomer hears where the page is and that the sample's credentials are still on.
        self.assertIn("esg: web page at http://127.0.0.1:8080/ui/ (sign in as \"admin\")", r.stderr)
        self.assertIn("esg: warning: http.token is the sample config's \"change-me\"", r.stderr)
        self.assertIn("esg: warning: the web page's admin password is the sample config's "
                      "\"change-me\"", r.stderr)

    def test_own_credentials_are_not_warned_of(self):
        with open(os.path.join(SRC, "config/esg.json")) as f:
            cfg = json.load(f)
        cfg["http"]["token"] = "our-own-secret"
        cfg["http"]["admin"]["password_hash"] = esg(
            "hash-password", input="not the sample\n").stdout.strip()
        r = esg("check", "--config", self.write(json.dumps(cfg)))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("esg: web page at http://127.0.0.1:8080/ui/", r.stderr)
        self.assertNotIn("warning", r.stderr)

    def test_field_errors_name_the_path(self):
        path = self.write('{"listen": [{"proto": "udp"}, {"proto": "tcp", "port": 70000}]}')
        r = esg("check", "--config", path)
        self.assertEqual(r.returncode, 2)
        self.assertIn(path + ": listen[1].port: must be between 0 and 65535", r.stderr)

    def test_syntax_errors_name_the_line(self):
        path = self.write('{\n  "instance": {\n    "srvidx": 1,,\n  }\n}\n')
        r = esg("check", "--config", path)
        self.assertEqual(r.returncode, 2)
        self.assertIn("line 3", r.stderr)

    def test_missing_file(self):
        r = esg("check", "--config", "/nonexistent/esg.json")
        self.assertEqual(r.returncode, 2)
        self.assertIn("cannot read", r.stderr)


class Run(unittest.TestCase):
    def test_starts_on_a_config_and_stops_on_sigterm(self):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = os.path.join(tmp, "esg.json")
            with open(cfg, "w") as f:
                json.dump({"listen": [{"proto": "udp", "addr": "127.0.0.1", "port": 15080}],
                           "store": {"sqlite": os.path.join(tmp, "esg.db")},
                           "log": {"dir": os.path.join(tmp, "log")}}, f)
            with running(cfg) as p:
                lines = lines_until_ready(p, 10)
                self.assertTrue(any(l.startswith("ready") for l in lines), lines)
                self.assertTrue(any("listening on udp 127.0.0.1:15080" in l for l in lines), lines)

    def test_the_sample_config_says_where_the_page_is_and_warns_of_its_credentials(self):
        with open(os.path.join(SRC, "config/esg.json")) as f:
            cfg = json.load(f)
        with tempfile.TemporaryDirectory() as tmp:
            # The sample as it is, but on loopback ports of its own and a store in tmp.
            cfg["listen"] = [{"proto": "udp", "addr": "127.0.0.1", "port": 0}]
            cfg["http"]["listen"] = "127.0.0.1:0"
            cfg["http"]["ui_dir"] = os.path.join(SRC, "web/dist")
            cfg["store"] = {"sqlite": os.path.join(tmp, "esg.db")}
            cfg["log"]["dir"] = os.path.join(tmp, "log")
            cfg["telegram"]["sessions"] = os.path.join(tmp, "telegram")
            path = os.path.join(tmp, "esg.json")
            with open(path, "w") as f:
                json.dump(cfg, f)
            with running(path) as p:
                lines = lines_until_ready(p, 20)
                out = "".join(lines)
                m = re.search(r"^web page at (http://127\.0\.0\.1:(\d+)/ui/) \(sign in as \"admin\"\)$",
                              out, re.M)
                self.assertTrue(m, out)
                self.assertNotEqual(m.group(2), "0", "the port actually bound")
                self.assertIn("warning: http.token is the sample config's \"change-me\"", out)
                self.assertIn("warning: the web page's admin password is the sample config's "
                              "\"change-me\" (user \"admin\"): set http.admin.password_hash", out)
                self.assertLess(out.index("warning:"), out.index("ready"))
                with urllib.request.urlopen(m.group(1), timeout=5) as r:
                    self.assertEqual(r.status, 200)
                    self.assertIn("text/html", r.headers.get("Content-Type", ""))

    def test_bad_config_exits_2_with_the_reason(self):
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            f.write('{"security": {"default_action": "maybe"}}')
            f.flush()
            r = esg("run", "--config", f.name)
            self.assertEqual(r.returncode, 2)
            self.assertIn("security.default_action", r.stderr)


class Parse(unittest.TestCase):
    def test_rfc4475_messages_each_get_one_json_line(self):
        folder = os.path.join(DATA, "rfc4475")
        files = sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".dat"))
        r = esg("parse", *files)
        self.assertEqual(r.returncode, 1)  # some of them are invalid on purpose
        lines = [json.loads(l) for l in r.stdout.splitlines()]
        self.assertEqual(len(lines), len(files))
        by_name = {os.path.basename(l["file"])[:-4]: l for l in lines}
        self.assertEqual(by_name["badvers"]["status"], 505)
        self.assertEqual(by_name["unkscm"]["status"], 416)
        self.assertEqual(by_name["scalarlg"]["status"], "discard")
        self.assertTrue(by_name["wsinv"]["ok"])
        self.assertEqual(by_name["wsinv"]["via_count"], 3)

    def test_protos_c07_sip_suite_never_crashes_the_parser(self):
        with tempfile.TemporaryDirectory() as tmp:
            with tarfile.open(os.path.join(DATA, "protos-c07-sip/cases.tar.xz")) as t:
                t.extractall(tmp)
            cases = sorted(os.path.join(tmp, "cases", n) for n in os.listdir(os.path.join(tmp, "cases"))
                           if not n.endswith(".teardown.sip"))
            self.assertEqual(len(cases), 4527)
            r = esg("parse", *cases)
            self.assertIn(r.returncode, (0, 1), r.stderr)  # a signal would be negative
            lines = [json.loads(l) for l in r.stdout.splitlines()]
            self.assertEqual(len(lines), len(cases))
            self.assertTrue(lines[0]["ok"], lines[0])  # case 0000 is the valid INVITE
            for l in lines:
                if not l["ok"]:
                    self.assertTrue(l["reason"])
                    self.assertTrue(l["status"] == "discard" or 400 <= l["status"] <= 599)


if __name__ == "__main__":
    unittest.main()
