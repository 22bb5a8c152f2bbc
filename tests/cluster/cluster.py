"""Building blocks of the cluster tests: a private PostgreSQL, Parley instances, nginx from the shipped config.

Everything runs on loopback: PostgreSQL (scripts/lib/postgres.sh, a cluster of its own so the tests may stop and
restart it), several `parley serve user|chat|mail` processes of the debug binary, the SMTP test server and nginx
(`nginx -c <rendered main conf> -p <tmp dir>`) with deploy/nginx/parley.conf rendered into it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import requests
from requests.adapters import HTTPAdapter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from harness import (  # noqa: E402  (after the path change)
    Account,
    REPO_ROOT,
    RUNNING,
    SMTPD_SCRIPT,
    Client,
    ParleyServer,
    Process,
    SMTPServer,
    environment_without_parley,
    expect_status,
    free_port,
    poll,
    record_events_in_wire_order,
    tail,
    unique_email,
)

NGINX_CONF = REPO_ROOT / "deploy" / "nginx" / "parley.conf"
POSTGRES_LIB = REPO_ROOT / "scripts" / "lib" / "postgres.sh"
# Seconds a user's last socket may be gone before contacts hear userOffline (PARLEY_PRESENCE_GRACE_MS; the default is
# 2 s): the presence tests wait past it, so it is short here.
PRESENCE_GRACE = 0.5

# The instance layout of the shipped nginx config: name → the port it has there (see its header).
SHIPPED_PORTS = {
    "user1": 3011, "user2": 3012,
    "chat1": 3021, "chat2": 3022, "chat3": 3023,
    "mail1": 3031, "mail2": 3032,
}


def timing(label: str, seconds: float) -> None:
    """Prints a measured duration so it shows in the test log (pytest -s or the captured output)."""
    print(f"[timing] {label}: {seconds:.2f} s", flush=True)


# ---------------------------------------------------------------------------------------------------------------
# HTTP from a chosen loopback address


class SourceAddressAdapter(HTTPAdapter):
    """Sends requests from one local address (127.0.0.0/8 is all loopback), so nginx sees distinct clients."""

    def __init__(self, source: str, **kwargs):
        self.source = (source, 0)
        super().__init__(**kwargs)

    def init_poolmanager(self, connections, maxsize, block=False, **kwargs):
        kwargs["source_address"] = self.source
        super().init_poolmanager(connections, maxsize, block, **kwargs)


_next_source = [0]
_source_lock = threading.Lock()


def fresh_source_address() -> str:
    """A loopback address no other test client used: 127.0.2.1, 127.0.2.2, …"""
    with _source_lock:
        _next_source[0] += 1
        n = _next_source[0]
    return f"127.0.{2 + n // 250}.{1 + n % 250}"


class SourcedClient(Client):
    """harness.Client whose connections leave from `source`."""

    def __init__(self, base_url: str, token: str | None = None, source: str = "127.0.0.1"):
        super().__init__(base_url, token)
        self.source = source

    def with_token(self, token):
        return SourcedClient(self.base_url, token, self.source)

    @property
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            adapter = SourceAddressAdapter(self.source)
            session.mount("http://", adapter)
            self._local.session = session
        return session


# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL


class Postgres:
    """A private cluster started by scripts/lib/postgres.sh's pg_start; this object stops, starts and deletes it."""

    def __init__(self):
        self.directory: Path | None = None
        self.bin_dir: Path | None = None
        self.url = ""

    def start(self) -> "Postgres":
        script = (f'source "{POSTGRES_LIB}" && pg_start >&2 && '
                  'printf "%s\\n%s\\n%s\\n" "$PARLEY_TEST_PG_DIR" "$PARLEY_TEST_PG_BIN" "$PARLEY_TEST_POSTGRES_URL"')
        env = dict(os.environ)
        env.setdefault("PARLEY_TEST_PG_PORT", "54420")
        result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 0, f"pg_start failed:\n{result.stderr}"
        directory, bin_dir, self.url = result.stdout.strip().splitlines()[-3:]
        self.directory, self.bin_dir = Path(directory), Path(bin_dir)
        return self

    @property
    def data(self) -> Path:
        assert self.directory is not None
        return self.directory / "data"

    def pg_ctl(self, *args: str, timeout: float = 60) -> None:
        assert self.directory is not None and self.bin_dir is not None
        command = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, cwd=self.directory, capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, f"pg_ctl {' '.join(args)} failed: {result.stdout}{result.stderr}"

    def stop_server(self) -> None:
        self.pg_ctl("-m", "fast", "-w", "-t", "30", "stop")

    @property
    def port(self) -> int:
        return int(re.search(r":(\d+)/", self.url).group(1))

    def start_server(self) -> None:
        # pg_start gave the port on the command line (postgresql.conf has the default): give it again.
        self.pg_ctl("-l", str(self.directory / "server.log"), "-o", f"-p {self.port}", "-w", "-t", "60", "start")

    def psql(self, sql: str, url: str | None = None) -> str:
        result = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url or self.url, "-c", sql],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"psql failed on {sql!r}: {result.stderr}"
        return result.stdout

    def create_database(self) -> str:
        name = f"parley_cluster_{uuid.uuid4().hex[:12]}"
        self.psql(f'CREATE DATABASE "{name}"')
        return re.sub(r"/[^/]*$", "/" + name, self.url)

    def close(self) -> None:
        if self.directory is None:
            return
        try:
            if (self.data / "postmaster.pid").exists():
                self.pg_ctl("-m", "fast", "-w", "-t", "30", "stop")
        except AssertionError:
            self.pg_ctl("-m", "immediate", "-w", "-t", "10", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None


# ---------------------------------------------------------------------------------------------------------------
# nginx


SHIPPED_ACCESS_LOG = "/var/log/nginx/parley.access.log"


def render_nginx_site(ports: dict[str, int], listen_port: int, log_dir: Path | None = None) -> str:
    """deploy/nginx/parley.conf with the shipped instance ports and `listen 80;` replaced by the test's, and its
    access log (the shipped format) written to `log_dir`/parley.access.log."""
    text = NGINX_CONF.read_text(encoding="utf-8")
    assert text.count(SHIPPED_ACCESS_LOG) == 1, f"{NGINX_CONF} should have one `access_log {SHIPPED_ACCESS_LOG} …;` line"
    if log_dir is not None:
        text = text.replace(SHIPPED_ACCESS_LOG, str(log_dir / "parley.access.log"))
    for name, shipped in SHIPPED_PORTS.items():
        needle = re.compile(rf"127\.0\.0\.1:{shipped}\b")
        assert needle.search(text), f"{NGINX_CONF} no longer has 127.0.0.1:{shipped} ({name}): update SHIPPED_PORTS"
        text = needle.sub(f"127.0.0.1:{ports[name]}", text)
    listen = re.compile(r"^(\s*)listen 80;", re.M)
    assert len(listen.findall(text)) == 1, f"{NGINX_CONF} should have exactly one `listen 80;` line"
    return listen.sub(rf"\g<1>listen 127.0.0.1:{listen_port};", text)


class Nginx(Process):
    """nginx with a main config of the test's own that includes the rendered deploy/nginx/parley.conf."""

    name = "nginx"

    def __init__(self, directory: Path, ports: dict[str, int]):
        super().__init__(directory / "error.log")
        self.directory = directory
        self.ports = ports
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        site = self.directory / "parley.conf"
        site.write_text(render_nginx_site(self.ports, self.port, self.directory), encoding="utf-8")
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.directory / sub).mkdir(exist_ok=True)
        user = "user root root;\n" if os.geteuid() == 0 else ""
        main = self.directory / "nginx.conf"
        main.write_text(f"""{user}worker_processes 2;
daemon off;
pid {self.directory}/nginx.pid;
error_log {self.directory}/error.log info;
events {{ worker_connections 1024; }}
http {{
    log_format parley '$remote_addr "$request" $status $body_bytes_sent upstream=$upstream_addr '
                      'upstream_status=$upstream_status time=$request_time';
    access_log {self.directory}/access.log parley;
    client_body_temp_path {self.directory}/client_body;
    proxy_temp_path {self.directory}/proxy;
    fastcgi_temp_path {self.directory}/fastcgi;
    uwsgi_temp_path {self.directory}/uwsgi;
    scgi_temp_path {self.directory}/scgi;
    include {site};
}}
""", encoding="utf-8")
        return main

    def command(self, *extra: str) -> list[str]:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        return [nginx, "-p", str(self.directory), "-c", str(self.directory / "nginx.conf"), *extra]

    def test_config(self) -> None:
        self.write_config()
        result = subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, f"nginx -t refused the rendered config:\n{result.stderr}"

    def start(self) -> "Nginx":
        self.test_config()
        log = open(self.directory / "stdout.log", "ab")
        self.popen = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        RUNNING.append(self)
        poll(lambda: self._answers(), 15, "nginx to listen")
        return self

    def _answers(self) -> bool:
        assert self.popen is not None
        assert self.popen.poll() is None, f"nginx exited: {tail(self.directory / 'stdout.log')}\n{tail(self.log_path)}"
        try:
            requests.get(self.base_url + "/metrics", timeout=1)
            return True
        except requests.RequestException:
            return False

    def stop(self, timeout: float = 10.0) -> int | None:
        # SIGQUIT is nginx's graceful stop; SIGTERM is fast. Fast is what a test wants.
        return super().stop(timeout)

    def describe(self) -> str:
        return f"nginx on port {self.port}"


