#!/usr/bin/env python3
"""tgsim: a Telegram simulator for esg's tests (issue 8). NOT Telegram: a small world of users,
contacts and calls that answers TDLib's JSON API the way TDLib does where esg can tell the
difference. esg loads libtdjson_sim.so (built from tdjson_sim.cpp) instead of TDLib; that
library forwards every request here over a Unix socket. Tests drive the world through a
control port (JSON lines on loopback). See README.md beside this file for the objects,
methods, errors and the control commands; a user's call audio is tgpeer's (the real tgcalls).

    tgsim.py --socket /tmp/x/tgsim.sock --control-port 0 --ready-file /tmp/x/ready
"""

import argparse
import asyncio
import base64
import collections
import json
import os
import random
import signal
import struct
import sys
import time

VERSION = "1.8.67-tgsim"
HERE = os.path.dirname(os.path.abspath(__file__))
# The reference call engine a simulated user's app runs (/work/shared/tools/tgpeer: the real
# tgcalls): the repository's sibling folder shared/, unless $ESG_TGPEER names another binary.
TGPEER = os.environ.get("ESG_TGPEER") or os.path.normpath(
    os.path.join(HERE, "..", "..", "..", "shared", "tools", "tgpeer", "tgpeer"))
# Versions tgpeer runs for a simulated user (the V2 signaling of today's apps, §1.1 of
# TELEGRAM-CALLS.md). Another chosen version reaches the client, but no engine starts.
PEER_VERSIONS = ("8.0.0", "9.0.0")
WORK_DIR = "."  # recordings and tgpeer logs: the folder of the library socket


class User:
    def __init__(self, uid, **f):
        self.id = uid
        self.first_name = f.get("first_name", "User%d" % uid)
        self.last_name = f.get("last_name", "")
        self.username = f.get("username", "")
        self.phone = f.get("phone", "").lstrip("+")
        self.phone_visible = f.get("phone_visible", False)
        self.online = f.get("online", True)
        self.push_delay = f.get("push_delay", 1.0)  # offline: seconds until the phone rings; None: never
        self.privacy = f.get("privacy", "everybody")  # who may call: everybody|contacts|nobody
        self.outdated = f.get("outdated", False)  # an app too old for calls with us
        self.answer = f.get("answer", {"action": "ignore"})  # answer|decline|ignore, "after" s
        self.tone = f.get("tone", 0)  # Hz the user sends once a call is up; 0: silence
        # The call library versions of the user's app (callProtocol.library_versions), as
        # current apps offer them; a test offers only one, or one esg does not speak.
        self.library_versions = list(f.get("library_versions", ["9.0.0", "8.0.0"]))
        self.gid = f.get("gid")  # tgpeer runs under this group id (setpriv), for cut tests
        self.peer_log = f.get("peer_log", "warning")  # tgpeer's --log-level ("info": debugging)
        self.servers = f.get("servers")  # this user's call servers; None: the world's
        self.allow_p2p = f.get("allow_p2p")  # None: the world's
        # A Telegram app discards the call when its engine reports "failed"; off by default
        # so that a test sees what esg's engine decides on its own.
        self.discard_on_failed = f.get("discard_on_failed", False)
        self.blocked = set()  # users this one blocked
        # Accounts esg may log in to: the login code and the two-step password.
        self.code = f.get("code")
        self.password = f.get("password")
        self.hint = f.get("hint", "")

    def update(self, f):
        for k, v in f.items():
            if k == "phone":
                v = v.lstrip("+")
            if k != "id":
                setattr(self, k, v)

    def obj(self, viewer=None):
        """TDLib's `user` as `viewer` sees it."""
        known = viewer is None or viewer.id == self.id or self.phone_visible or \
            (viewer and (viewer.id, self.id) in WORLD.contacts)
        return {
            "@type": "user", "id": self.id, "first_name": self.first_name,
            "last_name": self.last_name,
            "usernames": {"@type": "usernames", "active_usernames": [self.username],
                          "disabled_usernames": [], "editable_username": self.username}
            if self.username else None,
            "phone_number": self.phone if known else "",
            "status": {"@type": "userStatusOnline", "expires": int(time.time()) + 300}
            if self.online else {"@type": "userStatusOffline",
                                 "was_online": int(time.time()) - 600},
            "is_contact": bool(viewer and (viewer.id, self.id) in WORLD.contacts),
            "is_mutual_contact": False, "is_verified": False, "is_premium": False,
            "is_support": False, "restriction_reason": "", "is_scam": False, "is_fake": False,
            "have_access": True, "type": {"@type": "userTypeRegular"}, "language_code": "",
            "added_to_attachment_menu": False,
        }

    def name(self):
        return (self.first_name + " " + self.last_name).strip()


