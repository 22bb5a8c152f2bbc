"""Groups people manage and blocks, heard over Socket.IO with the stock python-socketio client (issue 14): every change
is a system message with its own seq and a `chatUpdated` to the members; a removed member hears `chatRemoved` and
nothing more of the chat, and cannot send over the socket they already had open; a blocked person's send is kept
from the blocker without their knowing.

Each scenario runs on long-polling only and on WebSocket only, against an all-in-one server on SQLite and on
PostgreSQL (the module's `server`).
"""

from __future__ import annotations

import time
import uuid

from harness import assert_chat_summary, assert_message, expect_status, introduce, sign_in
from test_messages_realtime import SETTLE_SECONDS, open_tab, refused, tabs, transports  # noqa: F401 (fixtures)

API = "/api/v1"


def create_group(owner, members, name="Team") -> str:
    introduce(owner, members)
    body = expect_status(owner.client.post(f"{API}/chats", json={"name": name, "memberIds": [m.id for m in members]}), 201)
    return body["chat"]["id"]


def system_messages(tab, chat_id: str) -> list[dict]:
    return [payload for event, payload in tab.of_chat(chat_id) if event == "newMessage" and payload.get("kind") == "system"]


def updates(tab, chat_id: str) -> list[dict]:
    with tab.lock:
        return [payload for event, payload in tab.seen if event == "chatUpdated" and payload.get("id") == chat_id]


def test_group_changes_reach_members_as_system_messages_and_chat_updates(server, tabs, transports):
    ann, ben, cat = sign_in(server), sign_in(server), sign_in(server)
    chat_id = create_group(ann, [ben, cat])
    ann_tab, ben_tab, cat_tab = (open_tab(tabs, server, person, transports) for person in (ann, ben, cat))

    summary = expect_status(ann.client.patch(f"{API}/chats/{chat_id}", json={"name": "Launch"}), 200)
    assert_chat_summary(summary)
    for tab in (ann_tab, ben_tab, cat_tab):
        message = tab.wait_for("newMessage", lambda m: m.get("chatId") == chat_id and m.get("kind") == "system")
        assert_message(message)
        assert message["seq"] == 1 and message["version"] == 1, message
        assert message["system"] == {"action": "renamed", "actorId": ann.id, "name": "Launch"}, message
        update = tab.wait_for("chatUpdated", lambda s: s.get("id") == chat_id and s.get("name") == "Launch")
        assert_chat_summary(update)
        assert {m["id"]: m["role"] for m in update["members"]} == {ann.id: "owner", ben.id: "member", cat.id: "member"}

    # A role change: everyone hears the new roles and the system message, with the next seq.
    expect_status(ann.client.put(f"{API}/chats/{chat_id}/members/{cat.id}/role", json={"role": "admin"}), 200)
    for tab in (ben_tab, cat_tab):
        message = tab.wait_for("newMessage", lambda m: m.get("chatId") == chat_id and m.get("seq") == 2)
        assert message["system"] == {"action": "role", "actorId": ann.id, "userIds": [cat.id], "role": "admin"}, message
        tab.wait_for("chatUpdated", lambda s: s.get("id") == chat_id
                     and any(m["id"] == cat.id and m["role"] == "admin" for m in s["members"]))


