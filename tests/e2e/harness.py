"""Building blocks of Parley's end-to-end tests: processes, HTTP client, mailbox, JWT and assertion helpers.

The fixtures in conftest.py put these together; tests import the helpers they assert with.
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
import os
import random
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit, urlunsplit

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

REPO_ROOT = Path(__file__).resolve().parents[2]
SMTPD_SCRIPT = REPO_ROOT / "tests" / "support" / "smtpd.py"

HTTP_TIMEOUT = 10.0
STARTUP_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 10.0
# psql processes dropping the test databases at once (each holds a connection until its drop is done).
DROP_CONCURRENCY = 32

SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
CODE_IN_MAIL = re.compile(r"\b(\d{6})\b")
CODE_IN_LOG = re.compile(r"Your Parley login code is (\d{6})\b")

# Every process a fixture started and has not stopped yet, so a failing test's report can show their logs.
RUNNING: list["Process"] = []


def ephemeral_low() -> int:
    """The lowest port of the range the kernel takes the local ports of outgoing connections from."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago, below the kernel's ephemeral range. A port the
    kernel picks for `bind(0)` comes from that range, so the local end of some other test's outgoing connection could
    take it before the server binds it (seen once, with five e2e workers: "Address already in use")."""
    low = min(ephemeral_low(), 32768)
    # A range that starts at 10000 or below leaves nothing to pick from: bind(0), as before.
    for _ in range(200 if low > 10000 else 0):
        port = random.randrange(10000, low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unique_email(prefix: str = "user") -> str:
    """A fresh address, so tests never share an account or a per-email rate limit."""
    return f"{prefix}.{uuid.uuid4().hex[:12]}@example.com"


def poll(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Calls `condition` until it returns something truthy, which is returned; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


# ---------------------------------------------------------------------------------------------------------------
# HTTP


class Client:
    """A small HTTP client for one Parley base URL; asserts that every response carries X-Request-Id."""

    def __init__(self, base_url: str, token: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._local = threading.local()

    def with_token(self, token: str | None) -> "Client":
        return Client(self.base_url, token)

    @property
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session

    def request(self, method: str, path: str, *, token: str | None | object = ..., headers=None, **kwargs):
        headers = dict(headers or {})
        bearer = self.token if token is ... else token
        if bearer is not None and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {bearer}"
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        response = self._session.request(method, self.base_url + path, headers=headers, **kwargs)
        assert response.headers.get("X-Request-Id"), (
            f"{method} {path} → {response.status_code} has no X-Request-Id header: {dict(response.headers)}"
        )
        return response

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs):
        return self.request("PATCH", path, **kwargs)

    def put(self, path: str, **kwargs):
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs):
        return self.request("DELETE", path, **kwargs)


def json_body(response: requests.Response) -> Any:
    content_type = response.headers.get("Content-Type", "")
    assert content_type.startswith("application/json"), (
        f"{response.request.method} {response.url} → {response.status_code}: Content-Type {content_type!r}, "
        f"body {response.text[:300]!r}"
    )
    return response.json()


def expect_status(response: requests.Response, status: int) -> Any:
    """Asserts the status; returns the JSON body (None for an empty one)."""
    assert response.status_code == status, (
        f"{response.request.method} {response.url}: expected {status}, got {response.status_code}: {response.text[:500]}"
    )
    return json_body(response) if response.content else None


def assert_retry_after(response: requests.Response, at_most: int | None = None) -> int:
    value = response.headers.get("Retry-After")
    assert value is not None, f"429 without Retry-After: {dict(response.headers)}"
    assert value.isdigit() and int(value) >= 1, f"Retry-After should be whole seconds ≥ 1, got {value!r}"
    if at_most is not None:
        assert int(value) <= at_most, f"Retry-After {value} > {at_most}"
    return int(value)


def assert_error(response: requests.Response, status: int | Iterable[int], code: str | None = None) -> str:
    """Asserts the status and that the body is exactly {"error":{"code":snake_case,"message":str}}; returns the code."""
    statuses = {status} if isinstance(status, int) else set(status)
    assert response.status_code in statuses, (
        f"{response.request.method} {response.url}: expected {sorted(statuses)}, got {response.status_code}: "
        f"{response.text[:500]}"
    )
    body = json_body(response)
    assert isinstance(body, dict) and set(body) == {"error"}, f"error body should be {{'error': …}}, got {body!r}"
    error = body["error"]
    assert isinstance(error, dict) and set(error) == {"code", "message"}, f"error should be {{code, message}}: {error!r}"
    assert isinstance(error["code"], str) and SNAKE_CASE.fullmatch(error["code"]), f"code not snake_case: {error!r}"
    assert isinstance(error["message"], str) and error["message"].strip(), f"empty message: {error!r}"
    if code is not None:
        assert error["code"] == code, f"expected code {code!r}, got {error!r}"
    if response.status_code == 429:
        assert_retry_after(response)
    return error["code"]


def assert_user(user: Any, email_address: str | None = None) -> None:
    """A `User`: {id, email, name, avatarUrl?, emailNotifications, allowGroupAdds, createdAt}."""
    assert isinstance(user, dict), user
    required = {"id", "email", "name", "emailNotifications", "allowGroupAdds", "createdAt"}
    assert required <= set(user) <= required | {"avatarUrl"}, user
    assert isinstance(user["emailNotifications"], bool) and isinstance(user["allowGroupAdds"], bool), user
    assert isinstance(user["id"], str) and user["id"], user
    assert isinstance(user["name"], str) and user["name"], user
    assert isinstance(user["createdAt"], str) and TIMESTAMP.fullmatch(user["createdAt"]), user
    assert user.get("avatarUrl") is None or isinstance(user["avatarUrl"], str), user
    if email_address is not None:
        assert user["email"] == email_address, user


def assert_public_user(user: Any) -> None:
    """A `PublicUser`: {id, name, avatarUrl?}, never an email."""
    assert isinstance(user, dict), user
    assert {"id", "name"} <= set(user) <= {"id", "name", "avatarUrl"}, f"PublicUser has extra fields: {user!r}"
    assert isinstance(user["id"], str) and isinstance(user["name"], str), user


MESSAGE_KEYS = {"id", "chatId", "seq", "senderId", "kind", "createdAt", "version", "reactions", "mentions"}
MESSAGE_OPTIONAL_KEYS = {"text", "image", "file", "clientMessageId", "editedAt", "replyTo", "system"}
SYSTEM_ACTIONS = {"added", "removed", "left", "renamed", "photo", "role", "owner"}
# What a deleted message keeps (issue 13): the rest is erased.
TOMBSTONE_KEYS = {"id", "chatId", "seq", "senderId", "kind", "createdAt", "version", "reactions", "mentions", "clientMessageId"}
CHAT_KEYS = {"id", "kind", "members", "unreadCount", "mentionCount", "readState", "updatedAt", "version"}
CHAT_OPTIONAL_KEYS = {"name", "lastMessage", "avatarUrl"}


def assert_message(message: Any) -> None:
    """A `Message`: {id, chatId, seq, senderId, kind, text?, image?, clientMessageId?, createdAt, version, editedAt?,
    replyTo?, reactions, mentions}; a deleted one (kind "deleted") keeps only what identifies it."""
    assert isinstance(message, dict), message
    assert MESSAGE_KEYS <= set(message) <= MESSAGE_KEYS | MESSAGE_OPTIONAL_KEYS, f"Message fields: {message!r}"
    assert isinstance(message["id"], str) and message["id"], message
    assert isinstance(message["chatId"], str) and isinstance(message["senderId"], str), message
    assert isinstance(message["seq"], int) and not isinstance(message["seq"], bool) and message["seq"] >= 1, message
    assert isinstance(message["version"], int) and not isinstance(message["version"], bool) and message["version"] >= 1, message
    assert message["kind"] in {"text", "image", "file", "deleted", "system"}, message
    assert isinstance(message["createdAt"], str) and TIMESTAMP.fullmatch(message["createdAt"]), message
    assert message.get("clientMessageId") is None or isinstance(message["clientMessageId"], str), message
    if message["kind"] == "deleted":
        assert set(message) <= TOMBSTONE_KEYS, f"a deleted message keeps only {sorted(TOMBSTONE_KEYS)}: {message!r}"
        assert message["reactions"] == [] and message["mentions"] == [], message
        return
    if message["kind"] == "system":
        # A change to a group (issue 14): who did what, never any text.
        system = message.get("system")
        assert isinstance(system, dict), message
        assert {"action", "actorId"} <= set(system) <= {"action", "actorId", "userIds", "name", "role"}, system
        assert system["action"] in SYSTEM_ACTIONS and system["actorId"] == message["senderId"], message
        assert message.get("text") is None and message.get("image") is None, message
    elif message["kind"] == "text":
        assert isinstance(message.get("text"), str) and message["text"], message
        assert message.get("image") is None and message.get("file") is None, message
    elif message["kind"] == "file":
        file = message.get("file")
        assert isinstance(file, dict) and set(file) == {"url", "name", "contentType", "size"}, message
        assert isinstance(file["url"], str) and "/api/v1/files/" in file["url"], file
        assert isinstance(file["name"], str) and file["name"] and isinstance(file["contentType"], str), file
        assert isinstance(file["size"], int) and file["size"] >= 0 and message.get("image") is None, file
    else:
        image = message.get("image")
        assert isinstance(image, dict), message
        assert {"url", "contentType", "size"} <= set(image) <= {"url", "thumbnailUrl", "contentType", "size", "width", "height"}, image
        assert isinstance(image["url"], str) and "/api/v1/files/" in image["url"], image
        assert isinstance(image["size"], int) and image["size"] > 0, image
    if message.get("editedAt") is not None:
        assert isinstance(message["editedAt"], str) and TIMESTAMP.fullmatch(message["editedAt"]), message
    assert isinstance(message["reactions"], list), message
    for reaction in message["reactions"]:
        assert isinstance(reaction, dict) and set(reaction) == {"emoji", "userIds"}, reaction
        assert isinstance(reaction["emoji"], str) and reaction["emoji"], reaction
        assert isinstance(reaction["userIds"], list) and reaction["userIds"], f"a reaction nobody gave: {reaction!r}"
        assert len(set(reaction["userIds"])) == len(reaction["userIds"]), reaction
    assert len({reaction["emoji"] for reaction in message["reactions"]}) == len(message["reactions"]), message
    assert isinstance(message["mentions"], list) and all(isinstance(m, str) for m in message["mentions"]), message
    reply = message.get("replyTo")
    if reply is not None:
        assert isinstance(reply, dict) and {"seq", "senderId", "kind"} <= set(reply) <= {"seq", "senderId", "kind", "text"}, reply
        if reply["kind"] == "deleted":
            assert "text" not in reply, reply
        if "text" in reply:
            assert isinstance(reply["text"], str) and len(reply["text"]) <= 200, reply


def assert_chat_summary(chat: Any) -> None:
    """A `ChatSummary`: {id, kind, name?, members:[PublicUser], lastMessage?, unreadCount, mentionCount, readState, updatedAt,
    version}."""
    assert isinstance(chat, dict), chat
    assert CHAT_KEYS <= set(chat) <= CHAT_KEYS | CHAT_OPTIONAL_KEYS, f"ChatSummary fields: {chat!r}"
    assert isinstance(chat["id"], str) and chat["id"], chat
    assert chat["kind"] in {"direct", "group"}, chat
    if chat["kind"] == "group":
        assert isinstance(chat.get("name"), str) and chat["name"], chat
    assert isinstance(chat["members"], list) and len(chat["members"]) >= (2 if chat["kind"] == "direct" else 1), chat
    for member in chat["members"]:
        # A PublicUser and the member's role (issue 14).
        profile = dict(member)
        assert profile.pop("role", None) in {"owner", "admin", "member"}, member
        assert_public_user(profile)
        if chat["kind"] == "direct":
            assert member["role"] == "member", chat
    if chat["kind"] == "group":
        assert [member["role"] for member in chat["members"]].count("owner") == 1, chat
    if chat.get("lastMessage") is not None:
        assert_message(chat["lastMessage"])
        assert chat["lastMessage"]["chatId"] == chat["id"], chat
    assert isinstance(chat["unreadCount"], int) and chat["unreadCount"] >= 0, chat
    assert isinstance(chat["mentionCount"], int) and 0 <= chat["mentionCount"] <= chat["unreadCount"], chat
    assert isinstance(chat["version"], int) and chat["version"] >= 0, chat
    if chat.get("lastMessage") is not None:
        assert chat["version"] >= chat["lastMessage"]["version"], chat
    assert isinstance(chat["readState"], list), chat
    for state in chat["readState"]:
        assert isinstance(state, dict) and set(state) == {"userId", "lastReadSeq"}, state
        assert isinstance(state["lastReadSeq"], int) and state["lastReadSeq"] >= 0, state
    assert {state["userId"] for state in chat["readState"]} == {member["id"] for member in chat["members"]}, chat
    assert isinstance(chat["updatedAt"], str) and TIMESTAMP.fullmatch(chat["updatedAt"]), chat


def assert_auth_response(body: Any, email_address: str | None = None, lifetime: int = 900) -> None:
    """The answer of verify and refresh: {user, accessToken, refreshToken, expiresIn}; access tokens last `lifetime` s
    (15 minutes unless PARLEY_ACCESS_TOKEN_TTL_SECONDS says otherwise)."""
    assert isinstance(body, dict) and set(body) == {"user", "accessToken", "refreshToken", "expiresIn"}, body
    assert_user(body["user"], email_address)
    assert isinstance(body["accessToken"], str) and body["accessToken"].count(".") == 2, body
    assert isinstance(body["refreshToken"], str) and len(body["refreshToken"]) >= 20, body
    assert body["expiresIn"] == lifetime, f"access tokens last {lifetime} s: {body['expiresIn']!r}"


# ---------------------------------------------------------------------------------------------------------------
# Processes


class Process:
    """A child process whose stdout and stderr go to a log file."""

    name = "process"

    def __init__(self, log_path: Path):
        self.log_path = log_path
        self.popen: subprocess.Popen | None = None

    def describe(self) -> str:
        return self.name

    def _forget(self) -> None:
        if self in RUNNING:
            RUNNING.remove(self)

    def stop(self, timeout: float = SHUTDOWN_TIMEOUT) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit status, or None if it had to be killed."""
        self._forget()
        if self.popen is None or self.popen.poll() is not None:
            return None if self.popen is None else self.popen.returncode
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            return None


