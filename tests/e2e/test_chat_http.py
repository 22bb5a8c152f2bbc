"""The chat service's HTTP routes against the real binary, on SQLite and PostgreSQL, and their hostile cases.

Chats (direct and group), the chat list and its pages, messages and their history, read pointers, image uploads
and their signed URLs; several signed-in users per test, each with a fresh address.
"""

from __future__ import annotations

import base64
import json
import struct
import threading
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests

from harness import (
    HTTP_TIMEOUT,
    JWT,
    Account,
    assert_chat_summary,
    assert_error,
    assert_message,
    assert_public_user,
    expect_status,
    free_port,
    sign_in,
    sign_jwt,
)

API = "/api/v1"
UNKNOWN_ID = "0190f3a0-0000-7000-8000-000000000000"
XSS = "<script>alert(1)</script>"


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


def mark_read(account: Account, chat_id: str, seq) -> requests.Response:
    return account.client.post(f"{API}/chats/{chat_id}/read", json={"seq": seq})


def expect_read(account: Account, chat_id: str, seq) -> None:
    response = mark_read(account, chat_id, seq)
    assert response.status_code == 204, response.text
    assert response.content == b""


def describe_statuses(responses: list[requests.Response]) -> str:
    """The statuses of concurrent attempts and the body of the first unexpected one."""
    odd = [response for response in responses if response.status_code not in {200, 201}]
    first = odd[0].text[:300] if odd else ""
    return f"statuses {sorted(r.status_code for r in responses)}; first other answer: {first}"


def raw_json(client, method: str, path: str, payload) -> requests.Response:
    return client.request(method, path, data=json.dumps(payload), headers={"Content-Type": "application/json"})


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


GIF_3X2 = base64.b64decode("R0lGODlhAwACAIAAAP///wAAACH5BAAAAAAALAAAAAADAAIAAAICjAsAOw==")
# SOI, an APP0 segment, SOF0 (8 bits, height 16, width 32, one component), EOI.
JPEG_32X16 = bytes([0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00,
                    0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x10, 0x00, 0x20, 0x01, 0x01, 0x11, 0x00,
                    0xFF, 0xD9])
# RIFF/WEBP with a lossless VP8L chunk: width-1 = 4 and height-1 = 2 in its 14-bit fields.
WEBP_5X3 = (b"RIFF" + bytes([0x1A, 0, 0, 0]) + b"WEBPVP8L" + bytes([0x0D, 0, 0, 0, 0x2F])
            + bytes([0x04, 0x80, 0x00, 0x00, 0, 0, 0, 0, 0]))

IMAGES = {
    "png": (make_png(3, 2), "image/png", 3, 2),
    "jpeg": (JPEG_32X16, "image/jpeg", 32, 16),
    "gif": (GIF_3X2, "image/gif", 3, 2),
    "webp": (WEBP_5X3, "image/webp", 5, 3),
}

NOT_IMAGES = {
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="3" height="2"/></svg>',
    "html": b"<!doctype html><html><body><script>alert(1)</script></body></html>",
    "text": b"just some plain text, not a picture at all",
    "truncated-png": b"\x89PNG\r\n\x1a\n\x00\x00",
}


def upload(account: Account, chat_id: str, data: bytes, *, filename: str = "picture.png",
           content_type: str = "image/png", text: str | None = None,
           client_message_id: str | None = None) -> requests.Response:
    fields = {"clientMessageId": client_message_id or uuid.uuid4().hex}
    if text is not None:
        fields["text"] = text
    return account.client.post(f"{API}/chats/{chat_id}/messages", data=fields,
                               files={"image": (filename, data, content_type)})


def fetch_file(server, url: str) -> requests.Response:
    """GETs a (possibly relative) signed file URL without any Authorization header."""
    if url.startswith("/"):
        return server.client.get(url, token=None)
    absolute = urljoin(server.base_url + "/", url)
    response = requests.get(absolute, timeout=HTTP_TIMEOUT)
    assert response.headers.get("X-Request-Id"), dict(response.headers)
    return response


def file_url_parts(url: str) -> tuple[str, dict[str, str]]:
    """The file id and the query (exp, sig) of a signed file URL."""
    parts = urlsplit(url)
    prefix = f"{API}/files/"
    assert parts.path.startswith(prefix), url
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    assert set(query) == {"exp", "sig"}, url
    return parts.path[len(prefix):], query


def file_path(file_id: str, query: dict[str, str]) -> str:
    return f"{API}/files/{file_id}" + (f"?{urlencode(query)}" if query else "")


# ---------------------------------------------------------------------------------------------------------------
# Direct chats


def test_a_direct_chat_is_created_once_and_found_from_both_sides(server):
    alice, bob = users(server, 2)

    created = open_direct(alice, bob, status=201)
    again = open_direct(alice, bob, status=200)
    from_bob = open_direct(bob, alice, status=200)

    assert created["kind"] == "direct" and created.get("name") is None, created
    assert {member["id"] for member in created["members"]} == {alice.user["id"], bob.user["id"]}
    assert again["id"] == created["id"] == from_bob["id"]
    assert created["unreadCount"] == 0 and created.get("lastMessage") is None, created
    assert read_state(created) == {alice.user["id"]: 0, bob.user["id"]: 0}
    assert chat_ids(alice) == [created["id"]] and chat_ids(bob) == [created["id"]]


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


