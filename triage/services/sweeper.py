"""The sweep beat runs every few seconds: due contact steps, due survey invitations (which
write their messages), due messages, due alerts, due staff set-up emails
(services/setup_emails) and the retention purge. Rows are claimed with
FOR UPDATE SKIP LOCKED, so any number of workers can sweep at once without taking the same
row; a claim carries a lease (`claimed_until`) and a claim never finished is taken again when
its lease runs out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from triage.domain.catalogue import Catalogue
from triage.services.clock import service_now
from triage.services.contact_plan import process_due_step
from triage.services.messaging import CHUNK, claim_messages, claim_survey_messages, deliver_all
from triage.services.notifier import Notifier
from triage.services.setup_emails import SetupLinks, sweep_setup_emails
from triage.services.surveys import sweep_surveys
from triage.services.units import in_session

RETENTION = timedelta(days=7)  # rendered bodies and recipients, after the final status

CLAIM_STEPS = text("""
    UPDATE contact_steps s SET claimed_until = :lease_end
    FROM (
        SELECT id FROM contact_steps
        WHERE status = 'scheduled' AND due_at <= :now
          AND (claimed_until IS NULL OR claimed_until < :now)
        ORDER BY due_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    ) due
    WHERE s.id = due.id
    RETURNING s.id
""")

CLAIM_ALERTS = text("""
    SELECT a.id, a.kind, a.due_at, r.first_contact_at, r.contact_paused, r.status,
           r.updated_at
    FROM alerts a JOIN referrals r ON r.id = a.referral_id
    WHERE a.status = 'pending' AND a.due_at <= :now
    ORDER BY a.due_at
    LIMIT :limit
    FOR UPDATE OF a SKIP LOCKED
