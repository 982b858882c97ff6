"""Delivery receipts at POST /api/v1/notify/callback, and the audit trail: append-only events,
the minute digests (`seal`), their check (`verify`, `triage audit verify`) and tampering found.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from contact_support import (
    ROOT,
    london,
    messages_of,
    move_clock_to,
    one,
    plain,
    quiet_monday,
    record,
    reset_clock,
    service_time,
    steps_of,
    submit,
)
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

TOKEN = "receipt-token-" + uuid.uuid4().hex
CALLBACK = "/api/v1/notify/callback"
LEASE = timedelta(seconds=120)


@pytest.fixture(autouse=True)
async def clock(sessions: Any) -> AsyncIterator[None]:
    await reset_clock(sessions)
    yield
    await reset_clock(sessions)


@pytest.fixture(scope="module")
async def provider(servers: Any) -> AsyncIterator[AsyncTestClient[Any]]:
    """The app with a callback token set, as the provider would call it."""
    from triage.app import create_app
    from triage.settings import get_settings

    settings = dataclasses.replace(get_settings(), notify_callback_token=TOKEN)
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def message(sessions: Any, message_id: Any) -> Any:
    return await one(sessions, "SELECT * FROM messages WHERE id = :i", i=message_id)


async def sent_introduction(
    client: Any, police: dict[str, str], sessions: Any, **changes: Any
) -> tuple[dict[str, Any], Any]:
    """A referral made at a safe moment whose introduction was sent (`accepted`)."""
    from triage.services.catalogues import current_catalogue
    from triage.services.messaging import claim_messages, deliver
    from triage.services.notifier import OutboxNotifier
    from triage.services.units import in_session

    await move_clock_to(sessions, london(quiet_monday(await service_time(sessions)), 10))
    created = await submit(client, police, plain(**changes))
    [intro] = await messages_of(sessions, created["id"])
    for claimed in await in_session(sessions, claim_messages, 10_000, LEASE):
        await deliver(sessions, OutboxNotifier(sessions), current_catalogue(), claimed)
    assert (await message(sessions, intro.id)).status == "accepted"
    return created, intro.id


async def receipt(provider: Any, reference: Any, status: str, **extra: Any) -> Any:
    body = {"id": str(uuid.uuid4()), "reference": str(reference), "status": status, **extra}
    return await provider.post(CALLBACK, json=body, headers=auth())


# Delivery receipts --------------------------------------------------------------------------


async def test_a_receipt_needs_the_token(provider: Any, client: Any) -> None:
    body = {"reference": str(uuid.uuid4()), "status": "delivered"}
    assert (await provider.post(CALLBACK, json=body)).status_code == 401
    assert (await provider.post(CALLBACK, json=body, headers=auth("wrong"))).status_code == 401
    assert (await provider.post(CALLBACK, json=body, headers=auth(""))).status_code == 401
    basic = {"Authorization": f"Basic {TOKEN}"}
    assert (await provider.post(CALLBACK, json=body, headers=basic)).status_code == 401
    # No token configured: every receipt is refused.
    assert (await client.post(CALLBACK, json=body, headers=auth())).status_code == 401
    assert (await provider.post(CALLBACK, json=body, headers=auth())).status_code == 200


async def test_an_unknown_reference_is_answered_200(provider: Any, sessions: Any) -> None:
    before = await one(sessions, "SELECT count(*) AS n, max(updated_at) AS at FROM messages")
    answer = await receipt(provider, uuid.uuid4(), "delivered")
    assert answer.status_code == 200 and answer.json() == {"result": "unknown"}
    answer = await receipt(provider, "not-a-reference", "delivered")
    assert answer.status_code == 200
    after = await one(sessions, "SELECT count(*) AS n, max(updated_at) AS at FROM messages")
    assert tuple(after) == tuple(before)


async def test_delivered_and_idempotent(
    provider: Any, client: Any, police: dict[str, str], sessions: Any
) -> None:
    created, intro = await sent_introduction(client, police, sessions)
    for _ in range(2):
        answer = await receipt(provider, intro, "delivered")
        assert answer.status_code == 200
    row = await message(sessions, intro)
    assert (row.status, row.provider_status) == ("delivered", "delivered")
    assert row.final_at is not None and row.sent_at is not None
    assert len(await messages_of(sessions, created["id"])) == 1
    # A later duplicate changes nothing: the status only moves forward.
    await receipt(provider, intro, "delivered")
    assert (await message(sessions, intro)).final_at == row.final_at


async def test_permanent_failure_tries_the_next_channel(
    provider: Any, client: Any, police: dict[str, str], sessions: Any
) -> None:
    created, intro = await sent_introduction(client, police, sessions)  # phone, sms, email
    for _ in range(2):  # the same receipt twice: one new message only
        assert (await receipt(provider, intro, "permanent-failure")).status_code == 200
    row = await message(sessions, intro)
    assert (row.status, row.provider_status) == ("failed", "permanent-failure")
    messages = await messages_of(sessions, created["id"])
    [fresh] = [m for m in messages if m.id != intro]
    assert (fresh.channel, fresh.template, fresh.status) == ("email", "introduction", "queued")
    assert fresh.contact_step_id == row.contact_step_id
    assert fresh.due_at <= await service_time(sessions)


async def test_temporary_failure_sends_a_new_row_later(
    provider: Any, client: Any, police: dict[str, str], sessions: Any
) -> None:
    created, intro = await sent_introduction(client, police, sessions)
    for _ in range(2):
        assert (await receipt(provider, intro, "temporary-failure")).status_code == 200
    row = await message(sessions, intro)
    assert (row.status, row.provider_status) == ("failed", "temporary-failure")
    [resend] = [m for m in await messages_of(sessions, created["id"]) if m.id != intro]
    assert (resend.channel, resend.template, resend.status) == ("sms", "introduction", "queued")
    assert resend.due_at > await service_time(sessions)  # later, with backoff
    assert resend.tries == row.tries + 1


async def test_provider_status_is_kept_verbatim(
    provider: Any, client: Any, police: dict[str, str], sessions: Any
) -> None:
    created, intro = await sent_introduction(client, police, sessions)
    assert (await receipt(provider, intro, "technical-failure")).status_code == 200
    assert (await message(sessions, intro)).provider_status == "technical-failure"
    # Its resend: a receipt that beats our own commit (the row still `sending`) means the
    # provider has it.
    [resend] = [m for m in await messages_of(sessions, created["id"]) if m.id != intro]
    async with sessions() as db:
        await db.execute(
            text(
                "UPDATE messages SET status = 'sending', attempts = 1, claimed_until = :t "
                "WHERE id = :i"
            ),
            {"t": await service_time(sessions) + LEASE, "i": resend.id},
        )
        await db.commit()
    assert (await receipt(provider, resend.id, "delivered")).status_code == 200
    row = await message(sessions, resend.id)
    assert (row.status, row.provider_status) == ("delivered", "delivered")
    assert row.sent_at is not None and row.final_at is not None


async def test_a_letter_ends_at_received(
    provider: Any, client: Any, police: dict[str, str], sessions: Any
) -> None:
    created, _ = await sent_introduction(client, police, sessions)
    letter = uuid.uuid4()
    [step] = await steps_of(sessions, created["id"])
    async with sessions() as db:
        await db.execute(
            text("""INSERT INTO messages (id, referral_id, contact_step_id, purpose, channel,
                        template, status, due_at, sent_at, provider_status)
                    VALUES (:id, :r, :s, 'contact', 'letter', 'closing_letter', 'accepted',
                            now(), now(), 'accepted')"""),
            {"id": letter, "r": created["id"], "s": step.id},
        )
        await db.commit()
    assert (await receipt(provider, letter, "received")).status_code == 200
    row = await message(sessions, letter)
    assert (row.status, row.provider_status) == ("delivered", "received")


# The audit trail ----------------------------------------------------------------------------


async def test_intake_and_outcomes_write_audit_events(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    from triage.services.catalogues import current_catalogue
    from triage.services.sweeper import sweep_steps

    created, _ = await sent_introduction(client, police, sessions)
    await sweep_steps(sessions, current_catalogue(), LEASE)
    [step] = await steps_of(sessions, created["id"])
    assert step.status == "due"
    await record(sessions, step.id, "no_answer", actor="staff:jo")

    events = await one(
        sessions,
        "SELECT array_agg(actor || ' ' || action || ' ' || record_type || ' ' || record_id "
        "ORDER BY id) AS lines FROM audit_events WHERE record_id IN (:r, :s)",
        r=created["id"],
        s=str(step.id),
    )
    lines = events.lines
    assert re.fullmatch(rf"client:\S+ referral\.created referral {created['id']}", lines[0])
    assert lines[1] == f"staff:jo call.no_answer contact_step {step.id}"
    assert not any(word in " ".join(lines) for word in ("Sam", "Taylor", "07700", "burglary"))


async def test_audit_events_refuse_update_and_delete(sessions: Any) -> None:
    event = await one(sessions, "SELECT id FROM audit_events ORDER BY id LIMIT 1")
    for sql in (
        "UPDATE audit_events SET actor = 'someone else' WHERE id = :i",
        "DELETE FROM audit_events WHERE id = :i",
        "TRUNCATE audit_events",
    ):
        async with sessions() as db:
            with pytest.raises(DBAPIError, match="append-only"):
                await db.execute(text(sql), {"i": event.id})
            await db.rollback()
    assert await one(sessions, "SELECT id FROM audit_events WHERE id = :i", i=event.id)


async def database_now(sessions: Any) -> datetime:
    return (await one(sessions, "SELECT now() AS now")).now  # type: ignore[no-any-return]


async def insert_event(sessions: Any, at: datetime, action: str = "test.viewed") -> int:
    """An event with an explicit time (the trigger refuses changes, not inserts)."""
    async with sessions() as db:
        row = await db.execute(
            text("""INSERT INTO audit_events (at, actor, action, record_type, record_id)
                    VALUES (:at, 'staff:test', :action, 'referral', :rid) RETURNING id"""),
            {"at": at, "action": action, "rid": str(uuid.uuid4())},
        )
        event_id = int(row.scalar_one())
        await db.commit()
    return event_id


@asynccontextmanager
async def trigger_off(sessions: Any) -> AsyncIterator[Any]:
    """As the superuser: the append-only trigger disabled inside, enabled again after."""
    superuser = await one(sessions, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    if not superuser.rolsuper:
        pytest.skip("needs a superuser to disable the trigger")
    async with sessions() as db:
        await db.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"))
        try:
            yield db
        finally:
            await db.execute(
                text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")
            )
            await db.commit()


async def seal_now(sessions: Any) -> int:
    from triage.services.audit import seal
    from triage.services.clock import service_now

    async with sessions() as db:
        return await seal(db, await service_now(db))


async def verify_now(sessions: Any) -> Any:
    from triage.services.audit import verify

    async with sessions() as db:
        return await verify(db)


async def chain_counts(sessions: Any) -> tuple[int, int]:
    row = await one(
        sessions,
        "SELECT count(*) AS digests, coalesce(sum(events), 0) AS events, max(minute) AS last "
        "FROM audit_digests",
    )
    stored = await one(
        sessions,
        "SELECT count(*) AS n FROM audit_events WHERE at < :end",
        end=(row.last or datetime(1970, 1, 1, tzinfo=UTC)) + timedelta(minutes=1),
    )
    assert stored.n == row.events  # every event up to the last sealed minute is in a digest
    return int(row.digests), int(row.events)


def minute_of(instant: datetime) -> datetime:
    return instant.replace(second=0, microsecond=0)


async def audit_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "triage.cli", "audit", *args],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )


@dataclasses.dataclass(frozen=True)
class Sealed:
    first: datetime  # a minute with two events
    second: datetime  # two minutes later, one event (`edited`); none in the minute between
    edited: int
    sealed: int  # minutes the seal wrote


@pytest.fixture(scope="module")
async def sealed(sessions: Any) -> Sealed:
    """Events in two past minutes not sealed yet, then one seal."""
    now = await database_now(sessions)
    last = await one(sessions, "SELECT max(minute) AS m FROM audit_digests")
    first = minute_of(now) - timedelta(minutes=20)
    if last.m is not None and last.m >= first:
        first = last.m + timedelta(minutes=1)
    assert first <= minute_of(now) - timedelta(minutes=4), "no unsealed minute left to use"
    second = first + timedelta(minutes=2)
    for at in (first + timedelta(seconds=5), first + timedelta(seconds=50)):
        await insert_event(sessions, at)
    edited = await insert_event(sessions, second + timedelta(seconds=1))
    return Sealed(first, second, edited, await seal_now(sessions))


async def test_seal_then_verify(sessions: Any, sealed: Sealed) -> None:
    assert sealed.sealed >= 2
    assert await seal_now(sessions) == 0  # nothing new to seal
    first, second = [
        await one(sessions, "SELECT * FROM audit_digests WHERE minute = :m", m=m)
        for m in (sealed.first, sealed.second)
    ]
    assert first.events == 2 and second.events == 1
    assert second.previous == first.digest  # a chain
    between = sealed.first + timedelta(minutes=1)
    assert await one(sessions, "SELECT 1 FROM audit_digests WHERE minute = :m", m=between) is None

    result = await verify_now(sessions)
    assert result.ok and result.first_bad_minute is None
    assert (result.digests, result.events) == await chain_counts(sessions)
    assert result.digests >= 2 and result.events >= 3

    answer = await audit_cli("verify")
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip() == f"ok: {result.digests} digests, {result.events} events"


async def test_sealing_follows_the_database_clock_not_the_moved_service_clock(
    sessions: Any,
) -> None:
    """Events are stamped by the database; with the service clock moved days ahead (dev and
    tests), a seal must not close the minute that is still receiving events."""
    await move_clock_to(sessions, await service_time(sessions) + timedelta(days=3))
    await insert_event(sessions, await database_now(sessions))
    await seal_now(sessions)
    last = await one(sessions, "SELECT max(minute) AS m FROM audit_digests")
    assert last.m < minute_of(await database_now(sessions)) - timedelta(minutes=1)
    await insert_event(sessions, await database_now(sessions))  # the same minute, later
    assert (await verify_now(sessions)).ok


async def test_an_event_added_to_a_sealed_minute_is_found(sessions: Any, sealed: Sealed) -> None:
    added = await insert_event(sessions, sealed.first + timedelta(seconds=30), "test.forged")
    try:
        result = await verify_now(sessions)
        assert not result.ok and result.first_bad_minute == sealed.first
        answer = await audit_cli("verify")
        assert answer.returncode == 1
        assert sealed.first.strftime("%Y-%m-%d %H:%M") in answer.stderr
    finally:
        async with trigger_off(sessions) as db:
            await db.execute(text("DELETE FROM audit_events WHERE id = :i"), {"i": added})
    assert (await verify_now(sessions)).ok

    # In the sealed stretch, in a minute that had no events (so no digest): found as well.
    gap = sealed.first + timedelta(minutes=1)
    added = await insert_event(sessions, gap + timedelta(seconds=10), "test.forged")
    try:
        result = await verify_now(sessions)
        assert not result.ok and result.first_bad_minute == gap
    finally:
        async with trigger_off(sessions) as db:
            await db.execute(text("DELETE FROM audit_events WHERE id = :i"), {"i": added})
    assert (await verify_now(sessions)).ok


async def test_an_event_edited_behind_the_trigger_is_found(sessions: Any, sealed: Sealed) -> None:
    async with trigger_off(sessions) as db:
        await db.execute(
            text("UPDATE audit_events SET action = 'test.edited' WHERE id = :i"),
            {"i": sealed.edited},
        )
    try:
        result = await verify_now(sessions)
        assert not result.ok and result.first_bad_minute == sealed.second
        assert result.digests >= 1  # the minutes before it still matched
    finally:
        async with trigger_off(sessions) as db:
            await db.execute(
                text("UPDATE audit_events SET action = 'test.viewed' WHERE id = :i"),
                {"i": sealed.edited},
            )
    assert (await verify_now(sessions)).ok
