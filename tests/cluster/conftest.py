"""Fixtures of the cluster tests: 2 user, 3 chat and 2 mail instances of the real binary on one PostgreSQL, behind
nginx running the shipped deploy/nginx/parley.conf (ports substituted), with the SMTP test server as mail sink.

Run them with `scripts/test cluster` (builds the binary; installs nginx and PostgreSQL when missing), or by hand:
    python3 -m pytest -q -s tests/cluster
The tests start their own PostgreSQL cluster (scripts/lib/postgres.sh; needs root and Debian's postgresql) because
one of them stops and starts it. The binary is $PARLEY_BIN, else .build/debug/parley.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from cluster import Cluster, ClusterSpec, Postgres  # noqa: E402
from harness import REPO_ROOT, add_default_timeout, append_process_logs, private_pem  # noqa: E402

TEST_TIMEOUT_SECONDS = 150


def pytest_collection_modifyitems(config, items):
    add_default_timeout(config, items, TEST_TIMEOUT_SECONDS)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    append_process_logs(outcome.get_result(), 40)


@pytest.fixture(scope="session")
def parley_binary() -> Path:
    binary = Path(os.environ.get("PARLEY_BIN") or REPO_ROOT / ".build" / "debug" / "parley").resolve()
    if not binary.is_file() or not os.access(binary, os.X_OK):
        pytest.fail(f"no Parley binary at {binary}: build it (swift build) or set PARLEY_BIN", pytrace=False)
    return binary


@pytest.fixture(scope="session")
def postgres():
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        pytest.fail("nginx is not installed (apt-get install nginx; scripts/test does it)", pytrace=False)
    server = Postgres().start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def jwt_pem() -> str:
    """The cluster's signing key from configuration (PARLEY_JWT_PRIVATE_KEY), as docs/deploy.md's first option."""
    return private_pem(ed25519.Ed25519PrivateKey.generate())


@pytest.fixture(scope="session")
def cluster(tmp_path_factory, parley_binary, postgres, jwt_pem):
    """2 user, 3 chat, 2 mail instances and nginx on one database."""
    cluster = Cluster(tmp_path_factory.mktemp("cluster"), parley_binary, postgres, postgres.create_database(), jwt_pem,
                      ClusterSpec())
    with cluster.running():
        yield cluster


@pytest.fixture
def healthy_cluster(cluster):
    """The cluster, with every instance running (a test before may have killed one) and healthy."""
    for name, instance in list(cluster.instances.items()):
        if instance.popen is None or instance.popen.poll() is not None:
            cluster.restart(name)
    for instance in cluster.instances.values():
        instance.wait_healthy(timeout=30)
    cluster.set_smtp_delay(0)
    return cluster
