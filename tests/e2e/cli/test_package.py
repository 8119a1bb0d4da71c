"""scripts/package: the Debian package holds the binary, the systemd unit, the packaged config
(a conffile, valid for `esg check`), TDLib and the README, with the dependencies the binary
links; its postinst makes the esg user and folders. The package is inspected and unpacked into a
temporary folder, never installed (tests do not change the machine)."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

SOURCE = os.environ.get("ESG_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ESG = os.path.abspath(os.environ.get("ESG_BIN", "build/esg"))


class Package(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="esg-package-")
        r = subprocess.run([os.path.join(SOURCE, "scripts", "package"), "--binary", ESG,
                            "--out", cls.dir, "--fast"], cwd=SOURCE, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        cls.deb = r.stdout.strip().splitlines()[-1]

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def field(self, name):
        return subprocess.run(["dpkg-deb", "-f", self.deb, name], capture_output=True,
                              text=True, check=True).stdout.strip()

    def test_control_fields(self):
        version = subprocess.run([ESG, "version"], capture_output=True, text=True).stdout.split()[1]
        self.assertEqual(self.field("Package"), "esg")
        self.assertEqual(self.field("Version"), version)
        self.assertTrue(self.deb.endswith("esg_%s_%s.deb" % (version, self.field("Architecture"))))
        depends = self.field("Depends")
        for lib in ("libssl3", "libsqlite3-0", "libopus0", "libsrtp2-1", "libspandsp2", "adduser"):
            self.assertRegex(depends, r"(^|, )%s( \(|,|$)" % re.escape(lib))

    def test_files_and_unpacked_config(self):
        listing = subprocess.run(["dpkg-deb", "-c", self.deb], capture_output=True, text=True,
                                 check=True).stdout
        for path in ("./usr/bin/esg", "./lib/systemd/system/esg.service", "./etc/esg/esg.json",
                     "./usr/share/doc/esg/README.md", "./usr/lib/esg/libtdjson.so",
                     "./usr/share/esg/ui/index.html", "./usr/share/esg/ui/app.js"):
            self.assertIn(path, listing)
        root = os.path.join(self.dir, "root")
        subprocess.run(["dpkg-deb", "-x", self.deb, root], check=True)
        subprocess.run(["dpkg-deb", "-e", self.deb, os.path.join(root, "DEBIAN")], check=True)
        with open(os.path.join(root, "DEBIAN", "conffiles")) as f:
            self.assertEqual(f.read().split(), ["/etc/esg/esg.json"])
        with open(os.path.join(root, "DEBIAN", "postinst")) as f:
            postinst = f.read()
        self.assertIn("adduser --system", postinst)
        self.assertIn("/var/lib/esg", postinst)
        r = subprocess.run([os.path.join(root, "usr/bin/esg"), "check", "--config",
                            os.path.join(root, "etc/esg/esg.json")], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('"/usr/lib/esg/libtdjson.so"', r.stdout)
        with open(os.path.join(root, "lib/systemd/system/esg.service")) as f:
            unit = f.read()
        self.assertIn("ExecStart=/usr/bin/esg run --config /etc/esg/esg.json", unit)
        self.assertIn("User=esg", unit)


if __name__ == "__main__":
    unittest.main()