class SMTPServer(Process):
    """tests/support/smtpd.py: records accepted mails in a JSONL file, can answer 451 to the first K."""

    name = "smtpd"

    def __init__(self, directory: Path, port: int = 0, fail_first: int = 0):
        super().__init__(directory / "smtpd.log")
        self.requested_port = port
        self.fail_first = fail_first
        self.mailbox = Mailbox(directory / "mail.jsonl")
        self.port = 0

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> "SMTPServer":
        assert SMTPD_SCRIPT.exists(), f"{SMTPD_SCRIPT} is missing"
        command = [sys.executable, str(SMTPD_SCRIPT), "--port", str(self.requested_port),
                   "--out", str(self.mailbox.path)]
        if self.fail_first:
            command += ["--fail-first", str(self.fail_first)]
        log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        line = self._read_line(timeout=15.0)
        match = re.fullmatch(r"READY (\d+)", line.strip())
        if not match:
            self.stop()
            raise AssertionError(f"smtpd.py did not say READY: {line!r}\n{tail(self.log_path)}")
        self.port = int(match.group(1))
        RUNNING.append(self)
        return self

    def _read_line(self, timeout: float) -> str:
        assert self.popen is not None and self.popen.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.popen.stdout, selectors.EVENT_READ)
        try:
            if not selector.select(timeout):
                return "(nothing within %g s)" % timeout
            return self.popen.stdout.readline().decode("utf-8", errors="replace")
        finally:
            selector.close()

    def describe(self) -> str:
        return f"smtpd on port {self.port}"