""")


@dataclass
class SweepReport:
    steps: dict[str, int] = field(default_factory=dict)
    messages: dict[str, int] = field(default_factory=dict)
    alerts: dict[str, int] = field(default_factory=dict)
    setup_emails: dict[str, int] = field(default_factory=dict)
    surveys: dict[str, int] = field(default_factory=dict)
    purged: int = 0

    @property
    def busy(self) -> bool:
        return bool(self.steps or self.messages or self.alerts or self.setup_emails or self.surveys)


async def sweep_steps(
    sessions: async_sessionmaker[AsyncSession],
    catalogue: Catalogue,
    lease: timedelta,
    limit: int = 200,
) -> dict[str, int]:
    """Due steps claimed together, then each run in a transaction of its own."""
    ids = await in_session(sessions, claim_steps, lease, limit)
    counts: dict[str, int] = {}
    for step_id in ids:
        result = await in_session(sessions, run_step, catalogue, step_id)
        counts[result] = counts.get(result, 0) + 1
    return counts


async def claim_steps(db: AsyncSession, lease: timedelta, limit: int) -> list[uuid.UUID]:
    now = await service_now(db)
    ids = [
        row.id
        for row in await db.execute(
            CLAIM_STEPS, {"now": now, "lease_end": now + lease, "limit": limit}
        )
    ]
    await db.commit()
    return ids


async def run_step(db: AsyncSession, catalogue: Catalogue, step_id: uuid.UUID) -> str:
    return await process_due_step(db, step_id, catalogue, await service_now(db))


_SETTLE_ALERT = text(
    "UPDATE alerts SET status = :status, reason = :reason, raised_at = :raised_at WHERE id = :id"
)


async def sweep_alerts(db: AsyncSession, limit: int = 500) -> dict[str, int]:
    """P1 not reached in 4 hours, deadlines passed without contact (breaches, with the reason
    `paused` when contact was paused), safe windows after the deadline: raised for the duty
    lead, or resolved when contact came first."""
    counts: dict[str, int] = {}
    now = await service_now(db)
    changes: list[dict[str, Any]] = []
    for row in (await db.execute(CLAIM_ALERTS, {"now": now, "limit": limit})).all():
        contacted = row.first_contact_at is not None and row.first_contact_at <= row.due_at
        if row.kind == "safe_window_after_deadline":
            status, reason = "raised", "safe_window"
        elif contacted or (row.status == "withdrawn" and row.updated_at <= row.due_at):
            # Withdrawn in time: no contact was owed. (Withdrawn after the deadline: the
            # breach had already happened and is reported.)
            status, reason = "resolved", None
        elif row.kind == "deadline_breach":
            status, reason = "raised", "paused" if row.contact_paused else "missed"
        else:
            status, reason = "raised", None
        # raised_at computed here: one parameter used both as the varchar column and in
        # a text comparison is refused by asyncpg (inconsistent types deduced).
        changes.append(
            {
                "status": status,
                "reason": reason,
                "raised_at": now if status == "raised" else None,
                "id": row.id,
            }
        )
        key = f"{row.kind}.{status}"
        counts[key] = counts.get(key, 0) + 1
    if changes:  # one executemany for the whole sweep, not a statement per alert
        await db.execute(_SETTLE_ALERT, changes)
    await db.commit()
    return counts


async def purge_rendered(db: AsyncSession, limit: int = 5000) -> int:
    """Rendered bodies and recipients go 7 days after the final status (Notify keeps its copy
    7 days); the row keeps channel, template, statuses and times. A message accepted but never
    receipted counts from its acceptance."""
    now = await service_now(db)
    result = await db.execute(
        text("""
        UPDATE messages SET body = NULL, recipient = NULL
        WHERE id IN (SELECT id FROM messages WHERE body IS NOT NULL AND (final_at < :cutoff
            OR (final_at IS NULL AND status = 'accepted' AND sent_at < :cutoff))
                     LIMIT :limit)"""),
        {"cutoff": now - RETENTION, "limit": limit},
    )
    await db.execute(
        text("""
        UPDATE outbox SET body = '', recipient = ''
        WHERE id IN (SELECT id FROM outbox WHERE body <> '' AND sent_at < :cutoff
                     LIMIT :limit)"""),
        {"cutoff": now - RETENTION, "limit": limit},
    )
    await db.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def send_due(
    sessions: async_sessionmaker[AsyncSession],
    notifier: Notifier,
    catalogue: Catalogue,
    lease: timedelta,
    limit: int,
    *,
    surveys_only: bool = False,
) -> dict[str, int]:
    """Due messages, claimed a chunk at a time (up to `limit` in all), each chunk just before
    it is sent, so that no claim waits for the rest of a large batch while its lease runs
    out. Returns counts by result."""
    claim = claim_survey_messages if surveys_only else claim_messages
    counts: dict[str, int] = {}
    taken = 0
    while taken < limit:
        claimed = await in_session(sessions, claim, min(CHUNK, limit - taken), lease)
        if not claimed:
            break
        taken += len(claimed)
        for result, count in (await deliver_all(sessions, notifier, catalogue, claimed)).items():
            counts[result] = counts.get(result, 0) + count
    return counts


async def send_due_surveys(
    sessions: async_sessionmaker[AsyncSession],
    notifier: Notifier,
    catalogue: Catalogue,
    lease: timedelta,
    limit: int = 500,
) -> dict[str, dict[str, int]]:
    """What the sweep does for surveys, on its own (`triage surveys send-due`): due invitations
    advanced (invitations and reminders written, expiries), then due survey messages sent,
    inside the safe times like every message."""
    invitations = await in_session(sessions, sweep_surveys, catalogue)
    messages = await send_due(sessions, notifier, catalogue, lease, limit, surveys_only=True)
    return {"invitations": invitations, "messages": messages}


async def sweep(
    sessions: async_sessionmaker[AsyncSession],
    notifier: Notifier,
    catalogue: Catalogue,
    lease: timedelta,
    message_batch: int = 500,
    *,
    links: SetupLinks,
) -> SweepReport:
    """One pass over everything that is due (messages up to `message_batch`)."""
    report = SweepReport()
    report.steps = await sweep_steps(sessions, catalogue, lease)
    # Before the messages: an invitation that falls due is written and sent in one pass.
    report.surveys = await in_session(sessions, sweep_surveys, catalogue)
    report.messages = await send_due(sessions, notifier, catalogue, lease, message_batch)
    report.alerts = await in_session(sessions, sweep_alerts)
    report.setup_emails = await sweep_setup_emails(sessions, notifier, links, lease)
    return report
