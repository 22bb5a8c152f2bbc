"""The chat service's HTTP routes against the real binary, on SQLite and PostgreSQL: what needs real sockets.

Races between clients (opening a direct chat from both sides, replays of one clientMessageId, concurrent senders),
an upload far over the limit, and image URLs made absolute with PARLEY_PUBLIC_URL and fetched by a stock client.
The routes' contract (validation, error shapes, authorization, pages, shapes of answers) is tested in-process in
Tests/ParleyAppTests (swift test), on SQLite and PostgreSQL too.
"""

from __future__ import annotations

import struct
import threading
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness import (
    HTTP_TIMEOUT,
    Account,
    assert_chat_summary,
    assert_error,
    assert_message,
    expect_status,
    free_port,
    introduce,
    sign_in,
)

API = "/api/v1"


# ---------------------------------------------------------------------------------------------------------------
# Helpers


def users(server, count: int) -> list[Account]:
    return [sign_in(server) for _ in range(count)]


def open_direct(account: Account, other: Account, status: int | None = None) -> dict:
    response = account.client.post(f"{API}/chats", json={"userId": other.user["id"]})
    if status is None:
        assert response.status_code in {200, 201}, response.text
        body = expect_status(response, response.status_code)
    else:
        body = expect_status(response, status)
    assert isinstance(body, dict) and set(body) == {"chat"}, body
    assert_chat_summary(body["chat"])
    return body["chat"]


def create_group(account: Account, name: str, members: list[Account]) -> dict:
    introduce(account, members)
    body = expect_status(account.client.post(f"{API}/chats", json={"name": name,
                                                                    "memberIds": [m.user["id"] for m in members]}), 201)
    assert isinstance(body, dict) and set(body) == {"chat"}, body
    assert_chat_summary(body["chat"])
    return body["chat"]


def post_message(account: Account, chat_id: str, text=None, client_message_id=None, **kwargs):
    body = {}
    if text is not None:
        body["text"] = text
    if client_message_id is not None:
        body["clientMessageId"] = client_message_id
    return account.client.post(f"{API}/chats/{chat_id}/messages", json=body, **kwargs)


def send(account: Account, chat_id: str, text: str = "hello", client_message_id: str | None = None,
         status: int = 201) -> dict:
    client_message_id = client_message_id or uuid.uuid4().hex
    body = expect_status(post_message(account, chat_id, text, client_message_id), status)
    assert isinstance(body, dict) and set(body) == {"message"}, body
    assert_message(body["message"])
    return body["message"]


def history(account: Account, chat_id: str, **params) -> dict:
    body = expect_status(account.client.get(f"{API}/chats/{chat_id}/messages", params=params), 200)
    assert isinstance(body, dict) and set(body) == {"messages", "hasMore"}, body
    assert isinstance(body["hasMore"], bool), body
    for message in body["messages"]:
        assert_message(message)
        assert message["chatId"] == chat_id, message
    seqs = [message["seq"] for message in body["messages"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), f"history not in ascending seq: {seqs}"
    return body


def seqs_of(page: dict) -> list[int]:
    return [message["seq"] for message in page["messages"]]


def chat_page(account: Account, **params) -> dict:
    body = expect_status(account.client.get(f"{API}/chats", params=params), 200)
    assert isinstance(body, dict) and {"chats"} <= set(body) <= {"chats", "nextCursor"}, body
    assert body.get("nextCursor") is None or (isinstance(body["nextCursor"], str) and body["nextCursor"]), body
    for chat in body["chats"]:
        assert_chat_summary(chat)
    return body


def chat_ids(account: Account, **params) -> list[str]:
    return [chat["id"] for chat in chat_page(account, limit=200, **params)["chats"]]


def get_chat(account: Account, chat_id: str) -> dict:
    chat = expect_status(account.client.get(f"{API}/chats/{chat_id}"), 200)
    assert_chat_summary(chat)
    return chat


def read_state(chat: dict) -> dict[str, int]:
    return {state["userId"]: state["lastReadSeq"] for state in chat["readState"]}


def describe_statuses(responses: list[requests.Response]) -> str:
    """The statuses of concurrent attempts and the body of the first unexpected one."""
    odd = [response for response in responses if response.status_code not in {200, 201}]
    first = odd[0].text[:300] if odd else ""
    return f"statuses {sorted(r.status_code for r in responses)}; first other answer: {first}"


# Images, built byte by byte


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def make_png(width: int = 3, height: int = 2) -> bytes:
    """A real 8-bit RGB PNG: every row is filter byte 0, then `width` pixels."""
    rows = b"".join(b"\x00" + b"".join(bytes((200, (40 * x) % 256, (90 * y) % 256)) for x in range(width))
                    for y in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + png_chunk(b"IDAT", zlib.compress(rows))
            + png_chunk(b"IEND", b""))


def upload(account: Account, chat_id: str, data: bytes, *, filename: str = "picture.png",
           content_type: str = "image/png", text: str | None = None,
           client_message_id: str | None = None) -> requests.Response:
    fields = {"clientMessageId": client_message_id or uuid.uuid4().hex}
    if text is not None:
        fields["text"] = text
    return account.client.post(f"{API}/chats/{chat_id}/messages", data=fields,
                               files={"image": (filename, data, content_type)})


# ---------------------------------------------------------------------------------------------------------------
# Direct chats


def test_opening_a_direct_chat_from_both_sides_at_once_makes_one_chat(server):
    # A race is a matter of chance: a few pairs, each opening from both sides at the same moment.
    threads = 16
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(6):
            alice, bob = users(server, 2)
            barrier = threading.Barrier(threads)

            def attempt(index: int) -> requests.Response:
                me, other = (alice, bob) if index % 2 == 0 else (bob, alice)
                barrier.wait()
                return me.client.post(f"{API}/chats", json={"userId": other.user["id"]})

            responses = list(pool.map(attempt, range(threads)))

            statuses = sorted(response.status_code for response in responses)
            assert set(statuses) <= {200, 201}, describe_statuses(responses)
            assert statuses.count(201) == 1, statuses
            assert len({response.json()["chat"]["id"] for response in responses}) == 1
            assert len(chat_ids(alice)) == 1 and len(chat_ids(bob)) == 1


# ---------------------------------------------------------------------------------------------------------------
# Sending messages


def test_concurrent_replays_of_one_client_message_id_create_one_message(server):
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]
    barrier = threading.Barrier(8)

    def attempt(_):
        barrier.wait()
        return post_message(alice, chat_id, "sent by a flaky network", "storm-1")

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(attempt, range(8)))

    statuses = sorted(response.status_code for response in responses)
    assert set(statuses) <= {200, 201}, describe_statuses(responses)
    assert statuses.count(201) == 1, statuses
    assert len({response.json()["message"]["id"] for response in responses}) == 1
    assert seqs_of(history(alice, chat_id)) == [1]
    assert send(alice, chat_id, "next one")["seq"] == 2, "a failed duplicate must not use up a seq"