class ParleyServer(Process):
    """One `parley serve [SERVICE]` process."""

    def __init__(self, binary: Path, service: str | None, env: dict[str, str], directory: Path,
                 mailbox: "Mailbox | None"):
        super().__init__(directory / "parley.log")
        self.binary = binary
        self.service = service
        self.env = env
        self.directory = directory
        self.mailbox = mailbox
        self.port = int(env["PARLEY_PORT"])
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.client = Client(self.base_url)
        self.exit_status: int | None = None

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"parley serve {self.service or ''}".rstrip()

    def describe(self) -> str:
        return f"{self.name} on port {self.port} ({self.env.get('PARLEY_DATABASE_URL', 'sqlite')})"

    def start(self) -> "ParleyServer":
        command = [str(self.binary), "serve"] + ([self.service] if self.service else [])
        log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(command, env=self.env, cwd=self.directory, stdout=log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        RUNNING.append(self)
        self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = STARTUP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            assert self.popen is not None
            if self.popen.poll() is not None:
                self._forget()
                raise AssertionError(
                    f"{self.describe()} exited with {self.popen.returncode} while starting:\n{tail(self.log_path)}")
            try:
                response = requests.get(self.base_url + "/health", timeout=2)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:200]}"
            except requests.RequestException as error:
                last = type(error).__name__
            time.sleep(0.05)
        raise AssertionError(
            f"{self.describe()} not healthy after {timeout:g} s (last: {last}):\n{tail(self.log_path)}")

    def stop(self, timeout: float = SHUTDOWN_TIMEOUT) -> int | None:
        self.exit_status = super().stop(timeout)
        return self.exit_status

    # Logs

    def log_lines(self) -> list[str]:
        try:
            return [line for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
                    if line.strip()]
        except OSError:
            return []

    def log_records(self) -> list[dict]:
        """The JSON log lines written so far (lines that are not JSON objects are left out)."""
        records = []
        for line in self.log_lines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    def wait_for_log(self, predicate: Callable[[dict], bool], timeout: float = 10.0, what: str = "a log line") -> dict:
        def find():
            for record in self.log_records():
                if predicate(record):
                    return record
            return None

        return poll(find, timeout, f"{what} in {self.describe()}'s log")

    # Login codes

    def code_for(self, address: str, count: int = 1, timeout: float = 15.0) -> str:
        """The latest login code sent to `address` once `count` have been: from the SMTP server, or the log."""
        if self.mailbox is not None:
            return self.mailbox.wait_for(address, count=count, timeout=timeout).code
        return code_from_log(self.log_records, address, count=count, timeout=timeout)


