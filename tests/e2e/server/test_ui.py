"""The web page's server side (issue 10): the admin signs in with the password whose hash
`esg hash-password` made, gets an HttpOnly SameSite session cookie that authorizes the API like
the bearer token, and signs out; an anonymous visitor gets the page's files (the sign-in form)
and 401 from every API; file names cannot leave the page's folder."""

import http.client
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from esg_fixture import ESG, EsgProcess, KeepOnFailure, stop_all  # noqa: E402

SOURCE = os.environ.get("ESG_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", "..", ".."))


class Ui(KeepOnFailure):
    @classmethod
    def setUpClass(cls):
        made = subprocess.run([ESG, "hash-password"], input="s3cret pass\n", text=True,
                              capture_output=True, timeout=30)
        assert made.returncode == 0, made.stderr
        cls.hash = made.stdout.strip()
        cls.esg = EsgProcess({"http": {"listen": "127.0.0.1:0", "token": "tok",
                                       "ui_dir": os.path.join(SOURCE, "web", "dist"),
                                       "admin": {"user": "admin", "password_hash": cls.hash}}})

    @classmethod
    def tearDownClass(cls):
        stop_all(cls.failed, cls.esg)

    def request(self, method, path, body=None, cookie=None, token=None):
        c = http.client.HTTPConnection("127.0.0.1", self.esg.ports["http"], timeout=10)
        headers = {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if cookie:
            headers["Cookie"] = cookie
        if token:
            headers["Authorization"] = "Bearer " + token
        c.request(method, path, json.dumps(body) if body is not None else None, headers)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, r.getheader("Set-Cookie"), r.getheader("Content-Type"), data

    def test_the_hash_is_pbkdf2_with_a_salt(self):
        self.assertRegex(self.hash, r"^pbkdf2-sha256\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$")
        again = subprocess.run([ESG, "hash-password"], input="s3cret pass\n", text=True,
                               capture_output=True, timeout=30).stdout.strip()
        self.assertNotEqual(again, self.hash, "a new salt each time")

    def test_an_anonymous_visitor_gets_the_sign_in_page_and_no_data(self):
        for path in ("/", "/ui", "/ui/"):
            status, _, ctype, page = self.request("GET", path)
            self.assertEqual(status, 200, path)
            self.assertTrue(ctype.startswith("text/html"), ctype)
            self.assertIn(b"Sign in", page)
            self.assertNotIn(b"change-me", page)
        status, _, ctype, _ = self.request("GET", "/ui/app.js")
        self.assertEqual((status, ctype.split(";")[0]), (200, "text/javascript"))
        for path in ("/api/monitor/v1/calls", "/rest/v1/uc/providers", "/metrics",
                     "/ui/api/session"):
            status, _, _, _ = self.request("GET", path)
            self.assertEqual(status, 401, path)
        for path in ("/ui/..%2f..%2fetc%2fpasswd", "/ui/.hidden", "/ui/nothing.js"):
            status, _, _, _ = self.request("GET", path)
            self.assertEqual(status, 404, path)

    def test_sign_in_cookie_authorizes_the_api_until_sign_out(self):
        for body in ({"user": "admin", "password": "wrong"}, {"user": "root", "password": "s3cret pass"}):
            status, cookie, _, answer = self.request("POST", "/ui/api/login", body)
            self.assertEqual(status, 401, body)
            self.assertIsNone(cookie)
            self.assertEqual(json.loads(answer)["error"], "wrong user or password")
        status, _, _, answer = self.request("POST", "/ui/api/login", {"user": "admin"})
        self.assertEqual((status, json.loads(answer)["field"]), (400, "password"))
        status, set_cookie, _, _ = self.request("POST", "/ui/api/login",
                                                {"user": "admin", "password": "s3cret pass"})
        self.assertEqual(status, 200)
        self.assertRegex(set_cookie, r"^esg_session=[0-9a-f]{64}; Path=/; HttpOnly; SameSite=Strict$")
        cookie = set_cookie.split(";")[0]
        status, _, _, answer = self.request("GET", "/ui/api/session", cookie=cookie)
        self.assertEqual((status, json.loads(answer)["user"]), (200, "admin"))
        for path in ("/api/monitor/v1/calls", "/rest/v1/uc/providers", "/metrics"):
            status, _, _, _ = self.request("GET", path, cookie=cookie)
            self.assertEqual(status, 200, path)
        status, _, _, _ = self.request("GET", "/rest/v1/uc/providers", cookie="esg_session=" + "0" * 64)
        self.assertEqual(status, 401, "an unknown session is nobody")
        status, cleared, _, _ = self.request("POST", "/ui/api/logout", cookie=cookie)
        self.assertEqual(status, 200)
        self.assertIn("Max-Age=0", cleared)
        status, _, _, _ = self.request("GET", "/api/monitor/v1/calls", cookie=cookie)
        self.assertEqual(status, 401, "signed out")
        # The bearer token works as before.
        status, _, _, _ = self.request("GET", "/api/monitor/v1/calls", token="tok")
        self.assertEqual(status, 200)


if __name__ == "__main__":
    unittest.main()
