"""Message changes across chat instances, through nginx, with stock python-socketio clients: edits, deletes and
reactions made on one instance reach the members' sockets on the others in version order, exactly once; changes made
while an instance's event bus connection was away reach its sockets afterwards, filled from the store.

[cluster] Needs from the binary: issue 13 (`messageUpdated`, the change version, `GET /chats/{id}/changes`) and the
PostgreSQL event bus with gap filling.

A socket's events are read in the order they came off the wire (harness.record_events_in_wire_order). What a socket
may see: every change made through one instance, in order; when changes come from several instances (or the bus was
away), a version whose message changed again before it was filled from the store is superseded by that later state
(docs/realtime.md: a client that sees a version more than one past its last calls /changes, which answers the same).
So the checks are: versions strictly increasing (in order, exactly once), each payload is the message as it stood at
that version, and applying them makes the client's copy equal to the store.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any, Callable

import pytest

from cluster import (
    Cluster,
    ack_ok,
    all_messages,
    connect_socket,
    create_chat,
    disconnect_socket,
    timing,
)
from harness import expect_status, poll, record_events_in_wire_order

API = "/api/v1"
MESSAGE_EVENTS = ("newMessage", "messageUpdated")
SETTLE_SECONDS = 0.5


class Wire:
    """The newMessage and messageUpdated events of one socket, in wire order."""

    def __init__(self, socket):
        self.socket = socket
        self.lock = threading.Lock()
        self.events: list[tuple[str, dict]] = []
        record_events_in_wire_order(socket, self._record)

    def _record(self, name: str, payload: Any) -> None:
        if name in MESSAGE_EVENTS and isinstance(payload, dict):
            with self.lock:
                self.events.append((name, payload))

    def of_chat(self, chat_id: str) -> list[dict]:
        with self.lock:
            return [payload for _, payload in self.events if payload.get("chatId") == chat_id]

    def versions(self, chat_id: str) -> list[int]:
        return [message["version"] for message in self.of_chat(chat_id)]

    def wait_for_version(self, chat_id: str, version: int, what: str, timeout: float = 15.0) -> None:
        poll(lambda: version in self.versions(chat_id), timeout, f"version {version} on {what}")


def connect(cluster: Cluster, account, transport: str, instance: str) -> tuple[Any, Wire]:
    socket, _ = connect_socket(cluster, account.access_token, transport, instance=instance)
    return socket, Wire(socket)


def chat_version(account, chat_id: str) -> int:
    summary = expect_status(account.client.get(f"{API}/chats/{chat_id}"), 200)
    assert isinstance(summary.get("version"), int), f"ChatSummary without version: {summary!r}"
    return summary["version"]


def message_of(answer: Any, what: str) -> dict:
    return ack_ok(answer, what)["message"]


def check_stream(name: str, received: list[dict], by_version: dict[int, dict], store: list[dict], after: int = 0) -> int:
    """Checks one socket's events of a chat (those past version `after`): strictly increasing versions, each the message
    as it stood at that version, and together they bring a copy to what the store has. Returns how many versions were
    superseded (not sent because their message had changed again by the time they were filled)."""
    versions = [message["version"] for message in received]
    assert versions == sorted(set(versions)), f"{name}: versions not strictly increasing (order, once): {versions}"
    for message in received:
        if message["version"] > after:
            assert message == by_version.get(message["version"]), (
                f"{name}: version {message['version']} is {message!r}, the change made it {by_version.get(message['version'])!r}")
    # A version not sent is one whose message changed again: that later state came instead.
    skipped = [version for version in sorted(by_version) if version > after and version not in versions]
    for version in skipped:
        seq = by_version[version]["seq"]
        assert any(m["seq"] == seq and m["version"] > version for m in received), (
            f"{name}: version {version} (seq {seq}) never came, nor a later state of its message: {versions}")
    copy: dict[int, dict] = {}
    for message in received:
        copy[message["seq"]] = message
    assert [copy[seq] for seq in sorted(copy)] == store, f"{name}: applying the events does not give the store's messages"
    return len(skipped)


def bus_outages(instance, first_line: int) -> list[tuple[str, str]]:
    """The (lost, back) timestamps of the instance's event bus outages logged since line `first_line`."""
    outages: list[tuple[str, str]] = []
    lost: str | None = None
    for line in instance.log_lines()[first_line:]:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        message = record.get("message", "") if isinstance(record, dict) else ""
        if "event bus connection lost" in message and lost is None:
            lost = record["timestamp"]
        elif "event bus listening again" in message and lost is not None:
            outages.append((lost, record["timestamp"]))
            lost = None
    return outages


