"""Real time across chat instances, through nginx, with stock python-socketio clients over both transports.

[cluster] Needs from the binary: PARLEY_INSTANCE (sids name their instance: nginx pins long-polling by sid) and the
PostgreSQL event bus and presence (events cross instances).
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from cluster import (
    PRESENCE_GRACE,
    Recorder,
    ack_ok,
    all_messages,
    connect_socket,
    disconnect_socket,
    create_chat,
    engine_sid,
    instance_of,
    timing,
)
from harness import JWT, poll, sign_jwt

TRANSPORT_PAIRS = [("websocket", "websocket"), ("polling", "polling"), ("websocket", "polling")]


@pytest.mark.parametrize("transport_a,transport_b", TRANSPORT_PAIRS, ids=lambda t: t)
def test_messages_typing_seen_and_chat_updates_cross_instances(healthy_cluster, transport_a, transport_b):
    """[cluster] A on chat1 and B on chat2 exchange messages (in seq order, exactly once), typing and seen state;
    a group created through a third instance reaches both as chatUpdated."""
    cluster = healthy_cluster
    alice, bob, carol = cluster.sign_in_many(3)
    chat = create_chat(alice, user=bob)
    socket_a, events_a = connect_socket(cluster, alice.access_token, transport_a, instance="chat1")
    socket_b, events_b = connect_socket(cluster, bob.access_token, transport_b, instance="chat2")
    try:
        assert instance_of(socket_a) != instance_of(socket_b)
        started = time.monotonic()
        first = ack_ok(socket_a.call("sendMessage", {"chatId": chat["id"], "text": "hello from chat1",
                                                     "clientMessageId": uuid.uuid4().hex}, timeout=10), "sendMessage")
        events_b.wait("newMessage", lambda m: m["id"] == first["message"]["id"], what="the message on chat2")
        timing(f"first cross-instance newMessage ({transport_a}→{transport_b})", time.monotonic() - started)

        # A burst: every message once, in seq order, on the other instance.
        sent = [first["message"]]
        for index in range(20):
            answer = socket_a.call("sendMessage", {"chatId": chat["id"], "text": f"burst {index}",
                                                   "clientMessageId": uuid.uuid4().hex}, timeout=10)
            sent.append(ack_ok(answer, "sendMessage")["message"])
        poll(lambda: len([m for m in events_b.of("newMessage") if m["chatId"] == chat["id"]]) >= len(sent), 15,
             "the burst on chat2")
        time.sleep(0.5)
        received = [m for m in events_b.of("newMessage") if m["chatId"] == chat["id"]]
        assert [m["seq"] for m in received] == [m["seq"] for m in sent], "not every message exactly once, in order"
        assert [m["id"] for m in received] == [m["id"] for m in sent]

        # Seen: B reads up to A's last message, A (on the other instance) sees it.
        last = sent[-1]["seq"]
        ack_ok(socket_b.call("markRead", {"chatId": chat["id"], "seq": last}, timeout=10), "markRead")
        events_a.wait("messagesSeen", lambda e: e == {"chatId": chat["id"], "userId": bob.id, "seq": last},
                      what="messagesSeen on chat1")

        # A reply from B through REST (nginx round-robin: any instance) reaches A on chat1.
        reply = bob.client.post(f"/api/v1/chats/{chat['id']}/messages",
                                json={"text": "reply over REST", "clientMessageId": uuid.uuid4().hex}).json()["message"]
        events_a.wait("newMessage", lambda m: m["id"] == reply["id"], what="the REST reply on chat1")

        # Typing crosses instances, both ways of stopping.
        socket_a.emit("typing", {"chatId": chat["id"]})
        events_b.wait("userTyping", lambda e: e == {"chatId": chat["id"], "userId": alice.id}, what="userTyping")
        socket_a.emit("stopTyping", {"chatId": chat["id"]})
        events_b.wait("userStoppedTyping", lambda e: e == {"chatId": chat["id"], "userId": alice.id},
                      what="userStoppedTyping")

        # A group made by Carol (whose request lands on whichever instance) reaches A and B as chatUpdated.
        group = create_chat(carol, name="cluster group", members=[alice, bob])
        events_a.wait("chatUpdated", lambda c: c["id"] == group["id"], what="chatUpdated on chat1")
        events_b.wait("chatUpdated", lambda c: c["id"] == group["id"], what="chatUpdated on chat2")
    finally:
        disconnect_socket(cluster, socket_a)
        disconnect_socket(cluster, socket_b)


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_presence_across_instances(healthy_cluster, transport):
    """[cluster] Online while any socket on any instance is connected; userOffline only when the last one goes."""
    cluster = healthy_cluster
    watcher, subject = cluster.sign_in_many(2)
    create_chat(watcher, user=subject)
    socket_w, events_w = connect_socket(cluster, watcher.access_token, transport, instance="chat1")
    sockets = []
    try:
        started = time.monotonic()
        first, first_events = connect_socket(cluster, subject.access_token, transport, instance="chat2")
        sockets.append(first)
        events_w.wait("userOnline", lambda e: e == {"userId": subject.id}, what="userOnline from chat2")
        timing(f"userOnline across instances ({transport})", time.monotonic() - started)
        # The subject learns the watcher (on another instance) is online: in getOnlineUser, or (when the watcher's
        # instance recorded its arrival only after the subject's snapshot) as userOnline.
        try:
            poll(lambda: any(watcher.id in ids for ids in first_events.of("getOnlineUser"))
                 or {"userId": watcher.id} in first_events.of("userOnline"), 10,
                 "getOnlineUser naming the watcher, or userOnline for the watcher")
        except AssertionError as error:
            raise AssertionError(f"{error}; getOnlineUser events: {first_events.of('getOnlineUser')}; watcher "
                                 f"{watcher.id} on {instance_of(socket_w)}; presence rows:\n"
                                 f"{cluster.presence_rows(watcher.id, subject.id)}") from None

        second, _ = connect_socket(cluster, subject.access_token, transport, instance="chat3")
        sockets.append(second)
        time.sleep(PRESENCE_GRACE + 0.5)  # past the grace period of any handshake retries above
        mark = len(events_w.of("userOffline"))

        disconnect_socket(cluster, first)
        time.sleep(PRESENCE_GRACE + 1.5)  # the grace period and then some: the socket on chat3 keeps the subject online
        offline = [e for e in events_w.of("userOffline")[mark:] if e == {"userId": subject.id}]
        assert not offline, "userOffline while the subject still had a socket on chat3"

        started = time.monotonic()
        disconnect_socket(cluster, second)
        try:
            events_w.wait("userOffline", lambda e: e == {"userId": subject.id}, timeout=15,
                          what="userOffline once the last socket went")
        except AssertionError as error:
            raise AssertionError(f"{error}; subject {subject.id}; presence rows:\n"
                                 f"{cluster.presence_rows(watcher.id, subject.id)}") from None
        timing(f"userOffline after the last socket ({transport})", time.monotonic() - started)
    finally:
        for socket in sockets + [socket_w]:
            if socket.connected:
                disconnect_socket(cluster, socket)


def test_polling_sessions_stay_on_their_instance(healthy_cluster):
    """[cluster] Long-polling through nginx: many requests per session, every one reaching the session's instance
    (nginx maps $arg_sid to it); the same sid on another instance is unknown there (400)."""
    cluster = healthy_cluster
    alice, bob = cluster.sign_in_many(2)
    chat = create_chat(alice, user=bob)
    sockets = []
    started = time.monotonic()
    try:
        for _ in range(6):
            sockets.append(connect_socket(cluster, alice.access_token, "polling")[0])
        instances = {instance_of(socket) for socket in sockets}
        assert len(instances) >= 2, f"round-robin handshakes all landed on {instances}"
        errors: list[str] = []

        def chatter(socket, index):
            try:
                for n in range(25):
                    ack_ok(socket.call("sendMessage", {"chatId": chat["id"], "text": f"poll {index}.{n}",
                                                       "clientMessageId": uuid.uuid4().hex}, timeout=10), "sendMessage")
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(f"socket {index} on {instance_of(socket)}: {error!r}")

        threads = [threading.Thread(target=chatter, args=(socket, index)) for index, socket in enumerate(sockets)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        assert all(socket.connected and socket.transport() == "polling" for socket in sockets)
        timing(f"6 polling sessions × 25 acked sends through nginx on {sorted(instances)}", time.monotonic() - started)
        assert len(all_messages(alice.client, chat["id"])) == 6 * 25

        # Negative control: the session is unknown to any other instance, which is what ip-less round-robin
        # without the sid map would hit.
        victim = sockets[0]
        home = instance_of(victim)
        other = next(name for name in cluster.names("chat") if name != home)
        response = requests.get(cluster.instances[other].base_url + "/socket.io/",
                                params={"EIO": "4", "transport": "polling", "sid": engine_sid(victim)}, timeout=5)
        assert response.status_code == 400, f"{other} answered {response.status_code} for {home}'s session"
    finally:
        for socket in sockets:
            disconnect_socket(cluster, socket)


def test_default_client_upgrades_to_websocket_through_nginx(healthy_cluster):
    """[cluster] A stock client's default (polling, then the upgrade probe with ?sid=) ends on WebSocket."""
    cluster = healthy_cluster
    alice = cluster.sign_in()
    import socketio

    socket = socketio.Client(reconnection=False)
    socket.connect(cluster.url, auth={"token": alice.access_token}, wait_timeout=10)
    try:
        poll(lambda: socket.transport() == "websocket", 10, "the upgrade to websocket")
        instance_of(socket)
        assert socket.call("joinChat", "no-such-chat", timeout=10) is not None
    finally:
        disconnect_socket(cluster, socket)


