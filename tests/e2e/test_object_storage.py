"""Files in an S3-compatible object store (PARLEY_BLOB_STORE=s3://…) run against moto in server mode: uploads land in the
bucket and nowhere on disk, Parley serves them through its own signed URLs (headers, ranges), `parley backup` writes the
objects into the backup folder and `parley restore` puts them into a bucket, a store that goes down answers 503 in the
contract's shape and leaves nothing half-present, and two chat instances on one bucket serve each other's files."""

from __future__ import annotations

import json
import sqlite3
import struct
import subprocess
import uuid
import zlib
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
import requests

from harness import MotoServer, assert_error, expect_status, free_port, request_code, sign_in, unique_email, verify

API = "/api/v1"


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + bytes([(x * 5 + y * 11) % 256 for x in range(width * 3)]) for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def absolute(server, url: str) -> str:
    return url if url.startswith("http") else server.base_url + url


def file_id(url: str) -> str:
    return url.split("?")[0].rsplit("/", 1)[-1]


def send_image(account, chat_id: str, data: bytes):
    return account.client.post(f"{API}/chats/{chat_id}/messages", data={"clientMessageId": str(uuid.uuid4())},
                               files={"image": ("picture.png", data, "image/png")})


def send_file(account, chat_id: str, data: bytes, name: str):
    return account.client.post(f"{API}/chats/{chat_id}/messages", data={"clientMessageId": str(uuid.uuid4())},
                               files={"file": (name, data, "application/octet-stream")})


def files_on_disk(server) -> list[Path]:
    root = Path(server.env["PARLEY_DATA_DIR"]) / "files"
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def parley(binary, env: dict, *args: str) -> dict:
    result = subprocess.run([str(binary), *args], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"parley {' '.join(args)} failed: {result.stderr[-2000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    server = MotoServer(tmp_path_factory.mktemp("moto")).start()
    yield server
    server.stop()


def test_uploads_live_in_the_bucket_and_parley_serves_them(launcher, moto, smtp_server):
    # moto checks the signature of each of Parley's requests (harness.MotoServer): a wrong secret is refused.
    bucket = moto.bucket()
    forged = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1", aws_access_key_id=moto.access_key,
                          aws_secret_access_key="not-the-secret")
    with pytest.raises(botocore.exceptions.ClientError, match="SignatureDoesNotMatch"):
        forged.list_objects_v2(Bucket=bucket)
    server = launcher.parley(smtp=smtp_server, env=moto.parley_env(bucket))
    ann, bob = sign_in(server), sign_in(server)
    chat_id = expect_status(ann.client.post(f"{API}/chats", json={"userId": bob.id}), 201)["chat"]["id"]
    picture = png(48, 32)
    document = bytes(range(256)) * 40 + b"<script>alert(1)</script>"
    image = expect_status(send_image(ann, chat_id, picture), 201)["message"]["image"]
    attached = expect_status(send_file(ann, chat_id, document, "notes.txt"), 201)["message"]["file"]

    # Both in the bucket, byte for byte, under their ids; nothing in the data folder.
    objects = moto.objects(bucket)
    assert objects.get(file_id(image["url"])) == picture and objects.get(file_id(attached["url"])) == document, sorted(objects)
    assert files_on_disk(server) == []

    # Parley serves them itself, through the signed URLs the other member got, with its own headers.
    listed = expect_status(bob.client.get(f"{API}/chats/{chat_id}/messages"), 200)["messages"]
    image_url = absolute(server, next(m for m in listed if m["kind"] == "image")["image"]["url"])
    file_url = absolute(server, next(m for m in listed if m["kind"] == "file")["file"]["url"])
    shown = requests.get(image_url, timeout=30)
    assert shown.status_code == 200 and shown.content == picture and shown.headers["Content-Type"] == "image/png"
    downloaded = requests.get(file_url, timeout=30)
    assert downloaded.status_code == 200 and downloaded.content == document
    assert downloaded.headers["Content-Disposition"].startswith("attachment;")
    assert downloaded.headers["X-Content-Type-Options"] == "nosniff"
    assert downloaded.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"
    # One range, streamed from the object store's own range read.
    part = requests.get(file_url, headers={"Range": "bytes=100-299"}, timeout=30)
    assert part.status_code == 206 and part.content == document[100:300]
    assert part.headers["Content-Range"] == f"bytes 100-299/{len(document)}"
    tail_part = requests.get(file_url, headers={"Range": "bytes=-10"}, timeout=30)
    assert tail_part.status_code == 206 and tail_part.content == document[-10:]
    # A link that is not signed is still 404, whatever the store.
    assert_error(requests.get(file_url.split("?")[0] + "?exp=99999999999&sig=AAAA", timeout=30), 404, "file_not_found")

    # An object missing from the bucket (erased behind Parley's back) is the same 404 a missing file on disk gives.
    moto.client().delete_object(Bucket=bucket, Key=file_id(attached["url"]))
    assert requests.get(file_url, timeout=30).status_code == 404