def test_a_direct_chat_with_yourself_is_400(server):
    alice = sign_in(server)

    response = alice.client.post(f"{API}/chats", json={"userId": alice.user["id"]})

    assert assert_error(response, 400) == "invalid_members"
    assert chat_ids(alice) == []


@pytest.mark.parametrize("user_id", [UNKNOWN_ID, str(uuid.uuid4()), "not-an-id", "../../etc/passwd", "' OR 1=1 --",
                                     "x" * 300],
                         ids=["unknown-v7", "unknown-v4", "malformed", "path", "sql", "long"])
def test_a_direct_chat_with_an_unknown_user_is_404(server, user_id):
    alice = sign_in(server)

    response = alice.client.post(f"{API}/chats", json={"userId": user_id})

    assert assert_error(response, 404) == "user_not_found"


@pytest.mark.parametrize("payload", [
    "both",
    "userId-and-name",
    "userId-and-memberIds",
    {},
    {"name": "Lonely name"},
    {"memberIds": []},
    {"userId": 5},
    {"userId": None, "name": None, "memberIds": None},
    {"userId": ["x"]},
    {"userId": {"id": "x"}},
    {"name": 5, "memberIds": []},
    {"name": "Team", "memberIds": "abc"},
    {"name": "Team", "memberIds": [1, 2]},
    {"name": ["Team"], "memberIds": []},
    [],
    "userId",
    None,
], ids=["both", "userId-and-name", "userId-and-memberIds", "empty", "name-only", "memberIds-only", "userId-number",
        "all-null", "userId-list", "userId-object", "name-number", "memberIds-string", "memberIds-numbers",
        "name-list", "array-body", "string-body", "null-body"])
def test_create_chat_rejects_malformed_bodies(server, payload):
    alice, bob = users(server, 2)
    if payload == "both":
        payload = {"userId": bob.user["id"], "name": "Team", "memberIds": [bob.user["id"]]}
    elif payload == "userId-and-name":
        payload = {"userId": bob.user["id"], "name": "Team"}
    elif payload == "userId-and-memberIds":
        payload = {"userId": bob.user["id"], "memberIds": [bob.user["id"]]}

    response = raw_json(alice.client, "POST", f"{API}/chats", payload)

    assert_error(response, 400)
    assert chat_ids(alice) == [] and chat_ids(bob) == []


@pytest.mark.parametrize("raw", [b'{"userId": ', b"not json", b"", b'{"userId": "x"} trailing'],
                         ids=["truncated", "not-json", "empty", "trailing"])
def test_create_chat_rejects_invalid_json(server, raw):
    alice = sign_in(server)

    assert_error(alice.client.post(f"{API}/chats", data=raw, headers={"Content-Type": "application/json"}), 400)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          None], ids=["text", "form", "multipart", "none"])
def test_create_chat_with_a_non_json_media_type_is_415(server, content_type):
    alice, bob = users(server, 2)
    headers = {"Content-Type": content_type} if content_type else {}

    response = alice.client.post(f"{API}/chats", data=json.dumps({"userId": bob.user["id"]}).encode(),
                                 headers=headers)

    assert assert_error(response, 415) == "unsupported_media_type"
    assert chat_ids(alice) == []


# ---------------------------------------------------------------------------------------------------------------
# Group chats


def test_a_group_includes_its_creator_and_collapses_duplicates(server):
    alice, bob, carol = users(server, 3)
    ids = [bob.user["id"], carol.user["id"], bob.user["id"], alice.user["id"], carol.user["id"]]

    body = expect_status(alice.client.post(f"{API}/chats", json={"name": "  Weekend plans  ", "memberIds": ids}), 201)

    chat = body["chat"]
    assert_chat_summary(chat)
    assert chat["kind"] == "group" and chat["name"] == "Weekend plans", chat
    member_ids = [member["id"] for member in chat["members"]]
    assert sorted(member_ids) == sorted({alice.user["id"], bob.user["id"], carol.user["id"]}), member_ids
    assert read_state(chat) == {alice.user["id"]: 0, bob.user["id"]: 0, carol.user["id"]: 0}
    for account in (alice, bob, carol):
        assert get_chat(account, chat["id"])["id"] == chat["id"]
        assert chat_ids(account) == [chat["id"]]


def test_groups_are_not_deduplicated_like_direct_chats(server):
    alice, bob = users(server, 2)

    first = create_group(alice, "Same name", [bob])
    second = create_group(alice, "Same name", [bob])

    assert first["id"] != second["id"]


@pytest.mark.parametrize("name", ["x" * 100, "é" * 100, "🎉 party", XSS], ids=["100-ascii", "100-accented", "emoji",
                                                                             "html"])
def test_group_names_of_1_to_100_characters_are_kept_verbatim(server, name):
    alice, bob = users(server, 2)

    chat = create_group(alice, name, [bob])

    assert chat["name"] == name
    assert get_chat(bob, chat["id"])["name"] == name


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "bad\u0000name", "bad\u0007name", "two\nlines"],
                         ids=["empty", "blank", "101-chars", "nul", "bell", "newline"])
def test_group_names_that_are_empty_too_long_or_with_control_characters_are_400(server, name):
    alice, bob = users(server, 2)

    response = alice.client.post(f"{API}/chats", json={"name": name, "memberIds": [bob.user["id"]]})

    assert assert_error(response, 400) == "invalid_name"
    assert chat_ids(alice) == [] and chat_ids(bob) == []


