"""Missed-message mail from the running binary to a real SMTP server (aiosmtpd): someone with a socket connected (stock
python-socketio) is not mailed, someone away is, once per period; what they read meanwhile is not; the mail's
one-click link (RFC 8058) turns it off. On SQLite and on PostgreSQL, with a short delay setting."""

from __future__ import annotations

import re
import time
import uuid

import pytest
import requests
import socketio

from harness import expect_status, poll, sign_in

API = "/api/v1"
AFTER_SECONDS = 1.0


@pytest.fixture(scope="module")
def mail_server(module_launcher, backend, smtp_server):
    server = module_launcher.parley(backend=backend, smtp=smtp_server, env={
        "PARLEY_NOTIFY_AFTER_SECONDS": str(AFTER_SECONDS),
        "PARLEY_NOTIFY_INTERVAL_SECONDS": "3600",
        "PARLEY_PRESENCE_GRACE_MS": "200",
    })
    yield server
    module_launcher.stop(server)


def direct_chat(account, other) -> str:
    return expect_status(account.client.post(f"{API}/chats", json={"userId": other.id}), 201)["chat"]["id"]


def send(account, chat_id: str, text: str) -> dict:
    body = {"text": text, "clientMessageId": str(uuid.uuid4())}
    return expect_status(account.client.post(f"{API}/chats/{chat_id}/messages", json=body), 201)["message"]


def missed_mails(server, address: str) -> list:
    return [mail for mail in server.mailbox.to(address) if "While you were away" in mail.text]


def connect(server, account) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    seen = []
    client.on("getOnlineUser", lambda *args: seen.append(args))
    client.connect(server.base_url, transports=["websocket"], auth={"token": account.access_token}, wait_timeout=10)
    poll(lambda: seen or None, 10, "getOnlineUser")
    return client


def test_only_people_away_are_mailed_and_the_link_turns_it_off(mail_server):
    server = mail_server
    ann, bob, cat, dan = (sign_in(server) for _ in range(4))
    bobs_socket = connect(server, bob)
    try:
        to_bob, to_cat, to_dan = direct_chat(ann, bob), direct_chat(ann, cat), direct_chat(ann, dan)
        send(ann, to_bob, "bob is here")
        send(ann, to_cat, "cat is away <b>really</b>")
        read = send(ann, to_dan, "dan reads it on his phone")
        expect_status(dan.client.post(f"{API}/chats/{to_dan}/read", json={"seq": read["seq"]}), 204)

        mail = poll(lambda: (missed_mails(server, cat.email) or [None])[0], 15, "the missed-message mail to cat")
        assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        link = re.fullmatch(r"<(https?://[^>]+/api/v1/unsubscribe\?user=[A-Za-z0-9_-]+&sig=[A-Za-z0-9_-]+)>",
                            str(mail.message["List-Unsubscribe"]).strip())
        assert link, mail.message["List-Unsubscribe"]
        assert "cat is away <b>really</b>" in mail.text
        assert "cat is away &lt;b&gt;really&lt;/b&gt;" in mail.html
        assert f"/#/chat/{to_cat}" in mail.text

        # Bob is connected, Dan read his: neither is mailed (several passes have run by now).
        time.sleep(3 * AFTER_SECONDS)
        assert missed_mails(server, bob.email) == []
        assert missed_mails(server, dan.email) == []
    finally:
        bobs_socket.disconnect()

    # Once Bob's socket is gone, the message he has not read is mailed.
    poll(lambda: missed_mails(server, bob.email) or None, 15, "the missed-message mail to bob after he left")
    assert "bob is here" in missed_mails(server, bob.email)[0].text

    # Within the period a second message is not mailed.
    send(ann, to_cat, "and another thing")
    time.sleep(3 * AFTER_SECONDS)
    assert len(missed_mails(server, cat.email)) == 1

    # The one-click POST, as a mail client sends it, turns Cat's mail off.
    path = link.group(1)[link.group(1).index("/api/v1/"):]
    page = requests.get(server.base_url + path, timeout=10)
    assert page.status_code == 200 and "<form" in page.text
    assert expect_status(cat.client.get(f"{API}/me"), 200)["emailNotifications"] is True
    forged = requests.post(server.base_url + path.replace("sig=", "sig=x"), data="List-Unsubscribe=One-Click", timeout=10,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "invalid_link"
    done = requests.post(server.base_url + path, data="List-Unsubscribe=One-Click", timeout=10,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert done.status_code == 200, done.text
    assert expect_status(cat.client.get(f"{API}/me"), 200)["emailNotifications"] is False
