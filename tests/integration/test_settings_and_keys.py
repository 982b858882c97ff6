"""Smaller defects (issue 9, point 12): only three environments, production refusals, the
database's clock for leases, and made-up keys that cost no database query each."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import string
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from helpers import bearer, referral
from notify_stub_support import PYTHON, ROOT

URL = "/api/v1/referrals"
ALPHABET = string.ascii_letters + string.digits


def made_up_key() -> str:
    return "trg_" + "".join(secrets.choice(ALPHABET) for _ in range(8)) + "_" + "x" * 32


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [PYTHON, "-m", "triage.cli", *args],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )


@pytest.mark.parametrize("env", ["prod", "staging", "Production", ""])
def test_only_three_environments(servers: Any, env: str) -> None:
    done = run_cli("db", "upgrade", TRIAGE_ENV=env)
    assert done.returncode == 2
    assert b"TRIAGE_ENV must be one of production, dev, test" in done.stderr


def test_the_web_app_refuses_an_unknown_environment_and_a_short_secret(servers: Any) -> None:
    from triage.app import create_app
    from triage.settings import get_settings

    with pytest.raises(RuntimeError, match="TRIAGE_ENV"):
        create_app(dataclasses.replace(get_settings(), env="prod"))
    with pytest.raises(RuntimeError, match="at least 32 bytes"):
        create_app(dataclasses.replace(get_settings(), env="production", secret_key="x" * 31))
    with pytest.raises(RuntimeError, match="TRIAGE_HUB_PHONE"):
        create_app(dataclasses.replace(get_settings(), env="production", secret_key="x" * 32))
    create_app(
        dataclasses.replace(
            get_settings(), env="production", secret_key="x" * 32, hub_phone="01632 960123"
        )
    )


@pytest.mark.parametrize(
    "args", [("demo", "load", "--referrals", "1"), ("clock", "advance", "1d"), ("clock", "reset")]
)
def test_demo_data_and_the_clock_are_refused_in_production(servers: Any, args: Any) -> None:
    done = run_cli(*args, TRIAGE_ENV="production", TRIAGE_SECRET_KEY="s" * 40)
    assert done.returncode == 1, done.stderr
    assert b"refused in production" in done.stderr


async def test_leases_are_judged_on_the_databases_clock(
    client: Any, police: dict[str, str], sessions: Any, monkeypatch: Any
) -> None:
    """A worker host whose clock runs an hour fast must neither stamp leases by it nor think
    another worker's lease has run out."""
    from sqlalchemy import text

    import triage.services.clock as clock
    from triage.services.messaging import claim_messages
    from triage.services.units import in_session

    created = (await client.post(URL, json=referral(), headers=police)).json()

    class FastHost(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return datetime.now(tz) + timedelta(hours=1)

    monkeypatch.setattr(clock, "datetime", FastHost)
    async with sessions() as db:
        await db.execute(
            text("UPDATE messages SET due_at = now() - interval '1 minute' WHERE referral_id = :r"),
            {"r": created["id"]},
        )
        await db.commit()
    lease = timedelta(seconds=120)
    claimed = {c.id for c in await in_session(sessions, claim_messages, 10_000, lease)}
    async with sessions() as db:
        row = (
            await db.execute(
                text(
                    "SELECT id, claimed_until, clock_timestamp() AS db_now FROM messages "
                    "WHERE referral_id = :r"
                ),
                {"r": created["id"]},
            )
        ).one()
    assert row.id in claimed
    offset = await _clock_offset(sessions)
    assert abs(row.claimed_until - (row.db_now + offset + lease)) < timedelta(seconds=30)
    # Another sweep on the same fast host finds the lease still running.
    assert row.id not in {c.id for c in await in_session(sessions, claim_messages, 10_000, lease)}


async def _clock_offset(sessions: Any) -> timedelta:
    from sqlalchemy import text

    async with sessions() as db:
        seconds = (
            await db.execute(text("SELECT offset_seconds FROM clock_offset WHERE id = 1"))
        ).scalar_one()
    return timedelta(seconds=seconds)


@pytest.fixture
async def fresh_failure_counts(servers: Any) -> AsyncIterator[None]:
    """Failed key checks are counted per address and minute in Redis: start and end clean,
    so no other test's 401 turns into a 429."""
    from redis.asyncio import Redis

    redis = Redis.from_url(servers.redis_url)

    async def clear() -> None:
        async for name in redis.scan_iter("authfail:*"):
            await redis.delete(name)

    await clear()
    try:
        yield
    finally:
        await clear()
        await redis.aclose()


class CountingPool:
    """Counts the connections the app takes from its asyncpg pool (each key query takes one)."""

    def __init__(self, pool: Any) -> None:
        self.pool, self.taken = pool, 0

    def acquire(self, *args: Any, **kwargs: Any) -> Any:
        self.taken += 1
        return self.pool.acquire(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)


async def test_made_up_keys_cost_no_database_query_each(
    client: Any, fresh_failure_counts: None, monkeypatch: Any
) -> None:
    state = client.app.state
    counting = CountingPool(state.pg)
    monkeypatch.setattr(state, "pg", counting)
    started = time.monotonic()
    answers: dict[int, int] = {}
    sent = 1500
    for _ in range(sent):
        response = await client.get(f"{URL}?external_ref=x", headers=bearer(made_up_key()))
        answers[response.status_code] = answers.get(response.status_code, 0) + 1
    seconds = time.monotonic() - started
    assert set(answers) <= {401, 429}, answers
    assert answers.get(429, 0) > 0  # the address went over its limit of failed checks
    # At most four reads of the prefixes a second, and a look-up each for the made-up keys
    # that came before the address went over its limit of failed checks (a minute that ends
    # during the test starts a new count: twice the limit at most).
    limit = state.settings.failed_key_checks_per_minute
    assert counting.taken <= (seconds + 1) * 4 + 2 * (limit + 1), (counting.taken, seconds)


async def test_failed_checks_never_throttle_a_valid_key(
    client: Any, make_key: Any, fresh_failure_counts: None
) -> None:
    """Anyone who knows a force's key prefix may send wrong secrets with it: their address is
    slowed, the force's real key never is."""
    _, key = await make_key("police")
    prefix = key.split("_")[1]
    # A key made within the last quarter second, while this process is already refusing a
    # flood of made-up keys, can be refused until the prefixes are read again: let them be.
    await asyncio.sleep(0.5)
    statuses = []
    for _ in range(120):
        wrong = f"trg_{prefix}_" + "".join(secrets.choice(ALPHABET) for _ in range(32))
        statuses.append(
            (await client.get(f"{URL}?external_ref=x", headers=bearer(wrong))).status_code
        )
    assert statuses[0] == 401 and statuses[-1] == 429
    real = await client.post(URL, json=referral(), headers=bearer(key))
    assert real.status_code == 201, real.text
    again = await client.get(f"{URL}?external_ref=x", headers=bearer(key))
    assert again.status_code == 200, again.text