class World:
    def __init__(self):
        self.users = {}
        self.next_user = 100000001
        self.contacts = set()  # (owner, contact)
        self.talked = set()  # frozenset({a, b}): a prior conversation
        # "login" | "call" | "lookup" | "message" -> seconds, for the next such request
        self.floods = {}
        self.sent = {}  # (account, chat id) -> the messages the account wrote there
        self.chat_async = False  # sendMessage answers pending, the verdict comes as an update
        self.restricted = set()  # accounts under the spam restriction (PEER_FLOOD)
        self.calls = {}
        self.next_call = 1
        self.next_message = 1
        self.ring_timeout = 90.0  # TDLib's call_ring_timeout_ms
        self.receive_timeout = 20.0  # call_receive_timeout_ms
        self.clients = {}  # (connection id, client id) -> Client
        self.call_servers = []  # callStateReady.servers for engine calls (control call.network)
        self.allow_p2p = True
        # Reflectors added to every engine call's servers, each with the call's own peer_tag
        # (call.network reflectors): {"id", "ip_address", "ipv6_address", "port", "is_tcp"}.
        self.reflectors = []
        # Impairment of the signaling blobs relayed between the client and tgpeer, both ways
        # (control call.signaling): delay_ms, jitter_ms, reorder, duplicate (share), seed.
        self.signaling = {}
        self.signaling_rng = random.Random()
        self.requests = []  # every request, for the tests' assertions

    def add_user(self, **f):
        uid = f.pop("id", None) or self.next_user
        self.next_user = max(self.next_user, uid) + 1
        self.users[uid] = User(uid, **f)
        return self.users[uid]

    def by_phone(self, phone):
        phone = phone.lstrip("+")
        return next((u for u in self.users.values() if phone and u.phone == phone), None)

    def by_username(self, name):
        name = name.lstrip("@").lower()
        return next((u for u in self.users.values() if u.username and u.username.lower() == name),
                    None)

    def knows(self, account, user):
        return (account, user) in self.contacts or frozenset((account, user)) in self.talked

    def take_flood(self, what):
        return self.floods.pop(what, 0)

    def account_clients(self, account_id):
        return [c for c in self.clients.values() if c.account == account_id and c.state == "Ready"]


WORLD = World()


def error(code, message):
    return {"@type": "error", "code": code, "message": message}


# --- one library client (one TDLib client of esg) --------------------------------------------