@pytest.mark.parametrize("bad", [UNKNOWN_ID, "not-an-id"], ids=["unknown", "malformed"])
def test_a_group_with_an_unknown_member_is_404(server, bad):
    alice, bob = users(server, 2)

    response = alice.client.post(f"{API}/chats", json={"name": "Team", "memberIds": [bob.user["id"], bad]})

    assert assert_error(response, 404) == "user_not_found"
    assert chat_ids(alice) == [] and chat_ids(bob) == []


@pytest.mark.parametrize("members", ["none", "self", "self-twice"])
def test_a_group_without_another_member_is_400(server, members):
    alice = sign_in(server)
    ids = {"none": [], "self": [alice.user["id"]], "self-twice": [alice.user["id"]] * 2}[members]

    response = alice.client.post(f"{API}/chats", json={"name": "Just me", "memberIds": ids})

    assert assert_error(response, 400) == "invalid_members"
    assert chat_ids(alice) == []


# ---------------------------------------------------------------------------------------------------------------
# The chat list


def test_the_chat_list_is_newest_activity_first(server):
    me, x, y, z = users(server, 4)
    chats = []
    for other in (x, y, z):
        chats.append(open_direct(me, other, status=201)["id"])
        time.sleep(0.01)  # distinct activity times
    assert chat_ids(me) == chats[::-1]

    send(x, chats[0], "back to the oldest chat")

    assert chat_ids(me) == [chats[0], chats[2], chats[1]]
    time.sleep(0.01)
    send(me, chats[1], "and now the middle one")
    assert chat_ids(me) == [chats[1], chats[0], chats[2]]
    # Opening an existing direct chat again is not activity.
    time.sleep(0.01)
    open_direct(me, z, status=200)
    assert chat_ids(me) == [chats[1], chats[0], chats[2]]


def test_the_chat_list_carries_last_message_unread_count_and_read_state(server):
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]
    for index in range(3):
        last = send(alice, chat_id, f"message {index + 1}")

    [for_bob] = chat_page(bob)["chats"]
    [for_alice] = chat_page(alice)["chats"]

    assert for_bob["lastMessage"] == last and for_alice["lastMessage"] == last
    assert for_bob["unreadCount"] == 3
    assert for_alice["unreadCount"] == 0, "a sender has read their own messages"
    assert read_state(for_bob) == {alice.user["id"]: 3, bob.user["id"]: 0}

    expect_read(bob, chat_id, 2)

    [for_bob] = chat_page(bob)["chats"]
    assert for_bob["unreadCount"] == 1
    assert read_state(for_bob) == {alice.user["id"]: 3, bob.user["id"]: 2}
    assert read_state(chat_page(alice)["chats"][0]) == {alice.user["id"]: 3, bob.user["id"]: 2}
    single = get_chat(bob, chat_id)
    assert single == for_bob


def test_the_chat_list_shows_members_public_profiles_without_emails(server):
    alice, bob, carol = users(server, 3)
    expect_status(bob.client.patch(f"{API}/me", json={"name": "Bob Builder"}), 200)
    create_group(alice, "Profiles", [bob, carol])
    open_direct(alice, bob)

    response = alice.client.get(f"{API}/chats")

    body = expect_status(response, 200)
    for account in (alice, bob, carol):
        assert account.email not in response.text, f"{account.email} leaked in the chat list"
    for chat in body["chats"]:
        for member in chat["members"]:
            assert_public_user(member)
        names = {member["id"]: member["name"] for member in chat["members"]}
        assert names[bob.user["id"]] == "Bob Builder"
        assert names[alice.user["id"]] == alice.user["name"]


def test_the_chat_list_pages_with_limit_and_next_cursor(server):
    me, other = users(server, 2)
    created = [create_group(me, f"Group {index}", [other])["id"] for index in range(7)]
    time.sleep(0.01)  # later than every creation, so the moved chat is surely first
    send(other, created[2], "activity in the middle")
    everything = chat_ids(me)
    assert sorted(everything) == sorted(created)

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = chat_page(me, **params)
        pages += 1
        assert len(page["chats"]) <= 3, page
        seen += [chat["id"] for chat in page["chats"]]
        cursor = page.get("nextCursor")
        if not cursor:
            break
        assert pages < 10, "the cursor never ends"

    assert pages == 3
    assert seen == everything, "pages must walk the same order as one big page, without gaps or duplicates"
    assert len(set(seen)) == len(seen) == 7
    assert seen[0] == created[2]
    # Exactly a page: the last full page may or may not offer a cursor, but the next page is then empty.
    first_six = chat_page(me, limit=6)
    assert [chat["id"] for chat in first_six["chats"]] == everything[:6]
    rest = chat_page(me, limit=6, cursor=first_six["nextCursor"])
    assert [chat["id"] for chat in rest["chats"]] == everything[6:]
    assert rest.get("nextCursor") is None
    # The default limit (50) holds all seven, with no cursor.
    default = chat_page(me)
    assert [chat["id"] for chat in default["chats"]] == everything and default.get("nextCursor") is None


@pytest.mark.parametrize("limit", ["0", "201", "x", "-1", "1.5", ""], ids=["0", "201", "x", "negative", "fraction",
                                                                            "empty"])
def test_the_chat_list_rejects_a_bad_limit(server, limit):
    alice = sign_in(server)

    response = alice.client.get(f"{API}/chats?limit={limit}")

    assert assert_error(response, 400) == "invalid_limit"


