#!/usr/bin/env python3
"""bench/run --cluster: message throughput through nginx with 1, 2, 3… chat instances on one PostgreSQL.

For each instance count: a fresh database, one user instance, N chat instances (release build, PARLEY_INSTANCE,
the PostgreSQL event bus) and nginx with the shipped deploy/nginx/parley.conf (tests/cluster renders it the same
way); users with `parley users create`; then `parley-bench throughput` against nginx, whose round robin spreads the
WebSockets over the chat instances. CPU is read from /proc for every process of the run: the chat instances,
PostgreSQL's backends, nginx and the load generator, so a figure limited by one of them says so.

Called by bench/run with the release binaries' folder; prints a table, and JSON lines with --json-out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "cluster"))

import cluster as topology  # noqa: E402  (tests/cluster/cluster.py: PostgreSQL, instances, nginx)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children_of(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                    found.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                pass
    return found


def postgres_pids(postgres: topology.Postgres) -> list[int]:
    """The postmaster and every backend and helper process it started."""
    postmaster = int((postgres.data / "postmaster.pid").read_text().split()[0])
    return [postmaster, *children_of(postmaster)]


class CPUMeter:
    """CPU used by groups of processes between start() and stop(); processes that appear meanwhile count from 0."""

    def __init__(self, groups):
        self.groups = groups  # name → callable returning pids

    def start(self):
        self.started = time.monotonic()
        self.before = {name: {pid: cpu_seconds(pid) for pid in pids()} for name, pids in self.groups.items()}

    def stop(self) -> dict[str, float]:
        elapsed = time.monotonic() - self.started
        used = {}
        for name, pids in self.groups.items():
            total = 0.0
            for pid in pids():
                total += cpu_seconds(pid) - self.before[name].get(pid, 0.0)
            used[name] = total / elapsed
        return used


def only_chat_instances(count: int):
    """render_nginx_site, with the round-robin upstreams reduced to the chat instances that run."""
    original = topology.render_nginx_site

    def render(ports, listen_port, log_dir=None):
        text = original(ports, listen_port, log_dir)
        for index in range(count + 1, 4):
            port = ports[f"chat{index}"]
            # Round-robin members carry max_fails; each instance's own upstream (unused without its sessions) stays.
            text = re.sub(rf"^\s*server 127\.0\.0\.1:{port} max_fails=[^;]*;\n", "", text, flags=re.M)
        return text

    return render


def run(instances: int, args, postgres: topology.Postgres, root: Path) -> dict:
    database = postgres.create_database()
    users_file = root / f"users-{instances}.jsonl"
    env = topology.environment_without_parley() | {"PARLEY_DATABASE_URL": database, "PARLEY_LOG_LEVEL": "warning"}
    with users_file.open("w") as out:
        subprocess.run([str(args.bin / "parley"), "users", "create", "--count", str(2 * args.pairs), "--name-prefix", "Cluster"],
                       env=env, stdout=out, check=True, timeout=120)
    topology.render_nginx_site = only_chat_instances(instances)
    spec = topology.ClusterSpec(users=1, chats=instances, mails=0)
    cluster = topology.Cluster(root / f"cluster-{instances}", args.bin / "parley", postgres, database, None, spec,
                               env={"PARLEY_LOG_LEVEL": "warning"})
    try:
        cluster.start()
        chats = [cluster.instances[name] for name in cluster.names("chat")]
        meter = CPUMeter({
            "chat instances": lambda: [instance.popen.pid for instance in chats],
            "postgres": lambda: postgres_pids(postgres),
            "nginx": lambda: [cluster.nginx.popen.pid, *children_of(cluster.nginx.popen.pid)],
        })
        command = [str(args.bin / "parley-bench"), "throughput", "--url", cluster.url, "--users", str(users_file),
                   "--pairs", str(args.pairs), "--window", str(args.window), "--duration", str(args.duration), "--json"]
        meter.start()
        result = subprocess.run(command, capture_output=True, text=True, timeout=args.duration * 4 + 120)
        cpu = meter.stop()
        if result.returncode != 0:
            raise SystemExit(f"parley-bench failed with {instances} chat instance(s):\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
        lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        return {"chatInstances": instances, "results": lines, "cpuCores": cpu}
    finally:
        problems = cluster.close()
        if problems:
            print("\n".join(problems), file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", type=Path, required=True, help="folder of the release parley and parley-bench")
    parser.add_argument("--instances", default="1,2,3", help="chat instance counts to measure (at most 3: the shipped config's)")
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    args.bin = args.bin.resolve()
    counts = [int(part) for part in args.instances.split(",")]
    if any(count < 1 or count > 3 for count in counts):
        parser.error("--instances: each count is 1, 2 or 3")

    postgres = topology.Postgres().start()
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="parley-bench-cluster.") as work:
            for count in counts:
                print(f"==> {count} chat instance(s) behind nginx", flush=True)
                rows.append(run(count, args, postgres, Path(work)))
    finally:
        postgres.close()

    if args.json_out:
        with args.json_out.open("a") as out:
            for row in rows:
                out.write(json.dumps(row) + "\n")
    print()
    print("| chat instances | delivered msg/s | p50 ms | p99 ms | paced msg/s | paced p99 ms | load-gen CPU | chat CPU | postgres CPU | nginx CPU |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        unpaced = next((r for r in row["results"] if r.get("scenario") == "throughput"), {})
        paced = next((r for r in row["results"] if r.get("scenario") == "throughput paced"), {})
        cpu = row["cpuCores"]

        def figure(result, name, digits=1):
            value = next((f["value"] for f in result.get("figures", []) if f["name"] == name), None)
            return "" if value is None else f"{value:,.{digits}f}"

        load = unpaced.get("resources", {}).get("loadGeneratorCPUPercent")
        print(f"| {row['chatInstances']} | {figure(unpaced, 'delivered', 0)} | {figure(unpaced, 'latency p50')} | "
              f"{figure(unpaced, 'latency p99')} | {figure(paced, 'delivered', 0)} | {figure(paced, 'latency p99')} | "
              f"{'' if load is None else f'{load / 100:.2f}'} | {cpu['chat instances']:.2f} | {cpu['postgres']:.2f} | {cpu['nginx']:.2f} |")
    print("\nCPU in cores (1.00 = one core busy); chat, postgres and nginx over both runs (unpaced, then paced), the load")
    print("generator over the unpaced run. The machine has", os.cpu_count(), "cores.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
