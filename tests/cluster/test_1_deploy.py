"""The shipped deployment files: deploy/nginx/parley.conf and deploy/systemd/ (no Parley process needed)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from cluster import NGINX_CONF, SHIPPED_PORTS, Nginx, render_nginx_site
from harness import REPO_ROOT

SYSTEMD_DIR = REPO_ROOT / "deploy" / "systemd"
UNITS = ["parley-user@.service", "parley-chat@.service", "parley-mail@.service"]
# The file archive for point-in-time recovery (tests/e2e/test_pitr.py runs the service's ExecStart).
ARCHIVE_UNITS = ["parley-files-archive.service", "parley-files-archive.timer"]


def test_nginx_accepts_the_rendered_shipped_config(tmp_path):
    """[deploy] `nginx -t` on deploy/nginx/parley.conf, rendered with test ports exactly as the cluster runs it."""
    ports = {name: 40000 + index for index, name in enumerate(SHIPPED_PORTS)}
    nginx = Nginx(tmp_path, ports)
    nginx.test_config()
    rendered = render_nginx_site(ports, 12345)
    assert not re.search(r"127\.0\.0\.1:30\d\d\b", re.sub(r"#.*", "", rendered)), "a shipped port was left"


def test_nginx_sid_map_names_every_chat_instance():
    """[deploy] Every chat instance has an upstream of its own and a map line routing its sids there; the
    round-robin upstream lists the same servers; no ip_hash."""
    text = NGINX_CONF.read_text(encoding="utf-8")
    assert "ip_hash" not in re.sub(r"#.*", "", text)
    map_lines = dict(re.findall(r"~\^(chat\d+)\\\.\s+(parley_chat_\d+);", text))
    upstreams = dict(re.findall(r"upstream (parley_chat_\d+) \{\s*server (127\.0\.0\.1:\d+);", text))
    chat_ports = {name: f"127.0.0.1:{port}" for name, port in SHIPPED_PORTS.items() if name.startswith("chat")}
    assert set(map_lines) == set(chat_ports), map_lines
    for name, upstream in map_lines.items():
        assert upstreams.get(upstream) == chat_ports[name], (name, upstream, upstreams)
    assert re.search(r"default\s+parley_chat_socket;", text)
    for upstream in ("parley_chat", "parley_chat_socket"):
        servers = re.search(rf"upstream {upstream} \{{(.*?)\}}", text, re.S).group(1)
        assert set(re.findall(r"server (127\.0\.0\.1:\d+)", servers)) == set(chat_ports.values()), upstream
    # WebSocket upgrades must not ride a kept-alive connection (SocketIOHTTP1Channel answers 307 to those).
    for upstream in ["parley_chat_socket"] + list(map_lines.values()):
        body = re.search(rf"upstream {upstream} \{{(.*?)\}}", text, re.S).group(1)
        assert "keepalive" not in body, f"{upstream} keeps connections alive"


def test_shipped_instance_env_files_match_the_nginx_layout():
    """[deploy] deploy/systemd/env/<service>-<n>.env gives each instance the port nginx has for it."""
    for name, port in SHIPPED_PORTS.items():
        service, number = re.fullmatch(r"([a-z]+)(\d+)", name).groups()
        env = (SYSTEMD_DIR / "env" / f"{service}-{number}.env").read_text(encoding="utf-8")
        assert re.search(rf"^PARLEY_PORT={port}$", env, re.M), (name, env)


def test_systemd_units_verify(tmp_path):
    """[deploy] `systemd-analyze verify` on the templated units (ExecStart pointed at an existing program) and the file
    archive's service and timer."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian's systemd package)")
    probe = subprocess.run([analyze, "--version"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"systemd-analyze cannot run here: {probe.stderr.strip()[:200]}")
    true = shutil.which("true") or "/bin/true"
    for unit in UNITS + ["parley.target"]:
        text = (SYSTEMD_DIR / unit).read_text(encoding="utf-8")
        (tmp_path / unit).write_text(text.replace("/usr/local/bin/parley", true), encoding="utf-8")
    for unit in ARCHIVE_UNITS:
        shutil.copy(SYSTEMD_DIR / unit, tmp_path / unit)
    instances = ([str(tmp_path / unit.replace("@.", "@1.")) for unit in UNITS] + [str(tmp_path / "parley.target")]
                 + [str(tmp_path / unit) for unit in ARCHIVE_UNITS])
    result = subprocess.run([analyze, "verify", *instances], capture_output=True, text=True, timeout=60,
                            cwd=tmp_path)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not output, f"systemd-analyze verify:\n{output}"
    for unit in UNITS:
        text = (SYSTEMD_DIR / unit).read_text(encoding="utf-8")
        for setting in ("ProtectSystem=strict", "StateDirectory=", "Restart=on-failure", "LimitNOFILE=",
                        "NoNewPrivileges=yes", "EnvironmentFile=/etc/parley/parley.env", "PARLEY_INSTANCE="):
            assert setting in text, f"{unit} lacks {setting}"