@pytest.mark.parametrize("limit", ["1", "200"])
def test_the_chat_list_accepts_limits_1_and_200(server, limit):
    alice, bob = users(server, 2)
    open_direct(alice, bob)

    assert len(chat_page(alice, limit=limit)["chats"]) == 1


@pytest.mark.parametrize("cursor", [
    "garbage",
    "!!!!",
    base64.urlsafe_b64encode(b"not json").decode().rstrip("="),
    base64.urlsafe_b64encode(b'{"u":"yesterday","i":5}').decode().rstrip("="),
    base64.urlsafe_b64encode(b"[1,2]").decode().rstrip("="),
    "A" * 600,
], ids=["garbage", "punctuation", "base64-not-json", "wrong-types", "array", "long"])
def test_the_chat_list_rejects_a_garbage_cursor(server, cursor):
    alice = sign_in(server)

    response = alice.client.get(f"{API}/chats", params={"cursor": cursor})

    assert assert_error(response, 400) == "invalid_cursor"


# ---------------------------------------------------------------------------------------------------------------
# One chat


def test_get_chat_answers_members_only(server):
    alice, bob, mallory = users(server, 3)
    chat = create_group(alice, "Private", [bob])

    assert get_chat(bob, chat["id"])["id"] == chat["id"]
    assert get_chat(alice, chat["id"]) == chat

    assert assert_error(mallory.client.get(f"{API}/chats/{chat['id']}"), 404) == "chat_not_found"


@pytest.mark.parametrize("chat_id", [UNKNOWN_ID, str(uuid.uuid4()), "not-an-id", "%27%20OR%201%3D1"],
                         ids=["unknown-v7", "unknown-v4", "malformed", "sql"])
def test_get_an_unknown_chat_is_404(server, chat_id):
    alice = sign_in(server)

    assert_error(alice.client.get(f"{API}/chats/{chat_id}"), 404)


# ---------------------------------------------------------------------------------------------------------------
# Sending messages


def test_messages_get_dense_seqs_from_1(server):
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]

    sent = [send(sender, chat_id, f"message {index}") for index, sender in enumerate([alice, bob, alice, alice, bob])]

    assert [message["seq"] for message in sent] == [1, 2, 3, 4, 5]
    assert [message["senderId"] for message in sent] == [alice.user["id"], bob.user["id"], alice.user["id"],
                                                        alice.user["id"], bob.user["id"]]
    for index, message in enumerate(sent):
        assert message["chatId"] == chat_id and message["kind"] == "text" and message["text"] == f"message {index}"
        assert message.get("image") is None
    assert history(alice, chat_id)["messages"] == sent
    # Seqs are per chat: another chat starts again at 1.
    other = create_group(alice, "Fresh", [bob])["id"]
    assert send(bob, other)["seq"] == 1


def test_a_replayed_client_message_id_returns_the_same_message(server):
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]
    first = send(alice, chat_id, "only once", client_message_id="retry-me-1")
    send(bob, chat_id, "in between")

    replayed = send(alice, chat_id, "only once", client_message_id="retry-me-1", status=200)
    changed_text = send(alice, chat_id, "a different text", client_message_id="retry-me-1", status=200)

    assert replayed == first and changed_text == first
    assert first["clientMessageId"] == "retry-me-1"
    page = history(bob, chat_id)
    assert seqs_of(page) == [1, 2]
    assert [message["text"] for message in page["messages"]] == ["only once", "in between"]
    # The id is the sender's: another member may use the same one.
    bobs = send(bob, chat_id, "bob's own", client_message_id="retry-me-1", status=201)
    assert bobs["seq"] == 3 and bobs["senderId"] == bob.user["id"]


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


def test_a_message_without_a_client_message_id_is_accepted(server):
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]

    body = expect_status(alice.client.post(f"{API}/chats/{chat_id}/messages", json={"text": "no id"}), 201)

    assert body["message"]["text"] == "no id" and body["message"].get("clientMessageId") is None
    assert body["message"]["seq"] == 1


@pytest.mark.parametrize("text", ["a" * 4000, "é" * 4000, "line one\nline two\ttabbed\r\n", "  padded  ", "😀"],
                         ids=["4000-ascii", "4000-accented", "newline-tab", "padded", "emoji"])
def test_texts_up_to_4000_characters_are_kept_verbatim(server, text):
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]

    message = send(alice, chat_id, text)

    assert message["text"] == text
    assert history(bob, chat_id)["messages"][0]["text"] == text


def test_html_is_stored_and_returned_verbatim_as_text(server):
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]
    payload = XSS + ' <img src=x onerror="alert(2)"> &amp; "quotes" \'single\''

    message = send(alice, chat_id, payload)

    assert message["text"] == payload
    page_response = bob.client.get(f"{API}/chats/{chat_id}/messages")
    assert page_response.headers["Content-Type"].startswith("application/json")
    assert page_response.json()["messages"][0]["text"] == payload
    assert chat_page(bob)["chats"][0]["lastMessage"]["text"] == payload


