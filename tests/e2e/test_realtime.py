"""Realtime with the stock python-socketio client: messages, seen state, typing, presence, auth, catch-up.

Each scenario runs twice: with the client's default transports (long-polling, then the upgrade to WebSocket)
and WebSocket only.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid

import pytest
import socketio

from harness import poll, sign_in

TRANSPORTS = {"polling-then-upgrade": ["polling", "websocket"], "websocket-only": ["websocket"]}
# The timings these tests wait on, shortened through the settings (the defaults are 2 s and 5 s).
PRESENCE_GRACE = 0.5
TYPING_TIMEOUT = 1.5


@pytest.fixture(scope="module")
def server(module_launcher, backend, smtp_server):
    """An all-in-one `parley serve` whose presence grace period and typing expiry are short, so the tests wait less."""
    server = module_launcher.parley(backend=backend, smtp=smtp_server, env={
        "PARLEY_PRESENCE_GRACE_MS": str(int(PRESENCE_GRACE * 1000)), "PARLEY_TYPING_TIMEOUT_MS": str(int(TYPING_TIMEOUT * 1000)),
    })
    yield server
    module_launcher.stop(server)


@pytest.fixture(params=list(TRANSPORTS), ids=list(TRANSPORTS))
def transports(request):
    return TRANSPORTS[request.param]


class Tab:
    """One Socket.IO connection of a user, recording every event it receives."""

    EVENTS = ["newMessage", "messagesSeen", "userTyping", "userStoppedTyping", "userOnline", "userOffline", "getOnlineUser", "chatUpdated"]

    def __init__(self, server, account, transports, token=None):
        self.client = socketio.Client(reconnection=False)
        self.events: queue.Queue = queue.Queue()
        self.seen: list[tuple[str, object]] = []
        self.lock = threading.Lock()
        for name in self.EVENTS:
            self.client.on(name, self._recorder(name))
        self.client.connect(server.base_url, transports=transports, auth={"token": token or account.access_token},
                            wait_timeout=10)
        # The server records the socket online after the handshake and then sends getOnlineUser: until then others
        # would not see this user online (seen with the CPU busy), so a tab is open once that has come.
        self.wait_for("getOnlineUser")

    def _recorder(self, name):
        def record(*args):
            with self.lock:
                self.seen.append((name, args[0] if args else None))
        return record

    def wait_for(self, name, predicate=lambda payload: True, timeout=10.0):
        def find():
            with self.lock:
                for event, payload in self.seen:
                    if event == name and predicate(payload):
                        return (payload,)
            return None
        return poll(find, timeout, f"{name} event")[0]

    def received(self, name, predicate=lambda payload: True):
        with self.lock:
            return [payload for event, payload in self.seen if event == name and predicate(payload)]

    def call(self, event, data, timeout=10):
        return self.client.call(event, data, timeout=timeout)

    def close(self):
        if self.client.connected:
            self.client.disconnect()


@pytest.fixture
def tabs():
    opened: list[Tab] = []
    yield opened
    for tab in opened:
        tab.close()


def open_tab(tabs, server, account, transports, token=None) -> Tab:
    tab = Tab(server, account, transports, token)
    tabs.append(tab)
    return tab


def direct_chat(a, b) -> str:
    response = a.client.post("/api/v1/chats", json={"userId": b.user["id"]})
    assert response.status_code in (200, 201), response.text
    return response.json()["chat"]["id"]


def test_message_reaches_the_other_member_and_the_senders_other_tab(server, tabs, transports):
    alice, bob = sign_in(server), sign_in(server)
    chat = direct_chat(alice, bob)
    alice_tab, alice_other_tab = open_tab(tabs, server, alice, transports), open_tab(tabs, server, alice, transports)
    bob_tab = open_tab(tabs, server, bob, transports)
    client_id = str(uuid.uuid4())
    answer = alice_tab.call("sendMessage", {"chatId": chat, "text": "hello <b>bob</b>", "clientMessageId": client_id})
    assert answer["ok"] is True
    message = answer["message"]
    assert message["seq"] == 1 and message["text"] == "hello <b>bob</b>" and message["senderId"] == alice.user["id"]
    for tab in (bob_tab, alice_other_tab):
        got = tab.wait_for("newMessage", lambda m: m["id"] == message["id"])
        assert got == message
    # A retried send answers the same message and delivers nothing new.
    again = alice_tab.call("sendMessage", {"chatId": chat, "text": "hello <b>bob</b>", "clientMessageId": client_id})
    assert again["message"] == message
    time.sleep(0.5)
    assert len(bob_tab.received("newMessage")) == 1


def test_send_errors_answer_in_the_ack(server, tabs, transports):
    alice, bob, carol = sign_in(server), sign_in(server), sign_in(server)
    chat = direct_chat(alice, bob)
    carol_tab = open_tab(tabs, server, carol, transports)
    refused = carol_tab.call("sendMessage", {"chatId": chat, "text": "let me in", "clientMessageId": "x1"})
    assert refused["error"]["code"] == "chat_not_found"
    too_long = carol_tab.call("sendMessage", {"chatId": chat, "text": "x" * 4001})
    assert "error" in too_long
    bad = carol_tab.call("sendMessage", {"chatId": chat, "text": 5})
    assert bad["error"]["code"] == "invalid_text"


def test_reading_emits_messages_seen_to_the_sender(server, tabs, transports):
    alice, bob = sign_in(server), sign_in(server)
    chat = direct_chat(alice, bob)
    alice_tab, bob_tab = open_tab(tabs, server, alice, transports), open_tab(tabs, server, bob, transports)
    sent = alice_tab.call("sendMessage", {"chatId": chat, "text": "read me", "clientMessageId": "r1"})["message"]
    bob_tab.wait_for("newMessage", lambda m: m["id"] == sent["id"])
    assert bob_tab.call("markRead", {"chatId": chat, "seq": sent["seq"]}) == {"ok": True}
    seen = alice_tab.wait_for("messagesSeen", lambda p: p["userId"] == bob.user["id"])
    assert seen == {"chatId": chat, "userId": bob.user["id"], "seq": sent["seq"]}


def test_an_open_chat_marks_arriving_messages_read(server, tabs, transports):
    alice, bob = sign_in(server), sign_in(server)
    chat = direct_chat(alice, bob)
    alice_tab, bob_tab = open_tab(tabs, server, alice, transports), open_tab(tabs, server, bob, transports)
    assert bob_tab.call("joinChat", chat) == {"ok": True}
    sent = alice_tab.call("sendMessage", {"chatId": chat, "text": "you have this open", "clientMessageId": "o1"})["message"]
    alice_tab.wait_for("messagesSeen", lambda p: p["userId"] == bob.user["id"] and p["seq"] == sent["seq"])
    summary = bob.client.get(f"/api/v1/chats/{chat}").json()
    assert summary["unreadCount"] == 0


def test_typing_is_relayed_and_expires_by_itself(server, tabs, transports):
    alice, bob = sign_in(server), sign_in(server)
    chat = direct_chat(alice, bob)
    alice_tab, bob_tab = open_tab(tabs, server, alice, transports), open_tab(tabs, server, bob, transports)
    assert alice_tab.call("typing", {"chatId": chat}) == {"ok": True}
    started = time.monotonic()
    assert bob_tab.wait_for("userTyping") == {"chatId": chat, "userId": alice.user["id"]}
    assert bob_tab.wait_for("userStoppedTyping", timeout=10) == {"chatId": chat, "userId": alice.user["id"]}
    assert TYPING_TIMEOUT * 0.8 <= time.monotonic() - started <= TYPING_TIMEOUT + 4.0
    # The typer does not hear their own typing; strangers' typing into a chat is ignored.
    assert alice_tab.received("userTyping") == []
    carol = sign_in(server)
    carol_tab = open_tab(tabs, server, carol, transports)
    carol_tab.call("typing", {"chatId": chat})
    alice_tab.call("typing", {"chatId": chat})
    alice_tab.call("stopTyping", {"chatId": chat})
    bob_tab.wait_for("userStoppedTyping", lambda p: True)
    assert all(p["userId"] != carol.user["id"] for p in bob_tab.received("userTyping"))


def test_presence_with_two_tabs(server, tabs, transports):
    alice, bob = sign_in(server), sign_in(server)
    direct_chat(alice, bob)
    alice_tab = open_tab(tabs, server, alice, transports)
    bob_first = open_tab(tabs, server, bob, transports)
    alice_tab.wait_for("userOnline", lambda p: p["userId"] == bob.user["id"])
    assert bob_first.wait_for("getOnlineUser") == [alice.user["id"]]
    bob_second = open_tab(tabs, server, bob, transports)
    bob_first.close()
    time.sleep(PRESENCE_GRACE + 1.5)  # past the offline grace period
    assert alice_tab.received("userOffline") == []
    bob_second.close()
    alice_tab.wait_for("userOffline", lambda p: p["userId"] == bob.user["id"], timeout=8)
    assert len(alice_tab.received("userOnline", lambda p: p["userId"] == bob.user["id"])) == 1


def test_a_bad_token_is_refused(server, transports):
    client = socketio.Client(reconnection=False)
    errors = []
    client.on("connect_error", lambda data=None: errors.append(data))
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(server.base_url, transports=transports, auth={"token": "garbage"}, wait_timeout=10)
    assert errors == [{"message": "unauthorized"}]
    assert not client.connected
    nothing = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        nothing.connect(server.base_url, transports=transports, wait_timeout=10)


def test_catch_up_after_a_disconnect_misses_nothing(server, tabs, transports):
    alice, bob = sign_in(server), sign_in(server)
    chat = direct_chat(alice, bob)
    alice_tab = open_tab(tabs, server, alice, transports)
    bob_tab = open_tab(tabs, server, bob, transports)
    first = alice_tab.call("sendMessage", {"chatId": chat, "text": "before", "clientMessageId": "c0"})["message"]
    bob_tab.wait_for("newMessage", lambda m: m["id"] == first["id"])
    last_seq = max(m["seq"] for m in bob_tab.received("newMessage"))
    bob_tab.close()
    sent = [alice_tab.call("sendMessage", {"chatId": chat, "text": f"while away {i}", "clientMessageId": f"away{i}"})["message"]
            for i in range(3)]
    page = bob.client.get(f"/api/v1/chats/{chat}/messages", params={"after": last_seq}).json()
    assert [m["id"] for m in page["messages"]] == [m["id"] for m in sent]
    assert [m["seq"] for m in page["messages"]] == [last_seq + 1, last_seq + 2, last_seq + 3]
    assert page["hasMore"] is False


def test_a_new_chat_is_announced_to_its_members(server, tabs, transports):
    alice, bob = sign_in(server), sign_in(server)
    bob_tab = open_tab(tabs, server, bob, transports)
    chat = direct_chat(alice, bob)
    summary = bob_tab.wait_for("chatUpdated", lambda c: c["id"] == chat)
    assert {m["id"] for m in summary["members"]} == {alice.user["id"], bob.user["id"]}
    assert summary["unreadCount"] == 0


def test_new_contacts_learn_who_is_online(server, tabs, transports):
    alice, bob = sign_in(server), sign_in(server)
    alice_tab, bob_tab = open_tab(tabs, server, alice, transports), open_tab(tabs, server, bob, transports)
    assert alice_tab.wait_for("getOnlineUser") == [] and bob_tab.wait_for("getOnlineUser") == []
    direct_chat(alice, bob)
    assert alice_tab.wait_for("userOnline", lambda p: p["userId"] == bob.user["id"]) == {"userId": bob.user["id"]}
    assert bob_tab.wait_for("userOnline", lambda p: p["userId"] == alice.user["id"]) == {"userId": alice.user["id"]}