def test_backup_writes_the_objects_and_restore_puts_them_into_a_bucket(launcher, moto, smtp_server, parley_binary, tmp_path):
    bucket = moto.bucket()
    server = launcher.parley(smtp=smtp_server, env={**moto.parley_env(bucket), "PARLEY_JWT_PRIVATE_KEY": None})
    ann, bob = sign_in(server), sign_in(server)
    chat_id = expect_status(ann.client.post(f"{API}/chats", json={"userId": bob.id}), 201)["chat"]["id"]
    picture = png(40, 30)
    document = b"minutes of the meeting\n" * 500
    expect_status(send_image(ann, chat_id, picture), 201)
    expect_status(send_file(ann, chat_id, document, "minutes.txt"), 201)
    before = moto.objects(bucket)
    assert len(before) == 2

    backup_dir = tmp_path / "backup"
    manifest = parley(parley_binary, dict(server.env), "backup", "--to", str(backup_dir))
    assert manifest["database"] == "sqlite" and manifest["files"] == 2, manifest
    # The objects are in the folder, in the disk store's layout (files/xx/yy/<id>), byte for byte.
    copied = {path.name: path.read_bytes() for path in (backup_dir / "files").rglob("*") if path.is_file()}
    assert copied == before
    launcher.stop(server)

    # Restore into a fresh data folder and another bucket, then start Parley on them.
    restored_bucket = moto.bucket()
    restored_dir = tmp_path / "restored"
    env = {key: value for key, value in server.env.items() if key != "PARLEY_JWT_PRIVATE_KEY"}
    env.update(moto.parley_env(restored_bucket))
    env["PARLEY_DATA_DIR"] = str(restored_dir / "data")
    parley(parley_binary, env, "restore", "--from", str(backup_dir))
    assert moto.objects(restored_bucket) == before
    assert not (restored_dir / "data" / "files").exists() or files_on_disk_at(restored_dir / "data" / "files") == []
    restored = launcher.parley(smtp=smtp_server, data_dir=restored_dir,
                               env={**moto.parley_env(restored_bucket), "PARLEY_JWT_PRIVATE_KEY": None})
    reader = restored.client.with_token(bob.access_token)
    messages = expect_status(reader.get(f"{API}/chats/{chat_id}/messages"), 200)["messages"]
    shown = requests.get(absolute(restored, next(m for m in messages if m["kind"] == "image")["image"]["url"]), timeout=30)
    assert shown.status_code == 200 and shown.content == picture
    downloaded = requests.get(absolute(restored, next(m for m in messages if m["kind"] == "file")["file"]["url"]), timeout=30)
    assert downloaded.status_code == 200 and downloaded.content == document

    # A restore cut short can be run again: objects the bucket has are kept, the database goes in last.
    again_bucket = moto.bucket()
    again_env = dict(env, PARLEY_DATA_DIR=str(tmp_path / "again" / "data"), **moto.parley_env(again_bucket))
    moto.client().put_object(Bucket=again_bucket, Key=next(iter(before)), Body=before[next(iter(before))])
    parley(parley_binary, again_env, "restore", "--from", str(backup_dir))
    assert moto.objects(again_bucket) == before
    launcher.stop(restored)


