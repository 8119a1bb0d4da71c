"""esg's REST and monitoring API from a test: bearer token, JSON in and out."""

import json
import time
import urllib.error
import urllib.request

from esg_fixture import TOKEN


class Api:
    def __init__(self, port):
        self.base = "http://127.0.0.1:%d" % port

    def call(self, method, path, body=None, token=TOKEN):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if token:
            req.add_header("Authorization", "Bearer " + token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                text = r.read().decode()
                return r.status, json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            text = e.read().decode()
            return e.code, json.loads(text) if text else None

    def inbound_route(self, pbx_port, pbx_ip="127.0.0.5"):
        """The smallest incoming set-up: provider `prov-a` (point to point at 127.0.0.2), PBX
        connection `pbx1` (ip) and a rule sending every incoming call to it. Returns pbx1."""
        self.ok("POST", "/rest/v1/uc/providers",
                {"code": "prov-a", "domain": "127.0.0.2", "reg": False, "username": ""})
        pbx = self.ok("POST", "/rest/v1/uc/pbx",
                      {"code": "pbx1", "mode": "ip", "address": pbx_ip, "port": pbx_port})
        self.ok("POST", "/rest/v1/routing/rules",
                {"priority": 100, "direction": "in", "action": "pbx", "target": "pbx1"})
        return pbx

    def text(self, path, token=TOKEN):
        """(status, content type, body text) of a GET that answers text (/metrics)."""
        req = urllib.request.Request(self.base + path)
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.headers.get("Content-Type", ""), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type", ""), e.read().decode()

    def regs(self):
        status, body = self.call("GET", "/api/monitor/v1/esg/active?regs=true")
        assert status == 200, body
        return {r["code"]: r for r in body["data"]["sites"][0]["servers"][0]["regs"]}

    def wait_reg(self, code, states, seconds=15):
        deadline = time.time() + seconds
        last = None
        while time.time() < deadline:
            last = self.regs().get(code)
            if last and last["regstate"] in states:
                return last
            time.sleep(0.1)
        raise AssertionError("%s never reached %s: %s" % (code, states, last))

    def ok(self, method, path, body=None, want=(200, 201, 204)):
        status, answer = self.call(method, path, body)
        assert status in want, "%s %s -> %d %s" % (method, path, status, answer)
        return answer
