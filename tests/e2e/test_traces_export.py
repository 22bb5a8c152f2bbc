"""Spans exported over OTLP/HTTP (protobuf, swift-otel's exporter) when OTEL_EXPORTER_OTLP_ENDPOINT is set, received
by an OTLP receiver that decodes every request with the official opentelemetry-proto definitions
(`ExportTraceServiceRequest`): the split services (user, chat, mail on PostgreSQL) each export their spans, one trace id
ties a request's spans across processes with the right parents, kinds, times and HTTP attributes, and while the receiver
is down or hangs requests go on at their usual pace, spans are dropped (and logged), and export resumes when it is
back; spans waiting at shutdown still go out."""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from harness import Client, expect_status, free_port, poll, request_code, verify

HEX32 = re.compile(r"[0-9a-f]{32}")
HEX16 = re.compile(r"[0-9a-f]{16}")
SERVER, CLIENT, CONSUMER = 2, 3, 5


class Receiver:
    """An OTLP/HTTP receiver on a fixed port: POST /v1/traces with a protobuf or JSON body, decoded as a collector does
    (ids are hex in OTLP's JSON, so they are checked as such and turned into bytes before the strict protobuf parse)."""

    def __init__(self, port: int):
        self.port = port
        self.spans: list[dict] = []
        self.requests = 0
        self.json_requests = 0
        self.problems: list[str] = []
        self.lock = threading.Lock()
        self.httpd: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                problem = None
                if self.path != "/v1/traces":
                    problem = f"path {self.path}"
                elif self.headers.get("Content-Type") not in ("application/json", "application/x-protobuf"):
                    problem = f"content type {self.headers.get('Content-Type')}"
                else:
                    try:
                        if self.headers.get("Content-Type") == "application/x-protobuf":
                            receiver.record(ExportTraceServiceRequest.FromString(body))
                        else:
                            receiver.take(body)
                    except Exception as error:  # noqa: BLE001 - any failure to decode is the test's finding
                        problem = f"{type(error).__name__}: {error}"
                status = 400 if problem else 200
                answer = b"{}"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                if problem:
                    with receiver.lock:
                        receiver.problems.append(problem)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def take(self, body: bytes) -> None:
        document = json.loads(body)
        for resource_spans in document.get("resourceSpans", []):
            for scope_spans in resource_spans.get("scopeSpans", []):
                for span in scope_spans.get("spans", []):
                    for field, pattern in (("traceId", HEX32), ("spanId", HEX16), ("parentSpanId", HEX16)):
                        if field in span:
                            assert pattern.fullmatch(span[field]), f"{field} {span[field]!r} is not lowercase hex"
                            span[field] = base64.b64encode(bytes.fromhex(span[field])).decode()
        self.record(json_format.Parse(json.dumps(document), ExportTraceServiceRequest()))
        with self.lock:
            self.json_requests += 1

    def record(self, decoded: ExportTraceServiceRequest) -> None:
        spans = []
        for resource_spans in decoded.resource_spans:
            resource = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attributes = {}
                    for kv in span.attributes:
                        which = kv.value.WhichOneof("value")
                        attributes[kv.key] = getattr(kv.value, which) if which else None
                    spans.append({
                        "service": resource.get("service.name"),
                        "scope": scope_spans.scope.name,
                        "traceId": span.trace_id.hex(),
                        "spanId": span.span_id.hex(),
                        "parentSpanId": span.parent_span_id.hex(),
                        "name": span.name,
                        "kind": span.kind,
                        "start": span.start_time_unix_nano,
                        "end": span.end_time_unix_nano,
                        "status": span.status.code,
                        "attributes": attributes,
                        "events": [event.name for event in span.events],
                    })
        with self.lock:
            self.requests += 1
            self.spans.extend(spans)

    def snapshot(self) -> list[dict]:
        with self.lock:
            return list(self.spans)

    def wait_for(self, predicate, what: str, timeout: float = 15.0) -> dict:
        def find():
            return next((span for span in self.snapshot() if predicate(span)), None)
        return poll(find, timeout, what)


@pytest.fixture
def receiver():
    receiver = Receiver(free_port()).start()
    yield receiver
    receiver.stop()


def exporting(receiver: Receiver, **extra: str) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200", **extra}


