"""Faults with the whole cluster running: a chat instance killed under load, a mail instance killed while mail is
due, PostgreSQL stopped and started again.

[cluster] Needs from the binary: PARLEY_INSTANCE, the PostgreSQL event bus with gap filling, presence expiry
(PARLEY_PRESENCE_TTL_SECONDS) and the mail lease setting (PARLEY_MAIL_LEASE_SECONDS).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests
import socketio

from cluster import (
    Cluster,
    Recorder,
    SourcedClient,
    ack_ok,
    all_messages,
    connect_socket,
    create_chat,
    disconnect_socket,
    instance_of,
    timing,
    unique_email,
)
from harness import expect_status, poll

SEND_INTERVAL = 0.15
LOAD_BEFORE_KILL = 3.0
LOAD_AFTER_KILL = 5.0


class Peer:
    """One stock client under load: sends with acks, retries unacknowledged sends with the same clientMessageId
    after reconnecting, and catches up with GET …/messages?after=<seq> on every (re)connect."""

    def __init__(self, cluster: Cluster, name: str, account, transport: str, instance: str, chats: list[str]):
        self.cluster = cluster
        self.name = name
        self.account = account
        self.chats = chats
        self.lock = threading.Lock()
        self.view: dict[str, dict[int, str]] = {chat: {} for chat in chats}
        self.problems: list[str] = []
        self.connection = 0
        self.seen_this_connection: set[str] = set()
        self.last_seq_this_connection: dict[str, int] = {}
        self.event_duplicates = 0
        self.out_of_order = 0
        self.pending: dict[str, tuple[str, str]] = {}  # clientMessageId → (chat, text)
        self.acked: dict[str, dict] = {}
        self.attempted: set[str] = set()
        self.retries = 0
        self.connects: list[tuple[float, str]] = []
        self.disconnects: list[float] = []
        self.connected = threading.Event()
        self.stop = threading.Event()
        self.catchups = 0
        self.socket, _ = connect_socket(cluster, account.access_token, transport, instance=instance,
                                        recorder=Recorder(), reconnection=True, reconnection_delay=0.2,
                                        reconnection_delay_max=1, randomization_factor=0)
        self.transport = transport
        self.home = instance_of(self.socket)
        self.connects.append((time.monotonic(), self.home))
        self.connected.set()
        self.socket.on("newMessage", self.on_message)
        self.socket.on("connect", self.on_connect)
        self.socket.on("disconnect", self.on_disconnect)
        self.thread = threading.Thread(target=self.run, name=f"peer-{name}", daemon=True)

    # Events

    def on_message(self, message):
        with self.lock:
            chat, seq, ident = message["chatId"], message["seq"], message["id"]
            if chat not in self.view:
                return
            if ident in self.seen_this_connection:
                self.event_duplicates += 1
            self.seen_this_connection.add(ident)
            if seq <= self.last_seq_this_connection.get(chat, 0):
                self.out_of_order += 1
            self.last_seq_this_connection[chat] = seq
            self.merge(chat, message)

    def merge(self, chat: str, message: dict) -> None:
        known = self.view[chat].get(message["seq"])
        if known is not None and known != message["id"]:
            self.problems.append(f"{self.name}: seq {message['seq']} of {chat} is {known} and {message['id']}")
        self.view[chat][message["seq"]] = message["id"]

    def on_connect(self):
        with self.lock:
            self.connection += 1
            self.seen_this_connection = set()
            self.last_seq_this_connection = {}
        self.connects.append((time.monotonic(), instance_of(self.socket)))
        self.connected.set()
        threading.Thread(target=self.catch_up, daemon=True).start()

    def on_disconnect(self, *_):
        self.disconnects.append(time.monotonic())
        self.connected.clear()

    # HTTP catch-up

    def contiguous(self, chat: str) -> int:
        seq = 0
        while seq + 1 in self.view[chat]:
            seq += 1
        return seq

    def catch_up(self) -> None:
        for chat in self.chats:
            for _ in range(5):
                try:
                    with self.lock:
                        after = self.contiguous(chat)
                    response = self.account.client.get(f"/api/v1/chats/{chat}/messages",
                                                       params={"after": after, "limit": 200})
                    if response.status_code != 200:
                        time.sleep(0.3)
                        continue
                    body = response.json()
                    with self.lock:
                        for message in body["messages"]:
                            self.merge(chat, message)
                    if not body.get("hasMore"):
                        break
                except (requests.RequestException, AssertionError):
                    time.sleep(0.3)
        self.catchups += 1

    # Sending

    def send(self, client_message_id: str, chat: str, text: str) -> None:
        with self.lock:
            if client_message_id in self.attempted:
                self.retries += 1
            self.attempted.add(client_message_id)
        try:
            answer = self.socket.call("sendMessage", {"chatId": chat, "text": text, "clientMessageId": client_message_id},
                                      timeout=4)
        except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError,
                socketio.exceptions.SocketIOError):
            return
        if isinstance(answer, dict) and answer.get("ok"):
            with self.lock:
                self.pending.pop(client_message_id, None)
                self.acked[client_message_id] = answer["message"]

    def run(self) -> None:
        index = 0
        while not self.stop.is_set():
            if not self.connected.wait(0.5):
                continue
            with self.lock:
                retry = list(self.pending.items())[:1]
            if retry:
                client_message_id, (chat, text) = retry[0]
            else:
                chat = self.chats[index % len(self.chats)]
                text = f"{self.name} #{index}"
                client_message_id = f"{self.name}-{index}-{uuid.uuid4().hex[:8]}"
                index += 1
                with self.lock:
                    self.pending[client_message_id] = (chat, text)
            self.send(client_message_id, chat, text)
            time.sleep(SEND_INTERVAL)

    def flush(self, timeout: float) -> None:
        """Retries every unacknowledged send (same clientMessageId) until acknowledged."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                left = list(self.pending.items())
            if not left:
                return
            assert time.monotonic() < deadline, f"{self.name}: {len(left)} sends never acknowledged: {left[:3]}"
            if self.connected.wait(1):
                for client_message_id, (chat, text) in left:
                    self.send(client_message_id, chat, text)
            else:
                time.sleep(0.2)


