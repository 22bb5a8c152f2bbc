"""What every Parley process offers: health, metrics, request ids, JSON logs, a clean stop, strict configuration."""

from __future__ import annotations

import json
import subprocess

import pytest

from harness import (
    assert_error,
    environment_without_parley,
    expect_status,
    free_port,
    request_code,
    unique_email,
)


def test_health_reports_healthy_with_the_database_up(server):
    health = expect_status(server.client.get("/health"), 200)

    assert {"status", "version", "uptimeSeconds", "checks"} <= set(health), health
    assert health["status"] == "healthy"
    assert isinstance(health["version"], str) and health["version"], health
    assert isinstance(health["uptimeSeconds"], (int, float)) and not isinstance(health["uptimeSeconds"], bool)
    assert health["uptimeSeconds"] >= 0
    assert health["checks"]["database"] == "up", health
    assert all(value == "up" for value in health["checks"].values()), health


def test_metrics_are_prometheus_text(server):
    server.client.get("/health")

    response = server.client.get("/metrics")

    assert response.status_code == 200, response.text
    assert response.headers.get("Content-Type", "").startswith("text/plain"), response.headers
    assert "# TYPE" in response.text


def test_unknown_routes_answer_404_in_the_error_shape(server):
    assert_error(server.client.get("/api/v1/no-such-route"), 404)


def test_every_response_has_its_own_request_id(server):
    ids = {server.client.get(path).headers["X-Request-Id"]
           for path in ["/health", "/health", "/api/v1/me", "/api/v1/no-such-route", "/.well-known/jwks.json"]}

    assert len(ids) == 5, ids


def test_every_log_line_is_json_and_request_lines_carry_the_request_id(log_server):
    response = request_code(log_server.client, unique_email())
    request_id = response.headers["X-Request-Id"]
    log_server.wait_for_log(lambda record: record.get("requestId") == request_id,
                            what=f"a line of request {request_id}")

    lines = log_server.log_lines()

    assert lines
    for line in lines:
        record = json.loads(line)
        assert isinstance(record, dict), line
        for key in ("timestamp", "level", "message"):
            assert isinstance(record.get(key), str) and record[key], f"{key!r} missing in {line}"


def test_sigterm_stops_the_server_promptly(launcher, backend):
    server = launcher.parley(backend=backend)
    request_code(server.client, unique_email())

    launcher.stop(server)  # asserts exit status 0 within 10 s

    assert server.exit_status == 0


@pytest.mark.parametrize("variable,value", [
    ("PARLEY_PORT", "not-a-port"),
    ("PARLEY_PORT", "70000"),
    ("PARLEY_DATABASE_URL", "mysql://localhost/parley"),
    ("PARLEY_SMTP_URL", "http://localhost:25"),
    ("PARLEY_LOG_FORMAT", "xml"),
    ("PARLEY_LOG_LEVEL", "loud"),
    ("PARLEY_JWT_PRIVATE_KEY", "not a pem key"),
    ("PARLEY_LOGIN_IP_LIMIT", "many"),
    ("PARLEY_VERIFY_IP_LIMIT", "many"),
    ("PARLEY_LOGIN_LOCKOUT_MAX_SECONDS", "30"),  # below the base lockout (60)
    ("PARLEY_LOGIN_FAILURE_WINDOW_SECONDS", "600"),  # shorter than the longest lockout (900)
    ("PARLEY_LOGIN_ADDRESS_FAILURE_LIMIT", "0"),
    ("PARLEY_OTP_TTL_SECONDS", "-5"),
    ("PARLEY_MAIL_RETRY_BASE_SECONDS", "soon"),
    ("PARLEY_INSTANCE", "Chat 1"),
    ("PARLEY_INSTANCE", "x" * 40),
    ("PARLEY_TRUSTED_PROXIES", "127.0.0.1,nginx.local"),
    ("PARLEY_EVENT_BUS", "redis"),
    ("PARLEY_EVENT_BUS", "postgres"),  # needs a PostgreSQL database; the default here is SQLite
    ("PARLEY_PRESENCE_TTL_SECONDS", "1"),
    ("PARLEY_MAIL_LEASE_SECONDS", "forever"),
    ("PARLEY_PRESENCE_GRACE_MS", "-1"),
    ("PARLEY_TYPING_TIMEOUT_MS", "soon"),
    ("PARLEY_JWT_PREVIOUS_KEY", "not a pem key"),
])
def test_a_bad_setting_stops_the_process_naming_the_variable(parley_binary, tmp_path, variable, value):
    environment = environment_without_parley()
    environment.update({"PARLEY_HOST": "127.0.0.1", "PARLEY_PORT": str(free_port()),
                        "PARLEY_DATA_DIR": str(tmp_path / "data"), variable: value})

    try:
        result = subprocess.run([str(parley_binary), "serve"], env=environment, cwd=tmp_path, capture_output=True,
                                text=True, timeout=20, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running 20 s after starting with {variable}={value!r}")

    output = result.stdout + result.stderr
    assert result.returncode != 0, f"started with {variable}={value!r}:\n{output[-2000:]}"
    assert variable in output, f"the error should name {variable}:\n{output[-2000:]}"



def _first_lines_until_ready(command, environment, cwd, use_terminal: bool, timeout: float = 20.0) -> list[str]:
    """Starts `command` with its standard output on a terminal (a pty) or a pipe; returns its lines up to the ready line."""
    import os
    import pty
    import select
    import time

    if use_terminal:
        leader, follower = pty.openpty()
        process = subprocess.Popen(command, env=environment, cwd=cwd, stdin=subprocess.DEVNULL, stdout=follower,
                                   stderr=follower)
        os.close(follower)
        reader = leader
    else:
        process = subprocess.Popen(command, env=environment, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT)
        reader = process.stdout.fileno()
    output = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and b"ready at" not in output:
            ready, _, _ = select.select([reader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(reader, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                output += chunk
    finally:
        process.terminate()
        process.wait(timeout=10)
        if use_terminal:
            os.close(leader)
    return output.decode("utf-8", "replace").replace("\r\n", "\n").splitlines()


@pytest.mark.parametrize("use_terminal", [True, False], ids=["terminal", "pipe"])
def test_logs_are_sentences_on_a_terminal_and_json_lines_otherwise(parley_binary, tmp_path, use_terminal):
    port = free_port()
    environment = environment_without_parley()
    environment.update({"PARLEY_HOST": "127.0.0.1", "PARLEY_PORT": str(port), "PARLEY_DATA_DIR": str(tmp_path / "data")})

    lines = _first_lines_until_ready([str(parley_binary)], environment, tmp_path, use_terminal)

    ready = [line for line in lines if "ready at" in line]
    assert ready, "\n".join(lines[-20:])
    assert f"Parley is ready at http://127.0.0.1:{port}" in ready[0], ready[0]
    if use_terminal:
        assert not any(line.startswith("{") for line in lines), "\n".join(lines)
        assert " NOTICE [parley] Parley is ready at" in ready[0], ready[0]
    else:
        assert all(json.loads(line)["message"] for line in lines), "\n".join(lines)
        assert json.loads(ready[0])["message"] == f"Parley is ready at http://127.0.0.1:{port}"