@pytest.mark.parametrize("body", [
    {"text": "a" * 4001, "clientMessageId": "c1"},
    {"text": "", "clientMessageId": "c1"},
    {"text": "   ", "clientMessageId": "c1"},
    {"text": " \n\t\r\n ", "clientMessageId": "c1"},
    {"text": "\u00a0\u3000", "clientMessageId": "c1"},
    {"clientMessageId": "c1"},
    {"text": None, "clientMessageId": "c1"},
    {},
    {"text": "nul \u0000 inside", "clientMessageId": "c1"},
    {"text": "bell \u0007", "clientMessageId": "c1"},
    {"text": "escape \u001b[31mred", "clientMessageId": "c1"},
    {"text": "delete \u007f", "clientMessageId": "c1"},
    {"text": "c1 control \u0085", "clientMessageId": "c1"},
    {"text": 5, "clientMessageId": "c1"},
    {"text": True, "clientMessageId": "c1"},
    {"text": ["hi"], "clientMessageId": "c1"},
    {"text": {"body": "hi"}, "clientMessageId": "c1"},
    {"text": "hi", "clientMessageId": 5},
    {"text": "hi", "clientMessageId": ""},
    {"text": "hi", "clientMessageId": "x" * 101},
    {"text": "hi", "clientMessageId": "has space"},
    {"text": "hi", "clientMessageId": "ünïcode"},
    [],
    "hi",
    None,
], ids=["4001-chars", "empty", "spaces", "whitespace-mix", "unicode-spaces", "missing-text", "null-text",
        "empty-object", "nul", "bell", "escape", "delete", "c1-control", "number", "bool", "list", "object",
        "cmid-number", "cmid-empty", "cmid-101", "cmid-space", "cmid-non-ascii", "array-body", "string-body",
        "null-body"])
def test_send_rejects_bad_messages_with_400(server, body):
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]

    response = raw_json(alice.client, "POST", f"{API}/chats/{chat_id}/messages", body)

    assert_error(response, 400)
    assert history(alice, chat_id)["messages"] == []


def test_send_error_codes(server):
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]

    assert assert_error(post_message(alice, chat_id, "a" * 4001, "c"), 400) == "text_too_long"
    assert assert_error(post_message(alice, chat_id, "   ", "c"), 400) == "invalid_text"
    assert assert_error(post_message(alice, chat_id, "a\u0000b", "c"), 400) == "invalid_text"
    assert assert_error(post_message(alice, chat_id, "hi", "x" * 101), 400) == "invalid_client_message_id"


@pytest.mark.parametrize("raw", [b'{"text": ', b"not json", b"", b'{"text":"hi"} trailing'],
                         ids=["truncated", "not-json", "empty", "trailing"])
def test_send_rejects_invalid_json(server, raw):
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]

    response = alice.client.post(f"{API}/chats/{chat_id}/messages", data=raw,
                                 headers={"Content-Type": "application/json"})

    assert_error(response, 400)


def test_send_with_a_non_json_media_type_is_415(server):
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]

    response = alice.client.post(f"{API}/chats/{chat_id}/messages", data='{"text":"hi","clientMessageId":"a"}',
                                 headers={"Content-Type": "text/plain"})

    assert assert_error(response, 415) == "unsupported_media_type"
    assert history(alice, chat_id)["messages"] == []


def test_a_json_message_body_over_64_kib_is_413(server):
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]

    response = post_message(alice, chat_id, "a" * (65 * 1024), "big-1")

    assert_error(response, 413)
    assert history(alice, chat_id)["messages"] == []


def test_a_non_member_cannot_send(server):
    alice, bob, mallory = users(server, 3)
    chat_id = open_direct(alice, bob)["id"]

    response = post_message(mallory, chat_id, "let me in", "m1")

    assert assert_error(response, 404) == "chat_not_found"
    assert history(alice, chat_id)["messages"] == []
    assert chat_ids(mallory) == []


@pytest.mark.parametrize("chat_id", [UNKNOWN_ID, "not-an-id"], ids=["unknown", "malformed"])
def test_sending_into_an_unknown_chat_is_404(server, chat_id):
    alice = sign_in(server)

    assert assert_error(post_message(alice, chat_id, "hello?", "u1"), 404) == "chat_not_found"


# ---------------------------------------------------------------------------------------------------------------
# History


def test_history_pages_with_before_after_limit_and_has_more(server):
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]
    assert history(bob, chat_id) == {"messages": [], "hasMore": False}
    sent = [send(alice if index % 2 else bob, chat_id, f"m{index + 1}") for index in range(10)]

    latest = history(bob, chat_id)
    assert latest["messages"] == sent and latest["hasMore"] is False

    last3 = history(bob, chat_id, limit=3)
    assert seqs_of(last3) == [8, 9, 10] and last3["hasMore"] is True
    assert seqs_of(page := history(bob, chat_id, before=8, limit=3)) == [5, 6, 7] and page["hasMore"] is True
    assert seqs_of(page := history(bob, chat_id, before=4, limit=3)) == [1, 2, 3] and page["hasMore"] is False
    assert seqs_of(page := history(bob, chat_id, before=1)) == [] and page["hasMore"] is False
    assert seqs_of(page := history(bob, chat_id, before=1000)) == list(range(1, 11)) and page["hasMore"] is False

    # Catching up after a reconnect.
    assert seqs_of(page := history(bob, chat_id, after=7)) == [8, 9, 10] and page["hasMore"] is False
    assert seqs_of(page := history(bob, chat_id, after=2, limit=3)) == [3, 4, 5] and page["hasMore"] is True
    assert seqs_of(page := history(bob, chat_id, after=0)) == list(range(1, 11)) and page["hasMore"] is False
    assert seqs_of(page := history(bob, chat_id, after=10)) == [] and page["hasMore"] is False
    assert seqs_of(history(bob, chat_id, after=2, before=6)) == [3, 4, 5]
    assert history(bob, chat_id, after=3, limit=1)["messages"] == [sent[3]]


