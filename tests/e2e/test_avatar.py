"""Avatars: an image of one's own, uploaded with POST /files and chosen with PATCH /me."""

from __future__ import annotations

import requests

from harness import assert_error, expect_status, sign_in
from test_chat_http import make_png


def upload(account, data: bytes, name: str = "me.png", content_type: str = "image/png") -> requests.Response:
    return account.client.post("/api/v1/files", files={"image": (name, data, content_type)})


def test_an_uploaded_image_becomes_the_avatar_everyone_sees(server):
    alice, bob = sign_in(server), sign_in(server)
    picture = make_png(4, 3)
    uploaded = expect_status(upload(alice, picture), 201)["file"]
    assert uploaded["contentType"] == "image/png" and (uploaded["width"], uploaded["height"]) == (4, 3)
    assert uploaded["size"] == len(picture)
    me = expect_status(alice.client.patch("/api/v1/me", json={"avatarFileId": uploaded["id"]}), 200)
    assert "/api/v1/files/" + uploaded["id"] in me["avatarUrl"]
    served = requests.get(server.base_url + me["avatarUrl"], timeout=10)
    assert served.status_code == 200 and served.content == picture
    assert expect_status(alice.client.get("/api/v1/me"), 200)["avatarUrl"] == me["avatarUrl"]
    # Others see it in search, in the profile, and among a chat's members.
    found = expect_status(bob.client.get(f"/api/v1/users/{alice.user['id']}"), 200)
    assert found["avatarUrl"] == me["avatarUrl"]
    chat = expect_status(bob.client.post("/api/v1/chats", json={"userId": alice.user["id"]}), 201)["chat"]
    member = next(m for m in chat["members"] if m["id"] == alice.user["id"])
    assert member["avatarUrl"] == me["avatarUrl"]
    # null removes it.
    cleared = expect_status(alice.client.patch("/api/v1/me", json={"avatarFileId": None}), 200)
    assert "avatarUrl" not in cleared or cleared["avatarUrl"] is None


def test_someone_elses_file_cannot_become_your_avatar(server):
    alice, bob = sign_in(server), sign_in(server)
    bobs = expect_status(upload(bob, make_png()), 201)["file"]["id"]
    assert_error(alice.client.patch("/api/v1/me", json={"avatarFileId": bobs}), 404, "file_not_found")
    assert_error(alice.client.patch("/api/v1/me", json={"avatarFileId": "01a2147d-0000-7000-8000-000000000000"}), 404, "file_not_found")
    assert_error(alice.client.patch("/api/v1/me", json={"avatarFileId": "../../etc/passwd"}), 404, "file_not_found")
    assert_error(alice.client.patch("/api/v1/me", json={"avatarFileId": 5}), 400)
    assert "avatarUrl" not in expect_status(alice.client.get("/api/v1/me"), 200)


def test_uploads_are_images_only_and_need_a_token(server):
    alice = sign_in(server)
    assert_error(upload(alice, b"<svg xmlns='http://www.w3.org/2000/svg'/>", "x.svg", "image/svg+xml"), 415)
    assert_error(upload(alice, b"<html><script>alert(1)</script></html>", "x.png"), 415)
    assert_error(alice.client.post("/api/v1/files", json={"image": "x"}), 415)
    assert_error(alice.client.post("/api/v1/files", files={"other": ("x.png", make_png(), "image/png")}), 400)
    assert_error(requests.post(server.base_url + "/api/v1/files", files={"image": ("x.png", make_png(), "image/png")}, timeout=10), 401)
