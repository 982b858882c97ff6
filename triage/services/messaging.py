"""Sending messages (SMS, email, letter) so that none is ever sent twice.

The row is the outbox. A sweep claims due rows (`queued`, or `sending` whose lease expired)
with FOR UPDATE SKIP LOCKED and marks them `sending` with a lease, committed before any call
to the provider. The provider is called outside any transaction; the result is written under
the row lock, only if the row is still `sending`. A row claimed again after a lease ran out
(the worker died, the provider timed out) is first looked up at the provider by its reference:
found in any state means sent.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import models
from triage.domain.catalogue import Catalogue
from triage.domain.messages import UnsafeMessage, render_message
from triage.domain.planning import contact_rules
from triage.domain.safety import may_contact
from triage.domain.validation import usable_channels
from triage.services.clock import service_now
from triage.services.contact_plan import load_referral
from triage.services.notifier import (
    Notifier,
    Outgoing,
    PermanentFailure,
    ProviderUnsure,
    TemporaryFailure,
)

MAX_ATTEMPTS = 6  # sends of one row (temporary failures and unsure answers)
MAX_TRIES = 3  # rows in a resend chain after failure receipts
UNSURE_LEASE = timedelta(seconds=30)  # how soon an unsure send is looked up again


def backoff(attempt: int) -> timedelta:
    """Exponential, capped: 30 s, 1 min, 2 min, 4 min, ... up to an hour (jitter is added
    by the spread of sweeps)."""
    return timedelta(seconds=min(30 * 2 ** max(attempt - 1, 0), 3600))


@dataclass(frozen=True)
class Claimed:
    id: uuid.UUID
    attempts: int  # including this one: over 1 means an earlier attempt may have reached it


CLAIM = text("""
    UPDATE messages m
    SET status = 'sending', claimed_until = :lease_end, attempts = m.attempts + 1,
        updated_at = :now
    FROM (
        SELECT id FROM messages
        WHERE (status = 'queued' AND due_at <= :now)
           OR (status = 'sending' AND claimed_until < :now)
        ORDER BY due_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    ) due
    WHERE m.id = due.id
    RETURNING m.id, m.attempts
""")


async def claim_messages(
    sessions: async_sessionmaker[AsyncSession], limit: int, lease: timedelta
) -> list[Claimed]:
    async with sessions() as db:
        now = await service_now(db)
        rows = await db.execute(CLAIM, {"now": now, "lease_end": now + lease, "limit": limit})
        claimed = [Claimed(r.id, r.attempts) for r in rows]
        await db.commit()
    return claimed


CLAIM_ONE = text("""
    UPDATE messages SET status = 'sending', claimed_until = :lease_end,
        attempts = attempts + 1, updated_at = :now
    WHERE id = :id AND ((status = 'queued' AND due_at <= :now)
                        OR (status = 'sending' AND claimed_until < :now))
    RETURNING id, attempts
