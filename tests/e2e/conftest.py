"""Fixtures of Parley's end-to-end tests: the real binary, the real SMTP test server, SQLite and PostgreSQL.

Run them with `scripts/test e2e` (which builds the binary, starts a private PostgreSQL and runs the files on
pytest-xdist workers, then the `serial` tests alone), or by hand, one at a time:
    scripts/pg python3 -m pytest -q tests/e2e
The binary is $PARLEY_BIN, else .build/debug/parley. PostgreSQL comes from $PARLEY_TEST_POSTGRES_URL (a role
that may CREATE DATABASE); a test on PostgreSQL fails, rather than skips, when it is not set.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from harness import (
    REPO_ROOT,
    add_default_timeout,
    append_process_logs,
    ParleyServer,
    PostgresDatabases,
    SMTPServer,
    environment_without_parley,
    free_port,
    private_pem,
    tail,
)

BACKENDS = ["sqlite", "postgres"]
TEST_TIMEOUT_SECONDS = 180
# The order the files run in. scripts/test runs the files on parallel pytest-xdist workers, one file to a worker, in
# collection order: longest first, by their times in a CI run (a long file started last, as test_containers.py was
# before it was listed, makes the parallel part's tail), so the last files to start are the quick ones.
FILE_ORDER = ["test_schemathesis.py", "test_web.py", "test_web_messages.py", "test_containers.py", "test_bench_run.py",
              "test_realtime.py", "test_bench.py", "test_messages_realtime.py", "test_mail_worker.py",
              "test_traces_export.py", "test_monitoring.py", "test_login.py", "test_missed_mail.py", "test_openapi.py",
              "test_pitr.py", "test_groups_realtime.py", "test_web_groups.py", "test_object_storage.py",
              "test_split_chat.py", "test_web_files.py", "test_chat_http.py", "test_backup.py", "test_files_realtime.py",
              "test_races.py", "test_service.py", "test_operations.py", "test_avatar.py"]


def pytest_configure(config):
    config.addinivalue_line("markers", "serial: timing-sensitive under CPU load; scripts/test runs these on their own, "
                                       "after the tests that run in parallel")
    config.addinivalue_line("markers", "alone: compares latencies before and during a load it makes, so nothing else may "
                                       "run beside it; scripts/test runs these last, after the cluster tests")


def pytest_collection_modifyitems(config, items):
    add_default_timeout(config, items, TEST_TIMEOUT_SECONDS)

    def rank(item) -> int:
        name = item.path.name
        return FILE_ORDER.index(name) if name in FILE_ORDER else len(FILE_ORDER)

    items.sort(key=rank)  # stable: the files' own order, and the tests' within each file, stay


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    append_process_logs(outcome.get_result(), 80)


# ---------------------------------------------------------------------------------------------------------------
# Session-wide pieces


@pytest.fixture(scope="session")
def parley_binary() -> Path:
    binary = Path(os.environ.get("PARLEY_BIN") or REPO_ROOT / ".build" / "debug" / "parley")
    if not binary.is_file() or not os.access(binary, os.X_OK):
        pytest.fail(f"no Parley binary at {binary}: build it (swift build) or set PARLEY_BIN", pytrace=False)
    return binary


@pytest.fixture(scope="session")
def jwt_key() -> ed25519.Ed25519PrivateKey:
    """The key every test server signs access tokens with (PARLEY_JWT_PRIVATE_KEY), so tests can mint tokens."""
    return ed25519.Ed25519PrivateKey.generate()


class LazyPostgres:
    """The test cluster's per-server databases; fails the test when PARLEY_TEST_POSTGRES_URL is missing."""

    def __init__(self):
        self._databases: PostgresDatabases | None = None

    def create(self) -> str:
        if self._databases is None:
            url = os.environ.get("PARLEY_TEST_POSTGRES_URL")
            if not url:
                pytest.fail("PARLEY_TEST_POSTGRES_URL is not set: run the tests with scripts/test (which starts a "
                            "private PostgreSQL), or as `scripts/pg python3 -m pytest tests/e2e`", pytrace=False)
            self._databases = PostgresDatabases(url)
        return self._databases.create()

    def drop_all(self) -> None:
        if self._databases is not None:
            self._databases.drop_all()


@pytest.fixture(scope="session")
def postgres():
    databases = LazyPostgres()
    yield databases
    databases.drop_all()


# ---------------------------------------------------------------------------------------------------------------
# Launching processes


