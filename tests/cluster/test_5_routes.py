"""What nginx routes where with the shipped config: health per service, JWKS, the web app, uploads (body limit)
and signed file downloads from any chat instance.

[cluster] Needs from the deployment: chat instances sharing their data dir (docs/deploy.md, "State directories").
"""

from __future__ import annotations

import json
import struct
import uuid
import zlib
from urllib.parse import parse_qs, urlsplit

import requests

from cluster import create_chat
from harness import expect_status


def make_png(width: int = 3, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\x10\x20\x30" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_health_jwks_web_app_and_metrics_through_nginx(healthy_cluster):
    """[cluster] /health, /health/{user,chat,mail} answer each service's health; JWKS comes from the user
    instances; the web app from the chat instances; /metrics is not published."""
    cluster = healthy_cluster
    for path in ("/health", "/health/chat", "/health/user", "/health/mail"):
        body = expect_status(requests.get(cluster.url + path, timeout=10), 200)
        assert body["status"] == "healthy", (path, body)
    jwks = expect_status(requests.get(cluster.url + "/.well-known/jwks.json", timeout=10), 200)
    direct = expect_status(requests.get(cluster.instances["user1"].base_url + "/.well-known/jwks.json", timeout=10), 200)
    assert jwks == direct
    page = requests.get(cluster.url + "/", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html"), page.status_code
    assert requests.get(cluster.url + "/metrics", timeout=10).status_code == 404


def test_uploads_and_signed_files_from_any_chat_instance(healthy_cluster):
    """[cluster] An image sent through nginx (to one chat instance) downloads through nginx from every instance,
    round-robin, and so do its thumbnail and a file of any kind (as an attachment); a body beyond
    client_max_body_size (26m: the 25 MiB file limit and the multipart envelope) is refused by nginx with 413."""
    cluster = healthy_cluster
    alice, bob = cluster.sign_in_many(2)
    chat = create_chat(alice, user=bob)["id"]
    png = make_png()
    sent = expect_status(alice.client.post(f"/api/v1/chats/{chat}/messages",
                                           data={"clientMessageId": uuid.uuid4().hex},
                                           files={"image": ("dot.png", png, "image/png")}), 201)["message"]
    url = sent["image"]["url"]
    absolute = url if url.startswith("http") else cluster.url + url
    for _ in range(6):  # twice around the three chat instances
        response = requests.get(absolute, timeout=10)
        assert response.status_code == 200 and response.content == png, (response.status_code, response.text[:200])
    for name in cluster.names("chat"):  # and from each instance directly
        direct = requests.get(absolute.replace(cluster.url, cluster.instances[name].base_url), timeout=10)
        assert direct.status_code == 200, f"{name} cannot serve a file another instance stored: {direct.status_code}"

    # A wide image gets a WebP thumbnail, and a file is an attachment, whichever instance stored them.
    wide = expect_status(alice.client.post(f"/api/v1/chats/{chat}/messages", data={"clientMessageId": uuid.uuid4().hex},
                                           files={"image": ("wide.png", make_png(800, 200), "image/png")}), 201)["message"]
    pdf = b"%PDF-1.4\n" + uuid.uuid4().hex.encode() + b"\n%%EOF\n"
    document = expect_status(alice.client.post(f"/api/v1/chats/{chat}/messages", data={"clientMessageId": uuid.uuid4().hex},
                                               files={"file": ("notes.pdf", pdf, "application/pdf")}), 201)["message"]
    for name in cluster.names("chat"):
        base = cluster.instances[name].base_url
        thumbnail = requests.get(base + wide["image"]["thumbnailUrl"].replace(cluster.url, ""), timeout=10)
        assert thumbnail.status_code == 200 and thumbnail.headers["Content-Type"] == "image/webp", (name, thumbnail.status_code)
        file = requests.get(base + document["file"]["url"].replace(cluster.url, ""), timeout=10)
        assert file.status_code == 200 and file.content == pdf, (name, file.status_code)
        assert file.headers["Content-Disposition"].startswith('attachment; filename="notes.pdf"'), file.headers

    too_big = b"\x89PNG\r\n\x1a\n" + b"\x00" * (27 * 1024 * 1024)
    response = requests.post(f"{cluster.url}/api/v1/chats/{chat}/messages",
                             headers={"Authorization": f"Bearer {alice.access_token}"},
                             data={"clientMessageId": uuid.uuid4().hex},
                             files={"image": ("big.png", too_big, "image/png")}, timeout=30)
    assert response.status_code == 413, response.status_code


def test_bearer_secrets_in_urls_stay_out_of_the_access_log(healthy_cluster):
    """[deploy] The shipped access log format names paths without their query: the access token of a Socket.IO
    handshake (`?token=`), the Engine.IO session id (`sid`) and a file URL's signature (`sig`) are never written,
    while the requests themselves are."""
    cluster = healthy_cluster
    alice, bob = cluster.sign_in_many(2)
    chat = create_chat(alice, user=bob)["id"]
    sent = expect_status(alice.client.post(f"/api/v1/chats/{chat}/messages",
                                           data={"clientMessageId": uuid.uuid4().hex},
                                           files={"image": ("dot.png", make_png(), "image/png")}), 201)["message"]
    url = sent["image"]["url"]
    file_url = url if url.startswith("http") else cluster.url + url
    signature = parse_qs(urlsplit(file_url).query)["sig"][0]
    assert requests.get(file_url, timeout=10).status_code == 200

    handshake = requests.get(f"{cluster.url}/socket.io/", params={"EIO": "4", "transport": "polling",
                                                                  "token": alice.access_token}, timeout=10)
    assert handshake.status_code == 200, (handshake.status_code, handshake.text[:200])
    sid = json.loads(handshake.text[handshake.text.index("{"):])["sid"]
    secret = "SECRET" + uuid.uuid4().hex
    requests.get(f"{cluster.url}/api/v1/me", params={"token": secret}, timeout=10)

    logs = {path.name: path.read_text(encoding="utf-8", errors="replace")
            for path in cluster.nginx.directory.glob("*access.log")}
    shipped = logs.get("parley.access.log", "")
    assert "GET /socket.io/ " in shipped and f"GET {urlsplit(file_url).path} " in shipped, shipped[-2000:]
    for name, text in logs.items():
        for label, value in (("access token", alice.access_token), ("sid", sid), ("file signature", signature),
                             ("token", secret)):
            assert value not in text, f"the {label} is in nginx's {name}"
