"""Delivery receipts at POST /api/v1/notify/callback, and the audit events that intake and call
outcomes write. The audit chain itself (roles, seal, verify, tampering): test_audit_chain.py
and test_audit_roles.py.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from contact_support import (
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
