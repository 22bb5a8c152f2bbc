"""Hostile clients against the real binary on loopback: each test states the bound it holds (issue 12).

Resource figures are read from /proc, as parley-bench reads them.
"""

from __future__ import annotations

import http.client
import threading
import time
import uuid
from pathlib import Path

import pytest
import socketio

from harness import JWT, Account, expect_status, introduce, poll, request_code, sign_in, sign_jwt, verify

# Floods load the machine and measure latency: run alone, after the parallel part.
pytestmark = pytest.mark.serial


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process `pid` so far."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


class Conversation:
    """Alice sends to Bob over Socket.IO every 50 ms; each message's send→delivery time is recorded."""

    def __init__(self, server):
        self.alice, self.bob = sign_in(server), sign_in(server)
        self.chat = expect_status(self.alice.client.post("/api/v1/chats", json={"userId": self.bob.user["id"]}), 201)["chat"]
        self.sent: dict[str, float] = {}
        self.latencies: list[float] = []
        self.lock = threading.Lock()
        self.sender = socketio.Client(reconnection=False)
        self.receiver = socketio.Client(reconnection=False)
        self.receiver.on("newMessage", self.arrived)
        for client, account in ((self.sender, self.alice), (self.receiver, self.bob)):
            client.connect(server.base_url, auth={"token": account.access_token}, transports=["websocket"], wait_timeout=10)

    def arrived(self, message):
        now = time.monotonic()
        with self.lock:
            started = self.sent.pop(message.get("clientMessageId") or message.get("text"), None)
            if started is not None:
                self.latencies.append(now - started)

    def run(self, seconds: float) -> list[float]:
        """Sends for `seconds`, then gives the last ones up to 1 s to arrive; returns the latencies of the messages that
        arrived meanwhile (one of an earlier run arriving late counts here, with its whole latency)."""
        with self.lock:
            self.latencies = []
        mine: list[str] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            text = uuid.uuid4().hex
            with self.lock:
                self.sent[text] = time.monotonic()
            mine.append(text)
            self.sender.emit("sendMessage", {"chatId": self.chat["id"], "text": text})
            time.sleep(0.05)
        settled = time.monotonic() + 1.0
        while time.monotonic() < settled:
            with self.lock:
                if not any(text in self.sent for text in mine):
                    break
            time.sleep(0.01)
        with self.lock:
            return list(self.latencies)

    def close(self):
        self.sender.disconnect()
        self.receiver.disconnect()