def test_split_services_export_one_trace_per_request_with_parents_kinds_and_times(launcher, receiver):
    url = launcher.database_url("postgres")
    smtp = launcher.smtp()
    env = exporting(receiver)
    user = launcher.parley(service="user", database_url=url, smtp=smtp, env=env)
    mail = launcher.parley(service="mail", database_url=url, smtp=smtp, env=env)
    # Unread direct messages are mailed a second after they are sent to someone with no socket connected.
    chat = launcher.parley(service="chat", database_url=url, env={
        **env, "PARLEY_USER_SERVICE_URL": user.base_url, "PARLEY_JWT_PRIVATE_KEY": None, "PARLEY_NOTIFY_AFTER_SECONDS": "1"})

    # A login: the user service's server span, and the mail service's delivery as its child, in the same trace.
    trace_id = uuid.uuid4().hex
    caller_span = uuid.uuid4().hex[:16]
    address = f"traced.{uuid.uuid4().hex[:8]}@example.com"
    asked = user.client.post("/api/v1/login", json={"email": address}, token=None,
                             headers={"traceparent": f"00-{trace_id}-{caller_span}-01"})
    expect_status(asked, 202)
    login = receiver.wait_for(lambda s: s["traceId"] == trace_id and s["kind"] == SERVER, "the login's server span")
    assert login["service"] == "parley-user"
    assert login["parentSpanId"] == caller_span, "the caller's span is the parent"
    assert login["name"] == "/api/v1/login"
    assert login["attributes"]["http.request.method"] == "POST"
    assert login["attributes"]["http.route"] == "/api/v1/login"
    assert login["attributes"]["http.response.status_code"] == 202
    assert login["status"] == 0, "a 202 leaves the status unset"
    assert 0 < login["start"] <= login["end"]
    assert abs(login["start"] / 1e9 - time.time()) < 60, "start times are Unix nanoseconds"
    delivery = receiver.wait_for(lambda s: s["traceId"] == trace_id and s["kind"] == CONSUMER, "the mail delivery span")
    assert delivery["service"] == "parley-mail"
    assert delivery["parentSpanId"] == login["spanId"], "the delivery is a child of the request that queued it"
    assert delivery["start"] >= login["start"]

    code = smtp.mailbox.wait_for(address).code
    alice = expect_status(verify(user.client, address, code), 200)
    bob_address = f"traced.bob.{uuid.uuid4().hex[:8]}@example.com"
    request_code(user.client, bob_address)
    bob = expect_status(verify(user.client, bob_address, smtp.mailbox.wait_for(bob_address).code), 200)

    # Opening a chat on the chat service asks the user service for profiles: server → client → the user service's server.
    alice_chat = Client(chat.base_url, alice["accessToken"])
    opened_trace = uuid.uuid4().hex
    created = alice_chat.post("/api/v1/chats", json={"userId": bob["user"]["id"]},
                              headers={"traceparent": f"00-{opened_trace}-{uuid.uuid4().hex[:16]}-01"})
    chat_id = expect_status(created, 201)["chat"]["id"]
    opened = receiver.wait_for(lambda s: s["traceId"] == opened_trace and s["kind"] == SERVER and s["service"] == "parley-chat",
                               "the chat service's server span")
    assert opened["attributes"]["http.route"] == "/api/v1/chats"
    assert opened["attributes"]["http.response.status_code"] == 201
    call = receiver.wait_for(lambda s: s["traceId"] == opened_trace and s["kind"] == CLIENT, "the chat service's call")
    assert call["service"] == "parley-chat"
    assert call["parentSpanId"] == opened["spanId"]
    assert opened["start"] <= call["start"] <= call["end"] <= opened["end"], "the call lies within the request"
    answered = receiver.wait_for(lambda s: s["traceId"] == opened_trace and s["kind"] == SERVER and s["service"] == "parley-user",
                                 "the user service's span of the call")
    assert answered["parentSpanId"] == call["spanId"], "the user service's span is a child of the chat service's call"
    assert answered["attributes"]["http.response.status_code"] == 200

    # A message sent: its span names the route's pattern, not the chat's id; a refused request is still a span.
    sent_trace = uuid.uuid4().hex
    expect_status(alice_chat.post(f"/api/v1/chats/{chat_id}/messages", json={"text": "traced", "clientMessageId": "t1"},
                                  headers={"traceparent": f"00-{sent_trace}-{uuid.uuid4().hex[:16]}-01"}), 201)
    sent = receiver.wait_for(lambda s: s["traceId"] == sent_trace and s["kind"] == SERVER, "the send's span")
    assert sent["name"] == sent["attributes"]["http.route"] == "/api/v1/chats/{id}/messages"
    assert chat_id not in sent["name"]
    assert sent["attributes"]["http.response.status_code"] == 201

    # A chat instance's missed-message mail continues the trace of the send that made it owed (its pending mark keeps
    # the send's traceparent): the chat instance's producer span is a child of the send's server span, the mail
    # service's delivery its child (through the outbox), and both instances' log lines carry the send's trace id. (The
    # sender's name is read from the database; the user service is not asked outside a request: see docs/deploy.md,
    # "Traces".)
    missed = receiver.wait_for(lambda s: s["name"] == "missed-message mail", "the missed-message mail span", timeout=20)
    assert missed["service"] == "parley-chat" and missed["kind"] == 4
    assert missed["traceId"] == sent_trace and missed["parentSpanId"] == sent["spanId"], "a child of the send"
    job_trace = missed["traceId"]
    mailed = receiver.wait_for(lambda s: s["traceId"] == job_trace and s["kind"] == CONSUMER, "the missed-message delivery")
    assert mailed["service"] == "parley-mail" and mailed["parentSpanId"] == missed["spanId"]
    smtp.mailbox.wait_for(bob_address, count=2)
    chat.wait_for_log(lambda r: r.get("traceId") == job_trace and r.get("message") == "missed-message mail queued", what="the queued line")
    mail.wait_for_log(lambda r: r.get("traceId") == job_trace and r.get("message") == "mail sent" and r.get("to") == bob_address,
                      what="the delivery's line")

    # A caller that did not sample its trace: nothing of it is recorded.
    unsampled = uuid.uuid4().hex
    expect_status(alice_chat.get("/api/v1/chats", headers={"traceparent": f"00-{unsampled}-{uuid.uuid4().hex[:16]}-00"}), 200)
    # A request without a traceparent starts a trace of its own.
    expect_status(alice_chat.get("/api/v1/chats"), 200)
    listed = receiver.wait_for(lambda s: s["attributes"].get("http.route") == "/api/v1/chats" and s["kind"] == SERVER
                               and s["attributes"].get("http.request.method") == "GET" and s["traceId"] != unsampled,
                               "the listing's span")
    assert listed["parentSpanId"] == ""
    time.sleep(0.6)
    assert not [s for s in receiver.snapshot() if s["traceId"] == unsampled]
    # A server fault is a failed span, though the error middleware answered it in the contract's shape: the user
    # service stopped, the chat service cannot look up someone it has not seen (502).
    carol_address = f"traced.carol.{uuid.uuid4().hex[:8]}@example.com"
    request_code(user.client, carol_address)
    carol = expect_status(verify(user.client, carol_address, smtp.mailbox.wait_for(carol_address).code), 200)
    launcher.stop(user)
    fault_trace = uuid.uuid4().hex
    failed = alice_chat.post("/api/v1/chats", json={"userId": carol["user"]["id"]},
                             headers={"traceparent": f"00-{fault_trace}-{uuid.uuid4().hex[:16]}-01"})
    assert failed.status_code == 502 and failed.json()["error"]["code"] == "user_service_unavailable", failed.text
    fault = receiver.wait_for(lambda s: s["traceId"] == fault_trace and s["kind"] == SERVER, "the failed request's span")
    assert fault["attributes"]["http.response.status_code"] == 502
    assert fault["status"] == 2, "a 5xx answer marks its span as an error"
    assert receiver.problems == [], receiver.problems
    assert receiver.requests >= 3 and receiver.json_requests == 0, "protobuf by default"


