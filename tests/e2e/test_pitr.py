"""Point-in-time recovery on PostgreSQL, as docs/deploy.md tells an operator to do it ("Point-in-time recovery").

A cluster of the test's own archives its WAL into a folder (`wal_level = replica`, `archive_mode = on`,
`archive_command`). Parley serves on it and messages flow; `pg_basebackup` takes a base backup meanwhile; the stored
files are archived the way the docs say (copied, never deleted); a named restore point is made after some acknowledged
messages. After it the sends go on, an image message of before the point is deleted (its bytes are erased at once) and
another image is sent, and `parley backup` copies the files. Then the base backup is recovered into a fresh data
directory up to the restore point, and again up to the time of the point (`restore_command`, `recovery_target_name` /
`recovery_target_time`, `recovery_target_action = 'promote'`), the files go into a fresh data folder (`parley restore`,
then the file archive), and a fresh Parley starts on each: every message acknowledged before the point is there, seqs
are dense, nothing sent after the point is there (the deletion is undone, the later image is absent), every message is
whole, the images open with their bytes, the chat's summary agrees with its messages, tokens of the old server verify,
and new messages follow on."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import requests

from harness import REPO_ROOT, expect_status, free_port, poll, refresh, sign_in, tail
from test_backup import parley, png, whole_history

API = "/api/v1"
RESTORE_POINT = "before-the-cleanup"


def pg_bin_dir() -> Path:
    """The newest installed server's bin folder (scripts/lib/postgres.sh picks it the same way)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    assert found, "no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)"
    return found[-1].parent


class Cluster:
    """One PostgreSQL data directory under `root`, run as the postgres user (root may not run it), its unix socket
    in `root` (short paths), listening on 127.0.0.1:`port`."""

    def __init__(self, root: Path, name: str, port: int):
        self.root, self.data, self.port = root, root / name, port
        self.bin = pg_bin_dir()
        self.log = root / f"{name}.log"

    def run(self, program: str, *args: str, timeout: float = 60) -> str:
        return as_postgres(str(self.bin / program), *args, cwd=self.root, timeout=timeout)

    def start(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", f"-p {self.port}", "-w", "-t", "60", "start")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")

    def sql(self, statement: str) -> str:
        """One statement as the postgres superuser over the unix socket; its rows, `|` between columns."""
        return self.run("psql", "-h", str(self.root), "-p", str(self.port), "-U", "postgres", "-d", "parley",
                        "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", statement).strip()

    @property
    def url(self) -> str:
        return f"postgres://parley:parley@127.0.0.1:{self.port}/parley"


def as_postgres(*command: str, cwd: Path, timeout: float = 60) -> str:
    """Runs `command` as the postgres user (when root), from a folder it can read; its output."""
    if os.geteuid() == 0:
        command = ("runuser", "-u", "postgres", "--", *command)
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)} failed: {result.stdout}{result.stderr}"
    return result.stdout


def owned_by_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        for entry in [path, *path.rglob("*")]:
            shutil.chown(entry, "postgres", "postgres")


def archive_command(files_dir: Path, archive: Path) -> list[str]:
    """The shipped parley-files-archive.service's ExecStart, with the test's folders for the shipped ones."""
    unit = (REPO_ROOT / "deploy" / "systemd" / "parley-files-archive.service").read_text(encoding="utf-8")
    command = re.search(r"^ExecStart=(.*)$", unit, re.M).group(1)
    assert "/var/lib/parley/chat/files/." in command and "/backups/parley-files/" in command, command
    command = command.replace("/var/lib/parley/chat/files/.", f"{files_dir}/.").replace("/backups/parley-files/", f"{archive}/")
    return shlex.split(command)


def file_id(url: str) -> str:
    """The stored file's key from its signed URL, /api/v1/files/{id}?…"""
    return urlsplit(url).path.rsplit("/", 1)[-1]