def log_message(record: dict) -> str:
    message = record.get("message")
    return message if isinstance(message, str) else ""


def code_from_log(records: Callable[[], list[dict]], address: str, count: int = 1, timeout: float = 15.0) -> str:
    def find():
        codes = []
        for record in records():
            message = log_message(record)
            match = CODE_IN_LOG.search(message)
            if match and address.lower() in message.lower():
                codes.append(match.group(1))
        return codes[-1] if len(codes) >= count else None

    return poll(find, timeout, f"{count} log line(s) with a login code for {address}")


# ---------------------------------------------------------------------------------------------------------------
# Mail


@dataclass
class Mail:
    """One message the SMTP test server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    data: str

    @cached_property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_string(self.data, policy=email.policy.default)

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None and body.get_content_subtype() == subtype, (
            f"no text/{subtype} part in:\n{self.data[:2000]}")
        return body.get_content()

    @property
    def text(self) -> str:
        return self.part("plain")

    @property
    def html(self) -> str:
        return self.part("html")

    @property
    def code(self) -> str:
        match = CODE_IN_MAIL.search(self.text)
        assert match, f"no 6-digit code in the text part:\n{self.text}"
        return match.group(1)


@dataclass
class Mailbox:
    """The JSONL file smtpd.py appends accepted messages to."""

    path: Path
    _cache: list[Mail] = field(default_factory=list)
    _offset: int = 0
    # Tests sign in from several threads at once (Cluster.sign_in_many): two readers of one offset each advanced it by
    # what they read, so the offset skipped past a mail no one had cached (the cluster's churn test waited 30 s for one).
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def messages(self) -> list[Mail]:
        with self._lock:
            try:
                with open(self.path, "rb") as file:
                    file.seek(self._offset)
                    chunk = file.read()
            except FileNotFoundError:
                return list(self._cache)
            # Only complete lines: the writer may be half-way through the last one.
            end = chunk.rfind(b"\n") + 1
            for line in chunk[:end].splitlines():
                if line.strip():
                    record = json.loads(line)
                    self._cache.append(Mail(record["mailFrom"], list(record["rcptTos"]), record["data"]))
            self._offset += end
            return list(self._cache)

    def to(self, address: str) -> list[Mail]:
        wanted = address.strip().lower()
        return [mail for mail in self.messages() if wanted in (rcpt.lower() for rcpt in mail.rcpt_tos)]

    def wait_for(self, address: str, count: int = 1, timeout: float = 15.0) -> Mail:
        """The latest mail to `address`, once at least `count` have come."""
        mails = poll(lambda: (lambda mails: mails if len(mails) >= count else None)(self.to(address)), timeout,
                     f"{count} mail(s) to {address} in {self.path}")
        return mails[-1]


# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL


class PostgresDatabases:
    """Creates a fresh database per server on the test cluster (with psql), and drops them at the end."""

    def __init__(self, admin_url: str):
        self.admin_url = admin_url
        self.created: list[str] = []

    def _psql(self, sql: str) -> None:
        result = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.admin_url, "-c", sql],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"psql failed on {sql!r}: {result.stderr}"

    def create(self) -> str:
        name = f"parley_e2e_{uuid.uuid4().hex[:16]}"
        self._psql(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(path="/" + name))

    def drop_all(self) -> None:
        """Drops them all at once: each DROP DATABASE waits for a checkpoint (seconds on a busy machine), and drops
        that wait together share one, where one after the other each would wait for its own."""
        names, self.created = self.created, []

        def drop(name: str) -> None:
            try:
                self._psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except AssertionError:
                pass

        if names:
            with ThreadPoolExecutor(max_workers=min(len(names), DROP_CONCURRENCY)) as pool:
                list(pool.map(drop, names))


# ---------------------------------------------------------------------------------------------------------------
# JWT


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class JWT:
    header: dict
    payload: dict
    signing_input: bytes
    signature: bytes
    raw: str

    @classmethod
    def parse(cls, token: str) -> "JWT":
        header, payload, signature = token.split(".")
        return cls(json.loads(b64url_decode(header)), json.loads(b64url_decode(payload)),
                   f"{header}.{payload}".encode("ascii"), b64url_decode(signature), token)


def encode_segment(value: dict) -> str:
    return b64url_encode(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def sign_jwt(header: dict, payload: dict, key) -> str:
    """Signs with an Ed25519 (EdDSA) or P-256 (ES256) private key; the header's `alg` is set to match."""
    header = dict(header)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        header["alg"] = "EdDSA"
        signing_input = f"{encode_segment(header)}.{encode_segment(payload)}".encode("ascii")
        signature = key.sign(signing_input)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        header["alg"] = "ES256"
        signing_input = f"{encode_segment(header)}.{encode_segment(payload)}".encode("ascii")
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        raise TypeError(f"unsupported key {type(key).__name__}")
    return f"{signing_input.decode('ascii')}.{b64url_encode(signature)}"


