"""Two user instances on one database: limits, code attempts, refresh races and one signing key.

[cluster] Needs from the binary: PARLEY_TRUSTED_PROXIES (the per-IP login limit counts X-Forwarded-For from
nginx) and the signing key kept in the database (the JWKS test starts its instances without PARLEY_JWT_PRIVATE_KEY).
"""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from cluster import Cluster, ClusterSpec, fresh_source_address, timing
from harness import (
    JWT,
    assert_error,
    assert_retry_after,
    expect_status,
    log_message,
    unique_email,
    verify_jwt_signature,
)

LOGIN_IP_LIMIT = 6


@pytest.fixture(scope="module")
def user_cluster(tmp_path_factory, parley_binary, postgres, jwt_pem):
    """2 user instances (signing key from configuration), 1 mail instance and nginx on a fresh database, with a
    small per-IP login limit."""
    cluster = Cluster(tmp_path_factory.mktemp("users"), parley_binary, postgres, postgres.create_database(), jwt_pem,
                      ClusterSpec(users=2, chats=0, mails=1), env={"PARLEY_LOGIN_IP_LIMIT": str(LOGIN_IP_LIMIT)})
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


def login_requests_served(instance) -> int:
    return sum(1 for record in instance.log_records()
               if log_message(record) == "request" and "/api/v1/login" in json.dumps(record))


def test_five_wrong_codes_across_instances_burn_the_code(user_cluster):
    """[cluster] Wrong tries counted in the database: alternating instances, the fifth burns the code."""
    cluster = user_cluster
    address = unique_email("burn")
    expect_status(cluster.client().post("/api/v1/login", json={"email": address}), 202)
    code = cluster.smtp.mailbox.wait_for(address, timeout=30).code
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    user1, user2 = cluster.instances["user1"], cluster.instances["user2"]
    for attempt in range(5):
        instance = (user1, user2)[attempt % 2]
        response = instance.client.post("/api/v1/verify", json={"email": address, "otp": wrong})
        assert_error(response, {400, 401} if attempt < 4 else {400, 401, 429})
    for instance in (user1, user2):
        assert_error(instance.client.post("/api/v1/verify", json={"email": address, "otp": code}), 429)


def test_per_ip_login_limit_holds_across_instances_through_nginx(user_cluster):
    """[cluster] One client address, requests spread over both user instances by nginx: the limit is one limit,
    counted on X-Forwarded-For (another address is not affected)."""
    cluster = user_cluster
    before = {name: login_requests_served(cluster.instances[name]) for name in ("user1", "user2")}
    client = cluster.client(source=fresh_source_address())
    for _ in range(LOGIN_IP_LIMIT):
        expect_status(client.post("/api/v1/login", json={"email": unique_email("ip")}), 202)
    refused = client.post("/api/v1/login", json={"email": unique_email("ip")})
    assert_error(refused, 429)
    assert_retry_after(refused)
    # A forged X-Forwarded-For does not buy a fresh budget: nginx replaces the header with the real address.
    forged = client.post("/api/v1/login", json={"email": unique_email("ip")}, headers={"X-Forwarded-For": "203.0.113.9"})
    assert_error(forged, 429)
    served = {name: login_requests_served(cluster.instances[name]) - before[name] for name in ("user1", "user2")}
    assert all(count > 0 for count in served.values()), f"nginx did not spread the requests: {served}"
    other = cluster.client(source=fresh_source_address())
    response = other.post("/api/v1/login", json={"email": unique_email("ip")})
    assert response.status_code == 202, (
        f"another client address got {response.status_code}: the limit counted nginx's address, not "
        f"X-Forwarded-For (PARLEY_TRUSTED_PROXIES, issue 7 part b): {response.text[:200]}")


def test_refreshing_one_token_on_two_instances_at_once(user_cluster):
    """[cluster] The same refresh token at both instances at the same moment: exactly one wins; presenting the
    used token again still revokes the family (the winner's new token stops working)."""
    cluster = user_cluster
    user1, user2 = cluster.instances["user1"], cluster.instances["user2"]
    for round_ in range(4):
        account = cluster.sign_in()
        barrier = threading.Barrier(2)
        results: dict[str, requests.Response] = {}

        def refresh(instance):
            session = requests.Session()
            barrier.wait()
            results[instance.instance] = session.post(instance.base_url + "/api/v1/token/refresh",
                                                      json={"refreshToken": account.refresh_token}, timeout=10)

        threads = [threading.Thread(target=refresh, args=(instance,)) for instance in (user1, user2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        statuses = sorted(response.status_code for response in results.values())
        assert statuses == [200, 401], f"round {round_}: {[(n, r.status_code, r.text[:120]) for n, r in results.items()]}"
        winner = next(response for response in results.values() if response.status_code == 200).json()
        # Reuse detection holds across instances: the old token again revokes the whole family.
        for instance in (user2, user1):
            assert_error(instance.client.post("/api/v1/token/refresh", json={"refreshToken": account.refresh_token}), 401)
        assert_error(user1.client.post("/api/v1/token/refresh", json={"refreshToken": winner["refreshToken"]}), 401)


def test_user_instances_share_one_signing_key_kept_in_the_database(tmp_path_factory, parley_binary, postgres):
    """[cluster] Without PARLEY_JWT_PRIVATE_KEY, two user instances on one database serve the same JWKS, and a
    token from one verifies on the other."""
    cluster = Cluster(tmp_path_factory.mktemp("jwks"), parley_binary, postgres, postgres.create_database(), None,
                      ClusterSpec(users=2, chats=0, mails=1))
    try:
        started = time.monotonic()
        cluster.start()
        user1, user2 = cluster.instances["user1"], cluster.instances["user2"]
        jwks1 = expect_status(user1.client.get("/.well-known/jwks.json"), 200)
        jwks2 = expect_status(user2.client.get("/.well-known/jwks.json"), 200)
        assert jwks1 == jwks2, ("user instances serve different JWKS: each made its own key (the key kept in the "
                                f"database, issue 7 part e, is missing):\n{jwks1}\n{jwks2}")
        through_nginx = expect_status(cluster.client().get("/.well-known/jwks.json"), 200)
        assert through_nginx == jwks1
        account = cluster.sign_in()
        token = JWT.parse(account.access_token)
        key = next(k for k in jwks1["keys"] if k.get("kid") == token.header.get("kid"))
        verify_jwt_signature(token, key)
        for instance in (user1, user2):
            me = expect_status(instance.client.get("/api/v1/me", token=account.access_token), 200)
            assert me["id"] == account.id
        # A restarted instance keeps the key.
        cluster.restart("user2")
        assert expect_status(cluster.instances["user2"].client.get("/.well-known/jwks.json"), 200) == jwks1
        timing("JWKS check with two fresh user instances", time.monotonic() - started)
    finally:
        cluster.close()
