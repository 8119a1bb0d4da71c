"""A webhook receiver for the CRM events tests (issue 23): an HTTP server on loopback that
records every POST, and the check of an event's signature and headers."""

import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_tcp_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Receiver:
    """An HTTP server on 127.0.0.1:`port` that records every POST; the first `fail` of them
    are answered 503."""

    def __init__(self, port, fail=0):
        self.posts = []  # (headers dict, body bytes, status answered)
        self.fail = fail
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    status = 503 if outer.fail > 0 else 200
                    outer.fail -= 1
                    outer.posts.append((dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def delivered(self):
        with self.lock:
            return [(h, b) for h, b, s in self.posts if s == 200]

    def wait(self, count, seconds=20):
        deadline = time.time() + seconds
        while time.time() < deadline:
            got = self.delivered()
            if len(got) >= count:
                return got
            time.sleep(0.05)
        raise AssertionError("%d deliveries, wanted %d: %s" % (len(self.delivered()), count,
                                                              self.posts))

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def signed_event(test, secret, headers, body):
    """The event in `body`, after checking its X-Esg-* headers and HMAC-SHA256 signature."""
    want = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    test.assertEqual(headers.get("X-Esg-Signature"), want)
    event = json.loads(body)
    test.assertEqual(headers.get("X-Esg-Event"), event["event"])
    test.assertEqual(headers.get("X-Esg-Event-Id"), event["id"])
    test.assertEqual(headers.get("Content-Type"), "application/json")
    return event