def dropped(server, reason: str) -> float:
    """`parley_trace_spans_dropped_total{reason}` on the server's /metrics (0 before the first)."""
    text = server.client.get("/metrics", token=None).text
    for line in text.splitlines():
        if line.startswith("parley_trace_spans_dropped_total{") and f'reason="{reason}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_receiver_that_is_down_or_hangs_costs_requests_nothing_and_drops_spans(launcher, receiver):
    env = exporting(receiver, OTEL_BSP_MAX_QUEUE_SIZE="32", OTEL_BSP_MAX_EXPORT_BATCH_SIZE="8",
                    OTEL_EXPORTER_OTLP_TIMEOUT="2000", OTEL_SERVICE_NAME="parley-under-test")
    server = launcher.parley(backend="sqlite", env=env)
    expect_status(server.client.get("/api/v1/chats"), 401)
    first = receiver.wait_for(lambda s: s["attributes"].get("http.route") == "/api/v1/chats", "a span before the outage")
    assert first["service"] == "parley-under-test"

    def burst(count: int) -> float:
        """The slowest of `count` requests, in seconds."""
        slowest = 0.0
        for _ in range(count):
            started = time.monotonic()
            assert server.client.get("/health").status_code == 200
            slowest = max(slowest, time.monotonic() - started)
        return slowest

    # Down: nothing listens on the port. Every batch fails at once and is dropped (and logged).
    receiver.stop()
    assert burst(200) < 1.0
    server.wait_for_log(lambda r: r.get("message") == "Failed to export batch.", what="the failed export")
    # Counted where an alert can see it: the spans of every batch the receiver did not take.
    poll(lambda: dropped(server, "export_failed") >= 8, 10, "the lost batch in parley_trace_spans_dropped_total")

    # Hanging: a receiver that takes the connection and never answers holds each export for its 2 s timeout, while
    # requests keep coming: the queue (32) fills, later spans are dropped (and logged), and no request waits.
    hole = socket.socket()
    hole.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    hole.bind(("127.0.0.1", receiver.port))
    hole.listen(64)
    try:
        assert burst(300) < 1.0
        server.wait_for_log(lambda r: str(r.get("message", "")).startswith("Spans were dropped"), what="the full queue's drops")
        poll(lambda: dropped(server, "queue_full") > 0, 10, "the full queue's drops in parley_trace_spans_dropped_total")
    finally:
        hole.close()

    # Back: spans are received again, without a restart.
    receiver.start()
    time.sleep(2.5)  # the export held by the black hole times out
    expect_status(server.client.get("/api/v1/chats"), 401)
    back = receiver.wait_for(lambda s: s["start"] / 1e9 > time.time() - 5 and s["attributes"].get("http.route") == "/api/v1/chats",
                             "a span after the receiver came back", timeout=20)
    assert back["attributes"]["http.response.status_code"] == 401
    assert receiver.problems == [], receiver.problems