@pytest.mark.alone
def test_a_session_flood_from_one_address_is_bounded(launcher):
    """[hostile] One address opens Engine.IO polling handshakes (4 KB of headers each) at 50,000 a minute for 12 s
    (10,000), pipelined 5 at a time on 4 keep-alive connections: the server admits at most its per-address share of
    unauthenticated sessions and answers the rest 429; its RSS grows by at most 50 MiB and is no higher once the
    sessions have timed out; and a signed-in conversation's send→delivery p99 meanwhile stays within twice its value
    before the flood, plus 25 ms.

    The limits are scaled down with the flood so that it goes through the same states in a fifth of the time (it was
    50,000 over a minute with a 3 s connect timeout and the default 200 pending sessions per address): a 1 s connect
    timeout, so the flood outlives twelve generations of timed-out sessions, and 50 pending sessions per address,
    half of what the default 100 handshakes a second would open in that second, so the per-address cap, not the
    handshake rate, is what refuses (200 of 300 before)."""
    import socket

    server = launcher.parley(backend="sqlite", smtp=None, env={"PARLEY_SOCKET_CONNECT_TIMEOUT_SECONDS": "1",
                                                               "PARLEY_SOCKET_MAX_PENDING_PER_ADDRESS": "50"})
    conversation = Conversation(server)
    try:
        baseline = conversation.run(4)
        assert len(baseline) >= 40, f"only {len(baseline)} messages arrived before the flood"
        rss_before = rss_mib(server.popen.pid)

        statuses: dict[int, int] = {}
        peak = [rss_before]
        done = threading.Event()
        total, seconds, connections, batch = 10_000, 12, 4, 5
        finished: list[float] = []
        lock = threading.Lock()
        request = (b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 4000 + b"\r\n\r\n")

        def flood():
            connection = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            pending = b""
            # Paced to 50,000 a minute in all: one batch per connection every 4 × 5 / 833 s.
            every = connections * batch / (total / seconds)
            next_at = time.monotonic()
            try:
                for _ in range(total // connections // batch):
                    if (pause := next_at - time.monotonic()) > 0:
                        time.sleep(pause)
                    next_at += every
                    connection.sendall(request * batch)
                    answered = 0
                    while answered < batch:
                        pending += connection.recv(1 << 16)
                        # Each answer is a head and a body of Content-Length bytes.
                        while (end := pending.find(b"\r\n\r\n")) >= 0:
                            head = pending[:end].decode("latin-1")
                            length = next((int(line.split(":")[1]) for line in head.split("\r\n")
                                           if line.lower().startswith("content-length:")), 0)
                            if len(pending) < end + 4 + length:
                                break
                            status = int(head.split(" ", 2)[1])
                            pending = pending[end + 4 + length:]
                            answered += 1
                            with lock:
                                statuses[status] = statuses.get(status, 0) + 1
            finally:
                connection.close()
                with lock:
                    finished.append(time.monotonic())

        def watch():
            while not done.is_set():
                peak[0] = max(peak[0], rss_mib(server.popen.pid))
                time.sleep(0.2)

        started = time.monotonic()
        import os

        cpu_before = (cpu_seconds(server.popen.pid), cpu_seconds(os.getpid()))
        threads = [threading.Thread(target=flood, daemon=True) for _ in range(connections)]
        watcher = threading.Thread(target=watch, daemon=True)
        for thread in threads + [watcher]:
            thread.start()
        during: list[float] = []
        while any(thread.is_alive() for thread in threads) and time.monotonic() - started < 90:
            during += conversation.run(2)
        elapsed = time.monotonic() - started
        flood_seconds = (max(finished) if finished else time.monotonic()) - started
        server_cpu = (cpu_seconds(server.popen.pid) - cpu_before[0]) / elapsed
        client_cpu = (cpu_seconds(os.getpid()) - cpu_before[1]) / elapsed
        done.set()
        for thread in threads + [watcher]:
            thread.join(10)
        sent = sum(statuses.values())
        print(f"\n[flood] {sent} handshakes in {flood_seconds:.1f} s: {statuses}; RSS {rss_before:.1f} → peak {peak[0]:.1f} MiB; "
              f"CPU: server {server_cpu:.0%}, load generator and conversation {client_cpu:.0%} of a core", flush=True)
        assert sent == total, f"only {sent} of {total} handshakes were answered"
        assert flood_seconds <= seconds * 1.1, f"the flood took {flood_seconds:.1f} s: not 50,000 a minute"
        assert statuses.get(429, 0) > 0, f"no handshake was refused: {statuses}"
        assert statuses.get(200, 0) < sent / 2, f"most handshakes were admitted: {statuses}"
        assert set(statuses) <= {200, 429}, f"answers other than 200 and 429: {statuses}"
        assert peak[0] - rss_before <= 50, f"RSS grew by {peak[0] - rss_before:.1f} MiB (bound: 50)"

        time.sleep(2.5)  # the flood's sessions time out (PARLEY_SOCKET_CONNECT_TIMEOUT_SECONDS=1)
        rss_after = rss_mib(server.popen.pid)
        print(f"[flood] RSS after the sessions timed out: {rss_after:.1f} MiB", flush=True)
        assert rss_after <= peak[0] + 2 and rss_after - rss_before <= 50

        before_p99, during_p99 = p99(baseline), p99(during)
        print(f"[flood] conversation p99 {before_p99 * 1000:.1f} ms before, {during_p99 * 1000:.1f} ms during "
              f"({len(during)} messages)", flush=True)
        assert len(during) >= 50, f"only {len(during)} messages arrived during the flood"
        assert during_p99 <= 2 * before_p99 + 0.025, (
            f"the conversation slowed down: p99 {during_p99 * 1000:.1f} ms during, {before_p99 * 1000:.1f} ms before")
        # A new client can still connect once the flood is over.
        late = socketio.Client(reconnection=False)
        late.connect(server.base_url, auth={"token": conversation.alice.access_token}, wait_timeout=10)
        late.disconnect()
    finally:
        conversation.close()


@pytest.mark.alone
def test_a_login_flood_from_many_addresses_does_not_slow_the_conversation(launcher):
    """[hostile] 500 `/login` requests a second for 10 s, from 256 client addresses (127.0.1.0–127.0.1.255, 20 codes
    each: under the per-address limit, so each one stores a code and a mail job, the costly kind), each for a new
    email: a signed-in conversation's send→delivery p99 meanwhile stays within twice its value before the flood, plus
    10 ms of noise (this debug build on two cores; docs/benchmarks.md has the release figures). Every request is
    answered 202 or 429. Before the message writer's batches went ahead of other writes, each waited behind the queued
    sign-ins (10 → 48 ms); before the WAL was checkpointed beside the writer, one commit in a few hundred copied it
    back while holding the write lock (release build: stalls of 60–250 ms)."""
    import socket

    server = launcher.parley(backend="sqlite", smtp=None)
    conversation = Conversation(server)
    try:
        baseline = conversation.run(4)
        assert len(baseline) >= 40, f"only {len(baseline)} messages arrived before the flood"
        statuses: dict[int, int] = {}
        lock = threading.Lock()
        stop = threading.Event()
        rate, threads_count, seconds = 500, 16, 10.0
        body_prefix = '{"email":"flood-'

        def flood(index: int):
            # 16 addresses per thread, one keep-alive connection each, used in turn; each thread paces itself to rate/16.
            addresses = [f"127.0.1.{index * 16 + i}" for i in range(16)]
            connections: dict[str, http.client.HTTPConnection] = {}
            interval = threads_count / rate
            next_at = time.monotonic()
            sent = 0
            while not stop.is_set():
                address = addresses[sent % len(addresses)]
                connection = connections.get(address)
                if connection is None:
                    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10, source_address=(address, 0))
                    connections[address] = connection
                body = body_prefix + uuid.uuid4().hex + '@example.com"}'
                try:
                    connection.request("POST", "/api/v1/login", body=body, headers={"Content-Type": "application/json"})
                    response = connection.getresponse()
                    response.read()
                    status = response.status
                except (OSError, http.client.HTTPException) as error:
                    connection.close()
                    connections.pop(address, None)
                    status = type(error).__name__
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1
                sent += 1
                next_at += interval
                pause = next_at - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            for connection in connections.values():
                connection.close()

        started = time.monotonic()
        import os

        cpu_before = (cpu_seconds(server.popen.pid), cpu_seconds(os.getpid()))
        threads = [threading.Thread(target=flood, args=(i,), daemon=True) for i in range(threads_count)]
        for thread in threads:
            thread.start()
        during = conversation.run(seconds - 1)  # sends for 9 s, then up to 1 s for the last deliveries
        time.sleep(max(0.0, started + seconds - time.monotonic()))  # the flood lasts its 10 s
        stop.set()
        for thread in threads:
            thread.join(15)
        elapsed = time.monotonic() - started
        server_cpu = (cpu_seconds(server.popen.pid) - cpu_before[0]) / elapsed
        client_cpu = (cpu_seconds(os.getpid()) - cpu_before[1]) / elapsed
        answered = sum(statuses.values())
        before_p99, during_p99 = p99(baseline), p99(during)
        print(f"\n[login flood] {answered} requests in {elapsed:.1f} s ({answered / elapsed:.0f}/s): {statuses}; "
              f"conversation p99 {before_p99 * 1000:.1f} ms before, {during_p99 * 1000:.1f} ms during "
              f"({len(during)} messages); CPU: server {server_cpu:.0%}, load generator and conversation "
              f"{client_cpu:.0%} of a core", flush=True)
        # 500 a second are offered. A debug server on two cores beside its load generator answers 350-500 of them at
        # 120% of a core: saturated, a harder test for the conversation than the release build's 500 at 80%.
        assert answered >= 0.6 * rate * seconds, f"only {answered} requests in {elapsed:.1f} s: the flood did not flood"
        assert set(statuses) <= {202, 429}, f"answers other than 202 and 429: {statuses}"
        assert len(during) >= 100, f"only {len(during)} messages arrived during the flood"
        assert during_p99 <= 2 * before_p99 + 0.010, (
            f"the conversation slowed down: p99 {during_p99 * 1000:.1f} ms during, {before_p99 * 1000:.1f} ms before")
    finally:
        conversation.close()


