"""Monitoring against a real Prometheus (Debian's `prometheus` package, which scripts/test installs): the shipped Grafana
dashboard (deploy/grafana/parley.json) and alert rules (deploy/prometheus/alerts.yml) over a running Parley under a
little load, promtool's checks of the shipped files, and the outbox alert made to go off by stopping the SMTP server.

The test starts a Prometheus of its own, on a free port with its configuration and data under the test's tmp dir (the
package's systemd service, if one runs, is left alone), scraping Parley every second.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests
import socketio
import yaml

from harness import (
    REPO_ROOT,
    RUNNING,
    Process,
    expect_status,
    free_port,
    poll,
    request_code,
    sign_in,
    tail,
    unique_email,
    verify,
)

DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "parley.json"
ALERTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS_CONFIG = REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml"
API = "/api/v1"
# What Grafana puts in place of the dashboard's variables: a rate window of 30 scrapes, every instance.
GRAFANA_VARIABLES = {"$__rate_interval": "30s", "$instance": ".*"}
# The shipped outbox rule waits for a mail 10 minutes old; the copy the test loads waits for one 2 seconds old, so that
# a mail that cannot be delivered sets it off within the test. Nothing else of the rules is changed.
OUTBOX_ALERT = "ParleyMailOutboxStuck"
TEST_OUTBOX_THRESHOLD_SECONDS = 2
# More than a socket's outbound queue holds (SocketIOConfiguration.outboundQueueLimit, 1024 packets).
OVERFLOWING_SENDS = 1100
COMPARISON = re.compile(r"==|!=|>=|<=|>|<")


class PrometheusServer(Process):
    """`prometheus` with a configuration and a data folder of its own, on a free port."""

    name = "prometheus"

    def __init__(self, directory: Path):
        super().__init__(directory / "prometheus.log")
        self.directory = directory
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"

    def start(self) -> "PrometheusServer":
        command = ["prometheus", f"--config.file={self.directory / 'prometheus.yml'}",
                   f"--storage.tsdb.path={self.directory / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}"]
        log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(command, cwd=self.directory, stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL)
        log.close()
        RUNNING.append(self)
        poll(self._ready, 20, f"prometheus ready on port {self.port}:\n{tail(self.log_path)}", interval=0.1)
        return self

    def _ready(self) -> bool:
        assert self.popen is not None and self.popen.poll() is None, f"prometheus exited:\n{tail(self.log_path)}"
        try:
            return requests.get(self.base_url + "/-/ready", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def describe(self) -> str:
        return f"prometheus on port {self.port}"

    def query(self, expr: str) -> dict:
        """The answer of /api/v1/query for `expr` now; fails unless Prometheus calls it a success."""
        response = requests.get(self.base_url + "/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        assert response.status_code == 200 and body.get("status") == "success", f"{expr!r}: {response.status_code} {body}"
        return body["data"]

    def series(self, expr: str) -> list:
        data = self.query(expr)
        return data["result"] if data["resultType"] in ("vector", "matrix") else [data["result"]]

    def alert_states(self, name: str) -> set[str]:
        body = requests.get(self.base_url + "/api/v1/alerts", timeout=10).json()
        return {alert["state"] for alert in body["data"]["alerts"] if alert["labels"].get("alertname") == name}


@pytest.fixture
def prometheus(tmp_path):
    started: list[PrometheusServer] = []

    def start(parley_port: int) -> PrometheusServer:
        server = PrometheusServer(tmp_path)
        write_configuration(tmp_path, parley_port)
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


def write_configuration(directory: Path, parley_port: int) -> None:
    """The shipped prometheus.yml, scraping the test's Parley every second, with the test's copy of the rules."""
    configuration = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    configuration["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    configuration["rule_files"] = ["alerts.yml"]
    [job] = [job for job in configuration["scrape_configs"] if job["job_name"] == "parley"]
    job["static_configs"] = [{"targets": [f"127.0.0.1:{parley_port}"]}]
    (directory / "prometheus.yml").write_text(yaml.safe_dump(configuration))
    (directory / "alerts.yml").write_text(yaml.safe_dump(rules_for_the_test()))
    promtool("check", "config", str(directory / "prometheus.yml"))


def rules_for_the_test() -> dict:
    rules = copy.deepcopy(yaml.safe_load(ALERTS.read_text()))
    [outbox] = [rule for group in rules["groups"] for rule in group["rules"] if rule.get("alert") == OUTBOX_ALERT]
    lowered = re.sub(r">\s*[0-9.]+\s*$", f"> {TEST_OUTBOX_THRESHOLD_SECONDS}", outbox["expr"].strip())
    assert lowered != outbox["expr"].strip(), f"the outbox rule does not end in a threshold: {outbox['expr']!r}"
    outbox["expr"] = lowered
    return rules


def promtool(*arguments: str) -> str:
    result = subprocess.run(["promtool", *arguments], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"promtool {' '.join(arguments)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL with Grafana's variables filled in) for every target of every panel."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"panel {panel['title']!r} uses a variable the test does not know: {expr}"
            queries.append((panel["title"], expr))
    return queries


def stalled_polling_socket(server, account) -> None:
    """A Socket.IO connection over long-polling that connects, then never polls again: its queue only fills up."""
    base = server.base_url + "/socket.io/?EIO=4&transport=polling"
    opened = requests.get(base, timeout=10)
    assert opened.status_code == 200 and opened.text.startswith("0"), opened.text
    sid = json.loads(opened.text[1:])["sid"]
    sent = requests.post(f"{base}&sid={sid}", data="40" + json.dumps({"token": account.access_token}), timeout=10)
    assert sent.status_code == 200, sent.text
    connected = requests.get(f"{base}&sid={sid}", timeout=10)
    assert connected.status_code == 200 and connected.text.startswith("40{"), connected.text


def numbers(series: list) -> list[float]:
    """The values of an instant vector's samples that are numbers."""
    values = [float(sample["value"][1]) for sample in series]
    return [value for value in values if value == value]


def alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"] if "alert" in rule]


def left_side(expr: str) -> str:
    """What an alert compares with its threshold: the expression before its one comparison outside brackets and quotes."""
    depth, quote, found = 0, None, []
    index = 0
    while index < len(expr):
        char = expr[index]
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'`":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0:
            match = COMPARISON.match(expr, index)
            if match:
                found.append(index)
                index = match.end()
                continue
        index += 1
    assert len(found) == 1, f"an alert expression should compare one expression with a threshold: {expr!r}"
    return expr[:found[0]].strip()


# ---------------------------------------------------------------------------------------------------------------


def test_promtool_accepts_the_shipped_rules_and_configuration():
    assert "SUCCESS" in promtool("check", "rules", str(ALERTS))
    assert "SUCCESS" in promtool("check", "config", str(PROMETHEUS_CONFIG))
    names = {rule["alert"] for rule in alert_rules()}
    assert names == {"ParleyInstanceDown", "ParleySendLatencyHigh", "ParleyMailOutboxStuck", "ParleyEventBusDisconnected",
                     "ParleyDiskNearlyFull"}, names


def test_every_panel_and_alert_has_data_and_the_outbox_and_instance_alerts_go_off(launcher, prometheus):
    smtp = launcher.smtp()
    server = launcher.parley(backend="postgres", smtp=smtp)
    monitor = prometheus(server.port)
    poll(lambda: [s for s in monitor.series('up{job="parley"} == 1')], 15, "Prometheus's first scrape of Parley")
    first_scrape = time.monotonic()

    # A little load: two people, a direct chat, sockets, messages over Socket.IO and HTTP, a file, a refused code, a 404.
    alice, bob = sign_in(server), sign_in(server)
    chat = expect_status(alice.client.post(f"{API}/chats", json={"userId": bob.id}), 201)["chat"]["id"]
    sockets = []
    try:
        for account in (alice, bob):
            client = socketio.Client(reconnection=False)
            client.connect(server.base_url, transports=["websocket"], auth={"token": account.access_token}, wait_timeout=10)
            sockets.append(client)
        for index in range(5):
            answer = sockets[0].call("sendMessage", {"chatId": chat, "text": f"load {index}", "clientMessageId": str(uuid.uuid4())},
                                     timeout=10)
            assert answer.get("ok") is True, answer
        expect_status(bob.client.post(f"{API}/chats/{chat}/messages", json={"text": "over HTTP", "clientMessageId": str(uuid.uuid4())}), 201)
        expect_status(alice.client.post(f"{API}/chats/{chat}/messages", data={"clientMessageId": str(uuid.uuid4())},
                                        files={"file": ("notes.txt", b"monitoring\n" * 100, "text/plain")}), 201)
        assert verify(server.client, alice.email, "000000").status_code == 400
        assert server.client.get(f"{API}/no-such-route").status_code == 404
        # A socket of Bob's that stops polling while Alice sends more than its queue holds: the server drops it.
        stalled_polling_socket(server, bob)
        for index in range(OVERFLOWING_SENDS):
            sockets[0].emit("sendMessage", {"chatId": chat, "text": f"flood {index}", "clientMessageId": str(uuid.uuid4())})
        poll(lambda: monitor.series("parley_socket_queue_overflows_total >= 1"), 30, "the queue overflow in Prometheus")

        # Prometheus has the load, and a few samples for the rates.
        poll(lambda: [s for s in monitor.series("parley_messages_stored_total >= 7")], 15, "the stored messages in Prometheus")
        time.sleep(max(0.0, first_scrape + 4 - time.monotonic()))

        # Data is a number: a histogram with nothing observed in the window gives NaN quantiles, which is none.
        empty = []
        for title, expr in dashboard_queries():
            values = numbers(monitor.series(expr))
            print(f"{title}: {expr} → {values}")  # shown with -rP: what the load looked like
            if not values:
                empty.append(f"{title}: {expr}")
        assert not empty, "panel queries without data:\n" + "\n".join(empty)
        # Each alert expression is valid as it is, and what it compares exists (alerts quiet now return nothing).
        for rule in alert_rules():
            monitor.query(rule["expr"])
            assert numbers(monitor.series(left_side(rule["expr"]))), f"{rule['alert']}: no data for {left_side(rule['expr'])!r}"
        # Alice's and Bob's WebSockets; the stalled one is gone.
        poll(lambda: numbers(monitor.series("parley_connected_sockets")) == [2.0], 10, "2 connected sockets in Prometheus")
        poll(lambda: numbers(monitor.series("parley_connected_users")) == [2.0], 10, "2 connected users in Prometheus")
    finally:
        for client in sockets:
            client.disconnect()

    # The event bus loses its LISTEN connection: it listens again, and says so.
    cut = subprocess.run(["psql", "-X", "-q", "-t", "-d", server.env["PARLEY_DATABASE_URL"], "-c",
                          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND query ILIKE 'LISTEN%'"],
                         capture_output=True, text=True, timeout=30)
    assert cut.returncode == 0 and "t" in cut.stdout, f"the LISTEN connection was not cut: {cut.stdout!r} {cut.stderr!r}"
    poll(lambda: monitor.series("parley_bus_reconnects_total >= 1"), 15, "the bus's reconnect in Prometheus")
    poll(lambda: numbers(monitor.series("parley_bus_connected")) == [1.0], 10, "the bus listening again")

    # Mail goes out: the outbox alert is quiet. Then the SMTP server stops and a login code cannot go out.
    assert OUTBOX_ALERT not in {a["labels"]["alertname"] for a in requests.get(monitor.base_url + "/api/v1/alerts").json()["data"]["alerts"]}
    launcher.stop(smtp)
    request_code(server.client, unique_email("stuck"))
    states = poll(lambda: monitor.alert_states(OUTBOX_ALERT) & {"pending", "firing"}, 30, f"{OUTBOX_ALERT} pending")
    assert states, states
    oldest = monitor.series("max(parley_mail_outbox_oldest_age_seconds)")
    assert float(oldest[0]["value"][1]) > TEST_OUTBOX_THRESHOLD_SECONDS, oldest

    # And with Parley stopped, the instance-down alert (as shipped) goes pending at the next scrape.
    assert not monitor.alert_states("ParleyInstanceDown")
    launcher.stop(server)
    poll(lambda: monitor.alert_states("ParleyInstanceDown") & {"pending", "firing"}, 15, "ParleyInstanceDown pending")
