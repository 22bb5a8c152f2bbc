#!/usr/bin/env python3
"""bench/versus-node.py: one parley-bench scenario against Parley and against the Node yardstick, side by side.

The yardstick is the seed's own stack, socket.io 4.8 on Node 20 storing each message in SQLite FULL
(../shared/peers/socketio-node, or PARLEY_NODE_PEER): it speaks the part of the contract that `fanout`, `throughput`
and `connections` use. Rounds alternate (Parley, Node, Parley, Node…), each on a fresh server and data folder, so
that whatever else the machine does falls on both alike. Prints every round, then the median of each figure per
server and their ratio, with the load generator's and each server's CPU.

    bench/versus-node.py --bin .build/release --rounds 3 -- fanout --members 1000 --rate 20 --duration 5

The release binaries must exist (bench/run builds them). Exits non-zero when a round fails its correctness check.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PEER = REPO.parent / "shared" / "peers" / "socketio-node"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    for _ in range(300):
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise SystemExit(f"the server at {url} did not become healthy:\n{log.read_text(errors='replace')[-2000:]}")


def bench(binary: Path, url: str, users: Path, pid: int, scenario: list[str]) -> list[dict]:
    result = subprocess.run([str(binary), *scenario, "--url", url, "--users", str(users), "--server-pid", str(pid), "--json"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"parley-bench {' '.join(scenario)} against {url} failed:\n{result.stderr[-3000:]}")
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def run_parley(bin_dir: Path, scenario: list[str], users_needed: int) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="versus-parley-") as work:
        port = free_port()
        env = {key: value for key, value in os.environ.items() if not key.startswith("PARLEY_")}
        env.update({
            "PARLEY_DATA_DIR": f"{work}/data", "PARLEY_HOST": "127.0.0.1", "PARLEY_PORT": str(port),
            "PARLEY_LOG_LEVEL": "warning",
            # As bench/run: the load generator's users send far beyond a person's rate.
            "PARLEY_RATE_MESSAGES": "1000000,1000000", "PARLEY_RATE_TYPING": "1000000,1000000",
            "PARLEY_RATE_GROUPS": "1000000,1000000",
            # All of its sockets come from one address, thousands at once.
            "PARLEY_SOCKET_HANDSHAKE_BURST": "1000000", "PARLEY_SOCKET_HANDSHAKES_PER_SECOND": "1000000",
            "PARLEY_SOCKET_MAX_PENDING_PER_ADDRESS": "1000000",
        })
        users = Path(work) / "users.jsonl"
        with users.open("w") as out:
            subprocess.run([str(bin_dir / "parley"), "users", "create", "--count", str(users_needed), "--name-prefix", "Bench"],
                           env=env, stdout=out, check=True)
        log = Path(work) / "parley.log"
        with log.open("w") as out:
            server = subprocess.Popen([str(bin_dir / "parley"), "serve"], env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_healthy(f"http://127.0.0.1:{port}", server, log)
            return bench(bin_dir / "parley-bench", f"http://127.0.0.1:{port}", users, server.pid, scenario)
        finally:
            server.terminate()
            server.wait(30)


def run_node(bin_dir: Path, peer: Path, scenario: list[str], users_needed: int) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="versus-node-") as work:
        port = free_port()
        env = dict(os.environ, SIO_PORT=str(port), SIO_DATA=work)
        subprocess.run([str(peer / "run"), "start"], env=env, check=True, capture_output=True)
        try:
            users = Path(work) / "users.jsonl"
            users.write_text("".join(json.dumps({"id": f"u{i}", "accessToken": f"u{i}"}) + "\n" for i in range(users_needed)))
            pid = int((Path(work) / "run.pid").read_text())
            return bench(bin_dir / "parley-bench", f"http://127.0.0.1:{port}", users, pid, scenario)
        finally:
            subprocess.run([str(peer / "run"), "stop"], env=env, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=str(REPO / ".build" / "release"), help="folder of the parley and parley-bench binaries")
    parser.add_argument("--peer", default=os.environ.get("PARLEY_NODE_PEER", str(DEFAULT_PEER)), help="the Node yardstick's folder")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server")
    parser.add_argument("--users", type=int, default=1000, help="users to create on each server")
    parser.add_argument("--json-out", help="also write every round's result lines here, each with its server")
    parser.add_argument("scenario", nargs=argparse.REMAINDER, help="-- then the parley-bench scenario and its options")
    arguments = parser.parse_args()
    scenario = [part for part in arguments.scenario if part != "--"]
    if not scenario or scenario[0] not in ("fanout", "throughput", "connections"):
        raise SystemExit("the yardstick speaks what fanout, throughput and connections use: name one of them after --")
    bin_dir, peer = Path(arguments.bin), Path(arguments.peer)
    print(f"==> {os.cpu_count()} cores; {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}; parley-bench {' '.join(scenario)}", flush=True)
    rounds: list[dict] = []
    for index in range(arguments.rounds):
        for server in ("parley", "node"):
            lines = run_parley(bin_dir, scenario, arguments.users) if server == "parley" else run_node(bin_dir, peer, scenario, arguments.users)
            for line in lines:
                line["server"], line["round"] = server, index + 1
                rounds.append(line)
                figures = ", ".join(f"{f['name']} {f['value']:.4g} {f['unit']}" for f in line["figures"])
                resources = line["resources"]
                print(f"round {index + 1} {server:6} {line['scenario']}: {figures}; load generator "
                      f"{resources['loadGeneratorCPUPercent']:.0f}%, server {resources.get('serverCPUPercent') or 0:.0f}% of a core",
                      flush=True)
    if arguments.json_out:
        Path(arguments.json_out).write_text("".join(json.dumps(line) + "\n" for line in rounds))
    print("\n| scenario | figure | Parley (median) | Node (median) | Parley / Node |\n| --- | --- | --- | --- | --- |")
    for name in dict.fromkeys((line["scenario"], figure["name"], figure["unit"]) for line in rounds for figure in line["figures"]):
        scenario_name, figure_name, unit = name

        def median(server: str) -> float:
            values = [f["value"] for line in rounds if line["server"] == server and line["scenario"] == scenario_name
                      for f in line["figures"] if f["name"] == figure_name]
            return statistics.median(values) if values else float("nan")

        ours, theirs = median("parley"), median("node")
        ratio = ours / theirs if theirs else float("nan")
        print(f"| {scenario_name} | {figure_name} | {ours:.4g} {unit} | {theirs:.4g} {unit} | {ratio:.2f} |")


if __name__ == "__main__":
    sys.exit(main())