class Client:
    def __init__(self, conn, client_id):
        self.conn = conn
        self.id = client_id
        self.state = "WaitTdlibParameters"
        self.started = False
        self.account = None
        self.phone = None
        self.db = None

    def emit(self, obj):
        obj["@client_id"] = self.id
        self.conn.write(obj)

    def set_state(self, state, **fields):
        self.state = state
        self.emit({"@type": "updateAuthorizationState",
                   "authorization_state": dict({"@type": "authorizationState" + state}, **fields)})

    def session_file(self):
        return os.path.join(self.db, "tgsim-session.json") if self.db else None

    def ready(self):
        self.set_state("Ready")
        self.emit({"@type": "updateConnectionState", "state": {"@type": "connectionStateReady"}})
        me = WORLD.users[self.account]
        self.emit({"@type": "updateUser", "user": me.obj(me)})
        with open(self.session_file(), "w") as f:
            json.dump({"user_id": self.account, "note": "tgsim session, not TDLib's"}, f)

    def handle(self, req):
        WORLD.requests.append({"client": self.id, "request": req})
        t = req.get("@type", "")
        if not self.started:
            self.started = True
            self.emit({"@type": "updateOption", "name": "version",
                       "value": {"@type": "optionValueString", "value": VERSION}})
            self.set_state("WaitTdlibParameters")
        if self.state == "Closed":
            return error(500, "Request aborted")
        method = getattr(self, "m_" + t, None)
        if t == "getOption":
            if req.get("name") == "version":
                return {"@type": "optionValueString", "value": VERSION}
            return {"@type": "optionValueEmpty"}
        if self.state == "WaitTdlibParameters" and t not in ("setTdlibParameters", "close"):
            return error(400, "Initialization parameters are needed: call setTdlibParameters first")
        if method is None:
            return error(400, "tgsim does not implement " + t)
        return method(req)

    # authorization
    def m_setTdlibParameters(self, req):
        if self.state != "WaitTdlibParameters":
            return error(400, "Unexpected setTdlibParameters")
        if not isinstance(req.get("api_id"), int) or req["api_id"] <= 0 or not req.get("api_hash"):
            return error(400, "Valid api_id must be provided. Can be obtained at "
                              "https://my.telegram.org")
        self.db = req.get("database_directory") or "."
        os.makedirs(self.db, exist_ok=True)
        try:
            with open(self.session_file()) as f:
                uid = json.load(f).get("user_id")
        except (OSError, ValueError):
            uid = None
        if uid in WORLD.users:
            self.account = uid
            self.conn.after(0, self.ready)
        else:
            self.conn.after(0, lambda: self.set_state("WaitPhoneNumber"))
        return {"@type": "ok"}

    def m_setAuthenticationPhoneNumber(self, req):
        if self.state != "WaitPhoneNumber":
            return error(400, "Call to setAuthenticationPhoneNumber unexpected")
        wait = WORLD.take_flood("login")
        if wait:
            return error(429, "Too Many Requests: retry after %d" % wait)
        phone = str(req.get("phone_number", ""))
        digits = phone.lstrip("+")
        if not digits.isdigit() or not 7 <= len(digits) <= 15:
            return error(400, "PHONE_NUMBER_INVALID")
        user = WORLD.by_phone(digits)
        if not user or user.code is None:
            return error(400, "PHONE_NUMBER_UNOCCUPIED")
        self.phone = digits
        self.account = user.id
        self.set_state("WaitCode", code_info={
            "@type": "authenticationCodeInfo", "phone_number": digits,
            "type": {"@type": "authenticationCodeTypeTelegramMessage", "length": len(user.code)},
            "next_type": {"@type": "authenticationCodeTypeSms", "length": len(user.code)},
            "timeout": 60})
        return {"@type": "ok"}

    def m_checkAuthenticationCode(self, req):
        if self.state != "WaitCode":
            return error(400, "Call to checkAuthenticationCode unexpected")
        wait = WORLD.take_flood("login")
        if wait:
            return error(429, "Too Many Requests: retry after %d" % wait)
        user = WORLD.users[self.account]
        if str(req.get("code", "")) != user.code:
            return error(400, "PHONE_CODE_INVALID")
        if user.password:
            self.set_state("WaitPassword", password_hint=user.hint,
                           has_recovery_email_address=False, has_passport_data=False,
                           recovery_email_address_pattern="")
        else:
            self.ready()
        return {"@type": "ok"}

    def m_checkAuthenticationPassword(self, req):
        if self.state != "WaitPassword":
            return error(400, "Call to checkAuthenticationPassword unexpected")
        if str(req.get("password", "")) != WORLD.users[self.account].password:
            return error(400, "PASSWORD_HASH_INVALID")
        self.ready()
        return {"@type": "ok"}

    def m_logOut(self, req):
        if self.state in ("LoggingOut", "Closing", "Closed"):
            return error(400, "Already logging out")
        self.set_state("LoggingOut")
        try:
            os.unlink(self.session_file())
        except (OSError, TypeError):
            pass
        self.conn.after(0.05, self.closed)
        return {"@type": "ok"}

    def m_close(self, req):
        if self.state not in ("Closing", "Closed"):
            self.set_state("Closing")
            self.conn.after(0.05, self.closed)
        return {"@type": "ok"}

    def closed(self):
        for call in list(WORLD.calls.values()):
            if call.client is self and call.state not in ("Discarded", "Error"):
                call.discard("callDiscardReasonDisconnected")
        self.set_state("Closed")

    # users
    def me(self):
        return WORLD.users.get(self.account) if self.state == "Ready" else None

    def lookup_allowed(self):
        """(the account, None), or (None, the error): logged in, and no flood imposed on lookups."""
        me = self.me()
        if not me:
            return None, error(401, "Unauthorized")
        wait = WORLD.take_flood("lookup")
        if wait:
            return None, error(429, "Too Many Requests: retry after %d" % wait)
        return me, None

    def m_getMe(self, req):
        me = self.me()
        return me.obj(me) if me else error(401, "Unauthorized")

    def m_getUser(self, req):
        me = self.me()
        if not me:
            return error(401, "Unauthorized")
        u = WORLD.users.get(req.get("user_id"))
        if not u or not (u.id == me.id or WORLD.knows(me.id, u.id)):
            return error(400, "User not found")
        return u.obj(me)

    def m_searchPublicChat(self, req):
        me, refused = self.lookup_allowed()
        if refused:
            return refused
        u = WORLD.by_username(str(req.get("username", "")))
        if not u:
            return error(400, "USERNAME_NOT_OCCUPIED")
        WORLD.talked.add(frozenset((me.id, u.id)))  # resolved: TDLib now knows the user
        return {"@type": "chat", "id": u.id, "title": u.name(),
                "type": {"@type": "chatTypePrivate", "user_id": u.id}}

    def m_searchUserByPhoneNumber(self, req):
        me, refused = self.lookup_allowed()
        if refused:
            return refused
        u = WORLD.by_phone(str(req.get("phone_number", "")))
        if not u or not (u.phone_visible or (me.id, u.id) in WORLD.contacts):
            return error(404, "Not Found")
        return u.obj(me)

    def m_importContacts(self, req):
        me, refused = self.lookup_allowed()
        if refused:
            return refused
        ids = []
        for c in req.get("contacts", []):
            if not 1 <= len(c.get("first_name", "")) <= 64:
                return error(400, "FIRSTNAME_INVALID")
            u = WORLD.by_phone(str(c.get("phone_number", "")))
            if u:
                WORLD.contacts.add((me.id, u.id))
            ids.append(u.id if u else 0)
        return {"@type": "importedContacts", "user_ids": ids, "importer_count": [0] * len(ids)}

    # calls
    def m_createCall(self, req):
        me = self.me()
        if not me:
            return error(401, "Unauthorized")
        wait = WORLD.take_flood("call")
        if wait:
            return error(429, "Too Many Requests: retry after %d" % wait)
        u = WORLD.users.get(req.get("user_id"))
        if not u or not (WORLD.knows(me.id, u.id)):
            return error(400, "USER_ID_INVALID")
        if me.id in WORLD.restricted and (me.id, u.id) not in WORLD.contacts:
            return error(400, "PEER_FLOOD")
        call = Call(self, u, outgoing=True)
        call.offer = req.get("protocol") or {}
        self.conn.after(0, call.start_outgoing)
        return {"@type": "callId", "id": call.id}

    def m_acceptCall(self, req):
        call = WORLD.calls.get(req.get("call_id"))
        if not call or call.client is not self:
            return error(400, "Call not found")
        if call.outgoing or call.state != "Pending":
            return error(400, "Call is not pending")
        call.offer = req.get("protocol") or {}
        call.connect()
        return {"@type": "ok"}

    def m_discardCall(self, req):
        call = WORLD.calls.get(req.get("call_id"))
        if not call or call.client is not self:
            return error(400, "Call not found")
        if call.state in ("Discarded", "Error"):
            return {"@type": "ok"}
        if call.state == "Pending":
            reason = "callDiscardReasonMissed" if call.outgoing else "callDiscardReasonDeclined"
        else:
            reason = "callDiscardReasonDisconnected" if req.get("is_disconnected") \
                else "callDiscardReasonHungUp"
        call.set_state("HangingUp")
        self.conn.after(0.02, lambda: call.discard(reason))
        return {"@type": "ok"}

    def m_sendCallSignalingData(self, req):
        call = WORLD.calls.get(req.get("call_id"))
        if not call or call.client is not self:
            return error(400, "Call not found")
        if call.state != "Ready":
            return error(400, "Call is not active")  # TDLib's CallActor, before and after Ready
        try:
            data = base64.b64decode(req.get("data") or "", validate=True)
        except ValueError:
            return error(400, "Invalid data")
        call.signaling_in += 1
        call.relay("to_peer", base64.b64encode(data).decode())
        return {"@type": "ok"}

    def m_createPrivateChat(self, req):
        me = self.me()
        if not me:
            return error(401, "Unauthorized")
        u = WORLD.users.get(req.get("user_id"))
        if not u or not WORLD.knows(me.id, u.id):
            return error(400, "User not found")
        # A private chat's id is its user's id, as in TDLib.
        return {"@type": "chat", "id": u.id, "title": u.name(),
                "type": {"@type": "chatTypePrivate", "user_id": u.id}}

    def m_sendMessage(self, req):
        me = self.me()
        if not me:
            return error(401, "Unauthorized")
        chat = req.get("chat_id")
        content = req.get("input_message_content") or {}
        if content.get("@type") != "inputMessageText":
            return error(400, "tgsim sends only inputMessageText")
        text = (content.get("text") or {}).get("text", "")
        if not isinstance(text, str) or not 1 <= len(text) <= 4096:
            return error(400, "MESSAGE_TOO_LONG" if text else "Message must be non-empty")
        if chat not in WORLD.users or not WORLD.knows(me.id, chat):
            return error(400, "Chat not found")
        wait = WORLD.take_flood("message")
        refused = error(429, "Too Many Requests: retry after %d" % wait) if wait else \
            error(403, "USER_IS_BLOCKED") if me.id in WORLD.users[chat].blocked else None
        mid = WORLD.next_message
        WORLD.next_message += 1

        def message(mid, pending):
            m = {"@type": "message", "id": mid, "chat_id": chat, "is_outgoing": True,
                 "sender_id": {"@type": "messageSenderUser", "user_id": me.id},
                 "content": {"@type": "messageText",
                             "text": {"@type": "formattedText", "text": text, "entities": []}}}
            if pending:
                m["sending_state"] = {"@type": "messageSendingStatePending", "sending_id": 0}
            return m

        def deliver():
            WORLD.talked.add(frozenset((me.id, chat)))
            WORLD.sent.setdefault((me.id, chat), []).append(
                {"id": mid, "text": text, "at": round(time.time(), 3)})

        if not WORLD.chat_async:
            if refused:
                return refused
            deliver()
            return message(mid, False)
        # As TDLib does: the message comes back at once, pending, with a temporary id; the
        # server's verdict follows as updateMessageSendSucceeded or updateMessageSendFailed.
        temp = 1000000000 + mid

        def verdict():
            if refused:
                self.emit({"@type": "updateMessageSendFailed", "message": message(temp, False),
                           "old_message_id": temp, "error": refused})
                return
            deliver()
            self.emit({"@type": "updateMessageSendSucceeded", "message": message(mid, False),
                       "old_message_id": temp})

        self.conn.after(0.02, verdict)
        return message(temp, True)