def test_point_in_time_recovery_restores_everything_acknowledged_before_the_point_and_nothing_after(
        launcher, parley_binary, tmp_path):
    started = time.monotonic()
    # Everything PostgreSQL touches lives under one folder the postgres user owns; /tmp keeps the socket path short.
    root = Path(tempfile.mkdtemp(prefix="parley-pitr.", dir="/tmp"))
    os.chmod(root, 0o700)
    wal_archive = root / "wal-archive"
    wal_archive.mkdir()
    owned_by_postgres(root)
    primary = Cluster(root, "primary", free_port())
    clusters = [primary]
    try:
        # The primary: WAL archiving as docs/deploy.md sets it. (1 MB WAL segments, not 16, only keep the test's
        # folders small: fewer bytes to archive, copy and delete.)
        primary.run("initdb", "-D", str(primary.data), "-U", "postgres", "-E", "UTF8", "--locale=C",
                    "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "--wal-segsize=1")
        with open(primary.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(f"listen_addresses = '127.0.0.1'\nunix_socket_directories = '{root}'\n"
                       "min_wal_size = '4MB'\nwal_level = replica\narchive_mode = on\narchive_timeout = 60\n"
                       f"archive_command = 'test ! -f {wal_archive}/%f && cp %p {wal_archive}/%f'\n")
        primary.start()
        primary.run("psql", "-h", str(root), "-p", str(primary.port), "-U", "postgres", "-d", "postgres", "-X", "-q",
                    "-v", "ON_ERROR_STOP=1", "-c", "CREATE ROLE parley LOGIN SUPERUSER PASSWORD 'parley'",
                    "-c", "CREATE DATABASE parley OWNER parley")

        # No key in the environment: the signing key lives in the database, as a real server's does.
        server = launcher.parley(database_url=primary.url, backend="postgres", env={"PARLEY_JWT_PRIVATE_KEY": None})
        files_dir = Path(server.env["PARLEY_DATA_DIR"]) / "files"
        ann, bob = sign_in(server), sign_in(server)
        chat_id = expect_status(ann.client.post(f"{API}/chats", json={"userId": bob.id}), 201)["chat"]["id"]

        def send_image(picture: bytes) -> dict:
            return expect_status(ann.client.post(f"{API}/chats/{chat_id}/messages",
                                                 files={"image": ("p.png", picture, "image/png")},
                                                 data={"clientMessageId": str(uuid.uuid4())}), 201)["message"]

        kept_picture = png(64, 48)
        kept = send_image(kept_picture)

        sends: list[tuple[float, float, int]] = []  # (monotonic time the send was issued, the ack came, its seq)
        stop = threading.Event()

        def send_loop():
            index = 0
            while not stop.is_set():
                index += 1
                issued = time.monotonic()
                response = ann.client.post(f"{API}/chats/{chat_id}/messages",
                                           json={"text": f"message {index}", "clientMessageId": str(uuid.uuid4())})
                if response.status_code == 201:
                    sends.append((issued, time.monotonic(), response.json()["message"]["seq"]))

        sender = threading.Thread(target=send_loop, daemon=True)
        sender.start()
        try:
            poll(lambda: len(sends) >= 5, 15, "a few acknowledged sends")
            # The base backup, while Parley serves and the sends go on.
            base = root / "base"
            primary.run("pg_basebackup", "-h", str(root), "-p", str(primary.port), "-U", "postgres",
                        "-D", str(base), "-X", "stream", "--checkpoint=fast", timeout=120)
            # The file archive's periodic copy (deploy/systemd/parley-files-archive.timer runs it every minute): new
            # files in, nothing ever deleted.
            file_archive = tmp_path / "file-archive"
            file_archive.mkdir()
            subprocess.run(archive_command(files_dir, file_archive), check=True, timeout=60)
            poll(lambda: len(sends) >= 20, 15, "more acknowledged sends")

            # The recovery point: a named restore point, and the time it was made.
            point_began = time.monotonic()
            point_time, _ = primary.sql(
                f"SELECT clock_timestamp(), pg_create_restore_point('{RESTORE_POINT}')").split("|")
            point_made = time.monotonic()

            # After the point: the image of before it is deleted (its bytes are erased at once), another is sent.
            deleted = expect_status(ann.client.delete(f"{API}/chats/{chat_id}/messages/{kept['seq']}"), 200)["message"]
            assert deleted["kind"] == "deleted"
            assert not list(files_dir.rglob(file_id(kept["image"]["url"]))), "deleting the message erases its file"
            later = send_image(png(32, 32))
            time.sleep(1.0)
        finally:
            stop.set()
            sender.join(timeout=30)
        # The files, taken after the point as the docs say: they lack the deleted image, which the file archive has.
        files_backup = tmp_path / "files-backup"
        manifest = parley(parley_binary, dict(server.env), "backup", "--to", str(files_backup))
        assert manifest["database"] == "postgres", manifest
        assert not list(files_backup.rglob(file_id(kept["image"]["url"]))), "a backup after the deletion lacks the file"
        assert list(file_archive.rglob(file_id(kept["image"]["url"]))), "the file archive keeps it"
        # The segment holding the point must be archived before recovery can reach it.
        segment = primary.sql("SELECT pg_walfile_name(pg_switch_wal())")
        poll(lambda: (wal_archive / segment).exists(), 30, f"WAL segment {segment} archived")

        before = {seq for issued, acked, seq in sends if acked < point_began}
        after = {seq for issued, acked, seq in sends if issued > point_made} | {later["seq"]}
        assert len(before) >= 20 and len(after) >= 5, f"{len(before)} sends before the point, {len(after)} after it"
        old = ann
        launcher.stop(server)
        primary.stop()

        targets = {f"recovery_target_name = '{RESTORE_POINT}'": f'recovery stopping at restore point "{RESTORE_POINT}"',
                   f"recovery_target_time = '{point_time}'": "recovery stopping before commit of transaction"}
        for target, stopping in targets.items():
            # Recovery: the base backup into a fresh data directory, WAL replayed from the archive up to the point.
            restored = Cluster(root, f"restored-{len(clusters)}", free_port())
            clusters.append(restored)
            as_postgres("cp", "-a", str(base), str(restored.data), cwd=root)
            # The recovery settings go at the end of postgresql.auto.conf, which is in the data directory on every
            # layout (Debian keeps postgresql.conf in /etc), as pg_basebackup -R writes its own.
            with open(restored.data / "postgresql.auto.conf", "a", encoding="utf-8") as conf:
                conf.write(f"restore_command = 'cp {wal_archive}/%f %p'\n{target}\n"
                           "recovery_target_action = 'promote'\n")
            (restored.data / "recovery.signal").touch()
            owned_by_postgres(restored.data)
            restored.start()
            poll(lambda: restored.sql("SELECT pg_is_in_recovery()") == "f", 60, "recovery to end and promote")
            assert stopping in restored.log.read_text(errors="replace"), tail(restored.log)

            # The files into a fresh data folder: the backup taken after the point, then the file archive over it.
            data_dir = tmp_path / f"parley-{len(clusters)}"
            env = {key: value for key, value in server.env.items() if key != "PARLEY_JWT_PRIVATE_KEY"}
            env.update(PARLEY_DATABASE_URL=restored.url, PARLEY_DATA_DIR=str(data_dir / "data"))
            parley(parley_binary, env, "restore", "--from", str(files_backup))
            subprocess.run(["cp", "-R", f"{file_archive}/.", f"{data_dir}/data/files"], check=True, timeout=60)
            again = launcher.parley(database_url=restored.url, backend="postgres", data_dir=data_dir,
                                    env={"PARLEY_JWT_PRIVATE_KEY": None})
            check_recovered(again, old, bob, chat_id, before, after, kept, kept_picture, target)
            launcher.stop(again)
            restored.stop()
        elapsed = time.monotonic() - started
        print(f"point-in-time recovery test: {elapsed:.1f} s")
    finally:
        for cluster in reversed(clusters):
            try:
                cluster.stop()
            except (AssertionError, subprocess.TimeoutExpired):
                pass
        # In the background: deleting what PostgreSQL fsynced takes seconds on a disk mounted with `discard`.
        subprocess.run(["sh", "-c", 'rm -rf -- "$1" >/dev/null 2>&1 &', "sh", str(root)], check=False)


def check_recovered(server, old, bob, chat_id: str, before: set[int], after: set[int], kept: dict, kept_picture: bytes,
                    target: str) -> None:
    # Tokens of the old server verify: its signing key came back with the database, and so did the refresh token.
    reader = server.client.with_token(old.access_token)
    expect_status(reader.get(f"{API}/me"), 200)
    expect_status(refresh(server.client, old.refresh_token), 200)
    messages = whole_history(reader, chat_id)
    seqs = [message["seq"] for message in messages]
    assert seqs == list(range(1, len(seqs) + 1)), f"{target}: seqs are not dense"
    assert before <= set(seqs), f"{target}: acknowledged before the point but missing: {sorted(before - set(seqs))[:10]}"
    assert not after & set(seqs), f"{target}: sent after the point but there: {sorted(after & set(seqs))[:10]}"
    # Nothing half-present: every message is whole; the deletion after the point is undone and the image opens.
    for message in messages:
        assert message["kind"] in {"text", "image"}, message
        assert message.get("text") or message.get("image"), message
    image = next(message for message in messages if message["seq"] == kept["seq"])
    assert image["kind"] == "image", image
    for message in messages:
        if message["kind"] == "image":
            url = message["image"]["url"]
            downloaded = requests.get(url if url.startswith("http") else server.base_url + url, timeout=30)
            assert downloaded.status_code == 200, f"{target}: {message['seq']}'s image does not open"
    url = image["image"]["url"]
    downloaded = requests.get(url if url.startswith("http") else server.base_url + url, timeout=30)
    assert downloaded.content == kept_picture
    # The link the old server gave out opens too: the file-URL key is in the database.
    old_link = kept["image"]["url"]
    old_link = server.base_url + urlsplit(old_link).path + "?" + urlsplit(old_link).query
    downloaded = requests.get(old_link, timeout=30)
    assert downloaded.status_code == 200 and downloaded.content == kept_picture, f"{target}: the old link does not open"
    # The chat's summary agrees with its messages, and new messages follow on.
    chats = expect_status(reader.get(f"{API}/chats"), 200)["chats"]
    summary = next(chat for chat in chats if chat["id"] == chat_id)
    assert summary["lastMessage"]["seq"] == seqs[-1], summary
    unread = next(chat for chat in expect_status(server.client.with_token(bob.access_token).get(f"{API}/chats"), 200)["chats"]
                  if chat["id"] == chat_id)["unreadCount"]
    assert unread == len(seqs), f"{target}: bob has {unread} unread of {len(seqs)} messages"
    new = expect_status(reader.post(f"{API}/chats/{chat_id}/messages",
                                    json={"text": "after the recovery", "clientMessageId": str(uuid.uuid4())}), 201)
    assert new["message"]["seq"] == seqs[-1] + 1
