"""The container image and the compose file (issue 16). This machine has no Docker engine and no registry to pull the
Swift, Debian, PostgreSQL or nginx base images from, so the image is not built here (docs/deploy.md, "Containers").
What can be checked is: the compose file parses and wires each service as the shipped nginx configuration and the
systemd units do, the Dockerfile is multi-stage, unprivileged and health-checked, and the binary serves under the
image's own settings and command, answering the image's health check."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from harness import REPO_ROOT, free_port

CONTAINER = REPO_ROOT / "deploy" / "container"
NGINX_CONF = REPO_ROOT / "deploy" / "nginx" / "parley.conf"


def dockerfile_stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), split into its stages."""
    text = re.sub(r"\\\n\s*", " ", (CONTAINER / "Dockerfile").read_text(encoding="utf-8"))
    stages: list[list[str]] = [[]]
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("FROM ") and stages[-1] and any(i.startswith("FROM ") for i in stages[-1]):
            stages.append([])
        stages[-1].append(line)
    return stages


def test_the_dockerfile_builds_release_in_one_stage_and_runs_unprivileged_in_a_small_other():
    stages = dockerfile_stages()
    assert len(stages) == 2, stages
    build, runtime = stages
    assert any("swift build -c release --product parley" in line for line in build)
    assert runtime[0].startswith("FROM debian:") and "-slim" in runtime[0], runtime[0]
    user = next(line.split()[1] for line in runtime if line.startswith("USER "))
    assert user not in ("root", "0"), user
    assert any(line.startswith("useradd") or "useradd --system" in line for line in runtime), runtime
    health = next(line for line in runtime if line.startswith("HEALTHCHECK "))
    assert "/health" in health, health
    assert next(line for line in runtime if line.startswith("ENTRYPOINT ")) == 'ENTRYPOINT ["/usr/local/bin/parley"]'
    # The web app's resource bundle the image copies is the one the build makes.
    copied = re.search(r'cp -R "\$bin/([^"]+)"', " ".join(build))
    assert copied, build
    assert (REPO_ROOT / ".build" / "debug" / copied.group(1)).is_dir() or (REPO_ROOT / ".build" / "release" / copied.group(1)).is_dir(), copied.group(1)


def test_the_compose_file_wires_every_service_as_the_shipped_nginx_and_systemd_do():
    compose = yaml.safe_load((CONTAINER / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert {"postgres", "nginx", "user-1", "chat-1", "chat-2", "mail-1"} <= set(services)
    upstreams = {name: re.findall(r"server 127\.0\.0\.1:(\d+)", body)
                 for name, body in re.findall(r"upstream (\w+) \{(.*?)\}", NGINX_CONF.read_text(encoding="utf-8"), re.S)}
    known_settings = set(re.findall(r'"(PARLEY_[A-Z0-9_]+)"', (REPO_ROOT / "Sources" / "ParleyCore" / "Configuration.swift").read_text()))
    known_settings |= {"PARLEY_INSTANCE"}
    for name, service in services.items():
        if name in ("postgres", "nginx"):
            continue
        role = name.split("-")[0]
        assert service["command"] == ["serve", role], (name, service["command"])
        assert service["build"]["dockerfile"] == "deploy/container/Dockerfile"
        assert service["network_mode"] == "host"
        environment = service["environment"]
        # The instance name nginx's sid map routes on, and a port nginx has for that service.
        assert environment["PARLEY_INSTANCE"] == f"{role}{name.split('-')[1]}", environment["PARLEY_INSTANCE"]
        assert environment["PARLEY_PORT"] in upstreams[f"parley_{role}"], (name, environment["PARLEY_PORT"], upstreams)
        assert environment["PARLEY_EVENT_BUS"] == "postgres" and environment["PARLEY_DATABASE_URL"].startswith("postgres://")
        unknown = {key for key in environment if key.startswith("PARLEY_")} - known_settings
        assert not unknown, f"{name} sets settings Parley does not read: {unknown}"
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["chat-1"]["volumes"] == services["chat-2"]["volumes"], "chat instances share their files"
    assert "../nginx/parley.conf:/etc/nginx/conf.d/default.conf:ro" in services["nginx"]["volumes"]
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]


def test_the_binary_serves_with_the_images_settings_and_answers_its_health_check(parley_binary, tmp_path):
    """The image's ENV and CMD (`parley serve`, all-in-one) on the test build, and the HEALTHCHECK's own command."""
    runtime = dockerfile_stages()[1]
    settings = {}
    for line in runtime:
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                key, value = pair.split("=", 1)
                settings[key] = value
    assert settings["PARLEY_HOST"] == "0.0.0.0" and settings["PARLEY_DATA_DIR"] == "/var/lib/parley", settings
    command = re.search(r'CMD \["([^"]+)"\]', "\n".join(line for line in runtime if line.startswith("CMD ")))
    assert command and command.group(1) == "serve"
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PARLEY_")}
    environment.update(settings)
    environment.update({"PARLEY_DATA_DIR": str(tmp_path / "data"), "PARLEY_PORT": str(port)})
    process = subprocess.Popen([str(parley_binary), command.group(1)], env=environment, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        health = next(line for line in runtime if line.startswith("HEALTHCHECK ")).split(" CMD ", 1)[1]
        check = ["bash", "-c", health.replace("${PARLEY_PORT}", str(port))]
        assert shutil.which("curl"), "the health check uses curl"
        deadline = time.monotonic() + 30
        while subprocess.run(check, capture_output=True).returncode != 0:
            assert process.poll() is None, "parley serve exited under the image's settings"
            assert time.monotonic() < deadline, "the image's health check never passed"
            time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(15)