class Call:
    """One call between an account of esg (`client`) and a simulated user."""

    def __init__(self, client, user, outgoing):
        self.id = WORLD.next_call
        WORLD.next_call += 1
        WORLD.calls[self.id] = self
        self.client, self.user, self.outgoing = client, user, outgoing
        self.state = "Pending"
        self.is_created = not outgoing
        self.is_received = not outgoing
        self.history = []
        self.timers = []
        self.tone = user.tone
        self.started = time.time()
        self.discard_reason = None
        self.offer = {}  # the client's callProtocol (createCall / acceptCall)
        self.version = None  # the library version the server chose
        self.peer = None  # the user's call engine (tgpeer), for 8.0.0/9.0.0
        self.signaling_in = 0  # sendCallSignalingData blobs from the client
        self.signaling_out = 0  # updateNewCallSignalingData blobs to the client
        self.peer_tag = None  # base64 of the 16 bytes all reflectors of this call carry
        # Relayed signaling per direction ("to_peer", "to_client"): counters, the order the
        # blobs were delivered in (their sequence numbers), a blob held back to be reordered.
        self.sig = {d: {"relayed": 0, "delivered": 0, "duplicated": 0, "reordered": 0,
                        "max_delay_ms": 0.0, "order": collections.deque(maxlen=200),
                        "held": None} for d in ("to_peer", "to_client")}

    def obj(self, state):
        return {"@type": "call", "id": self.id, "user_id": self.user.id,
                "is_outgoing": self.outgoing, "is_video": False, "state": state}

    def set_state(self, state, **fields):
        self.state = state
        self.history.append(state)
        st = dict({"@type": "callState" + state}, **fields)
        self.client.emit({"@type": "updateCall", "call": self.obj(st)})

    def pending(self):
        self.set_state("Pending", is_created=self.is_created, is_received=self.is_received)

    def later(self, delay, fn):
        self.timers.append(self.client.conn.after(delay, fn))

    def start_outgoing(self):
        me = WORLD.users[self.client.account]
        self.pending()
        WORLD.talked.add(frozenset((me.id, self.user.id)))
        self.is_created = True
        if self.user.outdated:
            return self.later(0.05, lambda: self.fail(400, "PARTICIPANT_VERSION_OUTDATED"))
        if me.id in self.user.blocked:
            return self.later(0.05, lambda: self.fail(403, "USER_IS_BLOCKED"))
        if self.user.privacy == "nobody" or (self.user.privacy == "contacts" and
                                             (self.user.id, me.id) not in WORLD.contacts):
            return self.later(0.05, lambda: self.fail(403, "USER_PRIVACY_RESTRICTED"))
        self.later(0.05, self.pending)
        delay = 0.1 if self.user.online else self.user.push_delay
        if delay is None or delay > WORLD.receive_timeout:
            # The phone never rang: TDLib's receive timeout ends the call.
            return self.later(WORLD.receive_timeout,
                              lambda: self.fail(4005000, "Call missed: receive timeout"))
        self.later(delay, self.rings)

    def rings(self):
        if self.state != "Pending":
            return
        self.is_received = True
        self.pending()
        action = self.user.answer.get("action", "ignore")
        after = float(self.user.answer.get("after", 0.5))
        if action == "answer":
            self.later(after, self.connect)
        elif action == "decline":
            self.later(after, lambda: self.discard("callDiscardReasonDeclined"))
        self.later(WORLD.ring_timeout, lambda: self.discard("callDiscardReasonMissed"))

    def fail(self, code, message):
        if self.state in ("Discarded", "Error"):
            return
        self.cancel_timers()
        self.set_state("Error", error={"@type": "error", "code": code, "message": message})

    def connect(self):
        if self.state != "Pending":
            return
        self.cancel_timers()
        self.set_state("ExchangingKeys")
        key = os.urandom(256)
        emojis = ["\U0001F600", "\U0001F680", "\U0001F431", "\U0001F34E"]
        WORLD.talked.add(frozenset((self.client.account, self.user.id)))
        self.version = choose_version(self.offer.get("library_versions") or [],
                                      self.user.library_versions)
        servers = self.user.servers if self.user.servers is not None else WORLD.call_servers
        servers = list(servers) + self.reflector_servers()
        p2p = self.user.allow_p2p if self.user.allow_p2p is not None else WORLD.allow_p2p
        self.later(0.05, lambda: self.ready(key, emojis, servers, bool(p2p)))

    def ready(self, key, emojis, servers, p2p):
        if self.state != "ExchangingKeys":
            return
        self.set_state(
            "Ready", protocol={"@type": "callProtocol", "udp_p2p": True, "udp_reflector": True,
                               "min_layer": 65, "max_layer": 92,
                               "library_versions": [self.version]},
            servers=servers, config="{}", encryption_key=base64.b64encode(key).decode(),
            emojis=emojis, allow_p2p=p2p, is_group_call_supported=False, custom_parameters="")
        if self.version in PEER_VERSIONS:
            # The user's app runs its engine with the same key and the other role.
            self.peer = Peer(self, self.version, key, servers, p2p)

    def reflector_servers(self):
        """The callServer objects of WORLD.reflectors for this call: one fresh random peer_tag
        per call, the same in every reflector and for both sides (TELEGRAM-CALLS.md §5.1)."""
        if not WORLD.reflectors:
            return []
        self.peer_tag = base64.b64encode(os.urandom(16)).decode()
        return [{"@type": "callServer", "id": str(r["id"]), "ip_address": r.get("ip_address", ""),
                 "ipv6_address": r.get("ipv6_address", ""), "port": int(r["port"]),
                 "type": {"@type": "callServerTypeTelegramReflector", "peer_tag": self.peer_tag,
                          "is_tcp": bool(r.get("is_tcp", False))}}
                for r in WORLD.reflectors]

    def relay(self, direction, blob):
        """A signaling blob on its way to the peer's engine or to the client, through the
        impairment of call.signaling: each copy (a share are sent twice) waits delay_ms plus its
        own uniform jitter, and with reorder every other blob is held back until the next one
        has gone (or 300 ms passed)."""
        st = self.sig[direction]
        seq = st["relayed"]
        st["relayed"] += 1
        cfg = WORLD.signaling
        if not cfg:
            return self.deliver(direction, seq, blob)
        rng = WORLD.signaling_rng
        copies = 1
        if rng.random() < float(cfg.get("duplicate", 0)):
            copies = 2
            st["duplicated"] += 1
        for _ in range(copies):
            delay = (float(cfg.get("delay_ms", 0)) +
                     rng.uniform(0, float(cfg.get("jitter_ms", 0)))) / 1000.0
            st["max_delay_ms"] = max(st["max_delay_ms"], round(delay * 1000, 1))
            if cfg.get("reorder"):
                held = st["held"]
                if held is None:
                    st["held"] = item = (seq, blob, delay)
                    self.later(max(delay, 0.3), lambda i=item: self.release(direction, i))
                    continue
                st["held"] = None
                st["reordered"] += 1
                self.later(delay, lambda s=seq: self.deliver(direction, s, blob))
                # The held one goes just after this one.
                self.later(delay + 0.005, lambda i=held: self.deliver(direction, i[0], i[1]))
                continue
            self.later(delay, lambda s=seq: self.deliver(direction, s, blob))

    def release(self, direction, item):
        st = self.sig[direction]
        if st["held"] is item:  # nothing came after it in time
            st["held"] = None
            self.deliver(direction, item[0], item[1])

    def deliver(self, direction, seq, blob):
        st = self.sig[direction]
        if direction == "to_peer":
            st["delivered"] += 1  # counted without an engine too (a version tgpeer lacks)
            st["order"].append(seq)
            if self.peer:
                self.peer.signal(blob)
            return
        if self.state != "Ready":  # TDLib drops the peer's blobs outside Ready
            return
        st["delivered"] += 1
        st["order"].append(seq)
        self.signaling_out += 1
        self.client.emit({"@type": "updateNewCallSignalingData", "call_id": self.id,
                          "data": blob})

    def peer_signaling(self, data):
        """A blob from the user's engine: to the client, as TDLib delivers the peer's (only
        while the call is ready; TDLib drops it otherwise)."""
        if self.state != "Ready":
            return
        self.relay("to_client", data)

    def peer_state(self, state):
        if state == "failed" and self.user.discard_on_failed and self.state == "Ready":
            self.discard("callDiscardReasonDisconnected")

    def hang_up(self):
        """The simulated user hangs up (or cancels before answer)."""
        if self.state in ("Discarded", "Error"):
            return
        if self.state == "Pending":
            reason = "callDiscardReasonDeclined" if self.outgoing else "callDiscardReasonMissed"
        else:
            reason = "callDiscardReasonHungUp"
        self.discard(reason)

    def discard(self, reason):
        if self.state in ("Discarded", "Error"):
            return
        self.cancel_timers()
        self.discard_reason = reason
        self.set_state("Discarded", reason={"@type": reason}, need_rating=False,
                       need_debug_information=False, need_log=False)
        if self.peer:
            self.peer.stop()

    def cancel_timers(self):
        for t in self.timers:
            t.cancel()
        self.timers = []

    def describe(self):
        return {"id": self.id, "user_id": self.user.id, "account": self.client.account,
                "outgoing": self.outgoing, "state": self.state, "history": self.history,
                "reason": self.discard_reason,
                "version": self.version, "engine": "tgpeer" if self.peer else None,
                "peer_state": self.peer.state if self.peer else None,
                "signaling_in": self.signaling_in, "signaling_out": self.signaling_out,
                "peer_tag": self.peer_tag,
                "signaling": {d: {k: (list(v) if k == "order" else v) for k, v in st.items()
                                  if k != "held"} for d, st in self.sig.items()}}

    def recorded_pcm(self):
        """What the user heard: 16-bit samples at 48 kHz."""
        return self.peer.recorded() if self.peer else b""


