"""The Telegram simulator itself, driven as esg drives it: a TDLib-style client on
libtdjson_sim.so (ctypes, in this process) logs in and uses what the next issue needs: lookups,
calls both ways with their states and errors (their audio, tgpeer's: test_tgpeer_harness.py),
chat messages. These tests pin the simulator's behaviour to TELEGRAM.md, so that tests built on it mean something."""

import base64
import ctypes
import json
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tgsim"))
from tgsim_fixture import LIB, TgSim  # noqa: E402

SIM = None
TD = None


def setUpModule():
    global SIM, TD
    SIM = TgSim()
    os.environ["TGSIM_SOCKET"] = SIM.socket  # read by the library at its first request
    TD = ctypes.CDLL(os.path.abspath(LIB))
    TD.td_receive.restype = ctypes.c_char_p
    TD.td_receive.argtypes = [ctypes.c_double]
    TD.td_send.argtypes = [ctypes.c_int, ctypes.c_char_p]
    TD.td_execute.restype = ctypes.c_char_p
    TD.td_execute.argtypes = [ctypes.c_char_p]


def tearDownModule():
    SIM.stop()
    SIM.cleanup()


class Client:
    """One TDLib client of the library, as esg's Hub uses one."""
    extra = 0

    def __init__(self):
        self.id = TD.td_create_client_id()
        self.updates = []

    def send(self, request):
        Client.extra += 1
        request = dict(request, **{"@extra": Client.extra})
        TD.td_send(self.id, json.dumps(request).encode())
        return Client.extra

    def call(self, request, timeout=5):
        extra = self.send(request)
        deadline = time.time() + timeout
        while time.time() < deadline:
            msg = self.receive(0.1)
            if msg and msg.get("@extra") == extra:
                return msg
        raise AssertionError("no answer to %s" % request)

    def receive(self, timeout):
        text = TD.td_receive(timeout)
        if not text:
            return None
        msg = json.loads(text)
        assert msg["@client_id"] == self.id, msg
        if "@extra" not in msg:
            self.updates.append(msg)
        return msg

    def wait(self, pred, timeout=5):
        deadline = time.time() + timeout
        while True:
            for u in self.updates:
                if pred(u):
                    self.updates.remove(u)
                    return u
            if time.time() > deadline:
                raise AssertionError("no such update; got %s" % [u["@type"] for u in self.updates])
            self.receive(0.05)

    def auth_state(self, state, timeout=5):
        return self.wait(lambda u: u["@type"] == "updateAuthorizationState" and
                         u["authorization_state"]["@type"] == "authorizationState" + state,
                         timeout)

    def call_state(self, call_id, state, timeout=5):
        return self.wait(lambda u: u["@type"] == "updateCall" and u["call"]["id"] == call_id and
                         u["call"]["state"]["@type"] == "callState" + state, timeout)["call"]


