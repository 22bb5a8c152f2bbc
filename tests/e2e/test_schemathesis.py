"""Fuzzes the running server with schemathesis, driven by docs/openapi.yaml: no 5xx, no answer the document does not say.

Every schemathesis check is on: server errors, status codes, headers, content types and bodies against the document,
valid inputs accepted and invalid ones refused, 405 with `Allow` for methods a path does not have, authentication
enforced, and the stateful phase, which follows the document's links (create a chat, then read it, send to it, mark
it read) and checks that a created resource can be read and that one user cannot read another's. Three accounts give
it real access: alice makes every request; bob is the partner in alice's chats; carol, a stranger to them, is the
peer the object-level check replays alice's reads as. Alice's and carol's access tokens are given to schemathesis.

The seed and the number of examples are fixed, so a run is repeatable and takes about two minutes on two cores; set
PARLEY_FUZZ_SEED and PARLEY_FUZZ_EXAMPLES to explore further. Values JSON Schema cannot spell (a valid page cursor,
the bytes of an image) come from schemathesis_hooks.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import REPO_ROOT, introduce, sign_in

SPEC_PATH = REPO_ROOT / "docs" / "openapi.yaml"
HOOKS_MODULE = "schemathesis_hooks"
SEED = int(os.environ.get("PARLEY_FUZZ_SEED", "20261203"))
MAX_EXAMPLES = int(os.environ.get("PARLEY_FUZZ_EXAMPLES", "50"))
RUN_TIMEOUT_SECONDS = 300


def config_toml(base_url: str, auth_path: Path) -> str:
    """The run's schemathesis.toml: every check, every phase, fixed seed and budget, alice's and bob's tokens."""
    return f"""
base-url = "{base_url}"
seed = {SEED}
workers = 1
color = false
request-timeout = 10

[generation]
max-examples = {MAX_EXAMPLES}
database = "none"

[checks]
enabled = true

[phases.stateful]
max-steps = 12

[auth.wfc]
path = "{auth_path}"
user = "alice"
peers = ["alice", "carol"]

# A schema-valid code that is not the one mailed is refused with 400 `invalid_code`: the fuzzer cannot read mail,
# so every code it sends is such a one.
[[operations]]
include-operation-id = "verifyLoginCode"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "429"]

# Refusals JSON Schema cannot spell, each a 400 beside the usual answers: a reaction is one emoji grapheme
# (`invalid_emoji`), a search needs a letter or digit (`invalid_query`), and `around` excludes `before` and `after`
# (`invalid_request`).
[[operations]]
include-operation-id = ["addReaction", "removeReaction", "searchMessages", "listMessages"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429"]

# The message routes name a message inside a chat: links schemathesis infers to them from other answers can fill the
# chat id from the wrong field (a message's id: the path's `{id}` is the chat's) or invent the seq, so their 404 says
# nothing about what was just created. `POST /chats` declares its links to them (the chat's id and its last message's
# seq), which replace the inferred ones; this per-operation setting does not reach the stateful phase in schemathesis
# 4.32 (its checks are chosen once for the run), so those declared links are what keeps that phase right.
[[operations]]
include-operation-id = ["editMessage", "deleteMessage", "addReaction", "removeReaction"]
checks.ensure_resource_availability.enabled = false
"""


@pytest.fixture(scope="module")
def fuzz_server(module_launcher):
    """An all-in-one server on SQLite whose login limits a fuzzer cannot trip."""
    server = module_launcher.parley(backend="sqlite", smtp=None, env={"PARLEY_LOGIN_IP_LIMIT": "1000000",
                                                                           "PARLEY_VERIFY_IP_LIMIT": "1000000"})
    yield server
    module_launcher.stop(server)


@pytest.mark.timeout(RUN_TIMEOUT_SECONDS + 60)
def test_schemathesis_finds_no_server_error_and_no_mismatch(fuzz_server, tmp_path):
    alice, bob, carol = sign_in(fuzz_server), sign_in(fuzz_server), sign_in(fuzz_server)
    introduce(alice, [bob])  # a partner shares a chat with alice, so she may put him into groups
    auth_path = tmp_path / "auth.json"
    auth_path.write_text(json.dumps({"auth": [
        {"name": name, "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {account.access_token}"}]}
        for name, account in (("alice", alice), ("carol", carol))
    ]}))
    config_path = tmp_path / "schemathesis.toml"
    config_path.write_text(config_toml(fuzz_server.base_url, auth_path))
    report_path = tmp_path / "junit.xml"
    environment = dict(os.environ, SCHEMATHESIS_HOOKS=HOOKS_MODULE, NO_COLOR="1",
                       PARLEY_FUZZ_SELF_ID=alice.id, PARLEY_FUZZ_PARTNER_ID=bob.id,
                       PARLEY_FUZZ_STRANGER_ID=carol.id,
                       PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")])))
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config_path), "run", str(SPEC_PATH),
               "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
               "--report", "junit", "--report-junit-path", str(report_path)]
    started = time.monotonic()
    run = subprocess.run(command, env=environment, cwd=tmp_path, capture_output=True, text=True,
                         timeout=RUN_TIMEOUT_SECONDS)
    elapsed = time.monotonic() - started
    output = run.stdout + run.stderr
    (tmp_path / "schemathesis.txt").write_text(output)
    print(f"schemathesis ran {elapsed:.0f} s:\n{output[-4000:]}")
    assert run.returncode == 0, f"schemathesis failed (exit {run.returncode}) after {elapsed:.0f} s:\n{output[-30000:]}"