def test_walking_history_backwards_has_no_gaps(server):
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]
    for index in range(55):
        send(alice, chat_id, f"n{index + 1}")

    default = history(bob, chat_id)
    assert seqs_of(default) == list(range(6, 56)) and default["hasMore"] is True, "the default page is 50"

    collected: list[int] = []
    before = None
    while True:
        page = history(bob, chat_id, limit=7, **({"before": before} if before else {}))
        collected = seqs_of(page) + collected
        if not page["hasMore"]:
            break
        before = page["messages"][0]["seq"]
    assert collected == list(range(1, 56))

    forward: list[int] = []
    after = 0
    while True:
        page = history(bob, chat_id, after=after, limit=20)
        forward += seqs_of(page)
        if not page["hasMore"]:
            break
        after = page["messages"][-1]["seq"]
    assert forward == list(range(1, 56))


@pytest.mark.parametrize("query", ["before=-1", "after=-1", "before=x", "after=abc", "before=1.5", "after=",
                                   "before=99999999999999999999", "limit=0", "limit=201", "limit=x"],
                         ids=["before-negative", "after-negative", "before-garbage", "after-garbage",
                              "before-fraction", "after-empty", "before-overflow", "limit-0", "limit-201", "limit-x"])
def test_history_rejects_bad_bounds(server, query):
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]
    send(alice, chat_id)

    response = alice.client.get(f"{API}/chats/{chat_id}/messages?{query}")

    assert assert_error(response, 400) in {"invalid_seq", "invalid_limit"}


def test_history_is_for_members_only(server):
    alice, bob, mallory = users(server, 3)
    chat_id = open_direct(alice, bob)["id"]
    send(alice, chat_id, "secret")

    response = mallory.client.get(f"{API}/chats/{chat_id}/messages")

    assert assert_error(response, 404) == "chat_not_found"
    assert "secret" not in response.text
    assert_error(mallory.client.get(f"{API}/chats/{chat_id}/messages?after=0"), 404)
    assert_error(alice.client.get(f"{API}/chats/{UNKNOWN_ID}/messages"), 404)
    assert_error(alice.client.get(f"{API}/chats/not-an-id/messages"), 404)


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
# Read pointers


def test_the_read_pointer_moves_forward_only_and_is_capped(server):
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]
    for index in range(5):
        send(alice, chat_id, f"r{index}")

    expect_read(bob, chat_id, 4)
    assert read_state(get_chat(alice, chat_id))[bob.user["id"]] == 4
    assert get_chat(bob, chat_id)["unreadCount"] == 1

    expect_read(bob, chat_id, 2)
    expect_read(bob, chat_id, 0)
    assert read_state(get_chat(alice, chat_id))[bob.user["id"]] == 4, "a lower seq must not move the pointer back"
    assert get_chat(bob, chat_id)["unreadCount"] == 1

    expect_read(bob, chat_id, 999_999)
    chat = get_chat(bob, chat_id)
    assert read_state(chat)[bob.user["id"]] == 5, "a seq beyond the last message is capped at the last"
    assert chat["unreadCount"] == 0
    send(alice, chat_id, "one more")
    assert get_chat(bob, chat_id)["unreadCount"] == 1


def test_reading_an_empty_chat_stays_at_0(server):
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]

    expect_read(bob, chat_id, 10)

    chat = get_chat(bob, chat_id)
    assert read_state(chat)[bob.user["id"]] == 0 and chat["unreadCount"] == 0
    send(alice, chat_id)
    assert get_chat(bob, chat_id)["unreadCount"] == 1


def test_read_is_for_members_only(server):
    alice, bob, mallory = users(server, 3)
    chat_id = open_direct(alice, bob)["id"]
    send(alice, chat_id)

    assert assert_error(mark_read(mallory, chat_id, 1), 404) == "chat_not_found"
    assert assert_error(mark_read(alice, UNKNOWN_ID, 1), 404) == "chat_not_found"
    assert_error(mark_read(alice, "not-an-id", 1), 404)
    assert mallory.user["id"] not in read_state(get_chat(alice, chat_id))


@pytest.mark.parametrize("body", [{"seq": -1}, {"seq": "3"}, {"seq": 1.5}, {"seq": None}, {}, {"seq": [1]},
                                  {"seq": 99999999999999999999999}, [], None],
                         ids=["negative", "string", "fraction", "null", "missing", "list", "overflow", "array",
                              "null-body"])
def test_read_rejects_bad_seqs_with_400(server, body):
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]
    send(alice, chat_id)

    assert_error(raw_json(bob.client, "POST", f"{API}/chats/{chat_id}/read", body), 400)
    assert read_state(get_chat(bob, chat_id))[bob.user["id"]] == 0


def test_read_with_a_non_json_media_type_is_415(server):
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]

    response = bob.client.post(f"{API}/chats/{chat_id}/read", data='{"seq":1}', headers={"Content-Type": "text/plain"})

    assert assert_error(response, 415) == "unsupported_media_type"


# ---------------------------------------------------------------------------------------------------------------
# Images