def version_key(v):
    try:
        return tuple(int(x) for x in str(v).split("."))
    except ValueError:
        return (-1,)


def choose_version(client, user):
    """Telegram's server merges both sides' library_versions and returns the best one both
    support (TELEGRAM-CALLS.md §1.2); with none in common, the user's first, so the client
    sees a version it does not speak."""
    common = [v for v in user if v in client]
    if common:
        return max(common, key=version_key)
    return user[0] if user else ""


class Peer:
    """tgpeer as the simulated user's call engine: started on callStateReady, signaling relayed
    both ways in order (blobs from the client before it runs are queued), its state, level and
    stats lines kept, its recording read back for call.recorded."""

    KEEP = 2000  # lines kept (levels come once a second)

    def __init__(self, call, version, key, servers, p2p):
        self.call = call
        self.state = None
        self.lines = collections.deque(maxlen=self.KEEP)
        self.queue = []  # client blobs before the process runs
        self.proc = None
        self.exit_code = None
        self.stopping = False
        self.started_at = None
        self.wav = os.path.join(WORK_DIR, "tgpeer-call%d.wav" % call.id)
        self.log = os.path.join(WORK_DIR, "tgpeer-call%d.log" % call.id)
        user = call.user
        self.argv = [TGPEER, "--version", version,
                     "--incoming" if call.outgoing else "--outgoing",  # the other side's role
                     "--key-hex", key.hex(), "--servers", json.dumps(servers),
                     "--record", self.wav, "--log-level", user.peer_log or "warning"]
        if p2p:
            self.argv.append("--p2p")
        tone = call.tone
        if tone:
            self.argv += ["--tone", "%g" % float(tone)]
        if user.gid is not None:
            self.argv = ["setpriv", "--regid", str(int(user.gid)), "--clear-groups"] + self.argv
        PEERS.add(self)
        self.task = asyncio.ensure_future(self.run())

    async def run(self):
        with open(self.log, "wb") as err:
            try:
                self.proc = await asyncio.create_subprocess_exec(
                    *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                    stderr=err, limit=1 << 20)
            except OSError as e:
                self.lines.append({"error": "tgpeer did not start: %s" % e})
                self.exit_code = -1
                PEERS.discard(self)
                return
        self.started_at = time.time()
        for blob in self.queue:
            self.write({"signaling": blob})
        self.queue = []
        if self.stopping:
            self.write({"stop": True})
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                break
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if "signaling" in msg:
                self.call.peer_signaling(msg["signaling"])
                continue
            msg["at"] = round(time.time() - self.started_at, 3)
            self.lines.append(msg)
            if "state" in msg:
                changed = msg["state"] != self.state
                self.state = msg["state"]
                if changed:
                    self.call.peer_state(self.state)
        self.exit_code = await self.proc.wait()
        PEERS.discard(self)
        # The engine's end does not end the call: the client's engine decides that.

    def write(self, obj):
        if self.proc and self.proc.returncode is None and not self.proc.stdin.is_closing():
            self.proc.stdin.write(json.dumps(obj).encode() + b"\n")

    def signal(self, data):
        if self.proc is None:
            self.queue.append(data)
        else:
            self.write({"signaling": data})

    def mute(self, on):
        self.write({"mute": bool(on)})

    def stop(self):
        """{"stop":true}, then killed after 3 s."""
        if self.stopping:
            return
        self.stopping = True
        self.write({"stop": True})
        asyncio.get_event_loop().call_later(3.0, self.kill)

    def kill(self):
        if self.proc and self.proc.returncode is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass

    def recorded(self):
        """The recording's samples, to the end of the file: the WAV header is rewritten only
        once a second while the call runs."""
        try:
            with open(self.wav, "rb") as f:
                data = f.read()
        except OSError:
            return b""
        at = 12
        while at + 8 <= len(data):
            tag, size = data[at:at + 4], struct.unpack("<I", data[at + 4:at + 8])[0]
            if tag == b"data":
                pcm = data[at + 8:]
                return pcm[:len(pcm) // 2 * 2]
            at += 8 + size + (size & 1)
        return b""

    def describe(self):
        return {"running": self.proc is not None and self.exit_code is None,
                "exit_code": self.exit_code, "state": self.state, "argv": self.argv,
                "lines": list(self.lines), "log": self.log, "recording": self.wav,
                "queued": len(self.queue)}


PEERS = set()  # running engines, stopped when the simulator stops


# --- the library's connections ---------------------------------------------------------------

class LibraryConnection(asyncio.Protocol):
    count = 0

    def __init__(self, loop):
        self.loop = loop
        LibraryConnection.count += 1
        self.id = LibraryConnection.count
        self.buf = b""

    def connection_made(self, transport):
        self.transport = transport

    def after(self, delay, fn):
        return self.loop.call_later(delay, fn)

    def write(self, obj):
        if not self.transport.is_closing():
            self.transport.write(json.dumps(obj).encode() + b"\n")

    def data_received(self, data):
        self.buf += data
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            key = (self.id, msg.get("client_id"))
            if msg.get("op") == "create":
                WORLD.clients[key] = Client(self, msg["client_id"])
            elif msg.get("op") == "send":
                client = WORLD.clients.get(key)
                req = msg.get("request") or {}
                answer = client.handle(req) if client else error(400, "Invalid client")
                if "@extra" in req:
                    answer["@extra"] = req["@extra"]
                answer["@client_id"] = msg.get("client_id")
                self.write(answer)

    def connection_lost(self, exc):
        for key in [k for k in WORLD.clients if k[0] == self.id]:
            for call in WORLD.calls.values():
                if call.client is WORLD.clients[key]:
                    call.cancel_timers()
                    if call.peer:  # nobody left to relay its signaling
                        call.peer.stop()
            del WORLD.clients[key]


# --- the control port ------------------------------------------------------------------------

def control(cmd):
    op = cmd.get("op")
    if op == "user.create":
        f = {k: v for k, v in cmd.items() if k != "op"}
        return {"id": WORLD.add_user(**f).id}
    if op == "user.update":
        WORLD.users[cmd["id"]].update({k: v for k, v in cmd.items() if k != "op"})
        return {}
    if op == "contact.add":
        WORLD.contacts.add((cmd["owner"], cmd["contact"]))
        return {}
    if op == "talked.add":
        WORLD.talked.add(frozenset((cmd["a"], cmd["b"])))
        return {}
    if op == "block":
        WORLD.users[cmd["user"]].blocked.add(cmd["blocked"])
        return {}
    if op == "flood":
        WORLD.floods[cmd["what"]] = int(cmd["seconds"])
        return {}
    if op == "restrict":
        (WORLD.restricted.add if cmd.get("on", True) else WORLD.restricted.discard)(cmd["account"])
        return {}
    if op == "call.network":
        # callStateReady.servers and allow_p2p of the calls that run an engine (8.0.0/9.0.0).
        if "servers" in cmd:
            WORLD.call_servers = list(cmd["servers"])
        if "allow_p2p" in cmd:
            WORLD.allow_p2p = bool(cmd["allow_p2p"])
        if "reflectors" in cmd:
            for r in cmd["reflectors"]:
                if "id" not in r or "port" not in r:
                    return {"error": "a reflector needs an id and a port"}
            WORLD.reflectors = [dict(r) for r in cmd["reflectors"]]
        return {"servers": WORLD.call_servers, "allow_p2p": WORLD.allow_p2p,
                "reflectors": WORLD.reflectors}
    if op == "call.signaling":
        # The impairment of relayed signaling blobs for calls from now on; {} turns it off.
        keys = ("delay_ms", "jitter_ms", "reorder", "duplicate", "seed")
        WORLD.signaling = {k: cmd[k] for k in keys if k in cmd and k != "seed"}
        if "seed" in cmd:
            WORLD.signaling_rng.seed(cmd["seed"])
        return {"signaling": WORLD.signaling}
    if op == "timeouts":
        WORLD.ring_timeout = float(cmd.get("ring", WORLD.ring_timeout))
        WORLD.receive_timeout = float(cmd.get("receive", WORLD.receive_timeout))
        return {}
    if op == "call.incoming":
        clients = WORLD.account_clients(cmd["to"])
        if not clients:
            return {"error": "the account has no logged-in client"}
        user = WORLD.users[cmd["from"]]
        call = Call(clients[0], user, outgoing=False)
        WORLD.talked.add(frozenset((cmd["to"], user.id)))
        call.pending()
        # Not accepted within the ring timeout: the caller's app gives up (TDLib reports an
        # incoming call the caller ended before the answer as Missed).
        call.later(WORLD.ring_timeout, lambda: call.discard("callDiscardReasonMissed"))
        return {"call_id": call.id}
    call = WORLD.calls.get(cmd.get("call_id"))
    if op.startswith("call.") and not call:
        return {"error": "no such call"}
    if op == "call.answer":
        call.connect()
        return {}
    if op == "call.decline":
        call.discard("callDiscardReasonDeclined")
        return {}
    if op == "call.hangup":
        call.hang_up()
        return {}
    if op == "call.answer_elsewhere":
        # Another device of the account took the call: TDLib ends it here, discarded.
        call.discard("callDiscardReasonEmpty")
        return {}
    if op == "call.tone":
        if call.state == "Ready":
            return {"error": "tgpeer's tone is set when it starts (the user's tone)"}
        call.tone = float(cmd.get("freq", 0))
        return {}
    if op == "call.mute":
        if not call.peer:
            return {"error": "the call runs no engine (tgpeer)"}
        call.peer.mute(cmd.get("on", True))
        return {}
    if op == "call.peer":
        if not call.peer:
            return {"error": "the call runs no engine (tgpeer)"}
        return call.peer.describe()
    if op == "call.state":
        return call.describe()
    if op == "call.inject_signaling":
        # A blob as if the user's engine had sent it (base64), relayed to the client like
        # tgpeer's: the signaling impairment seen without an engine.
        if call.state != "Ready":
            return {"error": "the call is not ready"}
        call.peer_signaling(cmd["data"])
        return {}
    if op == "call.recorded":
        return dict(call.describe(), rate=48000,
                    pcm=base64.b64encode(call.recorded_pcm()).decode())
    if op == "calls":
        return {"calls": [c.describe() for c in WORLD.calls.values()]}
    if op == "message":
        clients = WORLD.account_clients(cmd["to"])
        for c in clients:
            mid = WORLD.next_message
            WORLD.next_message += 1
            c.emit({"@type": "updateNewMessage", "message": {
                "@type": "message", "id": mid, "chat_id": cmd["from"], "is_outgoing": False,
                "date": int(time.time()),
                "sender_id": {"@type": "messageSenderUser", "user_id": cmd["from"]},
                "content": {"@type": "messageText",
                            "text": {"@type": "formattedText", "text": cmd["text"],
                                     "entities": []}}}})
        WORLD.talked.add(frozenset((cmd["to"], cmd["from"])))
        return {"delivered": len(clients)}
    if op == "chat.async":
        WORLD.chat_async = bool(cmd.get("on", True))
        return {}
    if op == "chat.sent":
        # What the account wrote to the user (its private chat), oldest first.
        return {"messages": WORLD.sent.get((cmd["account"], cmd["user"]), [])}
    if op == "clients":
        return {"clients": [{"connection": k[0], "client_id": c.id, "state": c.state,
                             "account": c.account, "database": c.db}
                            for k, c in WORLD.clients.items()]}
    if op == "requests":
        return {"requests": WORLD.requests}
    return {"error": "unknown op %r" % op}


class ControlConnection(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buf = b""

    def data_received(self, data):
        self.buf += data
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            try:
                answer = control(json.loads(line))
            except Exception as e:  # a test's mistake: said, not fatal
                answer = {"error": "%s: %s" % (type(e).__name__, e)}
            self.transport.write(json.dumps(answer).encode() + b"\n")


async def stop_peers():
    for peer in list(PEERS):
        peer.write({"stop": True})
    if PEERS:
        await asyncio.sleep(0.5)
    for peer in list(PEERS):
        peer.kill()


async def main():
    global WORK_DIR
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--control-port", type=int, default=0)
    ap.add_argument("--ready-file")
    args = ap.parse_args()
    WORK_DIR = os.path.dirname(os.path.abspath(args.socket))
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopped.set)
    if os.path.exists(args.socket):
        os.unlink(args.socket)
    await loop.create_unix_server(lambda: LibraryConnection(loop), args.socket)
    ctl = await loop.create_server(ControlConnection, "127.0.0.1", args.control_port)
    port = ctl.sockets[0].getsockname()[1]
    print("tgsim: library socket %s, control port %d" % (args.socket, port), flush=True)
    if args.ready_file:
        with open(args.ready_file + ".tmp", "w") as f:
            f.write(str(port))
        os.rename(args.ready_file + ".tmp", args.ready_file)
    await stopped.wait()
    await stop_peers()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
