"""Editing, deleting, replying and reacting over Socket.IO with the stock python-socketio client, the offline catch-up
with `GET /chats/{id}/changes` over a real reconnect, and the routes that only the real binary answers (`around=`,
`/search` with UTF-16 highlights).

Each socket scenario runs on long-polling only and on WebSocket only, against an all-in-one server on SQLite and on
PostgreSQL (the module's `server`). Events are recorded in the order they came off the wire (harness.
record_events_in_wire_order), so "in version order, exactly once" is what the server sent, not what client threads did.
"""

from __future__ import annotations

import struct
import threading
import time
import uuid
import zlib
from pathlib import Path
from typing import Any, Iterable

import pytest
import requests
import socketio

from harness import (
    SNAKE_CASE,
    Account,
    assert_error,
    assert_message,
    expect_status,
    poll,
    record_events_in_wire_order,
    introduce,
    sign_in,
)

API = "/api/v1"
TRANSPORTS = {"polling": ["polling"], "websocket": ["websocket"]}
MESSAGE_EVENTS = ("newMessage", "messageUpdated")
# Waited for after the last expected event before counting: a duplicate or a stray event would have come by then.
SETTLE_SECONDS = 0.3

# Valid single emoji graphemes of several shapes: with a variation selector, a skin tone, a flag, a ZWJ sequence.
EMOJI_SHAPES = ["❤️", "👍🏽", "🇫🇷", "👩‍💻"]


@pytest.fixture(params=list(TRANSPORTS), ids=list(TRANSPORTS))
def transports(request):
    return TRANSPORTS[request.param]


# ---------------------------------------------------------------------------------------------------------------
# A member's socket


class Tab:
    """One Socket.IO connection of a user, recording every event in the order the server sent it."""

    def __init__(self, server, account: Account, transports: list[str]):
        self.server = server
        self.client = socketio.Client(reconnection=False)
        self.lock = threading.Lock()
        self.seen: list[tuple[str, Any]] = []
        record_events_in_wire_order(self.client, self._record)
        self.client.connect(server.base_url, transports=transports, auth={"token": account.access_token}, wait_timeout=10)
        # The socket is registered for its user's events by the time getOnlineUser comes (see test_realtime.Tab).
        self.wait_for("getOnlineUser")

    def _record(self, name: str, payload: Any) -> None:
        with self.lock:
            self.seen.append((name, payload))

    def wait_for(self, name: str, predicate=lambda payload: True, timeout: float = 10.0) -> Any:
        def find():
            with self.lock:
                for event, payload in self.seen:
                    if event == name and predicate(payload):
                        return (payload,)
            return None

        return poll(find, timeout, f"{name} event")[0]

    def of_chat(self, chat_id: str) -> list[tuple[str, dict]]:
        """The newMessage and messageUpdated events of one chat, in the order they came."""
        with self.lock:
            return [(event, payload) for event, payload in self.seen
                    if event in MESSAGE_EVENTS and isinstance(payload, dict) and payload.get("chatId") == chat_id]

    def wait_for_version(self, chat_id: str, version: int, timeout: float = 10.0) -> None:
        poll(lambda: any(payload.get("version") == version for _, payload in self.of_chat(chat_id)), timeout,
             f"the event of version {version} of chat {chat_id}")

    def call(self, event: str, data: Any = None, timeout: float = 10) -> Any:
        return self.client.call(event, data, timeout=timeout)

    def close(self) -> None:
        """Disconnects, making sure the server hears it: python-engineio's polling client may drop its own goodbye
        (see tests/cluster/cluster.py, disconnect_socket), so for polling the Engine.IO close is sent once more."""
        if not self.client.connected:
            return
        sid = self.client.eio.sid
        polling = self.client.eio.current_transport == "polling"
        self.client.disconnect()
        if polling and sid:
            requests.post(f"{self.server.base_url}/socket.io/", params={"EIO": "4", "transport": "polling", "sid": sid},
                          data="1", headers={"Content-Type": "text/plain;charset=UTF-8"}, timeout=5)


@pytest.fixture
def tabs():
    opened: list[Tab] = []
    yield opened
    for tab in opened:
        tab.close()


def open_tab(tabs: list[Tab], server, account: Account, transports: list[str]) -> Tab:
    tab = Tab(server, account, transports)
    tabs.append(tab)
    return tab


# ---------------------------------------------------------------------------------------------------------------
# Shapes


def ok(answer: Any, what: str) -> dict:
    """An acknowledged action's answer: exactly {"ok":true,"message":Message}; returns the message."""
    assert isinstance(answer, dict) and set(answer) == {"ok", "message"} and answer["ok"] is True, f"{what}: ack {answer!r}"
    assert_message(answer["message"])
    return answer["message"]