def test_killing_a_chat_instance_under_load(healthy_cluster):
    """[cluster] kill -9 chat1 while four clients send through nginx: its clients reconnect to another instance
    and catch up; every acknowledged message exists once; every client ends with every message once, in order;
    clients that never left saw every message live, once, in order; a user only on chat1 goes offline (expiry)."""
    cluster = healthy_cluster
    alice, bob, carol, dave = cluster.sign_in_many(4)
    group = create_chat(alice, name="load", members=[bob, carol])["id"]
    direct = create_chat(alice, user=bob)["id"]
    lonely = create_chat(carol, user=dave)["id"]
    del lonely
    peers = [
        Peer(cluster, "alice-ws", alice, "websocket", "chat1", [group, direct]),
        Peer(cluster, "bob-polling", bob, "polling", "chat1", [group, direct]),
        Peer(cluster, "carol-ws", carol, "websocket", "chat2", [group]),
        Peer(cluster, "carol-polling", carol, "polling", "chat3", [group]),
    ]
    # Dave is only on chat1 and does not come back: his presence must expire.
    dave_socket, _ = connect_socket(cluster, dave.access_token, "websocket", instance="chat1")
    carol_watch = Recorder()
    carol_watch.attach(peers[2].socket, ("userOnline", "userOffline"))
    try:
        for peer in peers:
            peer.thread.start()
        time.sleep(LOAD_BEFORE_KILL)
        killed_at = time.monotonic()
        cluster.instances["chat1"].kill9()
        time.sleep(LOAD_AFTER_KILL)
        for peer in peers:
            peer.stop.set()
        for peer in peers:
            peer.thread.join(10)
        for peer in peers:
            peer.flush(timeout=30)

        # Reconnection: the victims' clients are back, elsewhere.
        for peer in peers[:2]:
            again = [(at, where) for at, where in peer.connects if at > killed_at]
            assert again, f"{peer.name} did not reconnect after chat1 died"
            at, where = again[0]
            assert where != "chat1", f"{peer.name} reconnected to the dead instance?"
            timing(f"{peer.name} ({peer.transport}) reconnected to {where} after kill -9", at - killed_at)
        for peer in peers[2:]:
            assert not [d for d in peer.disconnects if d > killed_at], f"{peer.name} lost its connection"

        # Presence expiry: Dave's only instance died without a goodbye.
        offline = carol_watch.wait("userOffline", lambda e: e == {"userId": dave.id}, timeout=25,
                                   what="userOffline for a user whose only instance was killed (presence expiry)")
        del offline
        timing("presence of a killed instance's user expired", time.monotonic() - killed_at)

        # Let the last events land, then a final catch-up for everyone.
        time.sleep(1.5)
        for peer in peers:
            peer.catch_up()

        store = {chat: all_messages(alice.client, chat) for chat in (group, direct)}
        for chat, messages in store.items():
            assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1)), f"{chat}: seqs not dense"
            assert len({m["id"] for m in messages}) == len(messages)
            keys = Counter((m["senderId"], m.get("clientMessageId")) for m in messages)
            duplicated = [key for key, count in keys.items() if count > 1]
            assert not duplicated, f"retried sends created duplicates: {duplicated[:5]}"
        by_id = {m["id"]: m for messages in store.values() for m in messages}
        acked_total = 0
        for peer in peers:
            for client_message_id, message in peer.acked.items():
                acked_total += 1
                assert message["id"] in by_id, f"{peer.name}: acknowledged {client_message_id} is not in the store"
                assert by_id[message["id"]]["clientMessageId"] == client_message_id
        for peer in peers:
            assert not peer.problems, peer.problems
            for chat in peer.chats:
                expected = {m["seq"]: m["id"] for m in store[chat]}
                assert peer.view[chat] == expected, (
                    f"{peer.name}'s view of {chat}: {len(peer.view[chat])} messages, the store has {len(expected)}; "
                    f"missing seqs {sorted(set(expected) - set(peer.view[chat]))[:10]}")
            assert peer.event_duplicates == 0, f"{peer.name} got {peer.event_duplicates} newMessage twice"
            assert peer.out_of_order == 0, f"{peer.name} got {peer.out_of_order} newMessage out of seq order"
        # The clients that never left had everything live (no catch-up needed): the bus delivered every message.
        for peer in peers[2:]:
            live = peer.seen_this_connection
            missed = [m for m in store[group] if m["id"] not in live]
            assert not missed, (
                f"{peer.name} missed {len(missed)} of {len(store[group])} messages live: "
                + "; ".join(f"seq {m['seq']} from {m['senderId'][-6:]} cmid {m.get('clientMessageId')} "
                            f"(acked to its sender: {any(m['id'] == a['id'] for p in peers for a in p.acked.values())})"
                            for m in missed[:5]))
        print(f"[load] {acked_total} acknowledged sends ({sum(p.retries for p in peers)} retries with the same "
              f"clientMessageId), store: "
              f"{', '.join(f'{len(v)} in {k[:8]}' for k, v in store.items())}", flush=True)
    finally:
        for peer in peers:
            peer.stop.set()
            disconnect_socket(cluster, peer.socket)
        if dave_socket.connected:
            disconnect_socket(cluster, dave_socket)
        cluster.restart("chat1")


