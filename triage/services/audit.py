"""The audit trail's seal: each minute's events chained into a digest row.

digest(minute) = SHA-256(previous digest || each event of that minute in id order), so
changing, removing or adding an event in a sealed minute breaks every digest after it.
Minutes are sealed once they are two minutes old, so a transaction that started in a minute
and commits a little later still lands before its minute is sealed. Events are stamped by the
database's own clock (`now()`), so "two minutes old" is judged by that clock too: the service
clock may have been moved forward (`triage clock advance`, in dev and tests), and sealing by it
would seal minutes that are still receiving events.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from db import models

GRACE = timedelta(minutes=2)
GENESIS = "0" * 64


async def record_event(
    db: AsyncSession, actor: str, action: str, record_id: object, record_type: str = "referral"
) -> None:
    """One audit event, in the caller's transaction (the table is append-only)."""
    await db.execute(
        insert(models.AuditEvent).values(
            actor=actor, action=action, record_type=record_type, record_id=str(record_id)
        )
    )


def _line(row: Any) -> bytes:
    fields = [
        str(row.id),
        row.at.astimezone(UTC).isoformat(),
        row.actor,
        row.action,
        row.record_type,
        row.record_id,
    ]
    return ("\x1f".join(fields) + "\n").encode()


def chain(previous: str, rows: list[Any]) -> str:
    digest = hashlib.sha256(previous.encode())
    for row in rows:
        digest.update(_line(row))
    return digest.hexdigest()


EVENTS_IN = text("""SELECT id, at, actor, action, record_type, record_id FROM audit_events
                    WHERE at >= :start AND at < :end ORDER BY id""")


async def seal(db: AsyncSession, now: datetime) -> int:
    """Seal every whole minute with events, up to two minutes ago. Returns minutes sealed.
    The caller's transaction is committed here (one writer at a time: an advisory lock)."""
    await db.execute(text("SELECT pg_advisory_xact_lock(7265839)"))
    last = (
        await db.execute(
            text("SELECT minute, digest FROM audit_digests ORDER BY minute DESC LIMIT 1")
        )
    ).first()
    start = last.minute + timedelta(minutes=1) if last else None
    previous = last.digest if last else GENESIS
    database_now = (await db.execute(text("SELECT now()"))).scalar_one()
    cutoff = (min(now, database_now) - GRACE).replace(second=0, microsecond=0)
    minutes_q = text("""SELECT DISTINCT date_trunc('minute', at) AS minute FROM audit_events
                        WHERE (CAST(:start AS timestamptz) IS NULL OR at >= :start)
                          AND at < :cutoff ORDER BY minute""")
    sealed = 0
    for (minute,) in (await db.execute(minutes_q, {"start": start, "cutoff": cutoff})).all():
        rows = (
            await db.execute(EVENTS_IN, {"start": minute, "end": minute + timedelta(minutes=1)})
        ).all()
        digest = chain(previous, list(rows))
        await db.execute(
            text(
                "INSERT INTO audit_digests (minute, events, digest, previous) "
                "VALUES (:m, :n, :d, :p)"
            ),
            {"m": minute, "n": len(rows), "d": digest, "p": previous},
        )
        previous = digest
        sealed += 1
    await db.commit()
    return sealed


@dataclass
class Verification:
    ok: bool
    digests: int
    events: int
    first_bad_minute: datetime | None = None


async def verify(db: AsyncSession) -> Verification:
    """Recompute the chain from the events; the first minute that does not match, if any."""
    previous = GENESIS
    digests = events = 0
    for row in (
        await db.execute(
            text("SELECT minute, events, digest, previous FROM audit_digests ORDER BY minute")
        )
    ).all():
        rows = (
            await db.execute(
                EVENTS_IN, {"start": row.minute, "end": row.minute + timedelta(minutes=1)}
            )
        ).all()
        if (
            row.previous != previous
            or chain(previous, list(rows)) != row.digest
            or len(rows) != row.events
        ):
            return Verification(False, digests, events, row.minute)
        previous = row.digest
        digests += 1
        events += len(rows)
    # Events in a sealed stretch whose minute has no digest were added afterwards.
    last = (await db.execute(text("SELECT max(minute) FROM audit_digests"))).scalar()
    if last is not None:
        stray = (
            await db.execute(
                text("""
            SELECT date_trunc('minute', at) FROM audit_events e
            WHERE at < :end AND NOT EXISTS (
                SELECT 1 FROM audit_digests d WHERE d.minute = date_trunc('minute', e.at))
            ORDER BY at LIMIT 1"""),
                {"end": last + timedelta(minutes=1)},
            )
        ).scalar()
        if stray is not None:
            return Verification(False, digests, events, stray)
    return Verification(True, digests, events)