# ---------------------------------------------------------------------------------------------------------------
# Parley instances


class Instance(ParleyServer):
    """One named instance (PARLEY_INSTANCE) of a split service, on a fixed port so it can be restarted there."""

    def __init__(self, binary: Path, service: str, name: str, env: dict[str, str], directory: Path, mailbox=None):
        super().__init__(binary, service, env, directory, mailbox)
        self.instance = name

    def describe(self) -> str:
        return f"{self.instance} (parley serve {self.service}, port {self.port})"

    def spawn(self) -> "Instance":
        """Starts the process without waiting for /health (several start at once; wait_healthy later)."""
        command = [str(self.binary), "serve", self.service]
        log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(command, env=self.env, cwd=self.directory, stdout=log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        RUNNING.append(self)
        return self

    def kill9(self) -> None:
        """SIGKILL: no goodbye to anyone (sockets, presence, leases)."""
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait()
        self._forget()

    def health(self) -> int | None:
        try:
            return requests.get(self.base_url + "/health", timeout=4).status_code
        except requests.RequestException:
            return None


@dataclass
class ClusterSpec:
    users: int = 2
    chats: int = 3
    mails: int = 2


class Cluster:
    """Parley instances on one PostgreSQL database behind nginx, plus the SMTP test server they deliver to."""

    def __init__(self, root: Path, binary: Path, postgres: Postgres, database_url: str, jwt_pem: str | None,
                 spec: ClusterSpec = ClusterSpec(), env: dict[str, str] | None = None):
        self.root = root
        self.binary = binary
        self.postgres = postgres
        self.database_url = database_url
        self.jwt_pem = jwt_pem
        self.spec = spec
        self.extra_env = env or {}
        self.ports = {name: free_port() for name in SHIPPED_PORTS}
        self.instances: dict[str, Instance] = {}
        self.smtp: SMTPServer | None = None
        self.nginx: Nginx | None = None
        self.smtp_delay_file = root / "smtp-delay"

    # Names of the running layout
    def names(self, service: str) -> list[str]:
        count = {"user": self.spec.users, "chat": self.spec.chats, "mail": self.spec.mails}[service]
        return [f"{service}{index}" for index in range(1, count + 1)]

    @property
    def url(self) -> str:
        assert self.nginx is not None
        return self.nginx.base_url

    def instance_env(self, service: str, name: str) -> dict[str, str]:
        assert self.smtp is not None and self.nginx is not None
        environment = environment_without_parley()
        environment.update({
            "PARLEY_INSTANCE": name,
            "PARLEY_HOST": "127.0.0.1",
            "PARLEY_PORT": str(self.ports[name]),
            "PARLEY_DATABASE_URL": self.database_url,
            "PARLEY_PUBLIC_URL": self.url,
            "PARLEY_USER_SERVICE_URL": self.url,
            "PARLEY_TRUSTED_PROXIES": "127.0.0.1,::1",
            "PARLEY_SMTP_URL": self.smtp.url,
            "PARLEY_LOG_FORMAT": "json",
            "PARLEY_MAIL_POLL_SECONDS": "0.2",
            "PARLEY_MAIL_RETRY_BASE_SECONDS": "1",
            "PARLEY_MAIL_LEASE_SECONDS": "5",
            "PARLEY_PRESENCE_TTL_SECONDS": "6",
            "PARLEY_PRESENCE_GRACE_MS": str(int(PRESENCE_GRACE * 1000)),
            "PARLEY_EVENT_BUS": "postgres",
            "PARLEY_LOGIN_IP_LIMIT": "1000",
            # The tests send in bursts (the per-user rates are tested in tests/e2e/test_hostile.py).
            "PARLEY_RATE_MESSAGES": "1000000,1000000",
            "PARLEY_RATE_TYPING": "1000000,1000000",
            "PARLEY_RATE_GROUPS": "1000000,1000000",
            "PARLEY_VERIFY_IP_LIMIT": "1000",
        })
        if self.jwt_pem and service == "user":
            environment["PARLEY_JWT_PRIVATE_KEY"] = self.jwt_pem
        environment.update(self.extra_env)
        # Chat instances share one data dir: the files they store must be readable from every instance. With the files
        # in an object store (PARLEY_BLOB_STORE) each has its own, as on separate machines.
        shared = service == "chat" and "PARLEY_BLOB_STORE" not in self.extra_env
        data = self.root / ("chat-shared" if shared else name)
        environment["PARLEY_DATA_DIR"] = str(data / "data")
        return environment

    def make_instance(self, service: str, name: str) -> Instance:
        directory = self.root / name
        directory.mkdir(parents=True, exist_ok=True)
        return Instance(self.binary, service, name, self.instance_env(service, name), directory,
                        self.smtp.mailbox if self.smtp else None)

    def start(self) -> "Cluster":
        started = time.monotonic()
        smtp_dir = self.root / "smtpd"
        smtp_dir.mkdir(parents=True, exist_ok=True)
        self.smtp = SMTPServer(smtp_dir)
        self._start_smtp()
        nginx_dir = self.root / "nginx"
        nginx_dir.mkdir(parents=True, exist_ok=True)
        self.nginx = Nginx(nginx_dir, self.ports)
        self.nginx.start()
        # Users first (migrations run once, under an advisory lock, by whichever starts first).
        for service in ("user", "chat", "mail"):
            spawned = [self.make_instance(service, name).spawn() for name in self.names(service)]
            for instance in spawned:
                self.instances[instance.instance] = instance  # so close() stops it even if it never gets healthy
            for instance in spawned:
                instance.wait_healthy(timeout=60)
        timing(f"cluster of {len(self.instances)} instances and nginx started", time.monotonic() - started)
        return self

    def _start_smtp(self) -> None:
        """harness.SMTPServer.start(), with --delay-file so a test can make delivery slow."""
        smtp = self.smtp
        assert smtp is not None
        command = [sys.executable, str(SMTPD_SCRIPT), "--port", "0", "--out", str(smtp.mailbox.path),
                   "--delay-file", str(self.smtp_delay_file)]
        log = open(smtp.log_path, "ab")
        smtp.popen = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        line = smtp._read_line(timeout=15.0)
        match = re.fullmatch(r"READY (\d+)", line.strip())
        assert match, f"smtpd.py did not say READY: {line!r}\n{tail(smtp.log_path)}"
        smtp.port = int(match.group(1))
        RUNNING.append(smtp)

    def presence_rows(self, *user_ids: str) -> str:
        """The presence table's rows of these users (for failure messages): instance, user, ms left to live."""
        ids = ",".join(f"'{ident}'" for ident in user_ids if re.fullmatch(r"[0-9a-f-]{36}", ident))
        if not ids:
            return "(no ids)"
        try:
            return self.postgres.psql(
                "SELECT instance_id, user_id, expires_at - (extract(epoch FROM clock_timestamp()) * 1000)::bigint "
                f"AS ms_left FROM presence WHERE user_id IN ({ids}) ORDER BY user_id, instance_id",
                url=self.database_url).strip() or "(no rows)"
        except AssertionError as error:
            return f"(cannot read presence: {error})"

    def set_smtp_delay(self, seconds: float) -> None:
        self.smtp_delay_file.write_text(f"{seconds}\n", encoding="utf-8")

    def restart(self, name: str) -> Instance:
        """Starts a (killed or stopped) instance again on its port, with its name."""
        old = self.instances[name]
        if old.popen is not None and old.popen.poll() is None:
            old.stop()
        instance = self.make_instance(old.service, name).spawn()
        self.instances[name] = instance
        instance.wait_healthy(timeout=60)
        return instance

    @contextmanager
    def running(self) -> Iterator["Cluster"]:
        """Starts the cluster and closes it at the end; then fails if an instance ended badly (what `close` returns)."""
        try:
            self.start()
            yield self
        finally:
            problems = self.close()
        assert not problems, "\n".join(problems)

    def close(self) -> list[str]:
        problems = []
        for instance in reversed(list(self.instances.values())):
            if instance.popen is not None and instance.popen.poll() is None:
                status = instance.stop()
                if status not in (0, None):
                    problems.append(f"{instance.describe()} exited {status} on SIGTERM")
        for process in (self.nginx, self.smtp):
            if process is not None:
                process.stop()
        return problems

    # Clients

    def client(self, token: str | None = None, source: str | None = None) -> SourcedClient:
        """An HTTP client of nginx, from a fresh loopback address unless told."""
        return SourcedClient(self.url, token, source or fresh_source_address())

    def sign_in(self, address: str | None = None) -> "Account":
        """Login through nginx (user instances), the code from the SMTP test server (mail instances)."""
        assert self.smtp is not None
        address = address or unique_email("cluster")
        client = self.client()
        expect_status(client.post("/api/v1/login", json={"email": address}, token=None), 202)
        code = self.smtp.mailbox.wait_for(address, timeout=30).code
        body = expect_status(client.post("/api/v1/verify", json={"email": address, "otp": code}, token=None), 200)
        return Account(address, body["user"], body["accessToken"], body["refreshToken"], client.with_token(body["accessToken"]))

    def sign_in_many(self, count: int) -> list["Account"]:
        """`count` new accounts, signed in a few at a time (each waits on its mail: one after another took seconds)."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=6) as pool:
            return list(pool.map(lambda _: self.sign_in(), range(count)))


# ---------------------------------------------------------------------------------------------------------------
# Socket.IO clients


class Recorder:
    """Collects the events one socket receives, with a lock, and lets a test wait for one."""

    EVENTS = ("newMessage", "messagesSeen", "userTyping", "userStoppedTyping", "userOnline", "userOffline",
              "getOnlineUser", "chatUpdated", "chatRemoved", "sessionEnded")

    def __init__(self):
        self.lock = threading.Lock()
        self.events: list[tuple[str, Any]] = []

    def attach(self, socket, events: tuple[str, ...] | None = None) -> None:
        """Records `events` (all of EVENTS by default) as they come off the wire: python-engineio hands each message to
        a thread of its own, so handlers registered with `socket.on` may run out of the order the server sent."""
        wanted = frozenset(events or self.EVENTS)

        def record(event: str, payload: Any) -> None:
            if event in wanted:
                with self.lock:
                    self.events.append((event, payload))

        record_events_in_wire_order(socket, record)

    def of(self, event: str) -> list[Any]:
        with self.lock:
            return [data for name, data in self.events if name == event]

    def wait(self, event: str, predicate: Callable[[Any], bool] = lambda _: True, timeout: float = 10.0,
             what: str | None = None) -> Any:
        return poll(lambda: next((d for d in self.of(event) if predicate(d)), None), timeout,
                    what or f"a {event} event")


def transports(kind: str) -> list[str]:
    return {"websocket": ["websocket"], "polling": ["polling"]}[kind]


def engine_sid(socket) -> str:
    """The Engine.IO session id (what `?sid=` carries), not the Socket.IO socket id."""
    return socket.eio.sid or ""


def instance_of(socket) -> str:
    """The chat instance that holds a socket, from its Engine.IO sid `<instance>.<random>`."""
    sid = engine_sid(socket)
    assert "." in sid, (f"Engine.IO sid {sid!r} does not name its instance: the binary does not support "
                        "PARLEY_INSTANCE (issue 7, part a) yet")
    return sid.split(".", 1)[0]


def connect_socket(cluster: Cluster, token: str, transport: str, instance: str | None = None,
                   recorder: Recorder | None = None, reconnection: bool = False, tries: int = 12, **options):
    """A stock python-socketio client connected through nginx; with `instance`, reconnects until nginx's
    round-robin handshake lands there (the Engine.IO sid names the instance). Returns (socket, recorder)."""
    import socketio

    last = ""
    for _ in range(tries):
        rec = recorder or Recorder()
        socket = socketio.Client(reconnection=reconnection, **options)
        rec.attach(socket)
        try:
            socket.connect(cluster.url, auth={"token": token}, transports=transports(transport), wait_timeout=10)
        except socketio.exceptions.ConnectionError as error:
            hint = (" (long-polling through nginx needs every request of a session on one instance: the sid must "
                    "name its instance, PARLEY_INSTANCE, issue 7 part a)" if transport == "polling" else "")
            raise AssertionError(f"{transport} connect through nginx failed: {error!r}{hint}") from error
        if instance is None:
            return socket, rec
        landed = instance_of(socket)
        if landed == instance:
            return socket, rec
        last = landed
        disconnect_socket(cluster, socket)
    raise AssertionError(f"{tries} handshakes through nginx never landed on {instance} (last: {last})")


def disconnect_socket(cluster: Cluster, socket) -> None:
    """socket.disconnect(), making sure the server hears it, without waiting on the client's long-poll.

    python-engineio's polling client may drop its own goodbye (its write loop checks the state that disconnect() has
    just changed), which would leave the session to the server's ping timeout (45 s) and the user online meanwhile,
    and its disconnect() waits for the long-poll GET it has open, up to its 30 s request timeout (a CI run once spent
    32 s so in one test). For polling, the Engine.IO close is therefore sent for that sid here (the server ends the
    session when it answers 200), and the client lets go of its GET without waiting for it."""
    sid = engine_sid(socket)
    if socket.eio.current_transport == "polling" and sid:
        requests.post(f"{cluster.url}/socket.io/", params={"EIO": "4", "transport": "polling", "sid": sid},
                      data="1", headers={"Content-Type": "text/plain;charset=UTF-8"}, timeout=5)
        socket.eio.disconnect(abort=True)
    socket.disconnect()


def all_messages(client: Client, chat_id: str) -> list[dict]:
    """Every message of a chat from the store, ascending seq, paging with after=."""
    messages: list[dict] = []
    after = 0
    while True:
        body = expect_status(client.get(f"/api/v1/chats/{chat_id}/messages", params={"after": after, "limit": 200}), 200)
        messages.extend(body["messages"])
        if not body["messages"] or not body.get("hasMore"):
            return messages
        after = body["messages"][-1]["seq"]


def create_chat(account: Account, *, user: Account | None = None, name: str | None = None,
                members: list[Account] | None = None) -> dict:
    if user is not None:
        # 200 when a group made earlier already introduced the two (it opened their direct chat).
        opened = account.client.post("/api/v1/chats", json={"userId": user.id})
        assert opened.status_code in (200, 201), opened.text
        body = opened.json()
    else:
        # One adds people one already shares a chat with (issue 14): a direct chat with each first.
        for member in members or []:
            if member.id != account.id:
                opened = account.client.post("/api/v1/chats", json={"userId": member.id})
                assert opened.status_code in (200, 201), opened.text
        body = expect_status(account.client.post("/api/v1/chats", json={
            "name": name or "group", "memberIds": [member.id for member in members or []]}), 201)
    return body["chat"]


def ack_ok(answer: Any, what: str) -> dict:
    assert isinstance(answer, dict) and answer.get("ok") is True, f"{what}: ack {answer!r}"
    return answer
