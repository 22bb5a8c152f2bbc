"""Several chat instances on one PostgreSQL, clients connected straight to each: the event bus over LISTEN/NOTIFY,
exactly-once in-order delivery across instances, presence shared by instances and expiring with a dead one,
catch-up after the bus connection is lost. (tests/cluster runs the whole deployment behind nginx.)"""

from __future__ import annotations

import signal
import subprocess
import threading
import time

import pytest
import requests
import socketio

from harness import (Client, environment_without_parley, expect_status, free_port, poll, record_events_in_wire_order, request_code,
                     unique_email, verify)

# Presence across instances waits on heartbeats and sweeps a few seconds apart: with other tests loading both cores,
# announcements came late or not at all (userOnline from the other instance, userOffline after kill -9).
pytestmark = pytest.mark.serial

PRESENCE_TTL = 3
PRESENCE_GRACE = 0.5  # seconds; shortened through PARLEY_PRESENCE_GRACE_MS (the default is 2)


class Cluster:
    """One user service, one mail worker and two chat instances (chat1, chat2) on one fresh PostgreSQL database."""

    def __init__(self, launcher):
        self.launcher = launcher
        self.database_url = launcher.database_url("postgres")
        self.smtp = launcher.smtp()
        self.user = launcher.parley(service="user", database_url=self.database_url, smtp=self.smtp)
        # Sign-ins wait on their code: a mail worker in its own process is not woken by the user service, and looks
        # for due mail every second by default.
        launcher.parley(service="mail", database_url=self.database_url, smtp=self.smtp, env={"PARLEY_MAIL_POLL_SECONDS": "0.2"})
        self.chats = [self.start_chat(f"chat{index}") for index in (1, 2)]

    def start_chat(self, name: str):
        return self.launcher.parley(service="chat", database_url=self.database_url, env={
            "PARLEY_USER_SERVICE_URL": self.user.base_url, "PARLEY_JWT_PRIVATE_KEY": None, "PARLEY_INSTANCE": name,
            "PARLEY_PRESENCE_TTL_SECONDS": str(PRESENCE_TTL), "PARLEY_PRESENCE_GRACE_MS": str(int(PRESENCE_GRACE * 1000)),
        })

    def sign_in(self) -> dict:
        address = unique_email("scale")
        request_code(self.user.client, address)
        code = self.smtp.mailbox.wait_for(address).code
        return expect_status(verify(self.user.client, address, code), 200)

    def psql(self, sql: str) -> str:
        return subprocess.run(["psql", self.database_url, "-Atc", sql], check=True, capture_output=True, text=True).stdout


class Socket:
    """A stock python-socketio client that records every event it receives, in order."""

    def __init__(self, server, account: dict, transport: str = "websocket"):
        self.events: list[tuple[str, object]] = []
        self.lock = threading.Lock()
        self.client = socketio.Client(reconnection=False)
        # Read off the wire: python-engineio hands each message to a thread of its own, and once in a full run two of them
        # ran out of order (seq 29 recorded before 28) though the server had sent them in order.
        record_events_in_wire_order(self.client, self._record)
        transports = ["websocket"] if transport == "websocket" else ["polling"]
        self.base_url = server.base_url
        self.client.connect(server.base_url, transports=transports, auth={"token": account["accessToken"]}, wait_timeout=10)
        # The instance records the socket online after the handshake and then sends getOnlineUser: wait for it, so the
        # user is online for everyone when the test goes on.
        poll(lambda: self.named("getOnlineUser"), 10, "getOnlineUser after the connection")

    def _record(self, event, payload):
        with self.lock:
            self.events.append((event, payload))

    def named(self, name: str) -> list:
        with self.lock:
            return [payload for event, payload in self.events if event == name]

    def seqs(self, chat_id: str) -> list[int]:
        return [message["seq"] for message in self.named("newMessage") if message["chatId"] == chat_id]

    def close(self):
        if not self.client.connected:
            return
        sid, polling = self.client.eio.sid, self.client.eio.current_transport == "polling"
        self.client.disconnect()
        if polling and sid:
            # python-engineio's polling client may drop its own goodbye (its write loop checks the state disconnect()
            # has just changed), leaving the session to the ping timeout: say it once more (400 if it arrived).
            requests.post(f"{self.base_url}/socket.io/", params={"EIO": "4", "transport": "polling", "sid": sid}, data="1",
                          headers={"Content-Type": "text/plain;charset=UTF-8"}, timeout=5)


@pytest.fixture
def cluster(launcher):
    return Cluster(launcher)


def test_sessions_name_their_instance(cluster):
    account = cluster.sign_in()
    for index, chat in enumerate(cluster.chats, start=1):
        socket = Socket(chat, account, transport="polling")
        try:
            assert socket.client.eio.sid.startswith(f"chat{index}."), socket.client.eio.sid
        finally:
            socket.close()


