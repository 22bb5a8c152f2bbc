"""Files of any kind and image thumbnails over the real server (issue 14): a file message reaches every socket as
`newMessage` (stock python-socketio, both transports), downloads as an attachment with a safe name, and an image's
thumbnail is a WebP at most 320 px on its long side; deleting the messages erases their bytes."""

from __future__ import annotations

import struct
import zlib

import requests

from harness import assert_message, expect_status, sign_in
from test_messages_realtime import (  # noqa: F401  (tabs and transports are fixtures)
    API,
    absolute,
    blobs_holding,
    direct_chat,
    new_id,
    open_tab,
    tabs,
    transports,
)


def post_file(account, chat_id: str, data: bytes, name: str, content_type: str) -> dict:
    body = expect_status(account.client.post(f"{API}/chats/{chat_id}/messages", data={"clientMessageId": new_id()},
                                             files={"file": (name, data, content_type)}), 201)
    return body["message"]


def png(width: int, height: int) -> bytes:
    """A real RGB PNG of a gradient."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + bytes((x * 3 + c * 50 + y) % 256 for x in range(width) for c in range(3)) for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def webp_size(data: bytes) -> tuple[int, int]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP", data[:16]
    kind = data[12:16]
    if kind == b"VP8 ":
        return (int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF)
    if kind == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF))
    assert kind == b"VP8X", kind
    return (1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little"))


def test_a_file_message_reaches_every_socket_and_downloads_as_an_attachment(server, tabs, transports):
    ann, ben = sign_in(server), sign_in(server)
    chat = direct_chat(ann, ben)
    ben_tab = open_tab(tabs, server, ben, transports)
    ann_tab = open_tab(tabs, server, ann, transports)
    pdf = b"%PDF-1.4\n% a test document " + new_id().encode() + b"\n%%EOF\n"

    sent = post_file(ann, chat, pdf, "Q3 report – ünïcode.pdf", "text/html")

    assert_message(sent)
    assert sent["kind"] == "file" and sent["file"]["name"] == "Q3 report – ünïcode.pdf", sent
    assert sent["file"]["contentType"] == "application/pdf" and sent["file"]["size"] == len(pdf), sent
    for tab in (ben_tab, ann_tab):
        heard = tab.wait_for("newMessage", lambda m: m.get("id") == sent["id"])
        assert_message(heard)
        assert heard["kind"] == "file" and heard["file"]["name"] == sent["file"]["name"], heard
    response = requests.get(absolute(server, sent["file"]["url"]), timeout=10)
    assert response.status_code == 200 and response.content == pdf
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"] == (
        "attachment; filename=\"Q3 report _ _n_code.pdf\"; filename*=UTF-8''Q3%20report%20%E2%80%93%20%C3%BCn%C3%AFcode.pdf")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"

    # Deleting it erases the bytes; everyone hears the tombstone.
    deleted = expect_status(ann.client.request("DELETE", f"{API}/chats/{chat}/messages/{sent['seq']}"), 200)["message"]
    assert deleted["kind"] == "deleted" and "file" not in deleted
    ben_tab.wait_for("messageUpdated", lambda m: m.get("id") == sent["id"] and m.get("kind") == "deleted")
    assert requests.get(absolute(server, sent["file"]["url"]), timeout=10).status_code == 404
    assert not blobs_holding(server, pdf)


def test_an_image_gets_a_webp_thumbnail_and_both_go_with_their_message(server, tabs, transports):
    ann, ben = sign_in(server), sign_in(server)
    chat = direct_chat(ann, ben)
    ben_tab = open_tab(tabs, server, ben, transports)
    picture = png(900, 300)

    sent = expect_status(ann.client.post(f"{API}/chats/{chat}/messages", data={"clientMessageId": new_id()},
                                         files={"image": ("wide.png", picture, "image/png")}), 201)["message"]

    heard = ben_tab.wait_for("newMessage", lambda m: m.get("id") == sent["id"])
    assert heard["image"]["thumbnailUrl"] == sent["image"]["thumbnailUrl"] != sent["image"]["url"], heard
    thumbnail = requests.get(absolute(server, heard["image"]["thumbnailUrl"]), timeout=10)
    assert thumbnail.status_code == 200 and thumbnail.headers["Content-Type"] == "image/webp"
    width, height = webp_size(thumbnail.content)
    assert width == 320 and height in (106, 107), (width, height)
    assert blobs_holding(server, picture) and blobs_holding(server, thumbnail.content)

    expect_status(ann.client.request("DELETE", f"{API}/chats/{chat}/messages/{sent['seq']}"), 200)
    assert requests.get(absolute(server, heard["image"]["thumbnailUrl"]), timeout=10).status_code == 404
    assert not blobs_holding(server, picture) and not blobs_holding(server, thumbnail.content)