class Launcher:
    """Starts SMTP servers and Parley processes for one fixture scope, and stops them all at its end."""

    def __init__(self, tmp_path_factory, binary: Path, jwt_key, postgres: LazyPostgres):
        self.tmp_path_factory = tmp_path_factory
        self.binary = binary
        self.jwt_key_pem = private_pem(jwt_key)
        self.postgres = postgres
        self.started: list = []

    def database_url(self, backend: str) -> str | None:
        """None for SQLite (the default file in the data dir), else a fresh PostgreSQL database."""
        assert backend in BACKENDS, backend
        return None if backend == "sqlite" else self.postgres.create()

    def smtp(self, port: int = 0, fail_first: int = 0) -> SMTPServer:
        server = SMTPServer(self.tmp_path_factory.mktemp("smtpd"), port=port, fail_first=fail_first)
        self.started.append(server)
        return server.start()

    def parley(self, *, backend: str = "sqlite", database_url: str | None = None, service: str | None = None,
               smtp: SMTPServer | str | None = None, env: dict[str, str | None] | None = None,
               data_dir: Path | None = None) -> ParleyServer:
        """Starts `parley serve [service]` and waits for /health.

        database_url wins over backend (split services pass the URL they share). smtp is a running SMTPServer,
        an smtp:// URL, or None for the log transport. env adds variables; a None value removes one.
        """
        directory = data_dir or self.tmp_path_factory.mktemp(f"parley-{service or 'all'}")
        environment = environment_without_parley()
        environment.update({
            "PARLEY_HOST": "127.0.0.1",
            "PARLEY_PORT": str(free_port()),
            "PARLEY_DATA_DIR": str(directory / "data"),
            "PARLEY_LOG_FORMAT": "json",
            "PARLEY_JWT_PRIVATE_KEY": self.jwt_key_pem,
            "PARLEY_MAIL_RETRY_BASE_SECONDS": "1",
            "PARLEY_LOGIN_IP_LIMIT": "1000",
            "PARLEY_VERIFY_IP_LIMIT": "1000",
            # Tests send in bursts; the per-user rates are attacked with their defaults in test_hostile.py.
            "PARLEY_RATE_MESSAGES": "1000000,1000000",
            "PARLEY_RATE_TYPING": "1000000,1000000",
            "PARLEY_RATE_GROUPS": "1000000,1000000",
            "PARLEY_RATE_UPLOADS": "1000000,1000000",
        })
        url = database_url or self.database_url(backend)
        if url:
            environment["PARLEY_DATABASE_URL"] = url
        mailbox = None
        if isinstance(smtp, SMTPServer):
            environment["PARLEY_SMTP_URL"] = smtp.url
            mailbox = smtp.mailbox
        elif isinstance(smtp, str):
            environment["PARLEY_SMTP_URL"] = smtp
        for key, value in (env or {}).items():
            if value is None:
                environment.pop(key, None)
            else:
                environment[key] = value
        server = ParleyServer(self.binary, service, environment, directory, mailbox)
        self.started.append(server)
        return server.start()

    def stop(self, process) -> None:
        """Stops one process; fails if a Parley process ignored SIGTERM or exited non-zero."""
        self.started.remove(process)
        problem = self._stop(process)
        assert problem is None, problem

    def close(self) -> None:
        """Stops everything still running, newest first."""
        problems = [self._stop(process) for process in reversed(self.started)]
        self.started.clear()
        problems = [problem for problem in problems if problem]
        assert not problems, "\n".join(problems)

    @staticmethod
    def _stop(process) -> str | None:
        already_exited = process.popen is not None and process.popen.poll() is not None
        status = process.stop()
        if not isinstance(process, ParleyServer) or process.popen is None:
            return None
        if already_exited:
            return f"{process.describe()} had exited by itself with status {status}:\n{tail(process.log_path, 20)}"
        if status is None:
            return f"{process.describe()} did not exit within 10 s of SIGTERM (killed)"
        if status != 0:
            return f"{process.describe()} exited with status {status} after SIGTERM:\n{tail(process.log_path, 20)}"
        return None


@pytest.fixture
def launcher(tmp_path_factory, parley_binary, jwt_key, postgres):
    """Starts processes for one test."""
    launcher = Launcher(tmp_path_factory, parley_binary, jwt_key, postgres)
    yield launcher
    launcher.close()


@pytest.fixture(scope="module")
def module_launcher(tmp_path_factory, parley_binary, jwt_key, postgres):
    """Starts processes shared by the tests of one module."""
    launcher = Launcher(tmp_path_factory, parley_binary, jwt_key, postgres)
    yield launcher
    launcher.close()


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request) -> str:
    """Each test that uses it runs on SQLite and on PostgreSQL."""
    return request.param


@pytest.fixture(scope="module")
def smtp_server(module_launcher) -> SMTPServer:
    return module_launcher.smtp()


@pytest.fixture(scope="module")
def server(module_launcher, backend, smtp_server):
    """An all-in-one `parley serve` on a fresh database, delivering mail to the module's SMTP test server."""
    server = module_launcher.parley(backend=backend, smtp=smtp_server)
    yield server
    module_launcher.stop(server)


@pytest.fixture(scope="module")
def log_server(module_launcher, backend):
    """An all-in-one `parley serve` without PARLEY_SMTP_URL: mails go to its log."""
    server = module_launcher.parley(backend=backend, smtp=None)
    yield server
    module_launcher.stop(server)
