"""Login mails: their format, the log transport, retries, and several mail services on one database."""

from __future__ import annotations

import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from harness import (
    CODE_IN_LOG,
    assert_error,
    expect_status,
    free_port,
    log_message,
    poll,
    request_code,
    unique_email,
    verify,
)


def test_the_login_mail_is_an_rfc5322_multipart_message(server):
    address = unique_email()
    request_code(server.client, address)

    mail = server.mailbox.wait_for(address)

    message = mail.message
    assert mail.mail_from == "no-reply@localhost"
    assert [rcpt.lower() for rcpt in mail.rcpt_tos] == [address]
    assert not re.search(r"(?<!\r)\n", mail.data), "SMTP data must use CRLF line endings"
    assert max(len(line) for line in mail.data.split("\r\n")) <= 998, "RFC 5322 caps lines at 998 characters"
    assert not message.defects, message.defects
    assert message["MIME-Version"] == "1.0"
    date = message["Date"]
    assert date is not None and date.datetime is not None, message["Date"]
    assert abs(date.datetime.timestamp() - time.time()) < 300, f"Date is not now: {date}"
    assert re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", str(message["Message-ID"]).strip()), message["Message-ID"]
    assert [sender.addr_spec for sender in message["From"].addresses] == ["no-reply@localhost"]
    assert [recipient.addr_spec.lower() for recipient in message["To"].addresses] == [address]
    assert str(message["Subject"]).strip(), "no Subject"
    assert message.get_content_type() == "multipart/alternative"
    part_types = [part.get_content_type() for part in message.iter_parts()]
    assert "text/plain" in part_types and "text/html" in part_types, part_types
    for part in message.iter_parts():
        assert not part.defects, part.defects
    code = mail.code
    assert code in mail.html
    expect_status(verify(server.client, address, code), 200)


def test_the_log_transport_prints_the_code_which_verifies(log_server):
    address = unique_email()
    response = request_code(log_server.client, address)

    record = log_server.wait_for_log(
        lambda record: address in log_message(record) and CODE_IN_LOG.search(log_message(record)) is not None,
        what=f"the login mail for {address}")

    assert record.get("requestId") == response.headers["X-Request-Id"], (
        "the mail's log line should carry the requestId of the POST /login that queued it", record)
    code = CODE_IN_LOG.search(log_message(record)).group(1)
    body = expect_status(verify(log_server.client, address, code), 200)
    assert body["user"]["email"] == address


def test_mail_is_delivered_once_the_smtp_server_comes_up(launcher, backend):
    port = free_port()  # nothing listens here yet
    server = launcher.parley(backend=backend, smtp=f"smtp://127.0.0.1:{port}")
    address = unique_email()
    request_code(server.client, address)
    try:
        # Give the first attempt the chance to fail (and say so) before the SMTP server appears.
        server.wait_for_log(lambda record: str(record.get("level", "")).lower() in {"warning", "error", "critical"},
                            timeout=5, what="a failed delivery")
    except AssertionError:
        pass

    smtp = launcher.smtp(port=port)

    mail = smtp.mailbox.wait_for(address, timeout=20)
    assert len(smtp.mailbox.to(address)) == 1
    expect_status(verify(server.client, address, mail.code), 200)


def test_mail_is_retried_after_temporary_failures(launcher, backend):
    smtp = launcher.smtp(fail_first=2)
    server = launcher.parley(backend=backend, smtp=smtp)
    address = unique_email()
    started = time.monotonic()
    request_code(server.client, address)

    mail = smtp.mailbox.wait_for(address, timeout=20)

    elapsed = time.monotonic() - started
    assert elapsed >= 1.0, f"two retries with a 1 s base delay took only {elapsed:.2f} s"
    assert len(smtp.mailbox.to(address)) == 1
    expect_status(verify(server.client, address, mail.code), 200)


def test_two_mail_services_deliver_each_mail_exactly_once(launcher):
    smtp = launcher.smtp()
    database = launcher.database_url("postgres")
    user = launcher.parley(database_url=database, service="user", smtp=smtp)
    launcher.parley(database_url=database, service="mail", smtp=smtp)
    launcher.parley(database_url=database, service="mail", smtp=smtp)
    addresses = [unique_email(f"bulk{index}") for index in range(100)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda address: request_code(user.client, address), addresses))
    poll(lambda: len({rcpt.lower() for mail in smtp.mailbox.messages() for rcpt in mail.rcpt_tos}) >= 100,
         timeout=120, what="100 mails")
    time.sleep(3)  # a duplicate would arrive after the last first copy: give it the time to

    counts = Counter(rcpt.lower() for mail in smtp.mailbox.messages() for rcpt in mail.rcpt_tos)
    assert set(counts) == set(addresses)
    duplicates = {address: count for address, count in counts.items() if count != 1}
    assert not duplicates, f"{len(duplicates)} addresses got more than one mail, e.g. {list(duplicates.items())[:3]}"
    # The split services make one system: the user service accepts the code the mail service delivered.
    expect_status(verify(user.client, addresses[0], user.code_for(addresses[0])), 200)


def test_the_user_service_alone_serves_the_user_routes(launcher):
    user = launcher.parley(backend="postgres", service="user")

    health = expect_status(user.client.get("/health"), 200)
    assert health["status"] == "healthy" and health["checks"]["database"] == "up", health
    request_code(user.client, unique_email())
    jwks = expect_status(user.client.get("/.well-known/jwks.json"), 200)
    assert jwks["keys"], jwks
    assert_error(user.client.get("/api/v1/me"), 401)


def test_the_mail_service_alone_answers_health_and_metrics_only(launcher):
    mail = launcher.parley(backend="postgres", service="mail")

    health = expect_status(mail.client.get("/health"), 200)
    assert health["status"] == "healthy" and health["checks"]["database"] == "up", health
    metrics = mail.client.get("/metrics")
    assert metrics.status_code == 200 and "# TYPE" in metrics.text
    assert_error(mail.client.post("/api/v1/login", json={"email": unique_email()}), 404)
