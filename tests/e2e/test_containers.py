"""The container image and the compose file (issue 16). This machine has no Docker engine, but Debian's podman, and no
registry to pull the Swift, Debian, PostgreSQL or nginx base images from (docs/deploy.md, "Containers"). So:

- the image's runtime stage, exactly as shipped, is built with podman on a Debian base made here with mmdebstrap, with
  the test build of `parley` in place of the release build stage (a release build in the image would take 15 minutes
  of CI; its command is the README's). The image then runs: healthy by its own HEALTHCHECK, unprivileged, people log in
  and chat, it stops cleanly on `podman stop`, and starts again on its volume with everything kept;
- the compose file parses and wires each service as the shipped nginx configuration and the systemd units do, the
  Dockerfile is multi-stage, unprivileged and health-checked, and the binary serves under the image's own settings and
  command, answering the image's health check."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

from harness import REPO_ROOT, Client, code_from_log, expect_status, free_port, poll, unique_email

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


# ---- the image, built and run with podman

WRAPPED_RUNC = REPO_ROOT / "tests" / "support" / "oci" / "runc"


def podman(*args: str, runtime: str | None = None, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    """`podman [--runtime R] args…`, its output captured; fails the test on a non-zero exit when `check`."""
    command = ["podman"] + (["--runtime", runtime] if runtime else []) + list(args)
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, f"{shlex.join(command)}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


def base_image() -> str:
    """The runtime stage's base image, as its FROM names it with the Dockerfile's ARG defaults."""
    text = (CONTAINER / "Dockerfile").read_text(encoding="utf-8")
    defaults = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, flags=re.MULTILINE))
    runtime_from = dockerfile_stages()[1][0].split()[1]
    name = re.sub(r"\$\{(\w+)\}", lambda match: defaults[match.group(1)], runtime_from)
    return f"docker.io/library/{name}"


@pytest.fixture(scope="module")
def podman_image(parley_binary, tmp_path_factory):
    """The shipped Dockerfile's runtime stage built with podman; yields (image, runtime to run it with)."""
    assert shutil.which("podman") and shutil.which("mmdebstrap"), "scripts/test installs podman, runc and mmdebstrap"
    work = tmp_path_factory.mktemp("image")
    base = base_image()
    # No registry here: the base is the same Debian release, made from Debian's archive (about 20 s).
    if podman("image", "exists", base, check=False).returncode != 0:
        suite = base.split(":")[1].removesuffix("-slim")
        made = subprocess.run(["mmdebstrap", "--variant=minbase", "--mode=root", "--quiet", suite, str(work / "base.tar")],
                              capture_output=True, text=True, timeout=600)
        assert made.returncode == 0, made.stderr[-3000:]
        podman("import", str(work / "base.tar"), base)
    # The runtime podman uses, or, where this sandbox refuses setrlimit to it, Debian's runc without the spec's rlimits.
    runtime = None
    plain = podman("run", "--rm", "--network", "host", base, "/bin/true", check=False, timeout=120)
    if plain.returncode != 0:
        assert "rlimit" in plain.stderr, plain.stderr
        runtime = str(WRAPPED_RUNC)
        podman("run", "--rm", "--network", "host", base, "/bin/true", runtime=runtime, timeout=120)

    # The build stage's output (/out: the binary and the web app's resources) from the test build, with the Swift
    # runtime libraries a debug build links dynamically (the release build links them statically).
    context = work / "context"
    out = context / "out"
    out.mkdir(parents=True)
    # Without its debug information (three quarters of a debug build's size), which the image has no use for.
    subprocess.run(["objcopy", "--strip-debug", str(parley_binary), str(out / "parley")], check=True)
    resources = next(parley_binary.parent.glob("*_WebApp.resources"))
    shutil.copytree(resources, out / resources.name)
    linked = subprocess.run(["ldd", str(parley_binary)], capture_output=True, text=True, check=True).stdout
    for library in re.findall(r"=> (/\S+)", linked):
        if not library.startswith(("/lib/", "/usr/lib/", "/lib64/")):
            shutil.copy2(library, out)
    text = (CONTAINER / "Dockerfile").read_text(encoding="utf-8")
    build_stage = re.search(r"^FROM swift:.*?(?=^FROM )", text, flags=re.MULTILINE | re.DOTALL)
    assert build_stage and "/out" in build_stage.group(0)
    (context / "Dockerfile").write_text(text.replace(build_stage.group(0), "FROM scratch AS build\nCOPY out/ /out/\n\n"))

    image = f"localhost/parley-test:{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    podman("build", "--format", "docker", "--layers=false", "--network", "host", "--pull=never", "-t", image, "-f",
           str(context / "Dockerfile"), str(context), runtime=runtime, timeout=900)
    print(f"podman build of the runtime stage: {time.monotonic() - started:.1f} s")
    try:
        yield image, runtime
    finally:
        podman("rmi", "-f", image, check=False)


