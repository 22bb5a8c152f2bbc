"""Operations: migrations on their own, and health when the database goes away and comes back."""

from __future__ import annotations

import os
import re
import subprocess
import time
from urllib.parse import urlsplit, urlunsplit

import requests

from harness import environment_without_parley, poll


def run_psql(url: str, statement: str) -> None:
    subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-c", statement], check=True, capture_output=True, timeout=30)


def test_migrate_applies_the_schema_once(parley_binary, tmp_path, postgres):
    for url in (f"sqlite:{tmp_path}/m.sqlite", postgres.create()):
        env = environment_without_parley() | {"PARLEY_DATABASE_URL": url, "PARLEY_DATA_DIR": str(tmp_path), "PARLEY_LOG_FORMAT": "json"}
        first = subprocess.run([str(parley_binary), "migrate"], env=env, capture_output=True, text=True, timeout=60)
        assert first.returncode == 0, first.stderr + first.stdout
        assert re.search(r"Applied migrations: 1, 2, 3(, \d+)*\.", first.stdout), first.stdout
        again = subprocess.run([str(parley_binary), "migrate"], env=env, capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and "The schema is up to date." in again.stdout


def test_health_is_unhealthy_while_the_database_is_unreachable_and_recovers(launcher, postgres):
    url = postgres.create()
    parts = urlsplit(url)
    name = parts.path.rsplit("/", 1)[1]
    admin = urlunsplit(parts._replace(path="/parley"))
    server = launcher.parley(database_url=url)
    assert requests.get(server.base_url + "/health", timeout=5).status_code == 200
    run_psql(admin, f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
    run_psql(admin, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
    try:
        def unhealthy():
            response = requests.get(server.base_url + "/health", timeout=10)
            return (response,) if response.status_code == 503 else None  # a 503 Response is falsy
        (response,) = poll(unhealthy, 30, "/health to answer 503")
        body = response.json()
        assert body["status"] == "unhealthy" and body["checks"]["database"] == "down"
    finally:
        run_psql(admin, f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
    poll(lambda: requests.get(server.base_url + "/health", timeout=10).status_code == 200, 60, "/health to recover")