def test_an_idle_keep_alive_connection_is_closed(launcher):
    """[hostile] With PARLEY_HTTP_IDLE_TIMEOUT_SECONDS=5, a keep-alive connection left idle after a request is closed
    by the server within 5 s (+3 s of slack). (Connections that never complete a request: the next test.)"""
    import socket

    server = launcher.parley(backend="sqlite", smtp=None, env={"PARLEY_HTTP_IDLE_TIMEOUT_SECONDS": "5"})
    idle = socket.create_connection(("127.0.0.1", server.port))
    try:
        idle.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        # The whole answer (head and body may come in separate segments), then silence.
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += idle.recv(4096)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert b"200" in head.split(b"\r\n")[0], head
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
        while len(body) < length:
            body += idle.recv(4096)
        started = time.monotonic()
        idle.settimeout(8)
        assert idle.recv(4096) == b"", "the server sent something instead of closing"
        waited = time.monotonic() - started
        print(f"[idle] closed after {waited:.1f} s", flush=True)
        assert 4 <= waited <= 8, f"closed after {waited:.1f} s (timeout 5 s)"
    finally:
        idle.close()


def read_until_closed(connection, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection (or `limit` seconds pass), and when it closed."""
    started = time.monotonic()
    received = b""
    connection.settimeout(0.2)
    while time.monotonic() - started < limit:
        try:
            chunk = connection.recv(4096)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        received += chunk
    return received, time.monotonic() - started


def drip(connection, first: bytes, piece: bytes, every: float, limit: float) -> tuple[bytes, float]:
    """Sends `first`, then `piece` every `every` seconds, until the server closes the connection or `limit` passes."""
    import socket

    connection.sendall(first)
    started = time.monotonic()
    received = b""
    connection.settimeout(every)
    while time.monotonic() - started < limit:
        try:
            chunk = connection.recv(4096)
            if not chunk:
                break
            received += chunk
        except (TimeoutError, socket.timeout):
            pass
        except ConnectionResetError:
            break
        try:
            connection.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            received += read_until_closed(connection, 1)[0]
            break
    return received, time.monotonic() - started


def test_a_slow_client_cannot_hold_a_connection(launcher):
    """[hostile] With PARLEY_HTTP_HEADER_TIMEOUT_SECONDS=2 and PARLEY_HTTP_REQUEST_TIMEOUT_SECONDS=4: a connection that
    sends nothing, or drips its first request's headers, is answered 408 and closed within 2 s (+2 s of slack); one
    that drips a request body, within 4 s (+2 s). A WebSocket and a long poll outlive both; so do quick requests."""
    import socket

    server = launcher.parley(
        backend="sqlite",
        smtp=None,
        env={"PARLEY_HTTP_HEADER_TIMEOUT_SECONDS": "2", "PARLEY_HTTP_REQUEST_TIMEOUT_SECONDS": "4"},
    )
    account, other = sign_in(server), sign_in(server)
    chat = expect_status(account.client.post("/api/v1/chats", json={"userId": other.user["id"]}), 201)["chat"]
    socket_client = socketio.Client(reconnection=False)
    socket_client.connect(server.base_url, auth={"token": account.access_token}, transports=["websocket"], wait_timeout=10)
    poller = socketio.Client(reconnection=False)
    poller.connect(server.base_url, auth={"token": account.access_token}, transports=["polling"], wait_timeout=10)
    try:
        cases = {
            "silent": (b"", b"", 2),
            "dripped headers": (b"GET /health HTTP/1.1\r\n", b"X-Drip: 1\r\n", 2),
            "dripped body": (
                b"POST /api/v1/chats HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                + account.access_token.encode()
                + b"\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{",
                b" ",
                4,
            ),
        }
        # The three at once, each on its own connection and timed on its own.
        outcomes: dict[str, tuple[bytes, float]] = {}

        def run(name: str, first: bytes, piece: bytes, timeout: float):
            connection = socket.create_connection(("127.0.0.1", server.port))
            try:
                outcomes[name] = drip(connection, first, piece, every=0.5, limit=timeout + 6)
            finally:
                connection.close()

        threads = [threading.Thread(target=run, args=(name, *case), daemon=True) for name, case in cases.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        for name, (_, _, timeout) in cases.items():
            assert name in outcomes, f"{name}: no outcome"
            received, waited = outcomes[name]
            print(f"[slow client] {name}: closed after {waited:.1f} s", flush=True)
            assert received.startswith(b"HTTP/1.1 408"), f"{name}: {received[:200]!r}"
            assert timeout - 0.5 <= waited <= timeout + 2, f"{name}: closed after {waited:.1f} s (timeout {timeout} s)"
        # The sockets, connected for longer than both timeouts, still work both ways.
        assert socket_client.connected and poller.connected
        for client in (socket_client, poller):
            ack = client.call("sendMessage", {"chatId": chat["id"], "text": "still here"}, timeout=5)
            assert isinstance(ack, dict) and "message" in ack, ack
        expect_status(account.client.get("/api/v1/chats"), 200)
    finally:
        socket_client.disconnect()
        poller.disconnect()


def test_a_connection_without_a_request_does_not_delay_shutdown(launcher):
    """[hostile] A connection that never sends a request (the header timeout left at its default, 20 s) is closed at
    once by a graceful shutdown: the process exits within 5 s of SIGTERM."""
    import socket

    server = launcher.parley(backend="sqlite", smtp=None)
    expect_status(server.client.get("/health"), 200)
    silent = socket.create_connection(("127.0.0.1", server.port))
    try:
        time.sleep(0.5)
        started = time.monotonic()
        launcher.stop(server)  # SIGTERM; fails on a non-zero exit, or on none within the harness's limit
        waited = time.monotonic() - started
        print(f"[shutdown] exited after {waited:.1f} s with a silent connection open", flush=True)
        assert waited <= 5, f"shutdown took {waited:.1f} s"
        assert not [line for line in server.log_lines() if '"level":"error"' in line], "the closed connection was logged as an error"
    finally:
        silent.close()


@pytest.mark.alone
def test_spam_sends_and_typing_storms_are_held_to_the_per_user_rates(launcher):
    """[hostile] With PARLEY_RATE_MESSAGES=60,30 and the default typing rate (20, then 2 a second), Mallory sends and
    toggles typing as fast as one client can for 5 s into a group of five polling members: at most 60 + 30 × 5 (+10%)
    sends are acknowledged and stored, the rest answered `rate_limited` and not stored; the members hear at most
    20 + 2 × 5 (+5) typing events and none of them is dropped for a full queue; a conversation beside it keeps its
    send→delivery p99 within twice its value before, plus 25 ms."""
    server = launcher.parley(backend="sqlite", smtp=None,
                             env={"PARLEY_RATE_MESSAGES": "60,30", "PARLEY_RATE_TYPING": None})
    conversation = Conversation(server)
    mallory = sign_in(server)
    members = [sign_in(server) for _ in range(5)]
    introduce(mallory, members)
    group = expect_status(mallory.client.post("/api/v1/chats", json={
        "name": "spam", "memberIds": [member.user["id"] for member in members]}), 201)["chat"]
    heard = {"typing": 0, "messages": 0}
    heard_lock = threading.Lock()
    listeners = []
    for member in members:
        client = socketio.Client(reconnection=False)

        def typing(_event, kind="typing"):
            with heard_lock:
                heard[kind] += 1

        client.on("userTyping", typing)
        client.on("newMessage", lambda _m: typing(None, "messages"))
        client.connect(server.base_url, auth={"token": member.access_token}, transports=["polling"], wait_timeout=10)
        listeners.append(client)
    spammer = socketio.Client(reconnection=False)
    spammer.connect(server.base_url, auth={"token": mallory.access_token}, transports=["websocket"], wait_timeout=10)
    acks: dict[str, int] = {}
    acks_lock = threading.Lock()

    def acked(answer):
        code = "ok" if isinstance(answer, dict) and answer.get("ok") else (answer or {}).get("error", {}).get("code", "?")
        with acks_lock:
            acks[code] = acks.get(code, 0) + 1

    try:
        # As long as the measurement during the spam: a p99 of fewer samples is biased low (it is nearly their maximum),
        # which made the bound tighter than meant (a fresh-clone run: 8.1 ms over 3 s against 41.4 over 4 s).
        baseline = conversation.run(4)
        stop = threading.Event()

        emitted = [0]

        def spam():
            typing_on = True
            while not stop.is_set():
                emitted[0] += 1
                spammer.emit("sendMessage", {"chatId": group["id"], "text": uuid.uuid4().hex}, callback=acked)
                spammer.emit("typing" if typing_on else "stopTyping", {"chatId": group["id"]})
                typing_on = not typing_on
                time.sleep(0.001)

        thread = threading.Thread(target=spam, daemon=True)
        started = time.monotonic()
        thread.start()
        during = conversation.run(4)  # 4 s of sends, then up to 1 s for the last deliveries
        stop.set()
        spam_seconds = time.monotonic() - started
        thread.join(5)

        def settled():
            # Every send answered, every acknowledged one heard by the five, and no typing event heard for 0.3 s.
            with acks_lock:
                answered, ok = sum(acks.values()), acks.get("ok", 0)
            with heard_lock:
                typing_before = heard["typing"]
            if answered < emitted[0] or heard["messages"] < 5 * ok:
                return False
            time.sleep(0.3)
            with heard_lock:
                return heard["typing"] == typing_before

        try:
            poll(settled, 10, "the spam's acks and deliveries")
        except AssertionError:
            pass  # the assertions below say what is missing
        stored, after = 0, 0
        while True:
            page = expect_status(members[0].client.get(f"/api/v1/chats/{group['id']}/messages",
                                                       params={"after": after, "limit": 200}), 200)
            stored += len(page["messages"])
            if not page["messages"] or not page["hasMore"]:
                break
            after = page["messages"][-1]["seq"]
        print(f"\n[spam] {spam_seconds:.1f} s: acks {acks}, stored {stored}, heard {heard} by 5 members", flush=True)
        allowed = (60 + 30 * spam_seconds) * 1.1
        assert acks.get("rate_limited", 0) > 0, f"no send was refused: {acks}"
        assert acks.get("ok", 0) <= allowed, f"{acks.get('ok')} sends acknowledged (bound {allowed:.0f})"
        assert stored == acks.get("ok", 0), f"{stored} messages stored for {acks.get('ok')} acknowledged sends"
        assert set(acks) <= {"ok", "rate_limited"}, acks
        assert heard["messages"] == 5 * stored, f"members heard {heard['messages']} messages of {stored} × 5"
        assert heard["typing"] <= 5 * (20 + 2 * spam_seconds + 5), f"{heard['typing']} typing events heard by 5 members"
        assert all(client.connected for client in listeners), "a polling member was dropped"
        before_p99, during_p99 = p99(baseline), p99(during)
        print(f"[spam] conversation p99 {before_p99 * 1000:.1f} ms before, {during_p99 * 1000:.1f} ms during", flush=True)
        assert during_p99 <= 2 * before_p99 + 0.025, f"p99 {during_p99 * 1000:.1f} ms during, {before_p99 * 1000:.1f} before"
    finally:
        spammer.disconnect()
        for client in listeners:
            client.disconnect()
        conversation.close()


def big_png(size: int) -> bytes:
    """`size` bytes that are a PNG by their header (1000 × 1000), the rest incompressible."""
    import os
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    head = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1000, 1000, 8, 2, 0, 0, 0))
    tail = chunk(b"IEND", b"")
    return head + chunk(b"IDAT", os.urandom(size - len(head) - len(tail) - 12)) + tail


def test_downloads_stream_in_chunks_and_are_capped(launcher):
    """[hostile] A 10 MiB image fetched by 8 slow readers at once (64 KiB every 20 ms each, through a 32 KiB window)
    raises server RSS by at most 24 MiB, 3 MiB a reader (reading it whole per request, as before, cost three copies,
    about 30 MiB a reader); every reader gets exactly the file. With PARLEY_MAX_DOWNLOADS=8, a 9th download meanwhile
    is answered 503 `too_many_downloads` with Retry-After, and is served once the others are done. The 9th is asked for
    once every reader has its first bytes, and the readers hold still until it is answered: the server is then still
    writing to every one of them. (With a 6 MiB file, or readers that read on, the kernel's buffers took one whole
    reader's file now and then, its slot came back, and the 9th was served.)"""
    import hashlib
    import socket

    server = launcher.parley(backend="sqlite", smtp=None, env={"PARLEY_MAX_DOWNLOADS": "8", "PARLEY_MAX_UPLOAD_BYTES": str(12 * 1024 * 1024)})
    alice, bob = sign_in(server), sign_in(server)
    chat = expect_status(alice.client.post("/api/v1/chats", json={"userId": bob.user["id"]}), 201)["chat"]
    data = big_png(10 * 1024 * 1024)
    # A debug build parses a multipart body of megabytes slowly: the upload is not what is tested here.
    sent = alice.client.post(f"/api/v1/chats/{chat['id']}/messages", data={"clientMessageId": uuid.uuid4().hex},
                             files={"image": ("big.png", data, "image/png")}, timeout=120)
    url = expect_status(sent, 201)["message"]["image"]["url"]
    expected = hashlib.sha256(data).hexdigest()
    path = url if url.startswith("/") else "/" + url.split("/", 3)[3]
    # One download first: what the first one sets up (the file I/O threads) is not what a reader costs.
    first = server.client.get(path)
    assert first.status_code == 200 and hashlib.sha256(first.content).hexdigest() == expected
    time.sleep(0.5)
    rss_before = rss_mib(server.popen.pid)

    started = [threading.Event() for _ in range(8)]
    asked = threading.Event()

    def slow_download(results: list, index: int):
        # A small receive window, so the kernel cannot take the whole file off the server's hands at once.
        connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        connection.connect(("127.0.0.1", server.port))
        connection.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        received = bytearray()
        try:
            while True:
                chunk = connection.recv(64 * 1024)
                if not chunk:
                    break
                received += chunk
                started[index].set()
                # Each reader holds still after its first bytes until the 9th download has been answered: readers that
                # went on reading meanwhile could finish (the first ones start long before the last one on a loaded
                # machine), give their slots back and let the 9th in.
                asked.wait(30)
                time.sleep(0.02)
        finally:
            connection.close()
        head, _, body = bytes(received).partition(b"\r\n\r\n")
        results[index] = (head.split(b"\r\n")[0], hashlib.sha256(body).hexdigest())

    results: list = [None] * 8
    threads = [threading.Thread(target=slow_download, args=(results, i), daemon=True) for i in range(8)]
    peak = [rss_before]
    for thread in threads:
        thread.start()
    for event in started:
        assert event.wait(30), "a reader got nothing"
    refused = server.client.get(path)
    asked.set()
    while any(thread.is_alive() for thread in threads):
        peak[0] = max(peak[0], rss_mib(server.popen.pid))
        time.sleep(0.1)
    for thread in threads:
        thread.join(30)
    print(f"\n[downloads] RSS {rss_before:.1f} → peak {peak[0]:.1f} MiB with 8 slow readers of 10 MiB", flush=True)
    assert all(result is not None and b"200" in result[0] and result[1] == expected for result in results), [
        (r[0], r[1] == expected) if r else None for r in results]
    assert peak[0] - rss_before <= 24, f"RSS grew by {peak[0] - rss_before:.1f} MiB (bound 24)"
    assert refused.status_code == 503 and refused.headers.get("Retry-After") == "1", (refused.status_code, refused.text[:200])
    assert refused.json()["error"]["code"] == "too_many_downloads"
    again = server.client.get(path)
    assert again.status_code == 200 and hashlib.sha256(again.content).hexdigest() == expected
    part = server.client.get(path, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200], part.status_code
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(data)}"


class RawPolling:
    """An Engine.IO polling session spoken by hand, so a test can send what no client library would."""

    def __init__(self, server, token: str):
        self.server = server
        self.connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        status, body = self.request("GET", "/socket.io/?EIO=4&transport=polling")
        assert status == 200 and body.startswith(b"0"), (status, body[:200])
        import json

        self.sid = json.loads(body[1:])["sid"]
        assert self.post(f'40{{"token":"{token}"}}'.encode()) == (200, b"ok")
        status, body = self.get()
        assert status == 200 and body.startswith(b'40{"sid"'), (status, body[:200])

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        self.connection.request(method, path, body=body, headers={"Content-Type": "text/plain;charset=UTF-8"})
        response = self.connection.getresponse()
        return response.status, response.read()

    def get(self) -> tuple[int, bytes]:
        return self.request("GET", f"/socket.io/?EIO=4&transport=polling&sid={self.sid}")

    def post(self, body: bytes) -> tuple[int, bytes]:
        return self.request("POST", f"/socket.io/?EIO=4&transport=polling&sid={self.sid}", body)

    def is_closed(self) -> bool:
        """Whether the server has ended the session: a poll is answered with the close packet or `Session ID unknown`."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            status, body = self.get()
            if status == 400 or body == b"1" or body.endswith(b"\x1e1"):
                return True
            time.sleep(0.1)
        return False


class RawWebSocket:
    """An Engine.IO WebSocket spoken by hand."""

    def __init__(self, server, token: str):
        import websocket

        self.ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket", timeout=10)
        assert self.ws.recv().startswith("0")
        self.ws.send(f'40{{"token":"{token}"}}')
        assert self.ws.recv().startswith('40{"sid"')

    def is_closed(self) -> bool:
        """Whether the server closes the connection within 5 s (whatever it sends first)."""
        import websocket

        self.ws.settimeout(5)
        try:
            while True:
                frame = self.ws.recv_frame()
                if frame is None or frame.opcode == websocket.ABNF.OPCODE_CLOSE:
                    return True
        except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
            return True
        except websocket.WebSocketTimeoutException:
            return False
        finally:
            self.ws.close()


# Packets no client library sends: each one, on either transport, ends that session and only that one.
MALFORMED_PACKETS: dict[str, bytes] = {
    "unterminated JSON": b'42["sendMessage",{"chatId":',
    "JSON nested 100,000 deep": b"42" + b"[" * 100_000,
    "binary attachment": b'451-["sendMessage",{"_placeholder":true,"num":0}]',
    "unknown Socket.IO packet type": b"49",
    "unknown Engine.IO packet type": b"9",
    "event that is not an array": b'42{"sendMessage":1}',
    "text that is not UTF-8": b'42["sendMessage",{"text":"\xff\xfe"}]',
}


def test_malformed_and_oversized_packets_end_only_their_session_on_both_transports(launcher):
    """[hostile] Over long-polling and over WebSocket, each of MALFORMED_PACKETS, and a payload of maxPayload + 1
    bytes (1,000,001: a POST is answered 413 before its body is read, a WebSocket frame closes the connection, and so
    do small fragments adding up to more), ends the session that sent it within 5 s; 20 rounds of all of them raise
    server RSS by at most 50 MiB; a bystander's socket stays connected and its sends are acknowledged throughout; the
    process logs no error."""
    import websocket

    server = launcher.parley(backend="sqlite", smtp=None)
    attacker, bystander, friend = sign_in(server), sign_in(server), sign_in(server)
    chat = expect_status(bystander.client.post("/api/v1/chats", json={"userId": friend.user["id"]}), 201)["chat"]
    watcher = socketio.Client(reconnection=False)
    watcher.connect(server.base_url, auth={"token": bystander.access_token}, transports=["websocket"], wait_timeout=10)
    oversized = b'42["sendMessage",{"text":"' + b"x" * 1_000_000 + b'"}]'
    try:
        rss_before = rss_mib(server.popen.pid)
        peak = rss_before
        for round_index in range(20):
            outcomes: dict[str, bool] = {}
            for name, packet in MALFORMED_PACKETS.items():
                polling = RawPolling(server, attacker.access_token)
                status, _ = polling.post(packet)
                outcomes[f"polling: {name} ({status})"] = polling.is_closed()
                ws = RawWebSocket(server, attacker.access_token)
                if name == "text that is not UTF-8":
                    ws.ws.send(packet, opcode=websocket.ABNF.OPCODE_TEXT)
                else:
                    ws.ws.send(packet.decode())
                outcomes[f"websocket: {name}"] = ws.is_closed()
            polling = RawPolling(server, attacker.access_token)
            status, _ = polling.post(oversized)
            outcomes[f"polling: oversized ({status})"] = status == 413 and polling.is_closed()
            ws = RawWebSocket(server, attacker.access_token)
            try:
                ws.ws.send(oversized.decode())
            except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
                pass  # closed (reset) before the sender had written the whole frame: seen beside the cluster tests
            outcomes["websocket: oversized frame"] = ws.is_closed()
            ws = RawWebSocket(server, attacker.access_token)
            piece = b"x" * 65_536
            ws.ws.send_frame(websocket.ABNF.create_frame(b'42["sendMessage",{"text":"' + piece, websocket.ABNF.OPCODE_TEXT, fin=0))
            try:
                for _ in range(16):
                    ws.ws.send_frame(websocket.ABNF.create_frame(piece, websocket.ABNF.OPCODE_CONT, fin=0))
            except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
                pass  # closed before the sender finished: what is tested
            outcomes["websocket: fragments adding up to more"] = ws.is_closed()
            ws = RawWebSocket(server, attacker.access_token)
            ws.ws.send_binary(b"\x04\x00\x01")
            outcomes["websocket: a binary frame"] = ws.is_closed()
            if round_index == 0:
                print("\n[malformed] " + "; ".join(f"{k}: {'closed' if v else 'OPEN'}" for k, v in outcomes.items()), flush=True)
            assert all(outcomes.values()), [k for k, v in outcomes.items() if not v]
            ack = watcher.call("sendMessage", {"chatId": chat["id"], "text": f"round {round_index}"}, timeout=5)
            assert isinstance(ack, dict) and ack.get("ok"), ack
            peak = max(peak, rss_mib(server.popen.pid))
        print(f"[malformed] RSS {rss_before:.1f} → peak {peak:.1f} MiB over 20 rounds", flush=True)
        assert peak - rss_before <= 50, f"RSS grew by {peak - rss_before:.1f} MiB (bound: 50)"
        assert watcher.connected
        errors = [line for line in server.log_lines() if '"level":"error"' in line or '"level":"critical"' in line]
        assert not errors, errors[:5]
    finally:
        watcher.disconnect()


def sign_in_again(server, email: str, count: int) -> Account:
    """A new login session for an account: waits for the `count`th code sent to `email` (the log holds them all)."""
    request_code(server.client, email, retry_after=0)
    body = expect_status(verify(server.client, email, server.code_for(email, count=count)), 200)
    return Account(body["user"]["email"], body["user"], body["accessToken"], body["refreshToken"],
                   server.client.with_token(body["accessToken"]))


def test_expired_and_logged_out_sockets_end_on_the_running_binary(launcher, jwt_key):
    """[hostile] With an access token that expires 4 s after it is issued (signed with the server's key: the server's
    own last at least 10 s) and a 1 s grace: a socket that does not renew is refused (`token_expired` in
    the ack, nothing stored) as soon as its token expires, and gets `sessionEnded token_expired` and is closed by
    expiry + 1 s (+2 s of slack: the check runs every second); on both transports. Logging out one login session
    closes its sockets within 2 s (`logged_out`), while a socket of the same user's other session still sends.
    Messages sent within the grace still reach the socket, as docs/realtime.md says (a late renewal misses nothing);
    nothing reaches it once it is closed."""
    server = launcher.parley(backend="sqlite", smtp=None,
                             env={"PARLEY_SOCKET_TOKEN_GRACE_SECONDS": "1", "PARLEY_OTP_RESEND_SECONDS": "0"})
    mallory, bob = sign_in(server), sign_in(server)
    chat = expect_status(bob.client.post("/api/v1/chats", json={"userId": mallory.id}), 201)["chat"]
    # Mallory's token of her login session, reissued to expire 4 s from now (JWT times are whole seconds).
    token = JWT.parse(mallory.access_token)
    expires = int(time.time()) + 4
    expires_at = time.monotonic() + (expires - time.time())
    short_lived = sign_jwt({k: v for k, v in token.header.items() if k != "alg"},
                           {**token.payload, "iat": expires - 4, "exp": expires}, jwt_key)
    events: dict[str, list] = {"websocket": [], "polling": []}
    clients = {}
    for transport in ("websocket", "polling"):
        client = socketio.Client(reconnection=False)
        client.on("newMessage", lambda message, t=transport: events[t].append(("newMessage", message.get("text"))))
        client.on("sessionEnded", lambda body, t=transport: events[t].append(("sessionEnded", body.get("reason"), time.monotonic())))
        client.on("disconnect", lambda *_, t=transport: events[t].append(("disconnect", time.monotonic())))
        client.connect(server.base_url, auth={"token": short_lived}, transports=[transport], wait_timeout=10)
        clients[transport] = client
    try:
        expect_status(bob.client.post(f"/api/v1/chats/{chat['id']}/messages", json={"text": "before expiry"}), 201)
        time.sleep(max(0.0, expires_at + 0.05 - time.monotonic()))
        for transport, client in clients.items():
            if client.connected:
                answer = client.call("sendMessage", {"chatId": chat["id"], "text": "after expiry"}, timeout=5)
                assert (answer or {}).get("error", {}).get("code") == "token_expired", (transport, answer)
        expect_status(bob.client.post(f"/api/v1/chats/{chat['id']}/messages", json={"text": "after expiry"}), 201)
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline and any(client.connected for client in clients.values()):
            time.sleep(0.1)
        for transport in clients:
            seen = events[transport]
            print(f"\n[expiry] {transport}: {[e[:2] for e in seen]}", flush=True)
            assert ("newMessage", "before expiry") in [e[:2] for e in seen], (transport, seen)
            ended = [e for e in seen if e[0] == "sessionEnded"]
            assert ended and ended[0][1] == "token_expired", (transport, seen)
            closed = [e for e in seen if e[0] == "disconnect"]
            assert closed and closed[0][1] - expires_at <= 1 + 2, (transport, closed[0][1] - expires_at if closed else None)
        messages = expect_status(bob.client.get(f"/api/v1/chats/{chat['id']}/messages"), 200)["messages"]
        assert [m["text"] for m in messages] == ["before expiry", "after expiry"], "an expired socket's send was stored"

        # Logout of one login session closes its sockets only.
        first, second = sign_in_again(server, mallory.email, count=2), sign_in_again(server, mallory.email, count=3)
        ended: list = []
        sockets = []
        for account in (first, second):
            client = socketio.Client(reconnection=False)
            client.on("sessionEnded", lambda body, a=account: ended.append((a.refresh_token, body.get("reason"))))
            client.connect(server.base_url, auth={"token": account.access_token}, transports=["websocket"], wait_timeout=10)
            sockets.append(client)
        logged_out = time.monotonic()
        assert first.client.post("/api/v1/logout", json={"refreshToken": first.refresh_token}, token=None).status_code == 204
        while sockets[0].connected and time.monotonic() - logged_out < 5:
            time.sleep(0.05)
        waited = time.monotonic() - logged_out
        print(f"[logout] the session's socket closed after {waited:.2f} s", flush=True)
        assert not sockets[0].connected and waited <= 2, f"closed after {waited:.2f} s"
        assert ended == [(first.refresh_token, "logged_out")], ended
        answer = sockets[1].call("sendMessage", {"chatId": chat["id"], "text": "other session"}, timeout=5)
        assert isinstance(answer, dict) and answer.get("ok"), answer
        for client in sockets:
            client.disconnect()
    finally:
        for client in clients.values():
            client.disconnect()