def public_key_from_jwk(jwk: dict):
    if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519":
        return ed25519.Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
    if jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
        numbers = ec.EllipticCurvePublicNumbers(int.from_bytes(b64url_decode(jwk["x"]), "big"),
                                                int.from_bytes(b64url_decode(jwk["y"]), "big"), ec.SECP256R1())
        return numbers.public_key()
    raise AssertionError(f"unsupported JWK {jwk!r}")


def verify_jwt_signature(token: JWT, jwk: dict) -> None:
    """Raises cryptography's InvalidSignature unless the JWK verifies the token as its header's `alg` says."""
    key = public_key_from_jwk(jwk)
    if token.header["alg"] == "EdDSA":
        assert isinstance(key, ed25519.Ed25519PublicKey), (token.header, jwk)
        key.verify(token.signature, token.signing_input)
    elif token.header["alg"] == "ES256":
        assert isinstance(key, ec.EllipticCurvePublicKey) and len(token.signature) == 64, (token.header, jwk)
        der = encode_dss_signature(int.from_bytes(token.signature[:32], "big"),
                                   int.from_bytes(token.signature[32:], "big"))
        key.verify(der, token.signing_input, ec.ECDSA(hashes.SHA256()))
    else:
        raise AssertionError(f"unexpected alg {token.header['alg']!r}")