def test_killing_a_mail_instance_while_mail_is_due(healthy_cluster):
    """[cluster] kill -9 mail1 in the middle of a burst of login codes with a slow SMTP server: mail2 (and the
    lease running out) delivers every one; at most the one mail in flight is sent twice."""
    cluster = healthy_cluster
    cluster.set_smtp_delay(0.7)
    addresses = [unique_email("burst") for _ in range(12)]
    try:
        started = time.monotonic()
        for address in addresses:
            expect_status(cluster.client().post("/api/v1/login", json={"email": address}), 202)
        poll(lambda: any(cluster.smtp.mailbox.to(a) for a in addresses), 15, "the first mail of the burst")
        cluster.instances["mail1"].kill9()
        killed_at = time.monotonic()
        cluster.set_smtp_delay(0.1)

        def delivered():
            return all(cluster.smtp.mailbox.to(a) for a in addresses)

        try:
            poll(delivered, 45, "every mail of the burst")
        except AssertionError as error:
            missing = [a for a in addresses if not cluster.smtp.mailbox.to(a)]
            raise AssertionError(f"{len(missing)} mails never delivered after mail1 died (a dead instance's jobs "
                                 f"come back when their lease ends: PARLEY_MAIL_LEASE_SECONDS, issue 7 part f)") from error
        timing("burst delivered after mail1 was killed", time.monotonic() - killed_at)
        timing("burst of 12 login mails in all", time.monotonic() - started)
        time.sleep(2)  # a late duplicate would show now
        counts = {a: len(cluster.smtp.mailbox.to(a)) for a in addresses}
        duplicates = sum(count - 1 for count in counts.values())
        assert duplicates <= 1, f"{duplicates} mails sent twice (only the one in flight may be): {counts}"
    finally:
        cluster.set_smtp_delay(0)
        cluster.restart("mail1")