def test_messages_sent_through_both_instances_reach_every_socket_once_in_order(cluster):
    alice, bob, carol = cluster.sign_in(), cluster.sign_in(), cluster.sign_in()
    chat1, chat2 = cluster.chats
    for other in (bob, carol):  # one adds people one already shares a chat with (issue 14)
        expect_status(Client(chat1.base_url, alice["accessToken"]).post("/api/v1/chats", json={"userId": other["user"]["id"]}), 201)
    group = expect_status(Client(chat1.base_url, alice["accessToken"]).post(
        "/api/v1/chats", json={"name": "everywhere", "memberIds": [bob["user"]["id"], carol["user"]["id"]]}), 201)["chat"]
    senders = [Socket(chat1, alice), Socket(chat2, bob)]
    # Carol listens on both instances and both transports.
    watchers = [Socket(chat2, carol), Socket(chat1, carol, transport="polling")]
    per_sender = 60
    try:
        def send_all(socket: Socket, prefix: str):
            for index in range(per_sender):
                answer = socket.client.call("sendMessage", {"chatId": group["id"], "text": f"{prefix}{index}",
                                                            "clientMessageId": f"{prefix}-{index}"}, timeout=10)
                assert answer["ok"], answer

        threads = [threading.Thread(target=send_all, args=(socket, prefix)) for socket, prefix in zip(senders, "ab")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        total = 2 * per_sender
        for socket in senders + watchers:
            poll(lambda: len(socket.seqs(group["id"])) >= total, 15, "every message on every socket")
        time.sleep(0.5)  # anything extra (a duplicate) would arrive by now
        for socket in senders + watchers:
            assert socket.seqs(group["id"]) == list(range(1, total + 1))
        # Both senders' messages interleaved in one seq order that every socket agrees on.
        texts = [message["text"] for message in watchers[0].named("newMessage")]
        assert texts == [message["text"] for message in watchers[1].named("newMessage")]
        assert {text[0] for text in texts} == {"a", "b"}
    finally:
        for socket in senders + watchers:
            socket.close()


def test_typing_seen_and_new_chats_cross_instances(cluster):
    alice, bob = cluster.sign_in(), cluster.sign_in()
    chat1, chat2 = cluster.chats
    alice_socket, bob_socket = Socket(chat1, alice), Socket(chat2, bob, transport="polling")
    try:
        created = expect_status(Client(chat1.base_url, alice["accessToken"]).post("/api/v1/chats", json={"userId": bob["user"]["id"]}), 201)
        chat_id = created["chat"]["id"]
        poll(lambda: [c["id"] for c in bob_socket.named("chatUpdated")] == [chat_id], 10, "chatUpdated on the other instance")
        # Bob is online on chat2: Alice, on chat1, hears it as the chat is created.
        poll(lambda: {"userId": bob["user"]["id"]} in alice_socket.named("userOnline"), 10, "userOnline for the new contact")

        assert alice_socket.client.call("typing", {"chatId": chat_id}, timeout=10)["ok"]
        poll(lambda: bob_socket.named("userTyping") == [{"chatId": chat_id, "userId": alice["user"]["id"]}], 10, "typing across instances")
        assert alice_socket.client.call("stopTyping", {"chatId": chat_id}, timeout=10)["ok"]
        poll(lambda: len(bob_socket.named("userStoppedTyping")) == 1, 10, "stopTyping across instances")

        sent = alice_socket.client.call("sendMessage", {"chatId": chat_id, "text": "seen?"}, timeout=10)["message"]
        poll(lambda: bob_socket.seqs(chat_id) == [sent["seq"]], 10, "the message on chat2")
        assert bob_socket.client.call("markRead", {"chatId": chat_id, "seq": sent["seq"]}, timeout=10)["ok"]
        poll(lambda: {"chatId": chat_id, "userId": bob["user"]["id"], "seq": sent["seq"]} in alice_socket.named("messagesSeen"),
             10, "messagesSeen across instances")
    finally:
        alice_socket.close()
        bob_socket.close()


def test_presence_spans_instances_and_expires_with_a_dead_one(cluster):
    alice, bob = cluster.sign_in(), cluster.sign_in()
    chat1, chat2 = cluster.chats
    expect_status(Client(chat1.base_url, alice["accessToken"]).post("/api/v1/chats", json={"userId": bob["user"]["id"]}), 201)
    alice_id = {"userId": alice["user"]["id"]}
    watcher = Socket(chat2, bob)
    try:
        # The server tells a socket who is online once it has recorded it: from then on it hears userOnline.
        poll(lambda: len(watcher.named("getOnlineUser")) == 1, 10, "the watcher's getOnlineUser")
        first = Socket(chat1, alice)
        poll(lambda: watcher.named("userOnline") == [alice_id], 10, "userOnline from another instance")
        # A second socket on the other instance, then the first one goes: still online everywhere.
        second = Socket(chat2, alice, transport="polling")
        # Bob is on chat2 only; Alice's socket on chat1's peer instance sees him online, and the reverse.
        poll(lambda: second.named("getOnlineUser") == [[bob["user"]["id"]]], 10, "getOnlineUser with a contact on another instance")
        first.close()
        time.sleep(PRESENCE_GRACE + 1.5)  # past the grace period
        assert watcher.named("userOffline") == []
        probe = Socket(chat1, bob)
        poll(lambda: probe.named("getOnlineUser") == [[alice["user"]["id"]]], 10, "Alice online, seen from chat1 where she has no socket")
        probe.close()
        second.close()
        poll(lambda: watcher.named("userOffline") == [alice_id], 10, "userOffline when the last socket anywhere goes")

        # Alice on chat1 again; chat1 dies without a goodbye: her presence expires and chat2 announces it.
        again = Socket(chat1, alice)
        poll(lambda: watcher.named("userOnline") == [alice_id, alice_id], 10, "userOnline again")
        killed_at = time.monotonic()
        chat1.popen.send_signal(signal.SIGKILL)
        chat1.popen.wait(10)
        cluster.launcher.started.remove(chat1)  # it is gone on purpose: no exit status to check
        poll(lambda: watcher.named("userOffline") == [alice_id, alice_id], PRESENCE_TTL * 4, "userOffline after chat1 died")
        print(f"offline announced {time.monotonic() - killed_at:.1f} s after kill -9 (presence TTL {PRESENCE_TTL} s)")
        again.close()
    finally:
        watcher.close()


def test_an_instance_that_loses_its_bus_connection_catches_up(cluster):
    alice, bob = cluster.sign_in(), cluster.sign_in()
    chat1, chat2 = cluster.chats
    created = expect_status(Client(chat1.base_url, alice["accessToken"]).post("/api/v1/chats", json={"userId": bob["user"]["id"]}), 201)
    chat_id = created["chat"]["id"]
    alice_http = Client(chat1.base_url, alice["accessToken"])
    bob_socket = Socket(chat2, bob)
    try:
        expect_status(alice_http.post(f"/api/v1/chats/{chat_id}/messages", json={"text": "before"}), 201)
        poll(lambda: bob_socket.seqs(chat_id) == [1], 10, "the first message")
        # Every instance's LISTEN connection is cut; messages keep coming through chat1 meanwhile.
        stop = threading.Event()

        def keep_sending():
            index = 0
            while not stop.is_set():
                index += 1
                expect_status(alice_http.post(f"/api/v1/chats/{chat_id}/messages", json={"text": f"during {index}"}), 201)
                time.sleep(0.02)

        sender = threading.Thread(target=keep_sending)
        sender.start()
        time.sleep(0.2)
        cut = cluster.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND query ILIKE 'LISTEN%'")
        assert cut.count("t") >= 2, f"expected both chat instances' LISTEN connections, got {cut!r}"
        time.sleep(1.5)
        stop.set()
        sender.join(10)
        last = expect_status(alice_http.get(f"/api/v1/chats/{chat_id}/messages", params={"limit": 1}), 200)["messages"][-1]["seq"]
        poll(lambda: bob_socket.seqs(chat_id)[-1:] == [last], 15, "every message after the bus came back")
        time.sleep(0.5)
        assert bob_socket.seqs(chat_id) == list(range(1, last + 1))
        chat2.wait_for_log(lambda record: "caught up" in record.get("message", ""), 10, "the catch-up log line")
    finally:
        bob_socket.close()


def test_rate_limits_key_on_the_forwarded_client_only_behind_a_trusted_proxy(launcher):
    trusting = launcher.parley(env={"PARLEY_TRUSTED_PROXIES": "127.0.0.1", "PARLEY_LOGIN_IP_LIMIT": "3"})
    distrusting = launcher.parley(env={"PARLEY_LOGIN_IP_LIMIT": "3"})

    def login(server, forwarded: str):
        return server.client.post("/api/v1/login", json={"email": unique_email()}, token=None,
                                  headers={"X-Forwarded-For": forwarded})

    for _ in range(3):
        expect_status(login(trusting, "203.0.113.7"), 202)
    assert login(trusting, "203.0.113.7").status_code == 429
    # Another client behind the same proxy has its own budget; a forged first hop does not change who the client is.
    expect_status(login(trusting, "203.0.113.8"), 202)
    assert login(trusting, "198.51.100.1, 203.0.113.7").status_code == 429

    # Without trust the header is the client's word, and ignored: every request counts against the peer.
    for index in range(3):
        expect_status(login(distrusting, f"203.0.113.{index}"), 202)
    assert login(distrusting, "203.0.113.99").status_code == 429