def public_raw(key) -> bytes:
    """The raw public bytes of an Ed25519 key (what a JWK's `x` holds)."""
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def private_pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


# ---------------------------------------------------------------------------------------------------------------
# Accounts


@dataclass
class Account:
    """A signed-in user: the verify answer plus a client that sends its access token."""

    email: str
    user: dict
    access_token: str
    refresh_token: str
    client: Client

    @property
    def id(self) -> str:
        return self.user["id"]


def introduce(account: Account, others: list[Any]) -> None:
    """Opens a direct chat of `account` with each of `others` (Accounts or user ids): the people one may put into a
    group (issue 14's consent rule: you add people you already share a chat with)."""
    for other in others:
        user_id = other if isinstance(other, str) else other.user["id"]
        if user_id == account.user["id"]:
            continue
        response = account.client.post("/api/v1/chats", json={"userId": user_id})
        assert response.status_code in (200, 201), f"introducing: {response.status_code} {response.text[:300]}"


def request_code(client: Client, address: Any, retry_after: int = 60) -> requests.Response:
    """POST /login and assert the contract's 202 answer (retryAfterSeconds is the resend interval, 60 by default)."""
    response = client.post("/api/v1/login", json={"email": address}, token=None)
    body = expect_status(response, 202)
    assert isinstance(body, dict) and set(body) == {"message", "retryAfterSeconds"}, body
    assert isinstance(body["message"], str) and body["message"], body
    assert body["retryAfterSeconds"] == retry_after, body
    return response