def test_concurrent_first_messages_from_three_instances(healthy_cluster):
    """[cluster] Three members on three instances start a fresh group at the same moment: every socket gets every
    message live, exactly once, in seq order (notifications of different instances may arrive in any order, the
    first ones of a chat included)."""
    cluster = healthy_cluster
    people = cluster.sign_in_many(3)
    sockets = [connect_socket(cluster, person.access_token, "websocket", instance=f"chat{index + 1}")
               for index, person in enumerate(people)]
    try:
        problems = []
        started = time.monotonic()
        for round_ in range(5):
            group = create_chat(people[0], name=f"race {round_}", members=people[1:])["id"]
            barrier = threading.Barrier(3)

            def burst(index):
                socket = sockets[index][0]
                barrier.wait()
                for n in range(6):
                    socket.call("sendMessage", {"chatId": group, "text": f"{index}.{n}", "clientMessageId": uuid.uuid4().hex},
                                timeout=10)

            threads = [threading.Thread(target=burst, args=(index,)) for index in range(3)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            for index, (_, events) in enumerate(sockets):
                def seqs():
                    return [m["seq"] for m in events.of("newMessage") if m["chatId"] == group]
                try:
                    poll(lambda: 18 in seqs(), 10, "the 18th message")
                except AssertionError:
                    pass
                time.sleep(0.1)
                if seqs() != list(range(1, 19)):
                    problems.append(f"round {round_}, socket on chat{index + 1}: seqs {seqs()}")
        timing("5 rounds of 3 × 6 concurrent first messages", time.monotonic() - started)
        assert not problems, "\n".join(problems)
    finally:
        for socket, _ in sockets:
            disconnect_socket(cluster, socket)


def test_presence_churn_leaves_nobody_online(healthy_cluster):
    """[cluster] 24 users come and go on whatever instance nginx picks, at random moments: once all have gone, the
    watcher has seen each one offline and no presence entry is left (departures racing presence maintenance)."""
    import random

    cluster = healthy_cluster
    watcher = cluster.sign_in()
    users = cluster.sign_in_many(24)
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda user: create_chat(user, user=watcher), users))
    socket_w, events_w = connect_socket(cluster, watcher.access_token, "websocket")
    rng = random.Random(7)
    started = time.monotonic()
    try:
        def visit(user):
            time.sleep(rng.uniform(0, 3))
            socket, _ = connect_socket(cluster, user.access_token, rng.choice(["websocket", "polling"]))
            time.sleep(rng.uniform(0.2, 4))
            disconnect_socket(cluster, socket)

        threads = [threading.Thread(target=visit, args=(user,)) for user in users]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        gone_at = time.monotonic()

        def offline_seen():
            offline = {e["userId"] for e in events_w.of("userOffline")}
            return all(user.id in offline for user in users)

        try:
            poll(offline_seen, 20, "userOffline for every visitor")
        except AssertionError as error:
            offline = {e["userId"] for e in events_w.of("userOffline")}
            stuck = [user.id for user in users if user.id not in offline]
            raise AssertionError(f"{error}: {len(stuck)} of {len(users)} never went offline; their presence rows:\n"
                                 f"{cluster.presence_rows(*stuck)}") from None
        timing("24 visitors: last userOffline after the last left", time.monotonic() - gone_at)
        left = cluster.presence_rows(*(user.id for user in users))
        assert left == "(no rows)", f"presence entries left behind:\n{left}"
        timing("presence churn test", time.monotonic() - started)
    finally:
        disconnect_socket(cluster, socket_w)


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_logout_and_reuse_detection_close_that_sessions_sockets_on_every_instance(healthy_cluster, jwt_pem, transport):
    """[cluster] Logout through a user instance closes the sockets of that login session on chat1 and chat2 within 2 s
    (`sessionEnded` `logged_out`), while another session of the same user keeps its socket; a refresh token presented
    twice closes its session's sockets the same way (`revoked`). A closed session's token cannot connect again."""
    import socketio
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    cluster = healthy_cluster
    ann, other, bob = cluster.sign_in_many(3)
    chat = create_chat(other, user=ann)
    # Another login session of Ann's: her token with another session id, signed with the cluster's key.
    token = JWT.parse(ann.access_token)
    another_session = sign_jwt({k: v for k, v in token.header.items() if k != "alg"},
                               {**token.payload, "sid": str(uuid.uuid4())}, load_pem_private_key(jwt_pem.encode(), None))
    on_chat1, events_1 = connect_socket(cluster, ann.access_token, transport, instance="chat1")
    on_chat2, events_2 = connect_socket(cluster, ann.access_token, transport, instance="chat2")
    survivor, survivor_events = connect_socket(cluster, another_session, transport, instance="chat3")
    bobs, bob_events = connect_socket(cluster, bob.access_token, transport, instance="chat1")
    try:
        started = time.monotonic()
        response = requests.post(f"{cluster.url}/api/v1/logout", json={"refreshToken": ann.refresh_token}, timeout=10)
        assert response.status_code == 204, response.text
        for events, name in ((events_1, "chat1"), (events_2, "chat2")):
            ended = events.wait("sessionEnded", timeout=5, what=f"sessionEnded on {name}")
            assert ended == {"reason": "logged_out"}, ended
        elapsed = time.monotonic() - started
        timing(f"logout → sessionEnded on chat1 and chat2 ({transport})", elapsed)
        assert elapsed < 2.0, f"sockets closed {elapsed:.1f} s after logout (the contract says within 2 s)"
        poll(lambda: not on_chat1.connected and not on_chat2.connected, 5, "both sockets closed")
        assert not survivor_events.of("sessionEnded")
        answer = survivor.call("sendMessage", {"chatId": chat["id"], "text": "still here",
                                               "clientMessageId": uuid.uuid4().hex}, timeout=10)
        ack_ok(answer, "sendMessage")
        with pytest.raises(AssertionError):
            connect_socket(cluster, ann.access_token, transport, tries=1)

        # Reuse detection: Bob's refresh token, rotated, then presented again.
        body = {"refreshToken": bob.refresh_token}
        assert requests.post(f"{cluster.url}/api/v1/token/refresh", json=body, timeout=10).status_code == 200
        assert requests.post(f"{cluster.url}/api/v1/token/refresh", json=body, timeout=10).status_code == 401
        ended = bob_events.wait("sessionEnded", timeout=3, what="sessionEnded after reuse detection")
        assert ended == {"reason": "revoked"}, ended
    finally:
        disconnect_socket(cluster, survivor)
        for socket in (on_chat1, on_chat2, bobs):
            try:
                disconnect_socket(cluster, socket)
            except socketio.exceptions.SocketIOError:
                pass