def refused(answer: Any, codes: str | Iterable[str], what: str) -> str:
    """A refused action's answer: exactly the contract's error body, with one of `codes`; returns the code."""
    allowed = {codes} if isinstance(codes, str) else set(codes)
    assert isinstance(answer, dict) and set(answer) == {"error"}, f"{what}: expected an error ack, got {answer!r}"
    error = answer["error"]
    assert isinstance(error, dict) and set(error) == {"code", "message"}, f"{what}: error {error!r}"
    assert isinstance(error["code"], str) and SNAKE_CASE.fullmatch(error["code"]), f"{what}: error {error!r}"
    assert isinstance(error["message"], str) and error["message"].strip(), f"{what}: error {error!r}"
    assert error["code"] in allowed, f"{what}: expected {sorted(allowed)}, got {error!r}"
    return error["code"]


# ---------------------------------------------------------------------------------------------------------------
# REST helpers


def new_id() -> str:
    return uuid.uuid4().hex


def create_group(owner: Account, members: list[Account], name: str = "Team") -> str:
    introduce(owner, members)
    body = expect_status(owner.client.post(f"{API}/chats", json={"name": name, "memberIds": [m.id for m in members]}), 201)
    return body["chat"]["id"]


def direct_chat(a: Account, b: Account) -> str:
    response = a.client.post(f"{API}/chats", json={"userId": b.id})
    assert response.status_code in (200, 201), response.text
    return response.json()["chat"]["id"]


def chat_version(account: Account, chat_id: str) -> int:
    summary = expect_status(account.client.get(f"{API}/chats/{chat_id}"), 200)
    assert isinstance(summary.get("version"), int), f"ChatSummary without version: {summary!r}"
    return summary["version"]


def post_text(account: Account, chat_id: str, text: str, **extra) -> dict:
    body = expect_status(account.client.post(f"{API}/chats/{chat_id}/messages",
                                             json={"text": text, "clientMessageId": new_id(), **extra}), 201)
    return body["message"]


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def unique_png() -> bytes:
    """A real 2×2 RGB PNG whose pixels are random, so its bytes are found in the blob store and nowhere else."""
    pixels = uuid.uuid4().bytes[:12]
    rows = b"".join(b"\x00" + pixels[row * 6:(row + 1) * 6] for row in range(2))
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
            + png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b""))


def post_image(account: Account, chat_id: str, data: bytes) -> dict:
    body = expect_status(account.client.post(f"{API}/chats/{chat_id}/messages", data={"clientMessageId": new_id()},
                                             files={"image": ("picture.png", data, "image/png")}), 201)
    return body["message"]


def all_messages(account: Account, chat_id: str) -> list[dict]:
    """The whole history from the store, ascending seq."""
    messages: list[dict] = []
    after = 0
    while True:
        body = expect_status(account.client.get(f"{API}/chats/{chat_id}/messages", params={"after": after, "limit": 100}), 200)
        messages.extend(body["messages"])
        if not body["messages"] or not body["hasMore"]:
            return messages
        after = body["messages"][-1]["seq"]


def changes(account: Account, chat_id: str, after: int, **params) -> dict:
    body = expect_status(account.client.get(f"{API}/chats/{chat_id}/changes", params={"after": after, **params}), 200)
    assert isinstance(body, dict) and set(body) == {"messages", "version", "hasMore"}, body
    for message in body["messages"]:
        assert_message(message)
    return body


def absolute(server, url: str) -> str:
    return url if url.startswith("http") else server.base_url + url


def blobs_holding(server, data: bytes) -> list[Path]:
    """The files of the server's blob store (<data dir>/files) whose bytes are `data`."""
    root = Path(server.env["PARLEY_DATA_DIR"]) / "files"
    if not root.is_dir():
        return []
    return [path for path in root.rglob("*") if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data]