@pytest.mark.parametrize("kind", list(IMAGES))
def test_an_uploaded_image_is_typed_by_its_bytes_and_served_by_its_signed_url(server, kind):
    data, content_type, width, height = IMAGES[kind]
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]
    # The client claims another type (and name): the bytes decide.
    claimed = "image/gif" if content_type != "image/gif" else "image/png"

    response = upload(alice, chat_id, data, filename="evil.svg", content_type=claimed, text=f"a {kind}",
                      client_message_id=f"img-{kind}")

    message = expect_status(response, 201)["message"]
    assert_message(message)
    assert message["kind"] == "image" and message["text"] == f"a {kind}" and message["seq"] == 1
    assert message["clientMessageId"] == f"img-{kind}"
    image = message["image"]
    assert image["contentType"] == content_type
    assert image["size"] == len(data)
    assert image.get("width") == width and image.get("height") == height
    assert image["url"].startswith(f"{API}/files/"), "without PARLEY_PUBLIC_URL the URL is relative"

    served = fetch_file(server, image["url"])  # no Authorization header: the signature is the permission
    assert served.status_code == 200, served.text[:300]
    assert served.content == data
    assert served.headers["Content-Type"].split(";")[0].strip() == content_type
    assert served.headers.get("X-Content-Type-Options") == "nosniff"

    [seen_by_bob] = history(bob, chat_id)["messages"]
    assert seen_by_bob["image"]["contentType"] == content_type and seen_by_bob["id"] == message["id"]
    assert fetch_file(server, seen_by_bob["image"]["url"]).content == data
    assert chat_page(bob)["chats"][0]["lastMessage"]["id"] == message["id"]


def test_an_image_needs_no_text_and_can_be_replayed(server):
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]
    data = make_png(4, 4)

    first = expect_status(upload(alice, chat_id, data, client_message_id="pic-1"), 201)["message"]
    again = expect_status(upload(alice, chat_id, data, client_message_id="pic-1"), 200)["message"]

    assert first.get("text") is None and first["kind"] == "image", first
    assert again == first
    assert seqs_of(history(bob, chat_id)) == [1]
    # Blank text with an image is just the image.
    blank = expect_status(upload(alice, chat_id, data, text="   "), 201)["message"]
    assert blank.get("text") is None and blank["seq"] == 2


def test_a_multipart_text_message_without_an_image_is_a_text_message(server):
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]

    response = alice.client.post(f"{API}/chats/{chat_id}/messages", files={"text": (None, "from a form"),
                                                                              "clientMessageId": (None, "form-1")})

    message = expect_status(response, 201)["message"]
    assert message["kind"] == "text" and message["text"] == "from a form" and message.get("image") is None


@pytest.mark.parametrize("case", ["nothing", "text-too-long", "control-text", "bad-cmid", "no-boundary", "garbled"])
def test_bad_multipart_uploads_are_400(server, case):
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]
    path = f"{API}/chats/{chat_id}/messages"
    png = make_png()

    if case == "nothing":
        response = alice.client.post(path, files={"other": (None, "x")})
    elif case == "text-too-long":
        response = upload(alice, chat_id, png, text="a" * 4001)
    elif case == "control-text":
        response = upload(alice, chat_id, png, text="bell \u0007")
    elif case == "bad-cmid":
        response = upload(alice, chat_id, png, client_message_id="has space")
    elif case == "no-boundary":
        response = alice.client.post(path, data=b"--x\r\n\r\n--x--\r\n",
                                     headers={"Content-Type": "multipart/form-data"})
    else:
        response = alice.client.post(path, data=b"this is not multipart at all",
                                     headers={"Content-Type": "multipart/form-data; boundary=abc"})

    assert_error(response, 400)
    assert history(alice, chat_id)["messages"] == []


@pytest.mark.parametrize("kind", list(NOT_IMAGES))
@pytest.mark.parametrize("label", ["image/png", "declared"])
def test_non_images_are_415_even_when_labelled_as_png(server, kind, label):
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]
    declared = {"svg": "image/svg+xml", "html": "text/html", "text": "text/plain",
                "truncated-png": "image/png"}[kind]

    response = upload(alice, chat_id, NOT_IMAGES[kind], filename="picture.png",
                      content_type=declared if label == "declared" else "image/png", text="look")

    assert assert_error(response, 415) == "unsupported_media_type"
    assert history(alice, chat_id)["messages"] == []


def test_a_non_member_cannot_upload(server):
    alice, bob, mallory = users(server, 3)
    chat_id = open_direct(alice, bob)["id"]

    response = upload(mallory, chat_id, make_png(), text="let me in")

    assert assert_error(response, 404) == "chat_not_found"
    assert history(alice, chat_id)["messages"] == []
    assert_error(upload(alice, UNKNOWN_ID, make_png()), 404)