def test_a_removed_member_stops_hearing_the_group_on_every_instance(healthy_cluster):
    """[cluster] Bob, on chat2, is removed from a group by Alice (her request lands on any instance): he hears
    chatRemoved, his open socket's sends are refused, and nothing more of the group reaches him, while Carol on chat2
    and Alice on chat1 go on hearing it (issue 14: the membership caches of both instances follow the change)."""
    cluster = healthy_cluster
    alice, bob, carol = cluster.sign_in_many(3)
    group = create_chat(alice, name="cluster removal", members=[bob, carol])
    socket_a, events_a = connect_socket(cluster, alice.access_token, "websocket", instance="chat1")
    socket_b, events_b = connect_socket(cluster, bob.access_token, "websocket", instance="chat2")
    socket_c, events_c = connect_socket(cluster, carol.access_token, "polling", instance="chat2")
    try:
        # Bob hears the group first, on chat2, so chat2's membership cache holds it with him in it.
        hello = ack_ok(socket_a.call("sendMessage", {"chatId": group["id"], "text": "before",
                                                     "clientMessageId": uuid.uuid4().hex}, timeout=10), "send")
        events_b.wait("newMessage", lambda m: m["id"] == hello["message"]["id"], what="the first message on chat2")
        removed = alice.client.delete(f"/api/v1/chats/{group['id']}/members/{bob.id}")
        assert removed.status_code == 204, removed.text
        events_b.wait("chatRemoved", lambda p: p == {"chatId": group["id"]}, what="chatRemoved on chat2")
        events_c.wait("newMessage", lambda m: m["chatId"] == group["id"] and m.get("kind") == "system",
                      what="the removal on chat2")
        answer = socket_b.call("sendMessage", {"chatId": group["id"], "text": "still here?",
                                              "clientMessageId": uuid.uuid4().hex}, timeout=10)
        assert answer.get("error", {}).get("code") == "chat_not_found", answer
        after = ack_ok(socket_a.call("sendMessage", {"chatId": group["id"], "text": "after",
                                                     "clientMessageId": uuid.uuid4().hex}, timeout=10), "send")
        events_c.wait("newMessage", lambda m: m["id"] == after["message"]["id"], what="the next message on chat2")
        time.sleep(0.5)
        heard = [m["seq"] for m in events_b.of("newMessage") if m["chatId"] == group["id"]]
        assert heard == [1], f"Bob heard the group after his removal: {heard}"
    finally:
        disconnect_socket(cluster, socket_a)
        disconnect_socket(cluster, socket_b)
        disconnect_socket(cluster, socket_c)
