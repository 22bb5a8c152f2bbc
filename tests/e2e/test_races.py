"""Requests that race each other: the limits and idempotency must hold when they arrive at the same moment."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests

from harness import assert_error, expect_status, sign_in, unique_email


def post_all(url: str, bodies: list[dict], headers: dict | None = None) -> list[requests.Response]:
    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(lambda body: requests.post(url, json=body, headers=headers, timeout=30), bodies))


def test_parallel_code_requests_send_one_code(server):
    address = unique_email("race")
    answers = post_all(server.base_url + "/api/v1/login", [{"email": address}] * 12)
    assert sorted(r.status_code for r in answers) == [202] + [429] * 11
    for refused in (r for r in answers if r.status_code == 429):
        assert_error(refused, 429)
        assert 1 <= int(refused.headers["Retry-After"]) <= 60


def test_parallel_wrong_guesses_all_count(server):
    address = unique_email("guess")
    expect_status(requests.post(server.base_url + "/api/v1/login", json={"email": address}, timeout=10), 202)
    code = server.code_for(address)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    answers = post_all(server.base_url + "/api/v1/verify", [{"email": address, "otp": wrong}] * 20)
    assert sorted(r.status_code for r in answers) == [400] * 5 + [429] * 15
    # The right code comes too late: five guesses burned it.
    late = requests.post(server.base_url + "/api/v1/verify", json={"email": address, "otp": code}, timeout=10)
    assert_error(late, 429, "too_many_attempts")


def test_a_code_signs_in_once_even_when_presented_twice_at_once(server):
    address = unique_email("twice")
    expect_status(requests.post(server.base_url + "/api/v1/login", json={"email": address}, timeout=10), 202)
    code = server.code_for(address)
    answers = post_all(server.base_url + "/api/v1/verify", [{"email": address, "otp": code}] * 6)
    statuses = sorted(r.status_code for r in answers)
    assert statuses[0] == 200 and all(status in (400, 429) for status in statuses[1:]), statuses


def test_the_same_client_message_id_in_two_chats_makes_two_messages(server):
    alice, bob, carol = sign_in(server), sign_in(server), sign_in(server)
    first = expect_status(alice.client.post("/api/v1/chats", json={"userId": bob.user["id"]}), 201)["chat"]["id"]
    second = expect_status(alice.client.post("/api/v1/chats", json={"userId": carol.user["id"]}), 201)["chat"]["id"]
    one = expect_status(alice.client.post(f"/api/v1/chats/{first}/messages", json={"text": "to bob", "clientMessageId": "1"}), 201)
    two = expect_status(alice.client.post(f"/api/v1/chats/{second}/messages", json={"text": "to carol", "clientMessageId": "1"}), 201)
    assert one["message"]["chatId"] == first and two["message"]["chatId"] == second
    assert expect_status(carol.client.get(f"/api/v1/chats/{second}/messages"), 200)["messages"][0]["text"] == "to carol"


def test_a_character_with_endless_combining_marks_is_too_long(server):
    alice, bob = sign_in(server), sign_in(server)
    chat = expect_status(alice.client.post("/api/v1/chats", json={"userId": bob.user["id"]}), 201)["chat"]["id"]
    heavy = "a" + "\u0301" * 9_000
    assert_error(alice.client.post(f"/api/v1/chats/{chat}/messages", json={"text": heavy}), 400, "text_too_long")
    assert_error(alice.client.patch("/api/v1/me", json={"name": "b" + "\u0301" * 1000}), 400, "invalid_name")
