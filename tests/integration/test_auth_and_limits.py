"""Keys, scopes and the per-client rate limit held in Redis (api.md "Clients, keys, scopes,
limits"); a database outage answers 503 with Retry-After."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from typing import Any

import pytest
from helpers import assert_problem, bearer, referral, referral_count
from litestar.testing import AsyncTestClient

URL = "/api/v1/referrals"
ROUTES = [
    ("post", URL),
    ("post", URL + "/batch"),
    ("get", URL + "?external_ref=x"),
    ("post", "/api/v1/appropriate-adult-requests"),
]


async def call(client: Any, method: str, url: str, headers: dict[str, str]) -> Any:
    if method == "post":
        return await client.post(url, json={"referrals": []}, headers=headers)
    return await client.get(url, headers=headers)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-key",
        "Bearer trg_abcdefgh_" + "x" * 32,  # well formed, unknown prefix
        "Token trg_abcdefgh_" + "x" * 32,
    ],
)
async def test_missing_or_bad_key_is_401(
    client: Any, authorization: str | None, sessions: Any
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, url in ROUTES:
        response = await call(client, method, url, headers)
        body = assert_problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
        assert body["type"].endswith("/unauthorised")


async def test_get_by_id_without_key_is_401(client: Any) -> None:
    for headers in ({}, {"Authorization": "Bearer trg_abcdefgh_" + "x" * 32}):
        response = await client.get(f"{URL}/{uuid.uuid4()}", headers=headers)
        assert_problem(response, 401)


async def test_right_prefix_wrong_secret_is_401(client: Any, make_key: Any) -> None:
    _name, key = await make_key("police")
    prefix = key.split("_")[1]
    forged = f"trg_{prefix}_" + "A" * 32
    response = await client.post(URL, json=referral(), headers=bearer(forged))
    assert_problem(response, 401)
    assert key not in response.text


async def test_revoked_and_rotated_keys(client: Any, make_key: Any, sessions: Any) -> None:
    from triage.services.api_keys import revoke_key, rotate_key
    from triage.settings import get_settings

    name, old = await make_key("police")
    async with sessions() as db:
        new = await rotate_key(db, get_settings().secret_key, name)
    # Both work until the old one is revoked.
    for key in (old, new):
        response = await client.post(URL, json=referral(), headers=bearer(key))
        assert response.status_code == 201, response.text
    async with sessions() as db:
        assert await revoke_key(db, old.split("_")[1])
    # A web process trusts a key it has checked for key_cache_seconds (1 s by default).
    await asyncio.sleep(get_settings().key_cache_seconds + 0.1)
    assert_problem(await client.post(URL, json=referral(), headers=bearer(old)), 401)
    response = await client.post(URL, json=referral(), headers=bearer(new))
    assert response.status_code == 201
    assert await referral_count(sessions, name) == 3


async def test_missing_scope_is_403(client: Any, make_key: Any, sessions: Any) -> None:
    name, key = await make_key(scopes=("referrals:read",))
    for url in (URL, URL + "/batch"):
        response = await client.post(url, json=referral(), headers=bearer(key))
        body = assert_problem(response, 403)
        assert "referrals:write" in body["detail"]
    assert await referral_count(sessions, name) == 0
    # The scope it has works.
    response = await client.get(URL, params={"external_ref": "x"}, headers=bearer(key))
    assert response.status_code == 200

    _, writer = await make_key(scopes=("referrals:write",))
    response = await client.get(URL, params={"external_ref": "x"}, headers=bearer(writer))
    assert "referrals:read" in assert_problem(response, 403)["detail"]

    # A professional's key has no aa:write by default.
    _, professional = await make_key("professional")
    response = await client.post(
        "/api/v1/appropriate-adult-requests", json={}, headers=bearer(professional)
    )
    assert "aa:write" in assert_problem(response, 403)["detail"]


async def _clear_of_minute_edge() -> None:
    """The limit counts fixed one-minute windows: keep a test's requests inside one."""
    left = 60 - time.time() % 60
    if left < 3:
        await asyncio.sleep(left + 0.1)


async def test_over_the_limit_is_429_with_retry_after(
    client: Any, make_key: Any, sessions: Any
) -> None:
    name, key = await make_key(per_minute=3)
    await _clear_of_minute_edge()
    for _ in range(3):
        response = await client.post(URL, json=referral(), headers=bearer(key))
        assert response.status_code == 201, response.text
    over = await client.post(URL, json=referral(), headers=bearer(key))
    body = assert_problem(over, 429)
    assert 1 <= int(over.headers["retry-after"]) <= 60
    assert body["title"] == "Too many requests"
    # Refused before anything was read or written; reads count too.
    assert await referral_count(sessions, name) == 3
    read = await client.get(URL, params={"external_ref": "x"}, headers=bearer(key))
    assert_problem(read, 429)
    # Another client is not affected.
    _, other = await make_key(per_minute=3)
    response = await client.post(URL, json=referral(), headers=bearer(other))
    assert response.status_code == 201


