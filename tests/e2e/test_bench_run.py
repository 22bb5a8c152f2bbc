"""bench/run itself, as the README runs it, at its smallest: every scenario with its correctness check, once on one
Parley and once through nginx with two chat instances. Debug binaries (the test build's): the figures mean nothing
here, only that the script and every scenario work on a new machine."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from harness import REPO_ROOT


def run_bench(*arguments: str, timeout: float) -> str:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PARLEY_")}
    result = subprocess.run([str(REPO_ROOT / "bench" / "run"), "--debug", "--no-build", *arguments], cwd=REPO_ROOT,
                            env=environment, capture_output=True, text=True, timeout=timeout)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


def test_bench_run_quick_runs_every_scenario():
    output = run_bench("--quick", "--sockets", "200", "--history", "5000", timeout=600)
    for scenario in ("footprint", "history", "throughput", "fanout", "realistic", "storm", "connections"):
        assert f"==> {scenario}" in output, output[-3000:]
    assert "exactly once, in seq order" in output, output[-3000:]


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed (scripts/test installs it)")
def test_bench_run_cluster_through_nginx():
    output = run_bench("--cluster", "--instances", "1,2", "--pairs", "2", "--window", "4", "--duration", "2", timeout=600)
    rows = [line for line in output.splitlines() if line.startswith("| 1 |") or line.startswith("| 2 |")]
    assert len(rows) == 2, output[-3000:]


@pytest.mark.skipif(shutil.which("node") is None or not (REPO_ROOT.parent / "shared" / "peers" / "socketio-node" / "run").exists(),
                    reason="the Node yardstick (../shared/peers/socketio-node) or node is not on this machine")
def test_versus_node_alternates_rounds_and_prints_the_ratio(parley_binary):
    """bench/versus-node.py at its smallest: one round on each server, every delivery checked, the table printed."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PARLEY_")}
    result = subprocess.run([str(REPO_ROOT / "bench" / "versus-node.py"), "--bin", str(parley_binary.parent), "--rounds", "1",
                             "--users", "12", "--", "fanout", "--members", "12", "--rate", "20", "--duration", "1"],
                            cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "round 1 parley" in output and "round 1 node" in output, output[-3000:]
    assert "| fan-out | latency p99 |" in output, output[-3000:]