class Simulator(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.account = SIM.user(phone="+79995550000", code="13579", first_name="Line",
                               username="sim_line")
        cls.db = os.path.join(SIM.dir, "client-db")
        cls.c = Client()
        version = cls.c.call({"@type": "getOption", "name": "version"})
        assert version["value"].endswith("tgsim"), version
        cls.c.auth_state("WaitTdlibParameters")
        assert cls.c.call({"@type": "getMe"})["code"] == 400  # parameters first, as TDLib says
        cls.c.call({"@type": "setTdlibParameters", "api_id": 1, "api_hash": "x" * 32,
                    "database_directory": cls.db, "use_test_dc": False})
        cls.c.auth_state("WaitPhoneNumber")
        assert cls.c.call({"@type": "setAuthenticationPhoneNumber",
                           "phone_number": "+79995550000"})["@type"] == "ok"
        cls.c.auth_state("WaitCode")
        assert cls.c.call({"@type": "checkAuthenticationCode", "code": "13579"})["@type"] == "ok"
        cls.c.auth_state("Ready")

    def test_execute_answers_the_version_synchronously(self):
        answer = json.loads(TD.td_execute(
            json.dumps({"@type": "getOption", "name": "version", "@extra": "v"}).encode()))
        self.assertEqual(answer, {"@type": "optionValueString", "value": "1.8.67-tgsim",
                                  "@extra": "v"})

    def test_finding_users_needs_prior_contact_a_username_or_a_visible_phone(self):
        c = self.c
        stranger = SIM.user(first_name="Ivan", username="ivan_p", phone="+79991112233")
        self.assertEqual(c.call({"@type": "getUser", "user_id": stranger}),
                         {"@type": "error", "code": 400, "message": "User not found",
                          "@client_id": c.id, "@extra": Client.extra})
        chat = c.call({"@type": "searchPublicChat", "username": "ivan_p"})
        self.assertEqual(chat["type"], {"@type": "chatTypePrivate", "user_id": stranger})
        self.assertEqual(c.call({"@type": "getUser", "user_id": stranger})["first_name"], "Ivan")
        self.assertEqual(c.call({"@type": "searchPublicChat", "username": "nobody_here"})["message"],
                         "USERNAME_NOT_OCCUPIED")
        # A hidden phone: not found by number until imported as a contact.
        self.assertEqual(c.call({"@type": "searchUserByPhoneNumber",
                                 "phone_number": "+79991112233"})["code"], 404)
        imported = c.call({"@type": "importContacts", "contacts": [
            {"@type": "contact", "phone_number": "+79991112233", "first_name": "Ivan"},
            {"@type": "contact", "phone_number": "+79990000000", "first_name": "None"}]})
        self.assertEqual(imported["user_ids"], [stranger, 0])
        self.assertEqual(c.call({"@type": "searchUserByPhoneNumber",
                                 "phone_number": "+79991112233"})["id"], stranger)
        SIM.ctl("flood", what="lookup", seconds=30)
        self.assertEqual(c.call({"@type": "searchPublicChat", "username": "ivan_p"})["message"],
                         "Too Many Requests: retry after 30")

    def test_an_answered_call_is_ready_with_the_version_both_sides_speak(self):
        # The call's audio is tgpeer's (test_tgpeer_harness.py); here a version no engine of the
        # simulator runs, so only the states and the fields of callStateReady are seen.
        c = self.c
        user = SIM.user(first_name="Olga", library_versions=["7.0.0", "2.4.4"],
                        answer={"action": "answer", "after": 0.2})
        SIM.ctl("talked.add", a=self.account, b=user)
        call_id = c.call({"@type": "createCall", "user_id": user, "protocol": {
            "@type": "callProtocol", "udp_p2p": True, "udp_reflector": True, "min_layer": 65,
            "max_layer": 92, "library_versions": ["2.4.4", "7.0.0"]}, "is_video": False})["id"]
        first = c.call_state(call_id, "Pending")
        self.assertTrue(first["is_outgoing"])
        received = c.wait(lambda u: u["@type"] == "updateCall" and
                          u["call"]["state"].get("is_received"))
        self.assertTrue(received["call"]["state"]["is_created"])
        # Signaling before the call is ready is refused, as TDLib does.
        early = c.call({"@type": "sendCallSignalingData", "call_id": call_id, "data": "AAAA"})
        self.assertEqual((early["@type"], early["message"]), ("error", "Call is not active"))
        c.call_state(call_id, "ExchangingKeys")
        ready = c.call_state(call_id, "Ready")["state"]
        self.assertEqual(len(base64.b64decode(ready["encryption_key"])), 256)
        self.assertEqual(ready["protocol"]["library_versions"], ["7.0.0"])  # the best of both
        self.assertEqual(ready["servers"], [])
        self.assertTrue(ready["allow_p2p"])
        self.assertEqual(len(ready["emojis"]), 4)
        state = SIM.ctl("call.state", call_id=call_id)
        self.assertEqual((state["version"], state["engine"]), ("7.0.0", None))
        self.assertEqual(c.call({"@type": "sendCallSignalingData", "call_id": call_id,
                                 "data": "AAAA"})["@type"], "ok")
        self.assertEqual(c.call({"@type": "discardCall", "call_id": call_id,
                                 "is_disconnected": False, "duration": 2})["@type"], "ok")
        c.call_state(call_id, "HangingUp")
        end = c.call_state(call_id, "Discarded")
        self.assertEqual(end["state"]["reason"]["@type"], "callDiscardReasonHungUp")

    def test_calls_refused_by_telegram_end_as_tdlib_reports_them(self):
        c = self.c
        private = SIM.user(privacy="nobody")
        blocker = SIM.user()
        old = SIM.user(outdated=True)
        decliner = SIM.user(answer={"action": "decline", "after": 0.1})
        for u in (private, blocker, old, decliner):
            SIM.ctl("talked.add", a=self.account, b=u)
        SIM.ctl("block", user=blocker, blocked=self.account)
        for user, code, message in [(private, 403, "USER_PRIVACY_RESTRICTED"),
                                    (blocker, 403, "USER_IS_BLOCKED"),
                                    (old, 400, "PARTICIPANT_VERSION_OUTDATED")]:
            call_id = c.call({"@type": "createCall", "user_id": user, "protocol": {},
                              "is_video": False})["id"]
            err = c.call_state(call_id, "Error")["state"]["error"]
            self.assertEqual((err["code"], err["message"]), (code, message))
        call_id = c.call({"@type": "createCall", "user_id": decliner, "protocol": {},
                          "is_video": False})["id"]
        end = c.call_state(call_id, "Discarded")
        self.assertEqual(end["state"]["reason"]["@type"], "callDiscardReasonDeclined")
        # Telegram's limits: a flood wait, an unknown user, the spam restriction.
        SIM.ctl("flood", what="call", seconds=77)
        self.assertEqual(c.call({"@type": "createCall", "user_id": decliner})["message"],
                         "Too Many Requests: retry after 77")
        self.assertEqual(c.call({"@type": "createCall", "user_id": 999})["message"],
                         "USER_ID_INVALID")
        SIM.ctl("restrict", account=self.account)
        self.assertEqual(c.call({"@type": "createCall", "user_id": decliner})["message"],
                         "PEER_FLOOD")
        SIM.ctl("restrict", account=self.account, on=False)

    def test_an_offline_phone_rings_after_its_push_delay_or_never(self):
        c = self.c
        sleepy = SIM.user(online=False, push_delay=0.6)
        gone = SIM.user(online=False, push_delay=None)
        for u in (sleepy, gone):
            SIM.ctl("talked.add", a=self.account, b=u)
        SIM.ctl("timeouts", receive=1.5)
        started = time.time()
        call_id = c.call({"@type": "createCall", "user_id": sleepy})["id"]
        c.wait(lambda u: u["@type"] == "updateCall" and u["call"]["id"] == call_id and
               u["call"]["state"].get("is_received"))
        self.assertGreaterEqual(time.time() - started, 0.55)
        c.call({"@type": "discardCall", "call_id": call_id})
        self.assertEqual(c.call_state(call_id, "Discarded")["state"]["reason"]["@type"],
                         "callDiscardReasonMissed")  # ours, unanswered
        call_id = c.call({"@type": "createCall", "user_id": gone})["id"]
        err = c.call_state(call_id, "Error", timeout=5)["state"]["error"]
        self.assertEqual(err["code"], 4005000)
        SIM.ctl("timeouts", receive=20)

    def test_an_incoming_call_is_accepted_and_hung_up_by_the_caller(self):
        c = self.c
        caller = SIM.user(first_name="Petr", tone=300)
        call_id = SIM.ctl("call.incoming", **{"from": caller, "to": self.account})["call_id"]
        pending = c.call_state(call_id, "Pending")
        self.assertFalse(pending["is_outgoing"])
        self.assertEqual(pending["user_id"], caller)
        self.assertEqual(c.call({"@type": "getUser", "user_id": caller})["first_name"], "Petr")
        self.assertEqual(c.call({"@type": "acceptCall", "call_id": call_id,
                                 "protocol": {}})["@type"], "ok")
        c.call_state(call_id, "Ready")
        SIM.ctl("call.hangup", call_id=call_id)
        end = c.call_state(call_id, "Discarded")
        self.assertEqual(end["state"]["reason"]["@type"], "callDiscardReasonHungUp")
        # Declined while ringing, and taken on another device.
        call_id = SIM.ctl("call.incoming", **{"from": caller, "to": self.account})["call_id"]
        c.call_state(call_id, "Pending")
        c.call({"@type": "discardCall", "call_id": call_id})
        self.assertEqual(c.call_state(call_id, "Discarded")["state"]["reason"]["@type"],
                         "callDiscardReasonDeclined")
        call_id = SIM.ctl("call.incoming", **{"from": caller, "to": self.account})["call_id"]
        c.call_state(call_id, "Pending")
        SIM.ctl("call.answer_elsewhere", call_id=call_id)
        self.assertEqual(c.call_state(call_id, "Discarded")["state"]["reason"]["@type"],
                         "callDiscardReasonEmpty")

    def ready_call(self, versions, user_fields=None):
        """An outgoing call of the account, answered and Ready: (call id, callStateReady)."""
        c = self.c
        user = SIM.user(first_name="Refl", library_versions=versions,
                        answer={"action": "answer", "after": 0.1}, **(user_fields or {}))
        SIM.ctl("talked.add", a=self.account, b=user)
        call_id = c.call({"@type": "createCall", "user_id": user, "protocol": {
            "@type": "callProtocol", "udp_p2p": True, "udp_reflector": True, "min_layer": 65,
            "max_layer": 92, "library_versions": versions}, "is_video": False})["id"]
        ready = c.call_state(call_id, "Ready")["state"]
        self.addCleanup(lambda: c.call({"@type": "discardCall", "call_id": call_id,
                                        "is_disconnected": False, "duration": 1}))
        return call_id, ready

    def test_reflectors_get_one_peer_tag_per_call_the_same_for_both_sides(self):
        # Three reflector entries: one id with IPv4 and IPv6, another id, and a TCP one.
        refl = [{"id": "7000000000000000001", "ip_address": "192.0.2.2",
                 "ipv6_address": "2001:db8::2", "port": 5600},
                {"id": "7000000000000000002", "ip_address": "192.0.2.2", "port": 5601},
                {"id": "7000000000000000003", "ip_address": "192.0.2.2", "port": 5602,
                 "is_tcp": True}]
        turn = {"@type": "callServer", "id": "5", "ip_address": "192.0.2.2",
                "ipv6_address": "", "port": 3478,
                "type": {"@type": "callServerTypeWebrtc", "username": "u", "password": "p",
                         "supports_turn": True, "supports_stun": True}}
        SIM.ctl("call.network", servers=[turn], reflectors=refl, allow_p2p=False)
        self.addCleanup(lambda: SIM.ctl("call.network", servers=[], reflectors=[],
                                        allow_p2p=True))
        # 8.0.0: tgpeer is started for the user with its own copy of the servers.
        call_id, ready = self.ready_call(["8.0.0"])
        self.assertFalse(ready["allow_p2p"])
        servers = ready["servers"]
        self.assertEqual(servers[0], turn)
        reflectors = servers[1:]
        self.assertEqual([s["id"] for s in reflectors], [r["id"] for r in refl])
        self.assertEqual([s["port"] for s in reflectors], [5600, 5601, 5602])
        self.assertEqual(reflectors[0]["ipv6_address"], "2001:db8::2")
        self.assertEqual(reflectors[1]["ipv6_address"], "")
        self.assertEqual([s["type"]["is_tcp"] for s in reflectors], [False, False, True])
        tags = {s["type"]["peer_tag"] for s in reflectors}
        self.assertEqual(len(tags), 1)  # one tag per call, in every reflector
        tag = tags.pop()
        self.assertEqual(len(base64.b64decode(tag)), 16)
        self.assertEqual({s["type"]["@type"] for s in reflectors},
                         {"callServerTypeTelegramReflector"})
        self.assertEqual(SIM.ctl("call.state", call_id=call_id)["peer_tag"], tag)
        argv = SIM.ctl("call.peer", call_id=call_id)["argv"]
        self.assertEqual(json.loads(argv[argv.index("--servers") + 1]), servers)
        self.assertNotIn("--p2p", argv)
        # Another call: another tag.
        other_id, other = self.ready_call(["7.0.0"])
        other_tags = {s["type"]["peer_tag"] for s in other["servers"][1:]}
        self.assertEqual(len(other_tags), 1)
        self.assertNotEqual(other_tags.pop(), tag)

    def test_signaling_is_delayed_reordered_and_duplicated_on_command(self):
        c = self.c
        self.addCleanup(lambda: SIM.ctl("call.signaling"))
        blobs = [base64.b64encode(b"blob-%02d" % i).decode() for i in range(20)]
        # Without the impairment: in order, once each, at once.
        call_id, _ = self.ready_call(["7.0.0"])
        for b in blobs:
            c.call({"@type": "sendCallSignalingData", "call_id": call_id, "data": b})
        sig = SIM.ctl("call.state", call_id=call_id)["signaling"]["to_peer"]
        self.assertEqual(sig["order"], list(range(20)))
        # With it, both directions.
        SIM.ctl("call.signaling", delay_ms=50, jitter_ms=100, reorder=True, duplicate=0.3,
                seed=7)
        call_id, _ = self.ready_call(["7.0.0"])
        sent = time.time()
        for b in blobs:
            c.call({"@type": "sendCallSignalingData", "call_id": call_id, "data": b})
            SIM.ctl("call.inject_signaling", call_id=call_id, data=b)
        got = []
        deadline = time.time() + 5
        while time.time() < deadline and len(got) < 20 or time.time() < sent + 1.0:
            c.receive(0.05)
            for u in [u for u in c.updates if u["@type"] == "updateNewCallSignalingData"
                      and u["call_id"] == call_id]:
                c.updates.remove(u)
                got.append(int(base64.b64decode(u["data"])[5:]))
        st = SIM.ctl("call.state", call_id=call_id)["signaling"]
        for direction, order in (("to_peer", st["to_peer"]["order"]), ("to_client", got)):
            with self.subTest(direction):
                d = st[direction]
                self.assertEqual(sorted(set(order)), list(range(20)))  # none lost
                self.assertGreater(len(order), 20)  # some twice
                self.assertEqual(len(order), 20 + d["duplicated"])
                self.assertNotEqual(order, sorted(order))  # some overtook others
                self.assertGreater(d["reordered"], 0)
                self.assertGreaterEqual(d["max_delay_ms"], 50)
        self.assertEqual(SIM.ctl("call.signaling"), {"signaling": {}})

    def test_chat_messages_arrive_as_updates(self):
        c = self.c
        sender = SIM.user(first_name="Anna")
        self.assertEqual(SIM.ctl("message", **{"from": sender, "to": self.account,
                                               "text": "1234#"})["delivered"], 1)
        m = c.wait(lambda u: u["@type"] == "updateNewMessage")["message"]
        self.assertEqual(m["sender_id"], {"@type": "messageSenderUser", "user_id": sender})
        self.assertEqual(m["content"]["text"]["text"], "1234#")


if __name__ == "__main__":
    unittest.main()