def test_bad_export_settings_stop_the_process_naming_the_variable(parley_binary, tmp_path):
    import subprocess

    from harness import environment_without_parley

    for variable, value in [("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
                            ("OTEL_BSP_MAX_QUEUE_SIZE", "0"), ("OTEL_EXPORTER_OTLP_HEADERS", "no-equals-sign")]:
        env = {**environment_without_parley(), "PARLEY_DATA_DIR": str(tmp_path / "data"), "PARLEY_PORT": str(free_port()),
               "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", variable: value}
        done = subprocess.run([str(parley_binary), "serve"], env=env, capture_output=True, text=True, timeout=30)
        assert done.returncode == 1, (variable, done.stdout[-500:], done.stderr[-500:])
        assert done.stderr.startswith(f"parley: {variable}: "), done.stderr


def test_spans_waiting_at_shutdown_are_sent_before_the_process_exits(launcher, receiver):
    # A schedule far off: nothing goes out on its own while the process runs.
    server = launcher.parley(backend="sqlite", env=exporting(receiver, OTEL_BSP_SCHEDULE_DELAY="600000"))
    trace = uuid.uuid4().hex
    expect_status(server.client.get("/api/v1/chats", headers={"traceparent": f"00-{trace}-{uuid.uuid4().hex[:16]}-01"}), 401)
    time.sleep(0.5)
    assert not [s for s in receiver.snapshot() if s["traceId"] == trace]
    launcher.stop(server)  # SIGTERM; exits 0
    assert [s for s in receiver.snapshot() if s["traceId"] == trace and s["kind"] == SERVER]
