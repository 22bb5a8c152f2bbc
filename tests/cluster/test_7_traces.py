"""One trace across services: a W3C `traceparent` sent through nginx is in the log lines of every instance the work
reaches, the mail instance that delivers a queued mail included, and the missed-message mail a send makes owed.

[cluster] Needs from the binary: the W3C trace context read from requests, sent on requests to other services, kept
with mail jobs, and `traceId` on every JSON log line written within a trace.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from cluster import Cluster, ClusterSpec, create_chat
from harness import expect_status, poll, unique_email


def traceparent() -> tuple[str, str]:
    """A fresh trace id and a `traceparent` naming it, as a caller in front of nginx would send."""
    trace = uuid.uuid4().hex
    return trace, f"00-{trace}-{uuid.uuid4().hex[:16]}-01"


def lines_of(cluster, trace: str) -> dict[str, list[dict]]:
    """Every JSON log line of every instance that carries `trace`, by instance name."""
    found: dict[str, list[dict]] = {}
    for name, instance in cluster.instances.items():
        for line in instance.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if trace not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("traceId") == trace:
                found.setdefault(name, []).append(record)
    return found


def test_a_login_and_the_mail_it_queues_share_one_trace(healthy_cluster):
    """[cluster] A login through nginx: the user instance's request line and the mail instance's `mail sent` line
    carry the caller's trace id (the outbox keeps it with the job)."""
    cluster = healthy_cluster
    trace, header = traceparent()
    email = unique_email("traced")
    expect_status(cluster.client().post("/api/v1/login", json={"email": email}, token=None,
                                        headers={"traceparent": header}), 202)

    def traced():
        found = lines_of(cluster, trace)
        users = [r for name, records in found.items() if name.startswith("user") for r in records
                 if r.get("message") == "request" and r.get("path") == "/api/v1/login"]
        mails = [r for name, records in found.items() if name.startswith("mail") for r in records
                 if r.get("message") == "mail sent" and r.get("to") == email]
        return (users, mails) if users and mails else None

    users, mails = poll(traced, 15, f"log lines of trace {trace} on a user and a mail instance")
    assert users[0]["spanId"] != header.split("-")[2], "the request is a span of its own, a child of the caller's"


def test_a_chat_instance_asking_the_user_service_passes_the_trace_on(healthy_cluster):
    """[cluster] Opening a direct chat with someone new makes the chat instance ask the user service for profiles
    (through nginx): both instances' request lines carry the caller's trace id."""
    cluster = healthy_cluster
    alice, bob = cluster.sign_in_many(2)
    trace, header = traceparent()
    expect_status(alice.client.post("/api/v1/chats", json={"userId": bob.id}, headers={"traceparent": header}), 201)

    def traced():
        found = lines_of(cluster, trace)
        chats = [r for name, records in found.items() if name.startswith("chat") for r in records
                 if r.get("message") == "request" and r.get("path") == "/api/v1/chats"]
        users = [r for name, records in found.items() if name.startswith("user") for r in records
                 if r.get("message") == "request" and r.get("path") == "/api/v1/users"]
        return (chats, users) if chats and users else None

    chats, users = poll(traced, 10, f"log lines of trace {trace} on a chat and a user instance")
    assert chats[0]["spanId"] != users[0]["spanId"]


@pytest.fixture(scope="module")
def mailing_cluster(tmp_path_factory, parley_binary, postgres, jwt_pem):
    """1 user, 1 chat and 1 mail instance and nginx on a fresh database, missed-message mail due after 1 s (900 s by
    default, as in the shared cluster)."""
    cluster = Cluster(tmp_path_factory.mktemp("mailing"), parley_binary, postgres, postgres.create_database(), jwt_pem,
                      ClusterSpec(users=1, chats=1, mails=1), env={"PARLEY_NOTIFY_AFTER_SECONDS": "1"})
    with cluster.running():
        yield cluster


def test_one_send_is_traced_through_the_chat_the_user_and_the_mail_service(mailing_cluster):
    """[cluster] A message sent through nginx to someone offline: the chat instance's request line, its missed-message
    pass's `missed-message mail queued` line, the user instance's line for the pass's look-up of names and addresses
    (`GET /internal/v1/users`, with a service credential) and the mail instance's `mail sent` line to the recipient
    all carry the caller's trace id (the pending mark keeps the send's `traceparent`, the outbox the mail's)."""
    cluster = mailing_cluster
    alice, bob = cluster.sign_in_many(2)
    chat = create_chat(alice, user=bob)["id"]
    trace, header = traceparent()
    started = time.monotonic()
    expect_status(alice.client.post(f"/api/v1/chats/{chat}/messages", json={"text": "traced lunch?", "clientMessageId": "t1"},
                                    headers={"traceparent": header}), 201)

    def traced():
        found = lines_of(cluster, trace)
        chats = found.get("chat1", [])
        sent = [r for r in chats if r.get("message") == "request" and r.get("path") == f"/api/v1/chats/{chat}/messages"]
        queued = [r for r in chats if r.get("message") == "missed-message mail queued"]
        looked_up = [r for r in found.get("user1", []) if r.get("message") == "request" and r.get("path") == "/internal/v1/users"]
        mails = [r for name, records in found.items() if name.startswith("mail") for r in records
                 if r.get("message") == "mail sent" and r.get("to") == bob.email and r.get("template") == "missed_messages"]
        return (sent, queued, looked_up, mails) if sent and queued and looked_up and mails else None

    sent, queued, looked_up, mails = poll(traced, 30, f"log lines of trace {trace} on the chat, the user and the mail instance")
    print(f"send to missed-message mail sent in one trace: {time.monotonic() - started:.1f} s")
    assert str(looked_up[0].get("status")) == "200", looked_up[0]
    spans = {sent[0]["spanId"], queued[0]["spanId"], looked_up[0]["spanId"], mails[0]["spanId"], header.split("-")[2]}
    assert len(spans) == 5, "the request, the mail, its look-up and its delivery are spans of their own, in the caller's trace"


def test_what_services_ask_each_other_is_refused_to_anyone_else(mailing_cluster):
    """[cluster] `/internal/` reaches the user service through nginx (chat instances ask it there), and is refused
    there and on the instance itself to a caller without a service credential, a signed-in person included."""
    cluster = mailing_cluster
    alice, bob = cluster.sign_in_many(2)
    path = f"/internal/v1/users?ids={bob.id}"
    user = cluster.instances["user1"]
    for base in (cluster.url, f"http://127.0.0.1:{user.port}"):
        for headers in ({}, {"Authorization": f"Bearer {alice.access_token}"},
                        {"Authorization": f"ParleyService {int(time.time() * 1000) + 30_000}.forged"}):
            answer = requests.get(base + path, headers=headers, timeout=10)
            assert answer.status_code == 401 and bob.email not in answer.text, answer.text
            assert answer.json()["error"]["code"] == "invalid_service_credential", answer.text