# ---------------------------------------------------------------------------------------------------------------
# Concurrency


def test_concurrent_senders_get_seqs_1_to_90_without_gaps(server):
    members = users(server, 3)
    chat_id = create_group(members[0], "Busy", members[1:])["id"]
    barrier = threading.Barrier(3)

    def burst(account: Account) -> list[dict]:
        barrier.wait()
        return [send(account, chat_id, f"{account.user['id'][-6:]} #{index}", f"burst-{index}")
                for index in range(30)]

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(burst, members))

    page = history(members[0], chat_id, limit=200)
    assert seqs_of(page) == list(range(1, 91)), "seqs must be exactly 1..90"
    assert page["hasMore"] is False
    returned = sorted(message["seq"] for messages in results for message in messages)
    assert returned == list(range(1, 91))
    for account, messages in zip(members, results):
        own = [message["seq"] for message in messages]
        assert own == sorted(own), "one sender's messages keep their order"
        assert {m["id"] for m in page["messages"] if m["senderId"] == account.user["id"]} == {m["id"] for m in messages}
    chat = get_chat(members[1], chat_id)
    assert chat["lastMessage"]["seq"] == 90
    assert chat["unreadCount"] == 90 - read_state(chat)[members[1].user["id"]]


# ---------------------------------------------------------------------------------------------------------------
# Images


def test_an_upload_over_the_limit_is_413(launcher, backend):
    server = launcher.parley(backend=backend, env={"PARLEY_MAX_UPLOAD_BYTES": "2048"})
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]
    fits = make_png(3, 2)
    fits += b"\x00" * (2048 - len(fits))
    too_big = fits + b"\x00"
    huge = make_png(3, 2) + b"\x00" * (512 * 1024)

    ok = expect_status(upload(alice, chat_id, fits, client_message_id="fits"), 201)["message"]
    assert ok["image"]["size"] == 2048

    assert assert_error(upload(alice, chat_id, too_big, client_message_id="too-big"), 413) == "file_too_large"
    try:
        response = upload(alice, chat_id, huge, client_message_id="huge")
    except requests.ConnectionError as error:  # the server may stop reading; it must still answer 413 first
        pytest.fail(f"a huge upload got no 413 answer but {error!r}")
    assert_error(response, 413)
    assert seqs_of(history(bob, chat_id)) == [1]
    # The server still answers afterwards.
    assert send(alice, chat_id, "still here")["seq"] == 2


def test_image_urls_are_absolute_with_a_public_url(launcher, backend):
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    server = launcher.parley(backend=backend, env={"PARLEY_PORT": str(port), "PARLEY_PUBLIC_URL": public})
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]
    data = make_png(2, 2)

    url = expect_status(upload(alice, chat_id, data), 201)["message"]["image"]["url"]

    assert url.startswith(f"{public}{API}/files/"), url
    served = requests.get(url, timeout=HTTP_TIMEOUT)
    assert served.status_code == 200 and served.content == data
    assert served.headers["Content-Type"].split(";")[0] == "image/png"


ROUTES = [
    ("POST", "/api/v1/chats"),
    ("GET", "/api/v1/chats"),
    ("GET", "/api/v1/chats/{chat}"),
    ("GET", "/api/v1/chats/{chat}/messages"),
    ("POST", "/api/v1/chats/{chat}/messages"),
    ("POST", "/api/v1/chats/{chat}/messages#multipart"),
    ("POST", "/api/v1/chats/{chat}/read"),
]