def verify(client: Client, address: Any, code: Any) -> requests.Response:
    return client.post("/api/v1/verify", json={"email": address, "otp": code}, token=None)


def sign_in(server: ParleyServer, address: str | None = None, verify_as: str | None = None) -> Account:
    """Requests a code, reads it (mail or log), verifies it; returns the account."""
    address = address or unique_email()
    request_code(server.client, address, retry_after=int(server.env.get("PARLEY_OTP_RESEND_SECONDS", "60")))
    code = server.code_for(address.strip().lower())
    body = expect_status(verify(server.client, verify_as or address, code), 200)
    assert_auth_response(body, lifetime=int(server.env.get("PARLEY_ACCESS_TOKEN_TTL_SECONDS", "900")))
    return Account(body["user"]["email"], body["user"], body["accessToken"], body["refreshToken"],
                   server.client.with_token(body["accessToken"]))


def refresh(client: Client, refresh_token: Any) -> requests.Response:
    return client.post("/api/v1/token/refresh", json={"refreshToken": refresh_token}, token=None)


def environment_without_parley() -> dict[str, str]:
    """This process's environment minus PARLEY_* variables, so a developer's own settings cannot leak in."""
    return {key: value for key, value in os.environ.items() if not key.startswith("PARLEY_")}


# ---------------------------------------------------------------------------------------------------------------
# pytest hooks shared by the e2e and cluster suites


