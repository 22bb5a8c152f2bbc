"""The benchmark tooling: `parley users create`, `parley seed-history` and a smoke run of every parley-bench scenario.

Sizes are tiny: this checks that the tools work and that their correctness checks pass (and fail when a message is
missing), not how fast anything is. bench/run is the benchmark.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from harness import expect_status


@pytest.fixture(scope="session")
def bench_binary(parley_binary) -> Path:
    binary = Path(os.environ.get("PARLEY_BENCH_BIN") or parley_binary.parent / "parley-bench")
    if not binary.is_file():
        pytest.fail(f"no parley-bench at {binary}: build it (swift build --product parley-bench)", pytrace=False)
    return binary


def admin(server, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Runs `parley ARGS` against the server's database and key, as an administrator on its machine would."""
    result = subprocess.run([str(server.binary), *args], env=server.env, cwd=server.directory,
                            capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, f"parley {' '.join(args)} exited {result.returncode}: {result.stderr}"
    return result


def create_users(server, count: int, prefix: str = "E2E") -> list[dict]:
    lines = admin(server, "users", "create", "--count", str(count), "--name-prefix", prefix).stdout.splitlines()
    return [json.loads(line) for line in lines]


def bench(bench_binary, server, users_file: Path, *args: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    result = subprocess.run([str(bench_binary), *args, "--url", server.base_url, "--users", str(users_file),
                             "--server-pid", str(server.popen.pid), "--json"], capture_output=True, text=True, timeout=120)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result, lines


def test_users_create_prints_working_tokens(server):
    users = create_users(server, 3, prefix="Admin made")
    assert len(users) == 3
    assert len({user["id"] for user in users}) == 3
    for index, user in enumerate(users, start=1):
        assert set(user) == {"id", "email", "name", "accessToken"}, user
        assert user["name"] == f"Admin made {index}"
        me = expect_status(server.client.get("/api/v1/me", token=user["accessToken"]), 200)
        assert me["id"] == user["id"] and me["email"] == user["email"]


@pytest.mark.parametrize("args, message", [
    (["--count", "0"], "--count"),
    (["--count", "2", "--token-ttl", "5"], "--token-ttl"),
    (["--count", "2", "--name-prefix", "   "], "name"),
    (["--count", "2", "--name-prefix", "bell\u0007"], "control"),
])
def test_users_create_refuses_bad_input_in_one_line(server, args, message):
    result = admin(server, "users", "create", *args, check=False)
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_seed_history_fills_a_chat_with_dense_seqs(server):
    first, second = create_users(server, 2)
    seeded = json.loads(admin(server, "seed-history", "--between", f"{first['id']},{second['id']}", "--count", "2500").stdout)
    assert seeded["lastSeq"] == 2500
    more = json.loads(admin(server, "seed-history", "--chat", seeded["chatId"], "--count", "7").stdout)
    assert more == {"chatId": seeded["chatId"], "lastSeq": 2507}
    client = server.client.with_token(second["accessToken"])
    page = expect_status(client.get(f"/api/v1/chats/{seeded['chatId']}/messages?limit=200"), 200)
    assert [message["seq"] for message in page["messages"]] == list(range(2308, 2508))
    assert page["hasMore"] is True
    chat = expect_status(client.get(f"/api/v1/chats/{seeded['chatId']}"), 200)
    assert chat["lastMessage"]["seq"] == 2507


@pytest.mark.parametrize("args", [
    ["--chat", "not-a-chat", "--count", "5"],
    ["--chat", "0193a5f0-0000-7000-8000-000000000000", "--count", "5"],
    ["--between", "a,b,c", "--count", "5"],
    ["--count", "5"],
    ["--chat", "0193a5f0-0000-7000-8000-000000000000", "--count=-1"],
])
def test_seed_history_refuses_bad_input_in_one_line(server, args):
    result = admin(server, "seed-history", *args, check=False)
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_every_scenario_runs_and_checks_its_deliveries(server, bench_binary, tmp_path):
    users_file = tmp_path / "users.jsonl"
    users_file.write_text(admin(server, "users", "create", "--count", "12").stdout)
    users = [json.loads(line) for line in users_file.read_text().splitlines()]
    chat = json.loads(admin(server, "seed-history", "--between", f"{users[0]['id']},{users[1]['id']}",
                            "--count", "300").stdout)["chatId"]
    # History first, as bench/run runs it: throughput then sends into the same direct chat (users 0 and 1), after
    # which its newest messages are no longer the seeded `Message <seq>` ones the searches look for.
    runs = {
        "history": ["history", "--chat", chat, "--requests", "20"],
        "throughput": ["throughput", "--pairs", "2", "--window", "2", "--duration", "1"],
        "fanout": ["fanout", "--members", "12", "--rate", "20", "--duration", "1"],
        "realistic": ["fanout", "--realistic", "--members", "12", "--rate", "20", "--duration", "1"],
        # The members spread over three processes of the load generator, their results merged.
        "fanout over processes": ["fanout", "--realistic", "--members", "12", "--rate", "20", "--duration", "1",
                                  "--processes", "3"],
        "storm": ["storm", "--members", "12", "--observers", "3", "--rate", "20", "--duration", "1.5"],
        # The storm's sockets connect from two other processes; this one sends and observes.
        "storm over processes": ["storm", "--members", "12", "--observers", "2", "--rate", "20", "--duration", "1.5",
                                 "--processes", "3"],
        "connections": ["connections", "--count", "30", "--settle", "0.2"],
        "connections over processes": ["connections", "--count", "31", "--settle", "0.2", "--processes", "2"],
    }
    for name, args in runs.items():
        result, lines = bench(bench_binary, server, users_file, *args)
        assert result.returncode == 0, f"{name}: exit {result.returncode}\n{result.stderr}"
        assert lines, f"{name} printed no JSON: {result.stdout!r}"
        if name == "history":
            assert [line["scenario"] for line in lines] == ["history latest page", "history random before page",
                                                            "history search a number", "history search a common word",
                                                            "history search a number prefix",
                                                            "history search a common prefix"]
        if name == "realistic":
            # Every receiver had the chat open: the sender heard read pointers move, a packet per batch, not per viewer.
            figures = {figure["name"]: figure["value"] for figure in lines[0]["figures"]}
            assert lines[0]["scenario"] == "fan-out, realistic" and figures["read-state packets"] > 0, lines
        if name == "fanout over processes":
            line = lines[0]
            assert line["parameters"]["processes"] == "3" and "3 processes" in line["notes"][1], line
            # Every member, in whichever process, got every message once and in order, and each process heard the
            # read pointers move.
            assert "× 12 sockets: every delivery exactly once" in line["notes"][0], line
            figures = {figure["name"]: figure["value"] for figure in line["figures"]}
            assert figures["read-state packets"] > 0 and figures["latency p99"] > 0, line
        if name == "connections over processes":
            figures = {figure["name"]: figure["value"] for figure in lines[0]["figures"]}
            assert figures["sockets held"] == 31 and lines[0]["parameters"]["processes"] == "2", lines
        if name in ("storm", "storm over processes"):
            assert lines[0]["scenario"] == "storm" and "every observer saw every member online" in lines[0]["notes"][0], lines
        if name == "storm over processes":
            # The nine stormers (12 members less the sender and 2 observers) came from the two other processes.
            assert lines[0]["parameters"]["processes"] == "3" and lines[0]["notes"][0].startswith("9 sockets"), lines
        for line in lines:
            assert line["figures"] and all(isinstance(figure["value"], (int, float)) for figure in line["figures"]), line
            assert line["resources"]["loadGeneratorCPUPercent"] >= 0, line
            assert line["resources"]["serverRSSMiB"] > 0, line
    throughput = bench(bench_binary, server, users_file, *runs["throughput"])[1]
    assert [line["scenario"] for line in throughput] == ["throughput", "throughput paced"]


def test_history_check_fails_loudly_when_a_message_is_missing(launcher, bench_binary, tmp_path):
    server = launcher.parley(backend="sqlite")
    users_file = tmp_path / "users.jsonl"
    users_file.write_text(admin(server, "users", "create", "--count", "2").stdout)
    users = [json.loads(line) for line in users_file.read_text().splitlines()]
    chat = json.loads(admin(server, "seed-history", "--between", f"{users[0]['id']},{users[1]['id']}",
                            "--count", "120").stdout)["chatId"]
    # A hole in the history, as a server that lost a message would leave.
    with sqlite3.connect(server.directory / "data" / "parley.sqlite") as database:
        database.execute("DELETE FROM messages WHERE chat_id = ? AND seq = 100", (chat,))
    result, lines = bench(bench_binary, server, users_file, "history", "--chat", chat, "--requests", "5")
    assert result.returncode != 0
    assert lines == []
    assert "expected" in result.stderr, result.stderr