def test_forged_file_urls_are_404(server):
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]
    first = expect_status(upload(alice, chat_id, make_png(3, 2)), 201)["message"]["image"]["url"]
    second = expect_status(upload(alice, chat_id, make_png(5, 5)), 201)["message"]["image"]["url"]
    file_id, query = file_url_parts(first)
    other_id, _ = file_url_parts(second)
    assert file_id != other_id
    assert fetch_file(server, file_path(file_id, query)).status_code == 200, "the control: the genuine URL works"

    sig = query["sig"]
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    forgeries = {
        "forged-signature": file_path(file_id, {"exp": query["exp"], "sig": flipped}),
        "truncated-signature": file_path(file_id, {"exp": query["exp"], "sig": sig[:-1]}),
        "empty-signature": file_path(file_id, {"exp": query["exp"], "sig": ""}),
        "missing-signature": file_path(file_id, {"exp": query["exp"]}),
        "changed-exp": file_path(file_id, {"exp": str(int(query["exp"]) + 1), "sig": sig}),
        "later-exp": file_path(file_id, {"exp": str(int(query["exp"]) + 10 * 365 * 86400), "sig": sig}),
        "garbage-exp": file_path(file_id, {"exp": "tomorrow", "sig": sig}),
        "missing-exp": file_path(file_id, {"sig": sig}),
        "no-query": file_path(file_id, {}),
        "other-file": file_path(other_id, query),
        "unknown-file": file_path(UNKNOWN_ID, query),
        "malformed-id": file_path("not-an-id", query),
        "path-traversal": f"{API}/files/..%2F..%2Fparley.sqlite?" + urlencode(query),
    }
    for name, path in forgeries.items():
        response = server.client.get(path, token=None)
        # A percent-encoded slash may already be refused by the router (400); never a file.
        expected = {400, 404} if name == "path-traversal" else {404}
        assert response.status_code in expected, f"{name}: {path} → {response.status_code}"
        assert_error(response, expected)
        assert response.content != make_png(3, 2) and response.content != make_png(5, 5), name


def test_a_file_url_works_with_a_token_too_and_keeps_its_type(server):
    # Sent as GIF bytes labelled PNG: served as image/gif, never as what the client claimed.
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]
    url = expect_status(upload(alice, chat_id, GIF_3X2, content_type="image/png"), 201)["message"]["image"]["url"]

    served = bob.client.get(url)

    assert served.status_code == 200 and served.content == GIF_3X2
    assert served.headers["Content-Type"].split(";")[0].strip() == "image/gif"
    assert served.headers.get("X-Content-Type-Options") == "nosniff"


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


# ---------------------------------------------------------------------------------------------------------------
# Authentication and the error shape


ROUTES = [
    ("POST", "/api/v1/chats"),
    ("GET", "/api/v1/chats"),
    ("GET", "/api/v1/chats/{chat}"),
    ("GET", "/api/v1/chats/{chat}/messages"),
    ("POST", "/api/v1/chats/{chat}/messages"),
    ("POST", "/api/v1/chats/{chat}/messages#multipart"),
    ("POST", "/api/v1/chats/{chat}/read"),
]


@pytest.fixture(scope="module")
def shared_chat(server):
    """Two members and a direct chat with one message, for the token tests."""
    alice, bob = users(server, 2)
    chat_id = open_direct(alice, bob)["id"]
    send(alice, chat_id, "hi")
    return alice, bob, chat_id


@pytest.mark.parametrize("method,route", ROUTES, ids=[f"{m} {r}".replace("/api/v1", "") for m, r in ROUTES])
@pytest.mark.parametrize("token", ["none", "garbage", "empty-bearer", "basic"])
def test_every_chat_route_requires_a_token(server, shared_chat, method, route, token):
    alice, bob, chat_id = shared_chat
    path = route.split("#")[0].format(chat=chat_id)
    headers = {"none": {}, "garbage": {"Authorization": "Bearer garbage"}, "empty-bearer": {"Authorization": "Bearer "},
               "basic": {"Authorization": "Basic dXNlcjpwYXNz"}}[token]
    kwargs: dict = {"headers": headers}
    if route.endswith("#multipart"):
        kwargs["files"] = {"image": ("a.png", make_png(), "image/png")}
        kwargs["data"] = {"text": "sneaky", "clientMessageId": uuid.uuid4().hex}
    elif method == "POST":
        kwargs["json"] = ({"userId": bob.user["id"]} if route == "/api/v1/chats" else
                          {"seq": 1} if route.endswith("/read") else {"text": "sneaky", "clientMessageId": "s"})

    response = server.client.request(method, path, token=None, **kwargs)

    assert_error(response, 401)
    assert seqs_of(history(alice, chat_id)) == [1]


def test_a_token_of_an_unknown_user_sees_nothing(server, shared_chat, jwt_key):
    alice, _, chat_id = shared_chat
    token = JWT.parse(alice.access_token)
    header = {key: value for key, value in token.header.items() if key != "alg"}
    now = int(time.time())
    ghost = sign_jwt(header, dict(token.payload, sub=str(uuid.uuid4()), iat=now, exp=now + 300), jwt_key)

    assert server.client.get(f"{API}/chats", token=ghost).json() in ({"chats": []}, {"chats": [], "nextCursor": None})
    assert_error(server.client.get(f"{API}/chats/{chat_id}", token=ghost), 404)
    assert_error(server.client.post(f"{API}/chats/{chat_id}/messages", token=ghost,
                                    json={"text": "boo", "clientMessageId": "g"}), 404)
    assert seqs_of(history(alice, chat_id)) == [1]


def test_wrong_methods_answer_in_the_error_shape(server, shared_chat):
    alice, _, chat_id = shared_chat

    for method, path in [("DELETE", f"{API}/chats/{chat_id}"), ("PUT", f"{API}/chats/{chat_id}/messages"),
                         ("PATCH", f"{API}/chats"), ("GET", f"{API}/chats/{chat_id}/read")]:
        assert_error(alice.client.request(method, path), {404, 405})