def add_default_timeout(config, items, seconds: int) -> None:
    """A hung server must fail its test, not the whole CI run."""
    import pytest

    if config.pluginmanager.hasplugin("timeout"):
        for item in items:
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(seconds))


def append_process_logs(report, lines: int) -> None:
    """On a failure, the log tail of every process still running goes into the report."""
    if report.failed:
        for process in list(RUNNING):
            report.sections.append((f"log of {process.describe()}", tail(process.log_path, lines)))


# ---------------------------------------------------------------------------------------------------------------
# Socket.IO


def record_events_in_wire_order(client, record: Callable[[str, Any], None]) -> None:
    """Calls `record(event, payload)` for every event a stock python-socketio `client` receives, in the order the
    server sent them.

    python-engineio hands each message to the Socket.IO layer on a thread of its own, so event handlers may run in
    another order than the packets came in; a test of ordering reads them here, on the transport's read loop."""
    import engineio
    import socketio

    receive = client.eio._receive_packet

    def in_order(packet) -> None:
        if packet.packet_type == engineio.packet.MESSAGE and isinstance(packet.data, str):
            decoded = socketio.packet.Packet(encoded_packet=packet.data)
            if decoded.packet_type == socketio.packet.EVENT and decoded.data:
                record(decoded.data[0], decoded.data[1] if len(decoded.data) > 1 else None)
        receive(packet)

    client.eio._receive_packet = in_order


# ---------------------------------------------------------------------------------------------------------------
# An S3-compatible object store


class MotoServer(Process):
    """moto in server mode (tests/requirements.txt): an S3-compatible store in memory, on its own port, checking the
    AWS Signature Version 4 of every request against an access key made at start (its IAM checks are on after the
    three requests that make it). `bucket()` makes a bucket. Stopping it loses everything it held (a test stops it to
    see a store go down). With `signatures=False` it takes any key, so one started again on the same port takes the
    key the first had."""

    name = "moto"

    def __init__(self, directory: Path, port: int = 0, signatures: bool = True):
        super().__init__(directory / "moto.log")
        self.port = port or free_port()
        self.signatures = signatures
        self.access_key = "" if signatures else "parley-e2e"
        self.secret_key = "" if signatures else "parley-e2e-secret"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "MotoServer":
        log = open(self.log_path, "ab")
        environment = dict(os.environ)
        if self.signatures:
            environment["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"
        self.popen = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(self.port)], stdout=log, stderr=log,
                                      env=environment)
        RUNNING.append(self)
        # A TCP probe only: an HTTP request would use up one of the three unchecked requests.
        poll(lambda: self._listens(), 30, "moto_server to listen")
        if not self.signatures:
            return self
        import boto3
        iam = boto3.client("iam", endpoint_url=self.endpoint, region_name="us-east-1",
                           aws_access_key_id="setup", aws_secret_access_key="setup")
        iam.create_user(UserName="parley")
        iam.put_user_policy(UserName="parley", PolicyName="everything", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="parley")["AccessKey"]
        self.access_key, self.secret_key = key["AccessKeyId"], key["SecretAccessKey"]
        return self

    def _listens(self) -> bool:
        assert self.popen is not None
        if self.popen.poll() is not None:
            raise AssertionError(f"moto_server exited with {self.popen.returncode}:\n{tail(self.log_path)}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def client(self):
        import boto3
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)

    def bucket(self, name: str | None = None) -> str:
        name = name or f"parley-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def objects(self, bucket: str) -> dict[str, bytes]:
        """Every object of `bucket`, by key."""
        client = self.client()
        found: dict[str, bytes] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                found[item["Key"]] = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        return found

    def parley_env(self, bucket: str, style: str = "path") -> dict[str, str]:
        """The environment that makes Parley keep its files in `bucket`."""
        return {
            "PARLEY_BLOB_STORE": f"s3://{bucket}?endpoint={self.endpoint}&region=us-east-1&style={style}",
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }
