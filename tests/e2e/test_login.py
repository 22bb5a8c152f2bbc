"""The login flow and the user routes against the real binary, on SQLite and PostgreSQL, and their hostile cases."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from harness import (
    JWT,
    assert_auth_response,
    assert_error,
    assert_public_user,
    assert_retry_after,
    assert_user,
    b64url_encode,
    encode_segment,
    expect_status,
    poll,
    public_raw,
    refresh,
    request_code,
    sign_in,
    sign_jwt,
    unique_email,
    verify,
    verify_jwt_signature,
)


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


# ---------------------------------------------------------------------------------------------------------------
# The happy path


def test_login_answers_202_with_retry_after_60(server):
    request_code(server.client, unique_email())


def test_verify_creates_the_account_named_after_the_local_part(server):
    address = unique_email("new.comer")
    request_code(server.client, address)
    code = server.code_for(address)

    body = expect_status(verify(server.client, address, code), 200)

    assert_auth_response(body, address)
    assert body["user"]["name"] == address.split("@")[0]


def test_me_returns_the_signed_in_user(server):
    account = sign_in(server)

    me = expect_status(account.client.get("/api/v1/me"), 200)

    assert_user(me, account.email)
    assert me == account.user


def test_access_token_carries_sub_iat_exp_for_15_minutes(server):
    account = sign_in(server)

    token = JWT.parse(account.access_token)

    assert token.header.get("kid"), token.header
    assert token.header["alg"] in {"EdDSA", "ES256"}, token.header
    assert token.payload["sub"] == account.user["id"]
    assert token.payload["exp"] - token.payload["iat"] == 900
    assert abs(token.payload["iat"] - time.time()) < 60


def test_jwks_holds_the_key_that_verifies_access_tokens(server, jwt_key):
    account = sign_in(server)
    token = JWT.parse(account.access_token)

    response = server.client.get("/.well-known/jwks.json", token=None)

    jwks = expect_status(response, 200)
    assert isinstance(jwks, dict) and isinstance(jwks.get("keys"), list) and jwks["keys"], jwks
    for jwk in jwks["keys"]:
        assert jwk.get("kid") and "d" not in jwk, f"JWKS must hold public keys with a kid only: {jwk!r}"
    matching = [jwk for jwk in jwks["keys"] if jwk["kid"] == token.header["kid"]]
    assert len(matching) == 1, (token.header, jwks)
    verify_jwt_signature(token, matching[0])
    # The server signs with the configured PARLEY_JWT_PRIVATE_KEY, not a key of its own.
    assert matching[0]["kty"] == "OKP" and matching[0]["crv"] == "Ed25519", matching[0]
    assert matching[0]["x"] == b64url_encode(public_raw(jwt_key))


def test_me_reads_the_user_fresh_after_patch(server):
    account = sign_in(server)

    patched = expect_status(account.client.patch("/api/v1/me", json={"name": "  Renamed Person  "}), 200)
    me = expect_status(account.client.get("/api/v1/me"), 200)

    assert_user(patched, account.email)
    assert patched["name"] == "Renamed Person"
    assert me["name"] == "Renamed Person"
    assert me["id"] == account.user["id"] and me["createdAt"] == account.user["createdAt"]


@pytest.mark.parametrize("name", ["x" * 50, "é" * 50, "Ada Lovelace", "李小龍"], ids=["50-ascii", "50-accented",
                                                                                    "spaces", "cjk"])
def test_patch_me_accepts_names_of_1_to_50_characters(server, name):
    account = sign_in(server)

    patched = expect_status(account.client.patch("/api/v1/me", json={"name": name}), 200)

    assert patched["name"] == name


@pytest.mark.parametrize("body", [
    {"name": ""},
    {"name": "   "},
    {"name": "x" * 51},
    {"name": "line\nbreak"},
    {"name": "tab\there"},
    {"name": "nul\u0000byte"},
    {"name": "escape\u001b[31m"},
    {"name": "delete\u007f"},
    {"name": 5},
    {"name": ["list"]},
], ids=["empty", "blank", "51-chars", "newline", "tab", "nul", "escape", "del", "number", "list"])
def test_patch_me_rejects_invalid_names(server, body):
    account = sign_in(server)

    response = account.client.patch("/api/v1/me", json=body)

    assert_error(response, 400)
    assert expect_status(account.client.get("/api/v1/me"), 200)["name"] == account.user["name"]


# ---------------------------------------------------------------------------------------------------------------
# Users


def test_users_search_finds_names_by_substring_case_insensitively_without_emails(server):
    tag = uuid.uuid4().hex[:8]
    alpha = sign_in(server)
    beta = sign_in(server)
    expect_status(alpha.client.patch("/api/v1/me", json={"name": f"Quillon{tag}Alpha"}), 200)
    expect_status(beta.client.patch("/api/v1/me", json={"name": f"Brannigan {tag} beta"}), 200)
    searcher = sign_in(server)

    def search(query: str) -> set[str]:
        response = searcher.client.get("/api/v1/users", params={"query": query})
        body = expect_status(response, 200)
        assert alpha.email not in response.text and beta.email not in response.text, "search leaked an email"
        assert isinstance(body, dict) and isinstance(body.get("users"), list), body
        for user in body["users"]:
            assert_public_user(user)
        return {user["id"] for user in body["users"]}

    both = {alpha.user["id"], beta.user["id"]}
    assert search(tag.upper()) >= both
    assert search(tag) & both == both
    assert alpha.user["id"] in search(f"quillon{tag}")
    assert beta.user["id"] not in search(f"quillon{tag}")
    assert alpha.user["id"] in search(f"{tag}aLPHA")
    assert search(f"BRANNIGAN {tag.upper()} B") & both == {beta.user["id"]}
    # Users are found by name, never by their email address.
    assert alpha.user["id"] not in search(alpha.email)


def test_users_search_pages_with_a_cursor(server):
    tag = uuid.uuid4().hex[:10]
    accounts = [sign_in(server) for _ in range(3)]
    for index, account in enumerate(accounts):
        expect_status(account.client.patch("/api/v1/me", json={"name": f"Pager {tag} {index}"}), 200)
    client = accounts[0].client

    first = expect_status(client.get("/api/v1/users", params={"query": tag, "limit": 2}), 200)
    assert len(first["users"]) == 2, first
    assert isinstance(first.get("nextCursor"), str) and first["nextCursor"], first
    second = expect_status(client.get("/api/v1/users", params={"query": tag, "limit": 2,
                                                                "cursor": first["nextCursor"]}), 200)

    assert len(second["users"]) == 1, second
    assert second.get("nextCursor") is None, second
    ids = {user["id"] for user in first["users"] + second["users"]}
    assert ids == {account.user["id"] for account in accounts}


def test_get_user_by_id_returns_the_public_user(server):
    target = sign_in(server)
    reader = sign_in(server)

    response = reader.client.get(f"/api/v1/users/{target.user['id']}")

    body = expect_status(response, 200)
    assert_public_user(body)
    assert body["id"] == target.user["id"] and body["name"] == target.user["name"]
    assert target.email not in response.text


def test_get_unknown_user_is_404(server):
    reader = sign_in(server)

    assert_error(reader.client.get(f"/api/v1/users/{uuid.uuid4()}"), 404)
    assert_error(reader.client.get("/api/v1/users/not-an-id"), {400, 404})


@pytest.mark.parametrize("method,path", [
    ("GET", "/api/v1/me"),
    ("PATCH", "/api/v1/me"),
    ("GET", "/api/v1/users?query=a"),
    ("GET", "/api/v1/users/0190f3a0-0000-7000-8000-000000000000"),
], ids=["get-me", "patch-me", "search", "user"])
def test_user_routes_require_a_token(server, method, path):
    response = server.client.request(method, path, token=None, json={"name": "x"} if method == "PATCH" else None)

    assert_error(response, 401)


# ---------------------------------------------------------------------------------------------------------------
# Refresh tokens


def test_refresh_rotates_the_refresh_token(server):
    account = sign_in(server)

    body = expect_status(refresh(server.client, account.refresh_token), 200)

    assert_auth_response(body, account.email)
    assert body["user"]["id"] == account.user["id"]
    assert body["refreshToken"] != account.refresh_token
    me = expect_status(server.client.get("/api/v1/me", token=body["accessToken"]), 200)
    assert me["id"] == account.user["id"]
    # The new refresh token works in turn.
    expect_status(refresh(server.client, body["refreshToken"]), 200)


def test_replaying_a_rotated_refresh_token_revokes_the_family(server):
    account = sign_in(server)
    second = expect_status(refresh(server.client, account.refresh_token), 200)["refreshToken"]
    newest = expect_status(refresh(server.client, second), 200)["refreshToken"]

    assert_error(refresh(server.client, account.refresh_token), 401)

    assert_error(refresh(server.client, newest), 401)
    assert_error(refresh(server.client, second), 401)


def test_a_replay_revokes_only_its_own_family(server):
    first = sign_in(server)
    other = sign_in(server)
    rotated = expect_status(refresh(server.client, first.refresh_token), 200)["refreshToken"]

    assert_error(refresh(server.client, first.refresh_token), 401)

    assert_error(refresh(server.client, rotated), 401)
    expect_status(refresh(server.client, other.refresh_token), 200)


def test_logout_revokes_the_refresh_token(server):
    account = sign_in(server)

    response = server.client.post("/api/v1/logout", json={"refreshToken": account.refresh_token}, token=None)

    assert response.status_code == 204, response.text
    assert response.content == b""
    assert_error(refresh(server.client, account.refresh_token), 401)


@pytest.mark.parametrize("body", [
    {"refreshToken": "garbage"},
    {"refreshToken": ""},
    {"refreshToken": "x" * 200},
], ids=["garbage", "empty", "long"])
def test_refresh_with_an_unknown_token_is_401(server, body):
    response = server.client.post("/api/v1/token/refresh", json=body, token=None)

    assert_error(response, {400, 401})


@pytest.mark.parametrize("body", [{}, {"refreshToken": 5}, {"refreshToken": None}], ids=["missing", "number", "null"])
def test_refresh_with_a_malformed_body_is_400(server, body):
    assert_error(server.client.post("/api/v1/token/refresh", json=body, token=None), 400)


# ---------------------------------------------------------------------------------------------------------------
# Emails are normalised


def test_login_normalises_the_email(server):
    tag = uuid.uuid4().hex[:8]
    messy = f"  Alice.{tag}@Example.COM "
    normal = f"alice.{tag}@example.com"
    request_code(server.client, messy)
    # The per-email limit counts both spellings as one address.
    assert_error(server.client.post("/api/v1/login", json={"email": normal}), 429)
    code = server.code_for(normal)

    body = expect_status(verify(server.client, normal, code), 200)

    assert_auth_response(body, normal)
    assert body["user"]["name"] == f"alice.{tag}"


def test_verify_normalises_the_email(server):
    tag = uuid.uuid4().hex[:8]
    normal = f"bob.{tag}@example.com"
    request_code(server.client, normal)
    code = server.code_for(normal)

    body = expect_status(verify(server.client, f" BOB.{tag}@EXAMPLE.com  ", code), 200)

    assert_auth_response(body, normal)


# ---------------------------------------------------------------------------------------------------------------
# Codes and their limits


def test_a_second_code_within_60_seconds_is_rate_limited(server):
    address = unique_email()
    request_code(server.client, address)

    response = server.client.post("/api/v1/login", json={"email": address})

    assert_error(response, 429)
    assert_retry_after(response, at_most=60)


def test_five_wrong_codes_burn_the_code(server):
    address = unique_email()
    request_code(server.client, address)
    code = server.code_for(address)
    wrong = other_code(code)

    for attempt in range(5):
        assert_error(verify(server.client, address, wrong), {400, 401} if attempt < 4 else {400, 401, 429})

    response = verify(server.client, address, code)
    assert_error(response, 429)
    assert_error(verify(server.client, address, code), 429)


def test_a_new_code_works_after_the_old_one_was_burnt(launcher, backend):
    smtp = launcher.smtp()
    server = launcher.parley(backend=backend, smtp=smtp, env={"PARLEY_OTP_RESEND_SECONDS": "1"})
    address = unique_email()
    request_code(server.client, address, retry_after=1)
    burnt = server.code_for(address)
    for _ in range(5):
        verify(server.client, address, other_code(burnt))
    assert_error(verify(server.client, address, burnt), 429)

    poll(lambda: server.client.post("/api/v1/login", json={"email": address}).status_code == 202, timeout=10,
         what="a new code once the resend interval is over", interval=0.2)
    fresh = server.code_for(address, count=2)

    body = expect_status(verify(server.client, address, fresh), 200)
    assert body["user"]["email"] == address


def test_a_known_account_is_answered_alike_and_signs_in_again(launcher, backend):
    server = launcher.parley(backend=backend, env={"PARLEY_OTP_RESEND_SECONDS": "0"})
    account = sign_in(server)

    known = request_code(server.client, account.email, retry_after=0).json()
    unknown = request_code(server.client, unique_email(), retry_after=0).json()
    body = expect_status(verify(server.client, account.email, server.code_for(account.email, count=2)), 200)

    assert known == unknown
    assert body["user"] == account.user


def test_a_code_is_single_use(server):
    address = unique_email()
    request_code(server.client, address)
    code = server.code_for(address)
    expect_status(verify(server.client, address, code), 200)

    assert_error(verify(server.client, address, code), {400, 401})


def test_a_code_works_for_its_own_email_only(server):
    first, second = unique_email(), unique_email()
    request_code(server.client, first)
    request_code(server.client, second)
    code = server.code_for(first)
    if code == server.code_for(second):
        pytest.skip("both codes happen to be equal")

    assert_error(verify(server.client, second, code), {400, 401})


def test_verify_without_a_requested_code_is_rejected(server):
    assert_error(verify(server.client, unique_email(), "123456"), {400, 401})


@pytest.mark.parametrize("otp", ["12345", "1234567", "abcdef", "12 456", ""], ids=str)
def test_verify_rejects_malformed_codes(server, otp):
    assert_error(verify(server.client, unique_email(), otp), {400, 401})


@pytest.mark.parametrize("body", [
    {"otp": "123456"},
    {"email": "a@example.com"},
    {"email": "a@example.com", "otp": 123456},
    {"email": 5, "otp": "123456"},
    {"email": "a@example.com", "otp": None},
], ids=["no-email", "no-otp", "numeric-otp", "numeric-email", "null-otp"])
def test_verify_rejects_malformed_bodies(server, body):
    assert_error(server.client.post("/api/v1/verify", json=body), 400)


def test_an_expired_code_is_rejected(launcher, backend):
    server = launcher.parley(backend=backend, env={"PARLEY_OTP_TTL_SECONDS": "2"})
    address = unique_email()
    request_code(server.client, address)
    sent_at = time.monotonic()
    code = server.code_for(address)

    time.sleep(max(0.0, sent_at + 3.0 - time.monotonic()))  # the condition is time itself
    response = verify(server.client, address, code)

    assert_error(response, {400, 401})


def test_the_per_ip_limit_answers_429(launcher, backend):
    server = launcher.parley(backend=backend, env={"PARLEY_LOGIN_IP_LIMIT": "3"})
    for _ in range(3):
        request_code(server.client, unique_email())

    response = server.client.post("/api/v1/login", json={"email": unique_email()})

    assert_error(response, 429)
    assert_retry_after(response, at_most=600)


# ---------------------------------------------------------------------------------------------------------------
# Malformed requests


@pytest.mark.parametrize("payload", [
    {"email": "aliceexample.com"},
    {"email": "ali ce@example.com"},
    {"email": "a" * 288 + "@example.com"},
    {"email": ""},
    {"email": "   "},
    {"email": "@example.com"},
    {"email": "alice@"},
    {"email": "alice@@example.com"},
    {"email": 5},
    {"email": None},
    {"email": True},
    {"email": ["alice@example.com"]},
    {"email": {"address": "alice@example.com"}},
    {},
    {"mail": "alice@example.com"},
    [],
    "alice@example.com",
    None,
], ids=["no-at", "space-inside", "300-chars", "empty", "blank", "no-local-part", "no-domain", "two-ats", "number",
        "null", "bool", "list", "object", "missing", "wrong-key", "array-body", "string-body", "null-body"])
def test_login_rejects_malformed_emails(server, payload):
    response = server.client.post("/api/v1/login", data=json.dumps(payload),
                                  headers={"Content-Type": "application/json"})

    assert_error(response, 400)


@pytest.mark.parametrize("raw", [b'{"email": ', b"not json", b"", b'{"email": "a@example.com"} trailing'],
                         ids=["truncated", "not-json", "empty", "trailing"])
def test_login_rejects_invalid_json(server, raw):
    response = server.client.post("/api/v1/login", data=raw, headers={"Content-Type": "application/json"})

    assert_error(response, 400)


def test_login_ignores_unknown_fields(server):
    response = server.client.post("/api/v1/login", json={"email": unique_email(), "remember": True, "x": [1]})

    assert response.status_code == 202, response.text


def test_a_body_over_64_kib_is_413(server):
    response = server.client.post("/api/v1/login", json={"email": "a" * (65 * 1024) + "@example.com"})

    assert_error(response, 413)


def test_a_non_json_media_type_is_415(server):
    response = server.client.post("/api/v1/login", data=f'{{"email":"{unique_email()}"}}',
                                  headers={"Content-Type": "text/plain"})

    assert_error(response, 415)


# ---------------------------------------------------------------------------------------------------------------
# Access tokens the server must refuse


@pytest.fixture(scope="module")
def token_owner(server):
    """One account whose genuine access token the token tests forge variations of."""
    return sign_in(server)


def forged_tokens(genuine: str, key: ed25519.Ed25519PrivateKey) -> dict[str, str]:
    token = JWT.parse(genuine)
    now = int(time.time())
    header = {key: value for key, value in token.header.items() if key != "alg"}
    expired = dict(token.payload, iat=now - 1000, exp=now - 100)
    tampered_payload = encode_segment(dict(token.payload, sub=str(uuid.uuid4())))
    header_none = b64url_encode(b'{"alg":"none","typ":"JWT","kid":"%s"}' % token.header["kid"].encode())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    hs256_input = f"{encode_segment(dict(header, alg='HS256'))}.{encode_segment(token.payload)}".encode()
    mac = hmac.HMAC(public_pem, hashes.SHA256())
    mac.update(hs256_input)
    return {
        "garbage": "garbage",
        "two-segments": genuine.rsplit(".", 1)[0],
        "expired": sign_jwt(header, expired, key),
        "tampered": f"{genuine.split('.')[0]}.{tampered_payload}.{genuine.split('.')[2]}",
        "alg-none": f"{header_none}.{genuine.split('.')[1]}.",
        "other-key": sign_jwt(header, token.payload, ed25519.Ed25519PrivateKey.generate()),
        "hs256-with-public-key": f"{hs256_input.decode()}.{b64url_encode(mac.finalize())}",
    }


@pytest.mark.parametrize("kind", ["garbage", "two-segments", "expired", "tampered", "alg-none", "other-key",
                                  "hs256-with-public-key"])
def test_me_refuses_forged_tokens(server, token_owner, jwt_key, kind):
    forged = forged_tokens(token_owner.access_token, jwt_key)[kind]

    assert_error(server.client.get("/api/v1/me", token=forged), 401)


@pytest.mark.parametrize("authorization", ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc"],
                         ids=["empty", "bearer-only", "bearer-space", "basic", "other-scheme"])
def test_me_refuses_bad_authorization_headers(server, authorization):
    assert_error(server.client.get("/api/v1/me", token=None, headers={"Authorization": authorization}), 401)


def test_me_without_a_token_is_401(server):
    assert_error(server.client.get("/api/v1/me", token=None), 401)


def test_a_token_minted_with_the_configured_key_is_accepted(server, token_owner, jwt_key):
    # The control for the forgeries above: the same claims, signed with the server's own key, pass.
    token = JWT.parse(token_owner.access_token)
    header = {key: value for key, value in token.header.items() if key != "alg"}
    now = int(time.time())
    minted = sign_jwt(header, dict(token.payload, iat=now, exp=now + 300), jwt_key)

    me = expect_status(server.client.get("/api/v1/me", token=minted), 200)

    assert me["id"] == token_owner.user["id"]