def files_on_disk_at(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def test_a_store_that_goes_down_answers_503_and_leaves_nothing_half_present(launcher, smtp_server, tmp_path):
    # Without signature checks: the moto started again below must take the key Parley was given.
    moto = MotoServer(tmp_path, signatures=False).start()
    bucket = moto.bucket()
    server = launcher.parley(smtp=smtp_server, env=moto.parley_env(bucket))
    ann, bob = sign_in(server), sign_in(server)
    chat_id = expect_status(ann.client.post(f"{API}/chats", json={"userId": bob.id}), 201)["chat"]["id"]
    kept = expect_status(send_file(ann, chat_id, b"kept bytes", "kept.txt"), 201)["message"]
    database = Path(server.env["PARLEY_DATA_DIR"]) / "parley.sqlite"

    def counts() -> tuple[int, int]:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
            files = connection.execute("SELECT COUNT(*) FROM files").fetchone()[0]
            messages = connection.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        return files, messages

    before = counts()
    moto.stop()

    # Uploads: 503 in the contract's shape, with Retry-After; no file row, no message.
    for response in (send_image(ann, chat_id, png(20, 20)), send_file(ann, chat_id, b"lost", "lost.txt"),
                     ann.client.post(f"{API}/files", files={"image": ("me.png", png(16, 16), "image/png")})):
        assert_error(response, 503, "file_storage_unavailable")
        assert "try again" in response.json()["error"]["message"] and int(response.headers["Retry-After"]) >= 1
    assert counts() == before
    listed = expect_status(bob.client.get(f"{API}/chats/{chat_id}/messages"), 200)["messages"]
    assert [m["seq"] for m in listed] == [kept["seq"]]
    # A download: 503 before any byte is sent, not a cut body.
    download = requests.get(absolute(server, kept["file"]["url"]), timeout=30)
    assert_error(download, 503, "file_storage_unavailable")
    # Text messages do not need the store.
    expect_status(ann.client.post(f"{API}/chats/{chat_id}/messages", json={"text": "still here", "clientMessageId": "t1"}), 201)
    # The log says what failed where, for the operator.
    server.wait_for_log(lambda record: "object store request failed" in record.get("message", ""), what="the store failure logged")

    # The store comes back (empty: moto kept nothing): Parley uses it again without a restart.
    revived = MotoServer(tmp_path, port=moto.port, signatures=False).start()
    revived.bucket(bucket)
    expect_status(send_file(ann, chat_id, b"after the outage", "after.txt"), 201)
    assert b"after the outage" in revived.objects(bucket).values()
    launcher.stop(server)
    revived.stop()


def test_two_chat_instances_share_one_bucket(launcher, moto):
    """A user service and two chat instances on one PostgreSQL database and one bucket, no shared folder: a file uploaded
    through one instance downloads through the other."""
    bucket = moto.bucket()
    database_url = launcher.database_url("postgres")
    smtp = launcher.smtp()
    user = launcher.parley(service="user", database_url=database_url, smtp=smtp)
    launcher.parley(service="mail", database_url=database_url, smtp=smtp)
    chats = [launcher.parley(service="chat", database_url=database_url, env={
        **moto.parley_env(bucket), "PARLEY_USER_SERVICE_URL": user.base_url, "PARLEY_JWT_PRIVATE_KEY": None,
        "PARLEY_INSTANCE": name}) for name in ("chat1", "chat2")]

    def account() -> dict:
        address = unique_email("s3")
        request_code(user.client, address)
        return expect_status(verify(user.client, address, smtp.mailbox.wait_for(address).code), 200)

    ann, bob = account(), account()
    first, second = (chats[0].client.with_token(ann["accessToken"]), chats[1].client.with_token(bob["accessToken"]))
    chat_id = expect_status(first.post(f"{API}/chats", json={"userId": bob["user"]["id"]}), 201)["chat"]["id"]
    picture = png(30, 30)
    document = b"shared through the bucket " * 100
    expect_status(first.post(f"{API}/chats/{chat_id}/messages", data={"clientMessageId": "i1"},
                             files={"image": ("p.png", picture, "image/png")}), 201)
    expect_status(first.post(f"{API}/chats/{chat_id}/messages", data={"clientMessageId": "f1"},
                             files={"file": ("shared.txt", document, "text/plain")}), 201)
    messages = expect_status(second.get(f"{API}/chats/{chat_id}/messages"), 200)["messages"]
    image_url = absolute(chats[1], next(m for m in messages if m["kind"] == "image")["image"]["url"])
    file_url = absolute(chats[1], next(m for m in messages if m["kind"] == "file")["file"]["url"])
    assert requests.get(image_url, timeout=30).content == picture
    assert requests.get(file_url, timeout=30).content == document
    # Both instances' data folders hold no file: the bucket is the only copy.
    for instance in chats:
        assert files_on_disk(instance) == []
    assert set(moto.objects(bucket).values()) == {picture, document}