""")


async def claim_message(
    sessions: async_sessionmaker[AsyncSession], message_id: uuid.UUID, lease: timedelta
) -> Claimed | None:
    """Claim one message by id (the naive one-task-per-message design, and wake-ups)."""
    async with sessions() as db:
        now = await service_now(db)
        row = (
            await db.execute(CLAIM_ONE, {"id": message_id, "now": now, "lease_end": now + lease})
        ).first()
        await db.commit()
    return Claimed(row.id, row.attempts) if row else None


async def deliver(
    sessions: async_sessionmaker[AsyncSession],
    notifier: Notifier,
    catalogue: Catalogue,
    claimed: Claimed,
) -> str:
    """Send one claimed message; returns what became of it."""
    prepared = await _prepare(sessions, catalogue, claimed)
    if isinstance(prepared, str):
        return prepared
    outgoing, not_before = prepared
    if claimed.attempts > 1:
        try:
            found = await notifier.lookup(claimed.id)
        except ProviderUnsure:
            return await _finish(sessions, claimed.id, "unsure", None)
        if found is not None:
            return await _finish(sessions, claimed.id, "accepted", found)
    if not_before is not None:
        return await _requeue(sessions, claimed.id, not_before)
    try:
        provider_status = await notifier.send(outgoing)
    except PermanentFailure as error:
        return await _finish(sessions, claimed.id, "permanent", None, str(error))
    except TemporaryFailure as error:
        return await _finish(sessions, claimed.id, "temporary", None, str(error))
    except ProviderUnsure:
        return await _finish(sessions, claimed.id, "unsure", None)
    return await _finish(sessions, claimed.id, "accepted", provider_status)


async def _prepare(
    sessions: async_sessionmaker[AsyncSession], catalogue: Catalogue, claimed: Claimed
) -> tuple[Outgoing, datetime | None] | str:
    """Check the safe contact rules and render, under the row lock; commit before sending."""
    async with sessions() as db:
        now = await service_now(db)
        message = (
            await db.execute(
                select(models.Message).where(models.Message.id == claimed.id).with_for_update()
            )
        ).scalar()
        if message is None or message.status != "sending":
            return "not_claimed"
        referral = (
            await db.execute(
                select(models.Referral).where(models.Referral.id == message.referral_id)
            )
        ).scalar_one()
        step_kind = None
        if message.contact_step_id is not None:
            step_kind = (
                await db.execute(
                    select(models.ContactStep.kind).where(
                        models.ContactStep.id == message.contact_step_id
                    )
                )
            ).scalar()
        facts = load_referral(referral.facts)
        rules = contact_rules(facts, usable_channels(facts), catalogue)
        wrong_number = (
            await db.execute(
                select(models.ContactStep.id)
                .where(
                    models.ContactStep.referral_id == referral.id,
                    models.ContactStep.outcome == "wrong_number",
                )
                .limit(1)
            )
        ).first() is not None
        verdict = may_contact(
            referral_status=referral.status,
            paused=referral.contact_paused,
            to_contact=facts.consent.to_contact,
            rules=rules,
            channel=message.channel,
            wrong_number=wrong_number,
            now=now,
            closing=step_kind == "close",
        )
        if not verdict.allowed:
            message.status, message.final_at = "cancelled", now
            message.failure_reason = verdict.reason
            message.claimed_until = None
            await db.commit()
            return "cancelled"
        if verdict.not_before is not None and claimed.attempts == 1:
            # Not safe now: back to the queue for the next safe moment, never early. (A row
            # that may already be at the provider is looked up first, whatever the time.)
            message.status, message.due_at = "queued", verdict.not_before
            message.attempts -= 1
            message.claimed_until = None
            await db.commit()
            return "moved"
        try:
            rendered = render_message(
                catalogue.contact, message.template, message.channel, facts.victim.first_name
            )
        except (UnsafeMessage, KeyError) as error:
            message.status, message.final_at = "failed", now
            message.failure_reason = f"not sent: {type(error).__name__}"
            await db.commit()
            return "failed"
        recipient = _recipient(facts, message.channel)
        message.recipient = recipient
        message.body = rendered.body
        await db.commit()
    outgoing = Outgoing(
        claimed.id, message.channel, message.template, recipient, rendered.subject, rendered.body
    )
    return outgoing, verdict.not_before


async def _requeue(
    sessions: async_sessionmaker[AsyncSession], message_id: uuid.UUID, not_before: datetime
) -> str:
    async with sessions() as db:
        message = (
            await db.execute(
                select(models.Message).where(models.Message.id == message_id).with_for_update()
            )
        ).scalar_one()
        if message.status == "sending":
            message.status, message.due_at, message.claimed_until = "queued", not_before, None
            await db.commit()
    return "moved"


def _recipient(facts: object, channel: str) -> str:
    victim = getattr(facts, "victim")  # noqa: B009 - a Referral, typed loosely for the helper
    if channel == "sms":
        return str(victim.phone)
    if channel == "email":
        return str(victim.email)
    address = victim.address
    name = " ".join(filter(None, [victim.first_name, victim.last_name]))
    lines = [name, address.line1, address.line2, address.town, address.county, address.postcode]
    return "\n".join(line for line in lines if line)


async def _finish(
    sessions: async_sessionmaker[AsyncSession],
    message_id: uuid.UUID,
    result: str,
    provider_status: str | None,
    reason: str | None = None,
) -> str:
    async with sessions() as db:
        now = await service_now(db)
        message = (
            await db.execute(
                select(models.Message).where(models.Message.id == message_id).with_for_update()
            )
        ).scalar_one()
        if message.status != "sending":
            return "already_done"  # a receipt or another worker got there first
        message.updated_at = now
        if result == "accepted":
            message.status, message.provider_status = "accepted", provider_status
            message.sent_at, message.claimed_until = now, None
        elif result == "unsure":
            # Leave it `sending`: the next claim after this short lease looks it up first.
            message.claimed_until = now + UNSURE_LEASE
            if message.attempts >= MAX_ATTEMPTS:
                message.status, message.final_at = "failed", now
                message.failure_reason = "no answer from the provider after retries"
        elif result == "temporary" and message.attempts < MAX_ATTEMPTS:
            message.status, message.due_at = "queued", now + backoff(message.attempts)
            message.claimed_until, message.failure_reason = None, reason
        elif result == "permanent":
            message.status, message.final_at, message.failure_reason = "failed", now, reason
            message.provider_status = "permanent-failure"
            await next_channel(db, message, now)
        else:
            message.status, message.final_at = "failed", now
            message.failure_reason = f"retries exhausted: {reason}"
        await db.commit()
        return result


async def next_channel(db: AsyncSession, message: models.Message, now: datetime) -> None:
    """After a permanent failure, the same message by the next channel the victim allows."""
    referral = (
        await db.execute(select(models.Referral).where(models.Referral.id == message.referral_id))
    ).scalar_one()
    facts = load_referral(referral.facts)
    usable = usable_channels(facts)
    later = usable[usable.index(message.channel) + 1 :] if message.channel in usable else []
    for channel in later:
        if channel == "phone":
            continue
        await db.execute(
            insert(models.Message).values(
                id=uuid.uuid4(),
                referral_id=message.referral_id,
                contact_step_id=message.contact_step_id,
                purpose=message.purpose,
                channel=channel,
                template=message.template,
                status="queued",
                due_at=now,
                tries=message.tries,
            )
        )
        return


async def resend(db: AsyncSession, message: models.Message, now: datetime) -> bool:
    """After a temporary or technical failure receipt: a new row (a new reference), later."""
    if message.tries >= MAX_TRIES:
        return False
    await db.execute(
        insert(models.Message).values(
            id=uuid.uuid4(),
            referral_id=message.referral_id,
            contact_step_id=message.contact_step_id,
            purpose=message.purpose,
            channel=message.channel,
            template=message.template,
            status="queued",
            due_at=now + backoff(message.tries + 1),
            tries=message.tries + 1,
        )
    )
    return True


async def deliver_all(
    sessions: async_sessionmaker[AsyncSession],
    notifier: Notifier,
    catalogue: Catalogue,
    claimed: list[Claimed],
    parallel: int = 16,
) -> dict[str, int]:
    """Send a claimed batch, `parallel` at a time; returns counts by result."""
    gate = asyncio.Semaphore(parallel)
    counts: dict[str, int] = {}

    async def one(item: Claimed) -> None:
        async with gate:
            result = await deliver(sessions, notifier, catalogue, item)
        counts[result] = counts.get(result, 0) + 1

    await asyncio.gather(*(one(item) for item in claimed))
    return counts
