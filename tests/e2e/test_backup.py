"""`parley backup` while Parley serves and sends go on, then `parley restore` into a fresh data folder (SQLite), or the
documented PostgreSQL procedure (pg_dump -Fc / pg_restore of the database, `parley backup` / `parley restore` for the
files): every message acknowledged before the backup began is there, seqs are dense, nothing is half-present, the files
messages carry open, and an access token of the old server still verifies (the signing key is in the database)."""

from __future__ import annotations

import json
import struct
import subprocess
import threading
import time
import uuid
import zlib

import requests

from harness import expect_status, sign_in

API = "/api/v1"


def whole_history(reader, chat_id: str) -> list[dict]:
    """Every message of the chat, oldest first, read page by page backwards as a client does."""
    messages, before_seq = [], None
    while True:
        query = "?limit=100" + (f"&before={before_seq}" if before_seq else "")
        page = expect_status(reader.get(f"{API}/chats/{chat_id}/messages{query}"), 200)
        messages = page["messages"] + messages
        if not page["hasMore"]:
            return messages
        before_seq = page["messages"][0]["seq"]


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + bytes([(x * 7 + y * 3) % 256 for x in range(width * 3)]) for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def parley(binary, env: dict, *args: str) -> dict:
    result = subprocess.run([str(binary), *args], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"parley {' '.join(args)} failed: {result.stderr[-2000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_backup_taken_while_messages_flow_restores_everything_acknowledged_before_it(
        launcher, backend, smtp_server, parley_binary, tmp_path):
    # No key in the environment: the server keeps its signing key in the database, as a real one does.
    source_url = launcher.database_url(backend)
    server = launcher.parley(database_url=source_url, backend=backend, smtp=smtp_server,
                             env={"PARLEY_JWT_PRIVATE_KEY": None})
    ann, bob = sign_in(server), sign_in(server)
    chat_id = expect_status(ann.client.post(f"{API}/chats", json={"userId": bob.id}), 201)["chat"]["id"]
    picture = png(64, 48)
    image = expect_status(ann.client.post(f"{API}/chats/{chat_id}/messages",
                                          files={"image": ("p.png", picture, "image/png")},
                                          data={"clientMessageId": str(uuid.uuid4())}), 201)["message"]

    acknowledged: list[tuple[float, int]] = []  # (monotonic time the ack came, seq)
    stop = threading.Event()

    def send_loop():
        index = 0
        while not stop.is_set():
            index += 1
            response = ann.client.post(f"{API}/chats/{chat_id}/messages",
                                       json={"text": f"message {index}", "clientMessageId": str(uuid.uuid4())})
            if response.status_code == 201:
                acknowledged.append((time.monotonic(), response.json()["message"]["seq"]))

    sender = threading.Thread(target=send_loop, daemon=True)
    sender.start()
    time.sleep(1.5)
    backup_dir = tmp_path / "backup"
    began = time.monotonic()
    env = dict(server.env)
    if backend == "postgres":
        # The documented procedure: the files first (parley backup), then the database.
        manifest = parley(parley_binary, env, "backup", "--to", str(backup_dir))
        dump = tmp_path / "parley.dump"
        subprocess.run(["pg_dump", "-Fc", "-f", str(dump), source_url], check=True, timeout=120, capture_output=True)
    else:
        manifest = parley(parley_binary, env, "backup", "--to", str(backup_dir))
    time.sleep(1.0)
    stop.set()
    sender.join(timeout=30)
    before = [seq for at, seq in acknowledged if at < began]
    assert len(before) >= 5, f"too few sends before the backup: {len(acknowledged)} in all"
    assert manifest["database"] == backend and manifest["files"] >= 1, manifest
    old_token = ann.access_token
    launcher.stop(server)

    # Restore into a fresh data folder and start Parley on it.
    restored_dir = tmp_path / "restored"
    restored_env = {key: value for key, value in env.items() if key != "PARLEY_JWT_PRIVATE_KEY"}
    restored_env["PARLEY_DATA_DIR"] = str(restored_dir / "data")
    target_url = None
    if backend == "postgres":
        target_url = launcher.postgres.create()
        subprocess.run(["pg_restore", "--no-owner", "-d", target_url, str(dump)], check=True, timeout=120, capture_output=True)
        restored_env["PARLEY_DATABASE_URL"] = target_url
    else:
        restored_env.pop("PARLEY_DATABASE_URL", None)
    parley(parley_binary, restored_env, "restore", "--from", str(backup_dir))
    restored = launcher.parley(database_url=target_url, backend=backend, smtp=smtp_server, data_dir=restored_dir,
                               env={"PARLEY_JWT_PRIVATE_KEY": None})

    # The old token verifies: the signing key came back with the database.
    reader = restored.client.with_token(old_token)
    expect_status(reader.get(f"{API}/me"), 200)
    messages = whole_history(reader, chat_id)
    seqs = [message["seq"] for message in messages]
    assert seqs == list(range(1, len(seqs) + 1)), "seqs are not dense"
    assert set(before) <= set(seqs), f"acknowledged before the backup but missing: {sorted(set(before) - set(seqs))[:10]}"
    # Nothing half-present: every restored message is whole, and the image it carries opens with its bytes.
    for message in messages:
        assert message["kind"] in {"text", "image"}, message
        assert message.get("text") or message.get("image"), message
    stored = next(message for message in messages if message["seq"] == image["seq"])
    downloaded = requests.get(stored["image"]["url"] if stored["image"]["url"].startswith("http")
                              else restored.base_url + stored["image"]["url"], timeout=30)
    assert downloaded.status_code == 200 and downloaded.content == picture
    # The restored server takes new messages after the restored ones.
    new = expect_status(reader.post(f"{API}/chats/{chat_id}/messages",
                                    json={"text": "after the restore", "clientMessageId": str(uuid.uuid4())}), 201)
    assert new["message"]["seq"] == len(seqs) + 1
    launcher.stop(restored)
