"""The login flow against the real binary, on SQLite and PostgreSQL: codes mailed through real SMTP, their limits.

The routes' contract (malformed requests, tokens, refresh and logout, the profile and user routes, forged access
tokens) is tested in-process in Tests/ParleyAppTests (swift test), on SQLite and PostgreSQL too.
"""

from __future__ import annotations

import time
import uuid

import pytest

from harness import (
    JWT,
    assert_auth_response,
    assert_error,
    assert_retry_after,
    assert_user,
    b64url_encode,
    expect_status,
    poll,
    public_raw,
    request_code,
    sign_in,
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
    # Five wrong codes also lock the address out (PARLEY_LOGIN_LOCKOUT_BASE_SECONDS, a minute by default).
    server = launcher.parley(backend=backend, smtp=smtp, env={"PARLEY_OTP_RESEND_SECONDS": "1",
                                                               "PARLEY_LOGIN_LOCKOUT_BASE_SECONDS": "1"})
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