def test_the_image_built_with_podman_serves_a_chat_stops_cleanly_and_keeps_its_volume(podman_image):
    """[podman] The image runs `parley serve` as uid 10001, its HEALTHCHECK passes, two people sign in with the codes
    it logs and chat; `podman stop` ends it with exit 0 and no error logged; started again, on the same volume, the
    conversation is there."""
    image, runtime = podman_image
    port = free_port()
    name = f"parley-test-{uuid.uuid4().hex[:8]}"
    # The debug build's Swift libraries sit next to the binary (a release build has none to find).
    podman("run", "-d", "--name", name, "--network", "host", "-e", f"PARLEY_PORT={port}",
           "-e", "LD_LIBRARY_PATH=/usr/local/bin", image, runtime=runtime)
    try:
        def records() -> list[dict]:
            logs = podman("logs", name, runtime=runtime, check=False)
            found = []
            for line in (logs.stdout + logs.stderr).splitlines():
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue
            return found

        def healthy() -> bool:
            return podman("healthcheck", "run", name, runtime=runtime, check=False, timeout=30).returncode == 0

        poll(healthy, 60, f"{name}'s HEALTHCHECK to pass")
        inspected = json.loads(podman("inspect", name, runtime=runtime).stdout)[0]
        assert inspected["Config"]["User"] == "parley"
        assert podman("exec", name, "id", "-u", runtime=runtime).stdout.strip() == "10001"

        base = f"http://127.0.0.1:{port}"

        def sign_in() -> tuple[str, Client]:
            email = unique_email("container")
            expect_status(Client(base).post("/api/v1/login", json={"email": email}, token=None), 202)
            code = code_from_log(records, email)
            body = expect_status(Client(base).post("/api/v1/verify", json={"email": email, "otp": code}, token=None), 200)
            return body["user"]["id"], Client(base, body["accessToken"])

        (_, ann), (bob_id, bob) = sign_in(), sign_in()
        chat = expect_status(ann.post("/api/v1/chats", json={"userId": bob_id}), 201)["chat"]["id"]
        expect_status(ann.post(f"/api/v1/chats/{chat}/messages", json={"text": "from a container", "clientMessageId": "c1"}), 201)
        texts = [m.get("text") for m in expect_status(bob.get(f"/api/v1/chats/{chat}/messages"), 200)["messages"]]
        assert texts == ["from a container"], texts

        podman("stop", "-t", "30", name, runtime=runtime, timeout=60)
        state = json.loads(podman("inspect", name, runtime=runtime).stdout)[0]["State"]
        assert state["ExitCode"] == 0, state
        errors = [r for r in records() if r.get("level") in ("error", "critical")]
        assert not errors, errors

        podman("start", name, runtime=runtime)
        poll(healthy, 60, f"{name}'s HEALTHCHECK to pass after a restart")
        texts = [m.get("text") for m in expect_status(bob.get(f"/api/v1/chats/{chat}/messages"), 200)["messages"]]
        assert texts == ["from a container"], "the volume keeps the database across a restart"
        podman("stop", "-t", "30", name, runtime=runtime, timeout=60)
    finally:
        podman("rm", "-f", "-v", name, runtime=runtime, check=False)