def test_a_removed_member_hears_nothing_more_and_cannot_send_over_an_open_socket(server, tabs, transports):
    ann, ben, cat, dan = sign_in(server), sign_in(server), sign_in(server), sign_in(server)
    chat_id = create_group(ann, [ben, cat])
    ann_tab, ben_tab, cat_tab = (open_tab(tabs, server, person, transports) for person in (ann, ben, cat))
    # Ben has the chat open: what arrives while it is open would be marked read for him.
    ben_tab.call("joinChat", chat_id)

    expect_status(ann.client.delete(f"{API}/chats/{chat_id}/members/{ben.id}"), 204)
    removed = ben_tab.wait_for("chatRemoved", lambda p: p.get("chatId") == chat_id)
    assert removed == {"chatId": chat_id}, removed
    removal = cat_tab.wait_for("newMessage", lambda m: m.get("chatId") == chat_id and m.get("kind") == "system")
    assert removal["system"] == {"action": "removed", "actorId": ann.id, "userIds": [ben.id]}, removal
    update = cat_tab.wait_for("chatUpdated", lambda s: s.get("id") == chat_id)
    assert ben.id not in {m["id"] for m in update["members"]}, update

    # Ben's socket, still open, is refused as a stranger would be; his typing reaches no one.
    answer = ben_tab.call("sendMessage", {"chatId": chat_id, "text": "still here?", "clientMessageId": uuid.uuid4().hex})
    refused(answer, "chat_not_found", "a removed member's send")
    ben_tab.client.emit("typing", {"chatId": chat_id})
    # The others go on talking, and someone new joins: Ben hears none of it.
    sent = cat_tab.call("sendMessage", {"chatId": chat_id, "text": "without ben", "clientMessageId": uuid.uuid4().hex})
    assert sent.get("ok") is True, sent
    introduce(ann, [dan])
    expect_status(ann.client.post(f"{API}/chats/{chat_id}/members", json={"userIds": [dan.id]}), 200)
    ann_tab.wait_for("newMessage", lambda m: m.get("chatId") == chat_id and m.get("seq") == 3)
    time.sleep(SETTLE_SECONDS)
    assert [m["seq"] for m in system_messages(ben_tab, chat_id)] == [], ben_tab.of_chat(chat_id)
    assert ben_tab.of_chat(chat_id) == [], ben_tab.of_chat(chat_id)
    assert updates(ben_tab, chat_id) == [], "a removed member hears no chatUpdated of the chat"
    with cat_tab.lock:
        assert not any(event == "userTyping" and payload.get("userId") == ben.id for event, payload in cat_tab.seen)
    # The history is closed to him.
    expect_status(ben.client.get(f"{API}/chats/{chat_id}/messages"), 404)
    history = expect_status(ann.client.get(f"{API}/chats/{chat_id}/messages"), 200)["messages"]
    assert [m["seq"] for m in history] == [1, 2, 3] and all(m["senderId"] != ben.id for m in history), history


def test_a_member_who_leaves_hears_chat_removed_on_every_socket(server, tabs, transports):
    ann, ben = sign_in(server), sign_in(server)
    chat_id = create_group(ann, [ben])
    first, second = open_tab(tabs, server, ben, transports), open_tab(tabs, server, ben, transports)
    ann_tab = open_tab(tabs, server, ann, transports)
    expect_status(ben.client.delete(f"{API}/chats/{chat_id}/members/{ben.id}"), 204)
    for tab in (first, second):
        tab.wait_for("chatRemoved", lambda p: p.get("chatId") == chat_id)
    left = ann_tab.wait_for("newMessage", lambda m: m.get("chatId") == chat_id)
    assert left["system"] == {"action": "left", "actorId": ben.id}, left
    # Ann is the only one left, and still its owner.
    update = ann_tab.wait_for("chatUpdated", lambda s: s.get("id") == chat_id)
    assert [(m["id"], m["role"]) for m in update["members"]] == [(ann.id, "owner")], update