async def test_batches_have_their_own_limit(client: Any, make_key: Any, sessions: Any) -> None:
    from triage.services.api_keys import set_limit

    name, key = await make_key()
    async with sessions() as db:
        await set_limit(db, name, None, 2)
    await _clear_of_minute_edge()
    for _ in range(2):
        response = await client.post(
            URL + "/batch", json={"referrals": [referral()]}, headers=bearer(key)
        )
        assert response.status_code == 200, response.text
    over = await client.post(URL + "/batch", json={"referrals": [referral()]}, headers=bearer(key))
    assert "batches" in assert_problem(over, 429)["detail"]
    assert over.headers["retry-after"].isdigit()
    # Single requests still go through.
    response = await client.post(URL, json=referral(), headers=bearer(key))
    assert response.status_code == 201
    assert await referral_count(sessions, name) == 3


async def test_limit_is_shared_across_app_instances(
    client: Any, make_key: Any, sessions: Any
) -> None:
    """Two app instances (as two web processes would be) share one count, kept in Redis."""
    from redis.asyncio import Redis

    from triage.app import create_app
    from triage.settings import get_settings

    name, key = await make_key(per_minute=4)
    client_id = await _client_id(sessions, name)
    await _clear_of_minute_edge()
    window = int(time.time() // 60)
    async with AsyncTestClient(app=create_app(get_settings())) as second:
        assert (await client.post(URL, json=referral(), headers=bearer(key))).status_code == 201
        assert (await second.post(URL, json=referral(), headers=bearer(key))).status_code == 201
        assert (await client.post(URL, json=referral(), headers=bearer(key))).status_code == 201
        assert (await second.post(URL, json=referral(), headers=bearer(key))).status_code == 201
        assert_problem(await second.post(URL, json=referral(), headers=bearer(key)), 429)
        assert_problem(await client.post(URL, json=referral(), headers=bearer(key)), 429)
    redis = Redis.from_url(get_settings().redis_url)
    try:
        count = await redis.get(f"ratelimit:{client_id}:req:{window}")
        ttl = await redis.ttl(f"ratelimit:{client_id}:req:{window}")
    finally:
        await redis.aclose()
    # The counter holds every lease taken from it: at least the four let through (a process
    # that has seen the limit reached refuses without asking again).
    assert int(count) >= 4
    assert 0 < ttl <= 120
    assert await referral_count(sessions, name) == 4


async def _client_id(sessions: Any, name: str) -> uuid.UUID:
    from helpers import scalar

    value = await scalar(sessions, "SELECT id FROM api_clients WHERE name = :n", n=name)
    assert isinstance(value, uuid.UUID)
    return value


async def test_database_outage_is_503(servers: Any, make_key: Any) -> None:
    from db.engine import plain_url
    from triage.app import create_app
    from triage.devstack import with_database
    from triage.settings import get_settings

    _, key = await make_key("police")
    missing = with_database(plain_url(servers.database_url), f"gone_{uuid.uuid4().hex[:8]}")
    settings = dataclasses.replace(get_settings(), database_url=missing)
    async with AsyncTestClient(app=create_app(settings)) as down:
        for method, url in [("post", URL), ("post", URL + "/batch"), ("get", URL + "?cursor=x")]:
            if method == "post":
                response = await down.post(url, json=referral(), headers=bearer(key))
            else:
                response = await down.get(url, headers=bearer(key))
            body = assert_problem(response, 503)
            assert int(response.headers["retry-after"]) > 0
            assert body["title"] == "Service unavailable"
        ready = await down.get("/readyz")
        assert_problem(ready, 503)
        assert "retry-after" in ready.headers
        assert (await down.get("/healthz")).status_code == 200


async def test_redis_outage_is_503(make_key: Any, sessions: Any) -> None:
    import socket

    from triage.app import create_app
    from triage.settings import get_settings

    name, key = await make_key("police")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = dataclasses.replace(get_settings(), redis_url=f"redis://127.0.0.1:{port}/0")
    async with AsyncTestClient(app=create_app(settings)) as down:
        response = await down.post(URL, json=referral(), headers=bearer(key))
        assert_problem(response, 503)
        assert int(response.headers["retry-after"]) > 0
        assert_problem(await down.get("/readyz"), 503)
    assert await referral_count(sessions, name) == 0
