"""Never a half-written referral: a failure at the very end of the intake write (the audit
event, written last) leaves nothing behind, whether the statement fails (500) or the database
connection dies mid-write (503 with Retry-After). Faults are injected in PostgreSQL itself, by
a trigger for one test client only; nothing of our own storage is mocked."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from helpers import NOTHING_WRITTEN, assert_problem, bearer, referral, scalar, written_for_client
from sqlalchemy import text


@asynccontextmanager
async def fault_on_audit(owner_sessions: Any, client_name: str, action: str) -> AsyncIterator[None]:
    """While inside: inserting this client's audit events fails (`raise`) or kills the
    connection (`terminate`). The trigger is the owner's to add: the application's role may
    not put triggers on the audit trail."""
    sessions = owner_sessions
    client_id = await scalar(sessions, "SELECT id FROM api_clients WHERE name = :n", n=client_name)
    suffix = uuid.uuid4().hex[:8]
    body = (
        "RAISE EXCEPTION 'injected failure';"
        if action == "raise"
        else "PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW;"
    )
    async with sessions() as db:
        await db.execute(
            text(
                f"CREATE FUNCTION fault_{suffix}() RETURNS trigger AS $$ BEGIN {body} END; "
                "$$ LANGUAGE plpgsql"
            )
        )
        await db.execute(
            text(
                f"CREATE TRIGGER fault_{suffix} BEFORE INSERT ON audit_events FOR EACH ROW "
                f"WHEN (NEW.actor = 'client:{client_id}') EXECUTE FUNCTION fault_{suffix}()"
            )
        )
        await db.commit()
    try:
        yield
    finally:
        async with sessions() as db:
            await db.execute(text(f"DROP TRIGGER fault_{suffix} ON audit_events"))
            await db.execute(text(f"DROP FUNCTION fault_{suffix}()"))
            await db.commit()


@pytest.mark.parametrize(("action", "status"), [("raise", 500), ("terminate", 503)])
async def test_single_referral_all_or_nothing(
    client: Any, make_key: Any, sessions: Any, owner_sessions: Any, action: str, status: int
) -> None:
    name, key = await make_key("police")
    body = referral()
    async with fault_on_audit(owner_sessions, name, action):
        response = await client.post("/api/v1/referrals", json=body, headers=bearer(key))
        problem = assert_problem(response, status)
        assert "nothing was written" in problem["detail"]
        if status == 503:
            assert int(response.headers["retry-after"]) > 0
        assert "Sam" not in response.text and "900123" not in response.text
    assert await written_for_client(sessions, name) == NOTHING_WRITTEN
    # Safe to retry: the same request now succeeds, once.
    retry = await client.post("/api/v1/referrals", json=body, headers=bearer(key))
    assert retry.status_code == 201, retry.text
    assert (await written_for_client(sessions, name))["referrals"] == 1


@pytest.mark.parametrize(("action", "status"), [("raise", 500), ("terminate", 503)])
async def test_batch_all_or_nothing(
    client: Any, make_key: Any, sessions: Any, owner_sessions: Any, action: str, status: int
) -> None:
    name, key = await make_key("police")
    items = [referral() for _ in range(5)]
    async with fault_on_audit(owner_sessions, name, action):
        response = await client.post(
            "/api/v1/referrals/batch", json={"referrals": items}, headers=bearer(key)
        )
        assert_problem(response, status)
    assert await written_for_client(sessions, name) == NOTHING_WRITTEN
    retry = await client.post(
        "/api/v1/referrals/batch", json={"referrals": items}, headers=bearer(key)
    )
    assert retry.json()["counts"]["created"] == 5, retry.text