def utf16_range(text: str, start: int, end: int) -> dict:
    """A code-point range of `text` as the UTF-16 code units the API counts."""
    return {"start": len(text[:start].encode("utf-16-le")) // 2, "end": len(text[:end].encode("utf-16-le")) // 2}


def word_ranges(text: str, *words: str) -> list[dict]:
    """The UTF-16 ranges of every case-insensitive occurrence of `words` in `text`, in text order."""
    ranges = []
    lowered = text.lower()
    for word in words:
        start = lowered.find(word)
        while start >= 0:
            ranges.append(utf16_range(text, start, start + len(word)))
            start = lowered.find(word, start + 1)
    return sorted(ranges, key=lambda r: r["start"])


# ---------------------------------------------------------------------------------------------------------------
# A client's copy of a chat, kept as docs/realtime.md tells clients to


def apply(copy: dict[int, dict], message: dict) -> None:
    """Puts `message` in the copy (by seq) and patches the reply previews that quote it: a reply keeps its version
    when its original changes, so clients refresh the preview themselves."""
    copy[message["seq"]] = message
    for other in copy.values():
        reply = other.get("replyTo")
        if reply is not None and reply["seq"] == message["seq"]:
            preview = {"seq": message["seq"], "senderId": message["senderId"], "kind": message["kind"]}
            if message["kind"] != "deleted" and message.get("text") is not None:
                preview["text"] = message["text"][:200]
            other["replyTo"] = preview


# ---------------------------------------------------------------------------------------------------------------
# Realtime: every change reaches every socket, in version order, once


def test_edits_replies_reactions_and_deletes_reach_every_socket_in_version_order(server, tabs, transports):
    ann, ben, cat = sign_in(server), sign_in(server), sign_in(server)
    chat = create_group(ann, [ben, cat])
    start = chat_version(ann, chat)
    ann_tab, ann_other = open_tab(tabs, server, ann, transports), open_tab(tabs, server, ann, transports)
    ben_tab, cat_tab = open_tab(tabs, server, ben, transports), open_tab(tabs, server, cat, transports)
    expected: list[tuple[str, dict]] = []

    first = ok(ann_tab.call("sendMessage", {"chatId": chat, "text": "first draft", "clientMessageId": new_id()}),
               "sendMessage")
    assert first["version"] == start + 1 and first["reactions"] == [] and first["mentions"] == [], first
    assert "editedAt" not in first and "replyTo" not in first, first
    expected.append(("newMessage", first))

    stranger = str(uuid.uuid4())
    reply = ok(ben_tab.call("sendMessage", {"chatId": chat, "text": f"<@{ann.id}> agreed, and <@{stranger}> too",
                                            "clientMessageId": new_id(), "replyToSeq": first["seq"]}), "reply")
    assert reply["version"] == start + 2, reply
    assert reply["replyTo"] == {"seq": first["seq"], "senderId": ann.id, "kind": "text", "text": "first draft"}, reply
    assert reply["mentions"] == [ann.id], "only members are mentions; another id stays text"
    assert reply["text"] == f"<@{ann.id}> agreed, and <@{stranger}> too"
    expected.append(("newMessage", reply))

    edited = ok(ann_tab.call("editMessage", {"chatId": chat, "seq": first["seq"], "text": "first, edited"}), "editMessage")
    assert edited["version"] == start + 3 and edited["text"] == "first, edited" and edited.get("editedAt"), edited
    for key in ("id", "chatId", "seq", "senderId", "kind", "createdAt", "clientMessageId"):
        assert edited[key] == first[key], f"an edit changed {key}: {first!r} → {edited!r}"
    expected.append(("messageUpdated", edited))

    latest = edited
    steps = [(cat_tab, "👍", True, [("👍", [cat.id])]),
             (ben_tab, "👍", True, [("👍", [cat.id, ben.id])]),
             (ben_tab, "👩‍💻", True, [("👍", [cat.id, ben.id]), ("👩‍💻", [ben.id])]),
             (cat_tab, "👍", False, [("👍", [ben.id]), ("👩‍💻", [ben.id])])]
    for tab, emoji, on, reactions in steps:
        latest = ok(tab.call("react", {"chatId": chat, "seq": first["seq"], "emoji": emoji, "on": on}), f"react {emoji} {on}")
        assert latest["version"] == expected[-1][1]["version"] + 1, latest
        assert latest["reactions"] == [{"emoji": e, "userIds": users} for e, users in reactions], latest
        assert latest["text"] == "first, edited" and latest["editedAt"] == edited["editedAt"], latest
        expected.append(("messageUpdated", latest))

    oops = ok(cat_tab.call("sendMessage", {"chatId": chat, "text": "oops, wrong chat", "clientMessageId": new_id()}), "send")
    expected.append(("newMessage", oops))
    tombstone = ok(cat_tab.call("deleteMessage", {"chatId": chat, "seq": oops["seq"]}), "deleteMessage")
    assert tombstone == {"id": oops["id"], "chatId": chat, "seq": oops["seq"], "senderId": cat.id, "kind": "deleted",
                         "createdAt": oops["createdAt"], "version": oops["version"] + 1, "reactions": [], "mentions": [],
                         "clientMessageId": oops["clientMessageId"]}, tombstone
    expected.append(("messageUpdated", tombstone))
    final = tombstone["version"]
    assert [message["version"] for _, message in expected] == list(range(start + 1, final + 1)), "versions are dense"

    # Doing it again changes nothing and sends nothing: the same text, a reaction already there or already gone, a
    # second delete.
    assert ok(ann_tab.call("editMessage", {"chatId": chat, "seq": first["seq"], "text": "first, edited"}), "same text") == latest
    assert ok(ben_tab.call("react", {"chatId": chat, "seq": first["seq"], "emoji": "👍", "on": True}), "react again") == latest
    assert ok(cat_tab.call("react", {"chatId": chat, "seq": first["seq"], "emoji": "👍", "on": False}), "unreact again") == latest
    assert ok(cat_tab.call("deleteMessage", {"chatId": chat, "seq": oops["seq"]}), "delete again") == tombstone

    # Every socket of every member, the acting one included, had each change once, in version order, as acked.
    sockets = {"ann": ann_tab, "ann's other tab": ann_other, "ben": ben_tab, "cat": cat_tab}
    for tab in sockets.values():
        tab.wait_for_version(chat, final)
    time.sleep(SETTLE_SECONDS)  # a duplicate, or an event for one of the repeats, would have come by now
    for name, tab in sockets.items():
        got = tab.of_chat(chat)
        assert [(event, m["version"]) for event, m in got] == [(event, m["version"]) for event, m in expected], (
            f"{name}'s socket: events (name, version) {[(e, m['version']) for e, m in got]}")
        assert got == expected, f"{name}'s socket got other payloads than the acks"

    # The store agrees: the reply kept its version and quotes the edited text; the chat stands at the last version.
    assert chat_version(ann, chat) == final
    history = all_messages(ben, chat)
    assert [m["seq"] for m in history] == [first["seq"], reply["seq"], oops["seq"]]
    assert history[0] == latest and history[2] == tombstone
    assert history[1] == {**reply, "replyTo": {**reply["replyTo"], "text": "first, edited"}}, history[1]
    caught_up = changes(cat, chat, start)
    assert caught_up == {"messages": [history[1], latest, tombstone], "version": final, "hasMore": False}


# ---------------------------------------------------------------------------------------------------------------
# Realtime: the same authorization and validation as REST


def test_socket_actions_are_refused_as_rest_refuses_them_and_the_socket_stays_usable(server, tabs, transports):
    ann, ben, cat = sign_in(server), sign_in(server), sign_in(server)
    chat = direct_chat(ann, ben)
    elsewhere = direct_chat(ben, cat)
    for index in range(4):  # seqs 1..4 there; this chat will have 1..3
        post_text(cat, elsewhere, f"elsewhere {index}")
    ann_tab, ben_tab, cat_tab = (open_tab(tabs, server, account, transports) for account in (ann, ben, cat))

    mine = ok(ann_tab.call("sendMessage", {"chatId": chat, "text": "mine", "clientMessageId": new_id()}), "send")
    picture = post_image(ann, chat, unique_png())
    gone = ok(ann_tab.call("sendMessage", {"chatId": chat, "text": "to delete", "clientMessageId": new_id()}), "send")
    tombstone = ok(ann_tab.call("deleteMessage", {"chatId": chat, "seq": gone["seq"]}), "delete")
    assert [mine["seq"], picture["seq"], gone["seq"]] == [1, 2, 3]
    before = all_messages(ann, chat)
    version = tombstone["version"]

    # Someone else's message.
    refused(ben_tab.call("editMessage", {"chatId": chat, "seq": mine["seq"], "text": "hijacked"}), "not_your_message", "edit")
    refused(ben_tab.call("deleteMessage", {"chatId": chat, "seq": mine["seq"]}), "not_your_message", "delete")
    refused(ben_tab.call("deleteMessage", {"chatId": chat, "seq": picture["seq"]}), "not_your_message", "delete image")
    # A chat the caller is not in, or that does not exist: 404, never 403.
    for chat_id in (chat, str(uuid.uuid4()), "not-an-id"):
        refused(cat_tab.call("editMessage", {"chatId": chat_id, "seq": 1, "text": "let me in"}), "chat_not_found", "edit")
        refused(cat_tab.call("deleteMessage", {"chatId": chat_id, "seq": 1}), "chat_not_found", "delete")
        refused(cat_tab.call("react", {"chatId": chat_id, "seq": 1, "emoji": "👍", "on": True}), "chat_not_found", "react")
        refused(cat_tab.call("sendMessage", {"chatId": chat_id, "text": "hi", "clientMessageId": new_id(), "replyToSeq": 1}),
                "chat_not_found", "reply")
    # Replies: to a seq only another chat has, to none, to a deleted message.
    refused(ben_tab.call("sendMessage", {"chatId": chat, "text": "re", "clientMessageId": new_id(), "replyToSeq": 4}),
            "message_not_found", "reply to a seq of another chat")
    refused(ben_tab.call("sendMessage", {"chatId": chat, "text": "re", "clientMessageId": new_id(), "replyToSeq": 999}),
            "message_not_found", "reply to no message")
    refused(ben_tab.call("sendMessage", {"chatId": chat, "text": "re", "clientMessageId": new_id(), "replyToSeq": gone["seq"]}),
            "message_deleted", "reply to a deleted message")
    # Reactions: only one emoji grapheme; not on deleted or missing messages.
    for word in ("ok", "yes", "👍👍", "👍 ", ":+1:", "<b>"):
        refused(ben_tab.call("react", {"chatId": chat, "seq": mine["seq"], "emoji": word, "on": True}), "invalid_emoji",
                f"react {word!r}")
    refused(ben_tab.call("react", {"chatId": chat, "seq": mine["seq"], "emoji": "", "on": True}),
            {"invalid_emoji", "invalid_request"}, "react with nothing")
    refused(ben_tab.call("react", {"chatId": chat, "seq": gone["seq"], "emoji": "👍", "on": True}), "message_deleted",
            "react to a deleted message")
    refused(ben_tab.call("react", {"chatId": chat, "seq": 999, "emoji": "👍", "on": True}), "message_not_found", "react")
    # Edits: not of a deleted message, not of an image, not of a missing one; the text as sending checks it.
    refused(ann_tab.call("editMessage", {"chatId": chat, "seq": gone["seq"], "text": "back"}), "message_deleted", "edit")
    refused(ann_tab.call("editMessage", {"chatId": chat, "seq": picture["seq"], "text": "caption"}), "not_editable", "edit")
    refused(ann_tab.call("editMessage", {"chatId": chat, "seq": 999, "text": "x"}), "message_not_found", "edit")
    refused(ann_tab.call("editMessage", {"chatId": chat, "seq": mine["seq"], "text": ""}), "invalid_text", "edit to nothing")
    refused(ann_tab.call("editMessage", {"chatId": chat, "seq": mine["seq"], "text": " \n "}), "invalid_text", "edit to blanks")
    refused(ann_tab.call("editMessage", {"chatId": chat, "seq": mine["seq"], "text": "bell\u0007"}), "invalid_text",
            "edit to a control character")
    refused(ann_tab.call("editMessage", {"chatId": chat, "seq": mine["seq"], "text": 5}), "invalid_text", "edit to a number")
    refused(ann_tab.call("editMessage", {"chatId": chat, "seq": mine["seq"], "text": "x" * 100_000}), "text_too_long",
            "edit to a huge text")
    refused(ann_tab.call("sendMessage", {"chatId": chat, "text": "y" * 100_000, "clientMessageId": new_id()}),
            "text_too_long", "send a huge text")

    # Malformed payloads: a clear error, whatever the socket sends.
    malformed = [
        ("editMessage", None, {"invalid_request"}),
        ("editMessage", "just a string", {"invalid_request"}),
        ("editMessage", [chat, 1, "text"], {"invalid_request"}),
        ("editMessage", {"chatId": chat, "text": "no seq"}, {"invalid_request", "invalid_seq"}),
        ("editMessage", {"chatId": chat, "seq": "1", "text": "seq as text"}, {"invalid_request", "invalid_seq"}),
        ("editMessage", {"chatId": chat, "seq": -1, "text": "negative"}, {"invalid_request", "invalid_seq"}),
        ("editMessage", {"chatId": chat, "seq": 1.5, "text": "fraction"}, {"invalid_request", "invalid_seq"}),
        ("editMessage", {"chatId": chat, "seq": mine["seq"]}, {"invalid_request", "invalid_text"}),
        ("editMessage", {"seq": mine["seq"], "text": "no chat"}, {"invalid_request"}),
        ("deleteMessage", {"chatId": chat}, {"invalid_request", "invalid_seq"}),
        ("deleteMessage", {"chatId": 5, "seq": mine["seq"]}, {"invalid_request", "chat_not_found"}),
        ("deleteMessage", {"chatId": chat, "seq": None}, {"invalid_request", "invalid_seq"}),
        ("react", {"chatId": chat, "seq": mine["seq"], "emoji": "👍"}, {"invalid_request"}),
        ("react", {"chatId": chat, "seq": mine["seq"], "emoji": "👍", "on": "yes"}, {"invalid_request"}),
        ("react", {"chatId": chat, "seq": mine["seq"], "emoji": 5, "on": True}, {"invalid_request", "invalid_emoji"}),
        ("react", {"chatId": chat, "seq": mine["seq"], "on": True}, {"invalid_request", "invalid_emoji"}),
        ("sendMessage", {"chatId": chat, "text": "re", "clientMessageId": new_id(), "replyToSeq": "1"},
         {"invalid_request", "invalid_seq"}),
        ("sendMessage", {"chatId": chat, "text": "re", "clientMessageId": new_id(), "replyToSeq": -1},
         {"invalid_request", "invalid_seq"}),
    ]
    for event, payload, codes in malformed:
        refused(ann_tab.call(event, payload), codes, f"{event} {payload!r}")

    # Nothing of that changed anything or sent anything.
    assert all_messages(ann, chat) == before
    assert chat_version(ann, chat) == version

    # Single emoji graphemes of every shape are accepted, up to 10 of one person on one message; the sockets still work.
    emoji = EMOJI_SHAPES + ["😀", "😂", "🙏", "🔥", "💯", "🚀"]
    for index, one in enumerate(emoji):
        reacted = ok(ben_tab.call("react", {"chatId": chat, "seq": mine["seq"], "emoji": one, "on": True}), f"react {one}")
        assert reacted["version"] == version + 1 + index
        assert reacted["reactions"][-1] == {"emoji": one, "userIds": [ben.id]}, reacted
    refused(ben_tab.call("react", {"chatId": chat, "seq": mine["seq"], "emoji": "🎈", "on": True}), "too_many_reactions",
            "an 11th reaction of one person")
    refused(ben_tab.call("react", {"chatId": chat, "seq": mine["seq"], "emoji": "👍" + "\ufe0f" * 30, "on": True}),
            "invalid_emoji", "one grapheme of more than 64 bytes")
    last = ok(ann_tab.call("sendMessage", {"chatId": chat, "text": "abcdefghij" * 30, "clientMessageId": new_id()}), "send")
    assert last["seq"] == 4 and last["version"] == version + 1 + len(emoji)
    quoting = ok(ben_tab.call("sendMessage", {"chatId": chat, "text": "that is long", "clientMessageId": new_id(),
                                              "replyToSeq": last["seq"]}), "reply")
    assert quoting["replyTo"] == {"seq": last["seq"], "senderId": ann.id, "kind": "text", "text": "abcdefghij" * 20}, (
        "a reply quotes the first 200 characters")
    ben_tab.wait_for_version(chat, quoting["version"])
    assert all(tab.client.connected for tab in (ann_tab, ben_tab, cat_tab))
    assert [m["version"] for _, m in ben_tab.of_chat(chat)] == list(range(mine["version"], quoting["version"] + 1)), (
        "a refused action sent an event, or one was lost")
    assert cat_tab.of_chat(chat) == [], "an outsider's socket heard of the chat"


# ---------------------------------------------------------------------------------------------------------------
# The offline catch-up over a real reconnect


def test_a_member_back_from_offline_catches_up_with_changes(server, tabs, transports):
    ann, ben = sign_in(server), sign_in(server)
    chat = direct_chat(ann, ben)
    ann_tab, ben_tab = open_tab(tabs, server, ann, transports), open_tab(tabs, server, ben, transports)
    png = unique_png()

    one = ok(ann_tab.call("sendMessage", {"chatId": chat, "text": "one", "clientMessageId": new_id()}), "send")
    picture = post_image(ann, chat, png)
    three = ok(ann_tab.call("sendMessage", {"chatId": chat, "text": "three", "clientMessageId": new_id()}), "send")
    answer = ok(ben_tab.call("sendMessage", {"chatId": chat, "text": "nice picture", "clientMessageId": new_id(),
                                             "replyToSeq": picture["seq"]}), "reply")
    assert answer["replyTo"] == {"seq": picture["seq"], "senderId": ann.id, "kind": "image"}, answer
    ben_tab.wait_for_version(chat, answer["version"])
    copy: dict[int, dict] = {}
    for _, message in ben_tab.of_chat(chat):
        apply(copy, message)
    assert sorted(copy) == [1, 2, 3, 4]
    last_seen = max(message["version"] for message in copy.values())
    image_url = absolute(server, picture["image"]["url"])
    assert requests.get(image_url, timeout=10).status_code == 200
    assert blobs_holding(server, png), "the image is not in the blob store (<data dir>/files)"

    # Ben goes offline; Ann edits one message, deletes the image, reacts to a third and sends a reply.
    ben_tab.close()
    edited = ok(ann_tab.call("editMessage", {"chatId": chat, "seq": one["seq"], "text": "one, edited"}), "edit")
    deleted = ok(ann_tab.call("deleteMessage", {"chatId": chat, "seq": picture["seq"]}), "delete")
    reacted = ok(ann_tab.call("react", {"chatId": chat, "seq": three["seq"], "emoji": "🎉", "on": True}), "react")
    five = ok(ann_tab.call("sendMessage", {"chatId": chat, "text": "five", "clientMessageId": new_id(),
                                           "replyToSeq": one["seq"]}), "reply")
    assert five["replyTo"] == {"seq": one["seq"], "senderId": ann.id, "kind": "text", "text": "one, edited"}, five
    assert deleted["kind"] == "deleted" and "image" not in deleted
    # Erased, not hidden: the signed URL answers 404 and the bytes are gone from the blob store.
    assert requests.get(image_url, timeout=10).status_code == 404
    poll(lambda: not blobs_holding(server, png), 5, "the deleted image's bytes to leave the blob store")

    # Ben is back: a new connection; the chat list says he is behind; one call brings exactly the four changes.
    ben_again = open_tab(tabs, server, ben, transports)
    summary = next(c for c in expect_status(ben.client.get(f"{API}/chats"), 200)["chats"] if c["id"] == chat)
    assert summary["version"] == five["version"] > last_seen
    caught = changes(ben, chat, last_seen)
    assert caught == {"messages": [edited, deleted, reacted, five], "version": five["version"], "hasMore": False}, caught
    assert [m["version"] for m in caught["messages"]] == list(range(last_seen + 1, last_seen + 5))
    # Page by page, each page's version is where the client stands after it.
    page = changes(ben, chat, last_seen, limit=2)
    assert page == {"messages": [edited, deleted], "version": deleted["version"], "hasMore": True}, page
    page = changes(ben, chat, page["version"], limit=2)
    assert page == {"messages": [reacted, five], "version": five["version"], "hasMore": False}, page
    assert changes(ben, chat, five["version"]) == {"messages": [], "version": five["version"], "hasMore": False}

    for message in caught["messages"]:
        apply(copy, message)
    history = all_messages(ben, chat)
    assert [copy[seq] for seq in sorted(copy)] == history, "the copy caught up from /changes differs from the store"
    assert history[3]["replyTo"] == {"seq": picture["seq"], "senderId": ann.id, "kind": "deleted"}
    assert history[3]["version"] == answer["version"], "a reply keeps its version when its original changes"

    # Live again from where he stands: the next change is his version + 1.
    later = ok(ann_tab.call("editMessage", {"chatId": chat, "seq": three["seq"], "text": "three, edited"}), "edit")
    assert later["version"] == caught["version"] + 1
    ben_again.wait_for_version(chat, later["version"])
    assert ben_again.of_chat(chat) == [("messageUpdated", later)]


# ---------------------------------------------------------------------------------------------------------------
# REST that needs the binary: around= and search


def test_history_around_a_message(server):
    ann, ben, cat = sign_in(server), sign_in(server), sign_in(server)
    chat = direct_chat(ann, ben)
    sent = [post_text(ann if index % 2 else ben, chat, f"message {index + 1}") for index in range(9)]
    sender = ann if sent[4]["senderId"] == ann.id else ben
    expect_status(sender.client.request("DELETE", f"{API}/chats/{chat}/messages/5"), 200)
    history = all_messages(ann, chat)
    assert history[4]["kind"] == "deleted" and [m["id"] for m in history] == [m["id"] for m in sent]

    def around(seq, limit):
        body = expect_status(ben.client.get(f"{API}/chats/{chat}/messages", params={"around": seq, "limit": limit}), 200)
        assert set(body) == {"messages", "hasMore", "hasMoreAfter"}, body
        return [m["seq"] for m in body["messages"]], body["hasMore"], body["hasMoreAfter"], body["messages"]

    seqs, older, newer, messages = around(5, 4)
    assert (seqs, older, newer) == ([3, 4, 5, 6], True, True)
    assert messages == history[2:6], "a page around a seq holds the same messages as any other page (the tombstone too)"
    assert around(5, 5)[:3] == ([3, 4, 5, 6, 7], True, True)
    assert around(1, 4)[:3] == ([1, 2, 3, 4], False, True)
    assert around(9, 4)[:3] == ([7, 8, 9], True, False)
    assert around(2, 100)[:3] == (list(range(1, 10)), False, False)

    assert_error(ben.client.get(f"{API}/chats/{chat}/messages", params={"around": 5, "before": 7}), 400)
    assert_error(ben.client.get(f"{API}/chats/{chat}/messages", params={"around": 5, "after": 2}), 400)
    assert_error(ben.client.get(f"{API}/chats/{chat}/messages", params={"around": -1}), 400, "invalid_seq")
    assert_error(ben.client.get(f"{API}/chats/{chat}/messages", params={"around": "five"}), 400, "invalid_seq")
    assert_error(cat.client.get(f"{API}/chats/{chat}/messages", params={"around": 5}), 404, "chat_not_found")


def test_search_finds_what_members_can_see_with_utf16_highlights(server):
    ann, ben, cat = sign_in(server), sign_in(server), sign_in(server)
    chat = direct_chat(ann, ben)
    other = direct_chat(ann, cat)
    crossing = post_text(ann, chat, "😀🎉 zebra crossing ahead")
    stripes = post_text(ben, chat, "a zebra without stripes")
    to_edit = post_text(ann, chat, "apple pie recipe")
    to_delete = post_text(ben, chat, "cherry tart tonight")
    shouting = post_text(ann, chat, "ZEBRA 🦓 zebra")
    elsewhere = post_text(cat, other, "zebra in another chat")
    french = post_text(ben, chat, "🇫🇷 café crème")
    russian = post_text(ann, chat, "Встреча в ПЯТНИЦУ")
    edited = expect_status(ann.client.patch(f"{API}/chats/{chat}/messages/{to_edit['seq']}",
                                            json={"text": "banana split recipe"}), 200)["message"]
    expect_status(ben.client.request("DELETE", f"{API}/chats/{chat}/messages/{to_delete['seq']}"), 200)
    stored = {m["id"]: m for m in all_messages(ann, chat) + all_messages(ann, other)}

    def search(account: Account, **params) -> dict:
        body = expect_status(account.client.get(f"{API}/search", params=params), 200)
        assert isinstance(body, dict) and {"results"} <= set(body) <= {"results", "nextCursor"}, body
        for result in body["results"]:
            assert set(result) == {"message", "highlights"}, result
            assert_message(result["message"])
            assert result["message"] == stored.get(result["message"]["id"], result["message"]), (
                "a search result is the whole Message, as history has it")
        return body

    def ids(body: dict) -> list[str]:
        return [result["message"]["id"] for result in body["results"]]

    def highlights(body: dict) -> dict[str, list[dict]]:
        return {r["message"]["id"]: sorted(r["highlights"], key=lambda h: h["start"]) for r in body["results"]}

    # One chat, newest first, with the words marked in UTF-16 code units (the emoji before them count two each).
    body = search(ann, q="zebra", chatId=chat)
    assert ids(body) == [shouting["id"], stripes["id"], crossing["id"]]
    assert highlights(body) == {
        shouting["id"]: [{"start": 0, "end": 5}, {"start": 9, "end": 14}],
        stripes["id"]: [{"start": 2, "end": 7}],
        crossing["id"]: [{"start": 5, "end": 10}],
    }, "highlights are UTF-16 ranges of message.text"
    assert highlights(body)[crossing["id"]] == word_ranges(crossing["text"], "zebra")
    # Beyond ASCII: a flag is two code points and four UTF-16 units; capitals of any script match.
    body = search(ben, q="crème")
    assert ids(body) == [french["id"]] and highlights(body)[french["id"]] == [{"start": 10, "end": 15}]
    body = search(ben, q="пятницу")
    assert ids(body) == [russian["id"]] and highlights(body)[russian["id"]] == word_ranges(russian["text"], "пятницу")
    # Every word must match, as a whole word; a word written with * after it matches the words starting with it.
    body = search(ann, q="zebra crossing")
    assert ids(body) == [crossing["id"]]
    assert highlights(body)[crossing["id"]] == [{"start": 5, "end": 10}, {"start": 11, "end": 19}]
    assert ids(search(ann, q="zeb cross", chatId=chat)) == []
    body = search(ann, q="zeb* cross*", chatId=chat)
    assert ids(body) == [crossing["id"]]
    assert highlights(body)[crossing["id"]] == [{"start": 5, "end": 10}, {"start": 11, "end": 19}], "the whole words are marked"
    # All of the caller's chats, newest first; never others' chats.
    body = search(ann, q="zebra")
    assert set(ids(body)) == {shouting["id"], stripes["id"], crossing["id"], elsewhere["id"]}
    created = [result["message"]["createdAt"] for result in body["results"]]
    assert created == sorted(created, reverse=True), "newest first"
    assert ids(search(cat, q="zebra")) == [elsewhere["id"]]
    assert_error(cat.client.get(f"{API}/search", params={"q": "zebra", "chatId": chat}), 404, "chat_not_found")
    assert_error(cat.client.get(f"{API}/search", params={"q": "zebra", "chatId": str(uuid.uuid4())}), 404, "chat_not_found")
    # Edited text is searched as edited; deleted messages never.
    assert ids(search(ann, q="apple")) == []
    body = search(ben, q="banana")
    assert ids(body) == [edited["id"]] and body["results"][0]["message"]["text"] == "banana split recipe"
    assert highlights(body)[edited["id"]] == [{"start": 0, "end": 6}]
    assert ids(search(ben, q="cherry")) == [] and ids(search(ben, q="tonight")) == []
    # Pages follow nextCursor; the last one has none.
    first = search(ann, q="zebra", chatId=chat, limit=2)
    assert ids(first) == [shouting["id"], stripes["id"]] and isinstance(first.get("nextCursor"), str)
    rest = search(ann, q="zebra", chatId=chat, limit=2, cursor=first["nextCursor"])
    assert ids(rest) == [crossing["id"]] and rest.get("nextCursor") is None
    # Queries without a word are refused, and so are limits out of range.
    for query in ("", "   ", "!!! ???", "x" * 201):
        assert_error(ann.client.get(f"{API}/search", params={"q": query}), 400)
    assert_error(ann.client.get(f"{API}/search", params={"q": "!!!"}), 400, "invalid_query")
    assert_error(ann.client.get(f"{API}/search"), 400)
    for limit in (0, 201, "many"):  # 1–200, as on the other routes
        assert_error(ann.client.get(f"{API}/search", params={"q": "zebra", "limit": limit}), 400)