def test_a_blocked_person_cannot_reach_the_blocker_over_a_socket_and_cannot_tell(server, tabs, transports):
    """Eve's send after Ann blocks her is acked like any other and reaches Eve's other socket, never Ann's; her typing
    is not relayed; her edit of what Ann had seen and her reaction to it reach Eve's other socket and not Ann's; Ann's
    presence is hidden from her (userOffline at the block, not in getOnlineUser after), so a block looks like someone
    offline. Unblocked, the same sockets reach each other again, and a reply quoting the message Eve changed shows Ann
    what she saw."""
    ann, eve = sign_in(server), sign_in(server)
    chat_id = expect_status(eve.client.post(f"{API}/chats", json={"userId": ann.id}), 201)["chat"]["id"]
    ann_tab, eve_tab = open_tab(tabs, server, ann, transports), open_tab(tabs, server, eve, transports)
    eve_other = open_tab(tabs, server, eve, transports)
    assert eve_other.wait_for("getOnlineUser") == [ann.id]
    first = eve_tab.call("sendMessage", {"chatId": chat_id, "text": "first", "clientMessageId": uuid.uuid4().hex})
    assert first.get("ok") is True, first
    ann_tab.wait_for("newMessage", lambda m: m.get("chatId") == chat_id and m.get("text") == "first")
    expect_status(ann.client.put(f"{API}/blocks/{eve.id}"), 204)
    eve_tab.wait_for("userOffline", lambda p: p == {"userId": ann.id})
    answer = eve_tab.call("sendMessage", {"chatId": chat_id, "text": "hello?", "clientMessageId": uuid.uuid4().hex})
    assert answer.get("ok") is True and answer["message"]["text"] == "hello?", answer
    eve_other.wait_for("newMessage", lambda m: m.get("chatId") == chat_id and m.get("text") == "hello?")
    edited = eve_tab.call("editMessage", {"chatId": chat_id, "seq": 1, "text": "first, edited"})
    assert edited.get("ok") is True and edited["message"]["text"] == "first, edited", edited
    reacted = eve_tab.call("react", {"chatId": chat_id, "seq": 1, "emoji": "👀", "on": True})
    assert reacted.get("ok") is True and reacted["message"]["reactions"] == [{"emoji": "👀", "userIds": [eve.id]}], reacted
    eve_other.wait_for("messageUpdated", lambda m: m.get("seq") == 1 and m.get("reactions"))
    eve_tab.client.emit("typing", {"chatId": chat_id})
    time.sleep(SETTLE_SECONDS)
    assert [payload["text"] for _, payload in ann_tab.of_chat(chat_id)] == ["first"]
    with ann_tab.lock:
        assert not any(event == "userTyping" for event, _ in ann_tab.seen), "a blocked person's typing reached the blocker"
    # A new socket of Eve's is not told Ann is online.
    eve_third = open_tab(tabs, server, eve, transports)
    assert eve_third.wait_for("getOnlineUser") == []
    # Unblocked, the same sockets reach each other again, and Eve sees Ann online.
    expect_status(ann.client.delete(f"{API}/blocks/{eve.id}"), 204)
    eve_tab.wait_for("userOnline", lambda p: p == {"userId": ann.id})
    sent = eve_tab.call("sendMessage", {"chatId": chat_id, "text": "hello again", "clientMessageId": uuid.uuid4().hex})
    assert sent.get("ok") is True, sent
    arrived = ann_tab.wait_for("newMessage", lambda m: m.get("chatId") == chat_id and m.get("text") == "hello again")
    assert arrived["seq"] == 3, arrived
    assert [payload["text"] for _, payload in ann_tab.of_chat(chat_id)] == ["first", "hello again"]
    reply = eve_tab.call("sendMessage", {"chatId": chat_id, "text": "as I said", "clientMessageId": uuid.uuid4().hex,
                                         "replyToSeq": 1})
    assert reply.get("ok") is True and reply["message"]["replyTo"]["text"] == "first, edited", reply
    quoted = ann_tab.wait_for("newMessage", lambda m: m.get("chatId") == chat_id and m.get("text") == "as I said")
    assert quoted["replyTo"]["text"] == "first", quoted
    # One quoting what Eve wrote under the block shows Ann a deleted message.
    hidden = eve_tab.call("sendMessage", {"chatId": chat_id, "text": "did you?", "clientMessageId": uuid.uuid4().hex,
                                          "replyToSeq": 2})
    assert hidden.get("ok") is True and hidden["message"]["replyTo"]["text"] == "hello?", hidden
    quoted = ann_tab.wait_for("newMessage", lambda m: m.get("chatId") == chat_id and m.get("text") == "did you?")
    assert quoted["replyTo"]["kind"] == "deleted" and "text" not in quoted["replyTo"], quoted
    eve_tab.client.emit("typing", {"chatId": chat_id})
    ann_tab.wait_for("userTyping", lambda p: p == {"chatId": chat_id, "userId": eve.id})