def test_postgres_restart(healthy_cluster):
    """[cluster] PostgreSQL stopped and started: every instance reports 503 meanwhile and 200 again by itself;
    nothing acknowledged is lost; real time across instances works afterwards."""
    cluster = healthy_cluster
    alice, bob = cluster.sign_in_many(2)
    chat = create_chat(alice, user=bob)["id"]
    socket_a, events_a = connect_socket(cluster, alice.access_token, "websocket", instance="chat1", reconnection=True,
                                        reconnection_delay=0.2, reconnection_delay_max=1)
    socket_b, events_b = connect_socket(cluster, bob.access_token, "websocket", instance="chat2", reconnection=True,
                                        reconnection_delay=0.2, reconnection_delay_max=1)
    acknowledged: list[dict] = []
    stop = threading.Event()

    def send(client: SourcedClient, text: str) -> bool:
        """One send as alice through `client`, kept in `acknowledged` when acknowledged within 5 s."""
        try:
            response = client.post(f"/api/v1/chats/{chat}/messages", json={"text": text, "clientMessageId": uuid.uuid4().hex},
                                   timeout=5)
        except requests.RequestException:
            return False
        if response.status_code not in (200, 201):
            return False
        acknowledged.append(response.json()["message"])
        return True

    def sender():
        index = 0
        while not stop.is_set():
            send(alice.client, f"through the restart {index}")
            index += 1
            time.sleep(0.1)

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    pool = ThreadPoolExecutor(len(cluster.instances))
    try:
        time.sleep(1.0)
        before = len(acknowledged)
        assert before > 0, "no send was acknowledged before the restart"
        stopping = time.monotonic()
        cluster.postgres.stop_server()
        stopped_at = time.monotonic()
        timing("pg_ctl stop -m fast", stopped_at - stopping)
        names = list(cluster.instances)
        unhealthy: dict[str, float] = {}

        def all_unhealthy():
            # Concurrently: a /health waits up to 2 s for the database to answer.
            todo = [name for name in names if name not in unhealthy]
            for name, status in zip(todo, pool.map(lambda n: cluster.instances[n].health(), todo)):
                if status == 503:
                    unhealthy[name] = time.monotonic() - stopped_at
            return len(unhealthy) == len(names)

        try:
            poll(all_unhealthy, 20, "503 from every instance's /health", interval=0.2)
        finally:
            cluster.postgres.start_server()
        started_at = time.monotonic()
        timing("slowest instance to report 503", max(unhealthy.values()))
        print("[503 after PostgreSQL stopped] " + ", ".join(f"{n} {t:.1f} s" for n, t in sorted(unhealthy.items())), flush=True)
        healthy: dict[str, float] = {}

        def all_healthy():
            todo = [name for name in names if name not in healthy]
            for name, status in zip(todo, pool.map(lambda n: cluster.instances[n].health(), todo)):
                if status == 200:
                    healthy[name] = time.monotonic() - started_at
            return len(healthy) == len(names)

        poll(all_healthy, 60, "200 from every instance's /health after PostgreSQL came back", interval=0.2)
        timing("slowest instance healthy again after PostgreSQL started", max(healthy.values()))
        print("[200 after PostgreSQL started] " + ", ".join(f"{n} {t:.1f} s" for n, t in sorted(healthy.items())), flush=True)
        poll(lambda: len(acknowledged) > before + 5, 30, "acknowledged sends after the restart")
        # Each chat instance writes messages again, asked directly: through nginx, one that never answered a send was
        # only passed over. Its message writer had waited for ever on a statement sent to a connection PostgreSQL
        # closed in the restart (OpenConnectionSQLDatabase), and its /health still said 200.
        for name in sorted(name for name in names if name.startswith("chat")):
            direct = SourcedClient(cluster.instances[name].base_url, alice.access_token, alice.client.source)
            poll(lambda direct=direct: send(direct, "after the restart"), 30,
                 f"a send acknowledged by {name} itself after the restart", interval=0.5)
    finally:
        stop.set()
        thread.join(10)
        pool.shutdown(wait=False)
    try:
        stored = {m["id"] for m in all_messages(alice.client, chat)}
        lost = [m for m in acknowledged if m["id"] not in stored]
        assert not lost, f"{len(lost)} acknowledged messages lost: {lost[:3]}"

        # Real time across instances again (the LISTEN connections came back).
        poll(lambda: socket_a.connected and socket_b.connected, 20, "both sockets connected")
        started = time.monotonic()
        for sender_socket, receiver, label in ((socket_a, events_b, "a→b"), (socket_b, events_a, "b→a")):
            sent = None
            attempts: list[str] = []
            deadline = time.monotonic() + 20
            while sent is None and time.monotonic() < deadline:
                attempt_started = time.monotonic()
                try:
                    sent = ack_ok(sender_socket.call("sendMessage", {"chatId": chat, "text": f"after {label}",
                                                                     "clientMessageId": uuid.uuid4().hex}, timeout=5),
                                  "sendMessage")["message"]
                except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError, AssertionError) as error:
                    # What each attempt got, for the failure message: a timeout, a refused namespace or an error ack.
                    attempts.append(f"{time.monotonic() - attempt_started:.1f} s: {error!r} "
                                    f"(connected={sender_socket.connected}, sid={sender_socket.get_sid()})")
                    time.sleep(0.5)
            assert sent is not None, f"no acknowledged send {label} after the restart; attempts: {attempts}"
            receiver.wait("newMessage", lambda m, ident=sent["id"]: m["id"] == ident, timeout=15,
                          what=f"newMessage {label} across instances after the restart")
        timing("cross-instance delivery after the restart", time.monotonic() - started)
    finally:
        disconnect_socket(cluster, socket_a)
        disconnect_socket(cluster, socket_b)
