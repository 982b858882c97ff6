"""Schemathesis against the real app in-process (real PostgreSQL and Redis): every operation of
the OpenAPI document through all its phases (examples, coverage, fuzzing, stateful), with every
check but positive_data_acceptance, finds no failure.

positive_data_acceptance is left out: it expects every body the schema allows to be accepted,
and the rules a schema cannot hold (a date of birth not in the future, a usable contact route,
explicit consent for some offences, a postcode's format) answer 422.

The run is reproducible: a fixed seed, and no example database (.hypothesis) to replay from.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from helpers import bearer, referral

SEED = 20261203
# Per operation, for the fuzzing phase; the examples, coverage and stateful phases add theirs.
MAX_EXAMPLES = 25
FRESH = 40  # referrals for PATCH to change
TOKEN = "notify-token-" + uuid.uuid4().hex
# schemathesis' own list of what may answer a request that breaks the schema, and 413: a batch
# of more items than the schema's maxItems is refused before its items are read, as too large.
NEGATIVE_STATUSES = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
OPERATIONS = {
    "POST /api/v1/referrals",
    "GET /api/v1/referrals",
    "POST /api/v1/referrals/batch",
    "GET /api/v1/referrals/{referral_id}",
    "PATCH /api/v1/referrals/{referral_id}",
    "POST /api/v1/referrals/{referral_id}/withdraw",
    "GET /api/v1/referrals/{referral_id}/decisions",
    "POST /api/v1/appropriate-adult-requests",
    "POST /api/v1/notify/callback",
}


@dataclass
class Run:
    cases: Counter[str] = field(default_factory=Counter)
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    failures: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)


@pytest.fixture
async def unlimited_key(sessions: Any) -> str:
    """A police client's key (referrals:*, aa:write) with rate limits the run cannot reach."""
    from triage.services.api_keys import create_client, create_key, set_limit
    from triage.settings import get_settings

    name = f"schemathesis-{uuid.uuid4().hex[:8]}"
    async with sessions() as db:
        await create_client(db, name, "police")
        await set_limit(db, name, 1_000_000, 1_000_000)
        return await create_key(db, get_settings().secret_key, name)


@pytest.fixture
async def no_failed_key_checks(servers: Any) -> AsyncIterator[None]:
    """The run sends missing and wrong keys on purpose (the auth checks), from the address the
    other tests' client has: their count is cleared before and after, so no other test's 401
    turns into a 429."""
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


def run_schemathesis(key: str, fresh_ids: list[str]) -> Run:
    import schemathesis
    from schemathesis.engine import Status, from_schema
    from schemathesis.engine import events as ev
    from schemathesis.python import asgi

    from triage.app import create_app
    from triage.settings import get_settings

    # Its own app: schemathesis runs it, and its lifespan, on a thread of its own.
    app = create_app(
        dataclasses.replace(
            get_settings(), notify_callback_token=TOKEN, failed_key_checks_per_minute=1_000_000
        )
    )
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            "auth": {"openapi": {"apiKey": {"bearer": key}, "notifyToken": {"bearer": TOKEN}}},
            "checks": {
                "positive_data_acceptance": {"enabled": False},
                "negative_data_rejection": {"expected-statuses": NEGATIVE_STATUSES},
                # The one check that is off unless given a limit: a generous one, for hangs.
                "max_response_time": 10.0,
            },
            # PATCH picks its referral from these: the ids schemathesis finds for itself are
            # soon withdrawn (by the withdraw operation), and then every PATCH is a 409.
            "dictionaries": {"fresh": {"values": fresh_ids}},
            "operations": [
                {
                    "include-operation-id": "update_referral",
                    "parameters": {"path.referral_id": {"dictionary": "fresh"}},
                }
            ],
        }
    )
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app, config=config)
    run = Run()
    try:
        for event in from_schema(schema).execute():
            if isinstance(event, ev.ScenarioFinished):
                label = event.recorder.label
                run.cases[label] += len(event.recorder.cases)
                for interaction in event.recorder.interactions.values():
                    if interaction.response is not None:
                        run.statuses[label][interaction.response.status_code] += 1
                for checks in event.recorder.checks.values():
                    for check in checks:
                        if check.status == Status.FAILURE:
                            info = check.failure_info
                            failure = info.failure if info is not None else None
                            run.failures[label].append(f"{check.name}: {failure!r}")
            elif isinstance(event, ev.NonFatalError | ev.FatalError):
                run.errors.append(repr(event))
    finally:
        asgi.shutdown_lifespans()  # closes the app's pools before the servers stop
    return run


async def test_schemathesis_finds_no_failure(
    client: Any, unlimited_key: str, no_failed_key_checks: None
) -> None:
    batch = {"referrals": [referral() for _ in range(FRESH)]}
    answer = await client.post("/api/v1/referrals/batch", json=batch, headers=bearer(unlimited_key))
    fresh_ids = [item["id"] for item in answer.json()["items"]]
    assert len(fresh_ids) == FRESH and all(fresh_ids), answer.text

    run = await asyncio.to_thread(run_schemathesis, unlimited_key, fresh_ids)

    print(f"\nschemathesis: {sum(run.cases.values())} cases")
    for label in sorted(run.cases):
        print(f"  {label}: {run.cases[label]} cases, statuses {dict(run.statuses[label])}")
    assert not run.errors
    assert dict(run.failures) == {}
    assert OPERATIONS <= set(run.cases)
    # Each operation was answered with success as well as refusals, so its answers' schemas
    # were checked too.
    for label in OPERATIONS:
        assert any(200 <= status < 300 for status in run.statuses[label]), label