def cleanup(cluster: Cluster, sockets: list) -> None:
    for socket in sockets:
        if socket.connected:
            disconnect_socket(cluster, socket)


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_changes_made_on_one_instance_reach_members_on_the_others(healthy_cluster, transport):
    """[cluster] Ann on chat1 sends, edits, reacts and deletes: Ben on chat2, Cat on chat3 and Ann's other socket on chat2
    get every change once, in version order, each as acked. Then changes from three instances at once (sockets on chat1
    and chat3, REST through nginx): every socket ends with the store's state, in version order, exactly once."""
    cluster = healthy_cluster
    ann, ben, cat = cluster.sign_in_many(3)
    chat = create_chat(ann, name="versions", members=[ben, cat])["id"]
    start = chat_version(ann, chat)
    ann_socket, ann_wire = connect(cluster, ann, transport, "chat1")
    other_socket, other_wire = connect(cluster, ann, transport, "chat2")
    ben_socket, ben_wire = connect(cluster, ben, transport, "chat2")
    cat_socket, cat_wire = connect(cluster, cat, transport, "chat3")
    sockets = [ann_socket, other_socket, ben_socket, cat_socket]
    wires = {"ann on chat1": ann_wire, "ann on chat2": other_wire, "ben on chat2": ben_wire, "cat on chat3": cat_wire}
    try:
        # One instance, one change after another: every version reaches every socket.
        started = time.monotonic()
        done: list[dict] = []
        for text in ("alpha", "beta", "gamma"):
            done.append(message_of(ann_socket.call("sendMessage", {"chatId": chat, "text": text,
                                                                   "clientMessageId": uuid.uuid4().hex}, timeout=10), "send"))
        alpha, beta, gamma = done
        for event, payload in [
            ("editMessage", {"chatId": chat, "seq": alpha["seq"], "text": "alpha, edited"}),
            ("react", {"chatId": chat, "seq": beta["seq"], "emoji": "👍", "on": True}),
            ("react", {"chatId": chat, "seq": beta["seq"], "emoji": "🎉", "on": True}),
            ("deleteMessage", {"chatId": chat, "seq": gamma["seq"]}),
            ("editMessage", {"chatId": chat, "seq": alpha["seq"], "text": "alpha, edited twice"}),
            ("react", {"chatId": chat, "seq": beta["seq"], "emoji": "👍", "on": False}),
        ]:
            done.append(message_of(ann_socket.call(event, payload, timeout=10), event))
        versions = [message["version"] for message in done]
        assert versions == list(range(start + 1, start + 1 + len(done))), f"versions are dense: {versions}"
        for name, wire in wires.items():
            wire.wait_for_version(chat, versions[-1], name)
        timing(f"9 changes on chat1 reached chat2 and chat3 ({transport})", time.monotonic() - started)
        time.sleep(SETTLE_SECONDS)
        for name, wire in wires.items():
            assert wire.of_chat(chat) == done, f"{name}: versions {wire.versions(chat)}, expected {versions}"
        mark = versions[-1]
        by_version = {message["version"]: message for message in done}

        # Three instances at once: Ann's socket on chat1 edits, Cat's on chat3 toggles a reaction, Ben's REST calls
        # (nginx: any chat instance) toggle another.
        lock = threading.Lock()
        errors: list[str] = []

        def record(message: dict) -> None:
            with lock:
                assert message["version"] not in by_version, f"version {message['version']} given twice"
                by_version[message["version"]] = message

        def run(label: str, action: Callable[[int], dict]) -> None:
            try:
                for index in range(8):
                    record(action(index))
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(f"{label}: {error!r}")

        def ann_edits(index: int) -> dict:
            return message_of(ann_socket.call("editMessage", {"chatId": chat, "seq": alpha["seq"], "text": f"alpha v{index}"},
                                              timeout=10), "edit")

        def cat_reacts(index: int) -> dict:
            return message_of(cat_socket.call("react", {"chatId": chat, "seq": beta["seq"], "emoji": "🔥", "on": index % 2 == 0},
                                              timeout=10), "react")

        def ben_reacts(index: int) -> dict:
            path = f"{API}/chats/{chat}/messages/{alpha['seq']}/reactions/%F0%9F%91%80"  # 👀
            response = ben.client.request("PUT" if index % 2 == 0 else "DELETE", path)
            return expect_status(response, 200)["message"]

        started = time.monotonic()
        threads = [threading.Thread(target=run, args=(label, action))
                   for label, action in (("ann", ann_edits), ("cat", cat_reacts), ("ben", ben_reacts))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        final = max(by_version)
        assert sorted(by_version) == list(range(start + 1, final + 1)), "versions are dense"
        assert chat_version(ann, chat) == final
        for name, wire in wires.items():
            wire.wait_for_version(chat, final, name)
        timing(f"24 concurrent changes from 3 instances delivered everywhere ({transport})", time.monotonic() - started)
        time.sleep(SETTLE_SECONDS)
        store = all_messages(ann.client, chat)
        for name, wire in wires.items():
            superseded = check_stream(name, wire.of_chat(chat), by_version, store, after=mark)
            print(f"[versions] {name}: {superseded} superseded versions not sent", flush=True)
    finally:
        cleanup(cluster, sockets)


def test_changes_made_while_the_bus_was_away_are_filled_from_the_store(healthy_cluster):
    """[cluster] Ann keeps editing, reacting and deleting through chat1 while every instance's LISTEN connection is cut
    three times: Ben's socket on chat2 (long-polling) and Ann's other one on chat3 (WebSocket) get every change, filled
    from the store once chat2 and chat3 listen again, in version order, exactly once; their copies equal the store."""
    cluster = healthy_cluster
    ann, ben = cluster.sign_in_many(2)
    chat = create_chat(ann, user=ben)["id"]
    ann_socket, _ = connect(cluster, ann, "websocket", "chat1")
    ben_socket, ben_wire = connect(cluster, ben, "polling", "chat2")
    other_socket, other_wire = connect(cluster, ann, "websocket", "chat3")
    sockets = [ann_socket, ben_socket, other_socket]
    wires = {"ben on chat2 (polling)": ben_wire, "ann on chat3 (websocket)": other_wire}
    logs = {name: len(cluster.instances[name].log_lines()) for name in ("chat2", "chat3")}
    try:
        seeds = [message_of(ann_socket.call("sendMessage", {"chatId": chat, "text": f"seed {index}",
                                                            "clientMessageId": uuid.uuid4().hex}, timeout=10), "send")
                 for index in range(4)]
        by_version = {message["version"]: message for message in seeds}
        for name, wire in wires.items():
            wire.wait_for_version(chat, seeds[-1]["version"], name)
        mark = seeds[-1]["version"]

        stop = threading.Event()
        errors: list[str] = []

        def keep_changing() -> None:
            index = 0
            try:
                while not stop.is_set():
                    # Mostly edits: their editedAt tells when they were made (see below).
                    target = seeds[index % 3]
                    if index % 4 != 3:
                        event, payload = "editMessage", {"chatId": chat, "seq": target["seq"], "text": f"edit {index}"}
                    else:
                        event, payload = "react", {"chatId": chat, "seq": target["seq"], "emoji": "👍", "on": index % 8 == 3}
                    message = message_of(ann_socket.call(event, payload, timeout=10), event)
                    by_version[message["version"]] = message
                    index += 1
                    time.sleep(0.02)
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(repr(error))

        changer = threading.Thread(target=keep_changing)
        changer.start()
        try:
            for _ in range(3):
                time.sleep(0.3)
                cut = cluster.postgres.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                            "WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
                                            url=cluster.database_url)
                assert cut.split().count("t") >= 3, f"expected the chat instances' LISTEN connections, got {cut!r}"
            time.sleep(0.3)
        finally:
            stop.set()
            changer.join(30)
        assert not errors, errors
        # The last change, then one more the instances heard live (or filled), and the tombstone of a seed.
        tombstone = message_of(ann_socket.call("deleteMessage", {"chatId": chat, "seq": seeds[3]["seq"]}, timeout=10), "delete")
        by_version[tombstone["version"]] = tombstone
        final = tombstone["version"]
        assert sorted(by_version) == list(range(seeds[0]["version"], final + 1)), "versions are dense"
        assert chat_version(ben, chat) == final

        started = time.monotonic()
        for name, wire in wires.items():
            wire.wait_for_version(chat, final, name, timeout=20)
        timing("every change made during 3 bus cuts reached chat2 and chat3", time.monotonic() - started)
        # Some edits were made while chat2 and chat3 did not listen: between their "connection lost" and "listening
        # again" log lines.
        edited_at = sorted(m["editedAt"] for m in by_version.values() if m.get("editedAt"))
        for name in ("chat2", "chat3"):
            away = poll(lambda: bus_outages(cluster.instances[name], logs[name]), 10,
                        f"{name} to log losing and regaining the bus")
            during = [at for at in edited_at if any(lost <= at <= back for lost, back in away)]
            print(f"[bus cut] {name}: {len(away)} outages, {len(during)} edits made during them", flush=True)
            assert during, f"no edit fell into {name}'s outages {away}: the test did not test what it says"
        time.sleep(SETTLE_SECONDS)
        store = all_messages(ben.client, chat)
        caught = expect_status(ben.client.get(f"{API}/chats/{chat}/changes", params={"after": mark, "limit": 100}), 200)
        assert caught["version"] == final and not caught["hasMore"], caught
        assert {m["seq"]: m for m in caught["messages"]} == {m["seq"]: m for m in store}, "/changes disagrees with history"
        for name, wire in wires.items():
            superseded = check_stream(name, wire.of_chat(chat), by_version, store, after=mark)
            print(f"[bus cut] {name}: {len(by_version) - 4} changes, {superseded} superseded versions not sent", flush=True)
    finally:
        cleanup(cluster, sockets)
