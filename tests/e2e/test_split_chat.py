"""The chat service as its own process: tokens checked with the user service's JWKS, profiles from the user service."""

from __future__ import annotations

import socketio

from harness import Client, expect_status, poll, request_code, verify


def split_services(launcher, chat_env: dict | None = None):
    """User, mail and chat services, each its own process, on one PostgreSQL database; and a sign-in through them."""
    url = launcher.database_url("postgres")
    smtp = launcher.smtp()
    user = launcher.parley(service="user", database_url=url, smtp=smtp)
    # Sign-ins wait on their code: this worker is not woken by the user service, and looks every second by default.
    launcher.parley(service="mail", database_url=url, smtp=smtp, env={"PARLEY_MAIL_POLL_SECONDS": "0.2"})
    # The chat service has no signing key of its own: only the user service's public keys.
    chat = launcher.parley(service="chat", database_url=url,
                           env={"PARLEY_USER_SERVICE_URL": user.base_url, "PARLEY_JWT_PRIVATE_KEY": None, **(chat_env or {})})

    def sign_in(address):
        request_code(user.client, address, retry_after=60)
        code = smtp.mailbox.wait_for(address).code
        return expect_status(verify(user.client, address, code), 200)

    return user, chat, smtp, sign_in


def test_split_chat_service_works_with_the_user_service(launcher):
    user, chat, _, sign_in = split_services(launcher)
    alice, bob = sign_in("split.alice@example.com"), sign_in("split.bob@example.com")
    expect_status(user.client.with_token(alice["accessToken"]).patch("/api/v1/me", json={"name": "Alice Split"}), 200)
    alice_chat = Client(chat.base_url, alice["accessToken"])
    bob_chat = Client(chat.base_url, bob["accessToken"])

    created = expect_status(alice_chat.post("/api/v1/chats", json={"userId": bob["user"]["id"]}), 201)["chat"]
    names = {member["id"]: member["name"] for member in created["members"]}
    assert names == {alice["user"]["id"]: "Alice Split", bob["user"]["id"]: "split.bob"}

    received = []
    bob_socket = socketio.Client(reconnection=False)
    bob_socket.on("newMessage", lambda message: received.append(message))
    bob_socket.connect(chat.base_url, transports=["websocket"], auth={"token": bob["accessToken"]}, wait_timeout=10)
    try:
        sent = expect_status(alice_chat.post(f"/api/v1/chats/{created['id']}/messages", json={"text": "hi", "clientMessageId": "s1"}), 201)
        poll(lambda: any(m["id"] == sent["message"]["id"] for m in received), 10, "newMessage on the split chat service")
    finally:
        bob_socket.disconnect()
    listed = expect_status(bob_chat.get("/api/v1/chats"), 200)["chats"]
    assert [c["id"] for c in listed] == [created["id"]]
    assert listed[0]["unreadCount"] == 1

    # A token the user service never signed is refused by the chat service.
    forged = Client(chat.base_url, alice["accessToken"][:-4] + "AAAA")
    assert forged.get("/api/v1/chats").status_code == 401


def test_a_split_chat_service_mails_missed_messages_naming_their_senders(launcher):
    """A chat instance's missed-message pass runs outside any request: it has no caller's token to ask the user
    service for names with, and its profile cache (30 s) has long expired by the time mail is due (900 s by default).
    The pass names the senders from the database, so the mail goes out. Here the mail is due (1 s) only on a chat
    instance started after the message was sent, whose cache never held the sender: the one that stored it waits the
    default 900 s. (Waiting out the cache instead took 31 s.)"""
    user, chat, smtp, sign_in = split_services(launcher)
    alice, bob = sign_in("split.mail.alice@example.com"), sign_in("split.mail.bob@example.com")
    expect_status(user.client.with_token(alice["accessToken"]).patch("/api/v1/me", json={"name": "Alice Away"}), 200)
    alice_chat = Client(chat.base_url, alice["accessToken"])
    created = expect_status(alice_chat.post("/api/v1/chats", json={"userId": bob["user"]["id"]}), 201)["chat"]
    expect_status(alice_chat.post(f"/api/v1/chats/{created['id']}/messages", json={"text": "lunch?", "clientMessageId": "m1"}), 201)
    launcher.stop(chat)
    launcher.parley(service="chat", database_url=chat.env["PARLEY_DATABASE_URL"],
                    env={"PARLEY_USER_SERVICE_URL": user.base_url, "PARLEY_JWT_PRIVATE_KEY": None,
                         "PARLEY_NOTIFY_AFTER_SECONDS": "1"})
    mail = poll(lambda: next((m for m in smtp.mailbox.to("split.mail.bob@example.com") if "While you were away" in m.text), None),
                60, "the missed-message mail")
    assert "Alice Away" in mail.text and "lunch?" in mail.text, mail.text


def test_user_lookup_by_ids(server):
    from harness import sign_in
    alice, bob = sign_in(server), sign_in(server)
    found = expect_status(alice.client.get("/api/v1/users", params={"ids": f"{bob.user['id']},{alice.user['id']}"}), 200)
    assert {u["id"] for u in found["users"]} == {alice.user["id"], bob.user["id"]}
    assert all(set(u) <= {"id", "name", "avatarUrl"} for u in found["users"])
    assert alice.client.get("/api/v1/users", params={"ids": "not-an-id"}).status_code == 400


def test_an_unreachable_user_service_is_asked_for_its_keys_at_most_once_a_second(launcher):
    """While the chat service has no keys, a flood of requests must not become a flood of JWKS fetches."""
    import http.server
    import threading
    import time

    fetches = []

    class Down(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            fetches.append(time.monotonic())
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    jwks = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Down)
    threading.Thread(target=jwks.serve_forever, daemon=True).start()
    try:
        chat = launcher.parley(service="chat", database_url=launcher.database_url("postgres"), env={
            "PARLEY_USER_SERVICE_URL": f"http://127.0.0.1:{jwks.server_address[1]}", "PARLEY_JWT_PRIVATE_KEY": None})
        client = Client(chat.base_url, "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln")
        before = len(fetches)
        started = time.monotonic()
        for _ in range(60):
            response = client.get("/api/v1/chats")
            assert response.status_code == 503 and response.json()["error"]["code"] == "auth_unavailable", response.text
        elapsed = time.monotonic() - started
        assert len(fetches) - before <= elapsed + 2, (len(fetches) - before, elapsed)
    finally:
        jwks.shutdown()
