"""Sending messages (SMS, email, letter) so that none is ever sent twice.

The row is the outbox. A sweep claims due rows (`queued`, or `sending` whose lease expired)
with FOR UPDATE SKIP LOCKED and marks them `sending` with a lease, committed before any call
to the provider. Each claim adds one to `attempts`, and that number is the claim's token: every
later step (the checks and rendering, the result) is written under the row lock only if the row
is still `sending` with the same `attempts`, so a worker whose lease ran out and whose row was
claimed again by another never sends it nor writes its result. Just before the provider is
called the lease is extended to cover the longest a provider call can take (`send_hold`), and
the call is made only while that much of it is left, so no other worker can claim the row while
a send of it may still be on its way. The provider is called outside any transaction. A row
claimed again after a lease ran out (the worker died, the provider timed out) is first looked up
at the provider by its reference: found in any state means sent.

A sweep works in chunks: one transaction checks and renders a whole chunk, the sends run in
parallel, and one statement records every accepted send. One message (`deliver`) goes through
the same code as a chunk of one.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from db import models
from triage.domain.catalogue import Catalogue
from triage.domain.messages import UnsafeMessage, render_message
from triage.domain.planning import ContactRules, contact_rules
from triage.domain.referral import Referral
from triage.domain.safety import Verdict, may_contact
from triage.domain.statuses import ANSWERABLE_SURVEY_STATUSES
from triage.domain.validation import usable_channels
from triage.services.claims import Claimed, LeasedQueue
from triage.services.clock import service_now, service_now_sql
from triage.services.contact_plan import load_referral
from triage.services.notifier import (
    Notifier,
    Outgoing,
    PermanentFailure,
    ProviderMisconfigured,
    ProviderUnsure,
    TemporaryFailure,
)
from triage.services.referral_rows import message_copy_row
from triage.services.surveys import new_link, stored_link
from triage.services.units import in_session

MAX_ATTEMPTS = 6  # sends of one row (temporary failures and unsure answers)
# While the provider refuses our settings (a bad key, a template that is not ours), messages
# wait this long in the queue between tries; fixing the settings sends them on the next try.
OUTAGE_RETRY = timedelta(minutes=1)
MAX_TRIES = 3  # rows in a resend chain after failure receipts
UNSURE_LEASE = timedelta(seconds=30)  # how soon an unsure send is looked up again
CALL_MARGIN = timedelta(seconds=5)  # on top of the longest a provider call can take
CHUNK = 50  # rows a sweep claims, checks and records together


def call_budget(notifier: Notifier) -> timedelta:
    """The longest one provider call (a send or a lookup) can take: the notifier's connect and
    read timeouts."""
    return timedelta(seconds=2 * float(getattr(notifier, "timeout", 10.0)))


def send_hold(notifier: Notifier) -> timedelta:
    """How long a row stays ours once it is about to go to the provider: one whole call and a
    margin. A shorter lease is extended to this before the send; a longer one is kept."""
    return call_budget(notifier) + CALL_MARGIN


def backoff(attempt: int) -> timedelta:
    """Exponential, capped: 30 s, 1 min, 2 min, 4 min, ... up to an hour (jitter is added
    by the spread of sweeps)."""
    return timedelta(seconds=min(30 * 2 ** max(attempt - 1, 0), 3600))


_MESSAGES = LeasedQueue("messages")
_SURVEY_MESSAGES = LeasedQueue("messages", only="survey_invitation_id IS NOT NULL")


async def claim_messages(db: AsyncSession, limit: int, lease: timedelta) -> list[Claimed]:
    return await _MESSAGES.claim(db, limit, lease)


async def claim_survey_messages(db: AsyncSession, limit: int, lease: timedelta) -> list[Claimed]:
    """Due survey messages only (`triage surveys send-due`, for operators)."""
    return await _SURVEY_MESSAGES.claim(db, limit, lease)


async def claim_message(
    db: AsyncSession, message_id: uuid.UUID, lease: timedelta
) -> Claimed | None:
    """Claim one message by id (the naive one-task-per-message design, and wake-ups)."""
    return await _MESSAGES.claim_by_id(db, message_id, lease)


async def deliver(
    sessions: async_sessionmaker[AsyncSession],
    notifier: Notifier,
    catalogue: Catalogue,
    claimed: Claimed,
) -> str:
    """Send one claimed message; returns what became of it."""
    results = await _deliver_chunk(sessions, notifier, catalogue, [claimed], parallel=1)
    return results[claimed.id]


@dataclass(frozen=True)
class _Checked:
    """What the safe contact rules were judged on when a row was prepared, to judge them again
    immediately before the provider call: the referral as it was then (`seen`, its
    updated_at, which every change of status, pause, consent, contact details or call
    outcome moves on) and the service clock then (`at`, `started` on this worker's monotonic
    clock)."""

    referral_id: uuid.UUID
    seen: datetime
    rules: ContactRules
    closing: bool
    survey_invitation_id: uuid.UUID | None = None  # a survey message: its invitation


@dataclass(frozen=True)
class _Ready:
    """A claimed row, checked and rendered under its lock, to go to the provider."""

    claimed: Claimed
    outgoing: Outgoing
    not_before: datetime | None  # not safe now: only looked up (it may already be sent)
    checked: _Checked
    # No longer allowed (paused, withdrawn, ...) but an earlier attempt may have reached the
    # provider: looked up, then recorded as accepted when found, else cancelled.
    cancel_reason: str | None = None
    # What the row keeps of the body: the body itself, but a survey link without its token.
    stored_body: str | None = None


@dataclass(frozen=True)
class _Outcome:
    result: str  # accepted | permanent | temporary | unsure | moved | released | not_claimed
    provider_status: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class _Lease:
    """Whether this worker may still start a provider call for a row: what is left of its
    lease (`left` from `started`, a moment taken before the clock was read for it) must
    outlast one whole call (`budget`)."""

    left: timedelta
    budget: timedelta
    started: float  # time.monotonic()

    def room_for_a_call(self) -> bool:
        elapsed = time.monotonic() - self.started
        return elapsed + self.budget.total_seconds() <= self.left.total_seconds()


_steps = aliased(models.ContactStep)
_wrong = aliased(models.ContactStep)
PREPARE = (
    select(
        models.Message.survey_invitation_id,
        models.SurveyInvitation.status.label("survey_status"),
        models.SurveyInvitation.expires_at.label("survey_expires_at"),
        models.Message.id,
        models.Message.status,
        models.Message.attempts,
        models.Message.channel,
        models.Message.template,
        models.Message.referral_id,
        models.Message.claimed_until,
        models.Referral.status.label("referral_status"),
        models.Referral.contact_paused,
        models.Referral.facts,
        models.Referral.updated_at.label("referral_updated_at"),
        _steps.kind.label("step_kind"),
        exists()
        .where(_wrong.referral_id == models.Message.referral_id, _wrong.outcome == "wrong_number")
        .label("wrong_number"),
    )
    .select_from(models.Message)
    .outerjoin(models.Referral, models.Referral.id == models.Message.referral_id)
    .outerjoin(_steps, _steps.id == models.Message.contact_step_id)
    .outerjoin(
        models.SurveyInvitation,
        models.SurveyInvitation.id == models.Message.survey_invitation_id,
    )
    .order_by(models.Message.id)
    .with_for_update(of=models.Message)
)

MARK_READY = text("""
    UPDATE messages AS m
    SET recipient = v.recipient, body = v.body,
        claimed_until = GREATEST(m.claimed_until, :hold_until)
    FROM unnest(CAST(:ids AS uuid[]), CAST(:recipients AS text[]), CAST(:bodies AS text[]))
         AS v(id, recipient, body)
    WHERE m.id = v.id
""")

MARK_ACCEPTED = text("""
    UPDATE messages AS m
    SET status = 'accepted', provider_status = v.provider_status, sent_at = :now,
        claimed_until = NULL, updated_at = :now
    FROM unnest(CAST(:ids AS uuid[]), CAST(:attempts AS integer[]),
                CAST(:statuses AS text[])) AS v(id, attempts, provider_status)
    WHERE m.id = v.id AND m.status = 'sending' AND m.attempts = v.attempts
    RETURNING m.id
""")

EXTEND = text("""
    UPDATE messages SET claimed_until = GREATEST(claimed_until, :hold_until)
    WHERE id = :id AND status = 'sending' AND attempts = :attempts
    RETURNING claimed_until
""")

RELEASE = text("""
    UPDATE messages AS m SET claimed_until = :now
    FROM unnest(CAST(:ids AS uuid[]), CAST(:attempts AS integer[])) AS v(id, attempts)
    WHERE m.id = v.id AND m.status = 'sending' AND m.attempts = v.attempts
""")


# The re-check immediately before a provider call, in one short statement (never a
# transaction held across the call): the row is still ours (this claim, `sending`) and the
# referral still allows this message (open, not paused, contact consent, the channel listed,
# a letter allowed, no wrong number for a text) and has not changed since the row was checked
# and rendered (`seen`: any change moves updated_at on, and the safe times are judged again
# in Python just before). The share lock on the referral waits for a stop being committed
# (a pause holds the row for update), so a stop either commits first and is seen here, or
# finds the call started and marks the message `stopped_at`.
_BEGIN_CALL = """
    UPDATE messages AS m SET call_started_at = {now}
    FROM (
        SELECT r.id FROM referrals r
        WHERE r.id = :referral_id
          AND r.updated_at = :seen
          AND (r.status IN ('triaged', 'in_contact') OR (:closing AND r.status = 'closed'))
          AND NOT r.contact_paused
          AND COALESCE(CAST(r.facts #>> '{consent,to_contact}' AS boolean), true)
          AND (r.facts -> 'contact' -> 'channels') @> jsonb_build_array(CAST(:channel AS text))
          AND (CAST(:channel AS text) <> 'letter'
               OR COALESCE(CAST(r.facts #>> '{contact,letter_ok}' AS boolean), false))
          AND (CAST(:channel AS text) NOT IN ('phone', 'sms') OR NOT EXISTS (
                SELECT 1 FROM contact_steps s
                WHERE s.referral_id = r.id AND s.outcome = 'wrong_number'))
        FOR SHARE
    ) AS r
    WHERE m.id = :id AND m.referral_id = r.id AND m.status = 'sending'
      AND m.attempts = :attempts
    RETURNING m.call_started_at
"""


# A survey message's re-check: the same, written out whole, with its invitation still open to
# answers and not expired and the victim's consent to be surveyed; the invitation's row held FOR
# SHARE too, so an answer, an expiry or a cancellation being committed is seen (or finds the
# call started). The referral may have closed: a survey follows the closure of support.
_BEGIN_SURVEY_CALL = """
    UPDATE messages AS m SET call_started_at = {now}
    FROM (
        SELECT r.id, i.id AS invitation_id FROM referrals r
        JOIN survey_invitations i ON i.id = :survey AND i.referral_id = r.id
        WHERE r.id = :referral_id
          AND r.updated_at = :seen
          AND r.status IN ('triaged', 'in_contact', 'closed')
          AND NOT r.contact_paused
          AND COALESCE(CAST(r.facts #>> '{consent,to_contact}' AS boolean), true)
          AND COALESCE(CAST(r.facts #>> '{consent,to_survey}' AS boolean), false)
          AND (r.facts -> 'contact' -> 'channels') @> jsonb_build_array(CAST(:channel AS text))
          AND (CAST(:channel AS text) NOT IN ('phone', 'sms') OR NOT EXISTS (
                SELECT 1 FROM contact_steps s
                WHERE s.referral_id = r.id AND s.outcome = 'wrong_number'))
          AND i.status IN ('invited', 'reminded')
          AND i.expires_at > {now}
        FOR SHARE OF r, i
    ) AS r
    WHERE m.id = :id AND m.referral_id = r.id AND m.survey_invitation_id = r.invitation_id
      AND m.status = 'sending' AND m.attempts = :attempts
    RETURNING m.call_started_at
"""


def _begin_call_statement(survey: bool) -> Any:
    statement = _BEGIN_SURVEY_CALL if survey else _BEGIN_CALL
    return text(statement.replace("{now}", service_now_sql()))


# Not sent by this claim (the re-check refused it): back to the queue, to be checked afresh
# by the next sweep (which cancels it if contact is no longer allowed), this claim not
# counted against the message (a row an earlier claim may have sent still counts more than
# one, and is looked up at the provider first, as always).
REQUEUE_UNSENT = text("""
    UPDATE messages SET status = 'queued', claimed_until = NULL, call_started_at = NULL,
        attempts = attempts - 1, updated_at = :now
    WHERE id = :id AND status = 'sending' AND attempts = :attempts
    RETURNING id
""")


async def _begin_call(db: AsyncSession, ready: _Ready) -> bool:
    """Whether the provider may be called for this row now: the row and the referral
    re-checked in one statement on its own (autocommit: one round trip, no transaction held),
    which records the call as started at the service clock's now; then the safe times judged
    at that moment on the referral as checked. A row the safe times refuse is given back by
    the caller (REQUEUE_UNSENT clears call_started_at: the call never started)."""
    checked = ready.checked
    connection = await db.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    survey = checked.survey_invitation_id is not None
    values: dict[str, Any] = {
        "referral_id": checked.referral_id,
        "seen": checked.seen,
        "channel": ready.outgoing.channel,
        "id": ready.claimed.id,
        "attempts": ready.claimed.attempts,
    }
    values.update(
        {"survey": checked.survey_invitation_id} if survey else {"closing": checked.closing}
    )
    row = (await connection.execute(_begin_call_statement(survey), values)).first()
    return row is not None and _still_safe(ready, row.call_started_at)


def _still_safe(ready: _Ready, now: datetime) -> bool:
    """The safe contact rules judged again at `now` on the referral as it was checked (the
    statement that follows makes sure it has not changed since)."""
    checked = ready.checked
    verdict = may_contact(
        referral_status="triaged",  # the statement checks the status itself
        paused=False,  # and the pause, the consent and the wrong number
        to_contact=True,
        rules=checked.rules,
        channel=ready.outgoing.channel,
        wrong_number=False,
        now=now,
        closing=checked.closing,
        survey=checked.survey_invitation_id is not None,
        to_survey=True,  # and the consent to be surveyed
    )
    return verdict.allowed and verdict.not_before is None


async def _requeue_unsent(db: AsyncSession, claimed: Claimed) -> str:
    now = await service_now(db)
    row = (
        await db.execute(
            REQUEUE_UNSENT, {"id": claimed.id, "attempts": claimed.attempts, "now": now}
        )
    ).first()
    await db.commit()
    return "rechecked" if row is not None else "not_claimed"


async def _prepare_chunk(
    db: AsyncSession,
    catalogue: Catalogue,
    claimed: Sequence[Claimed],
    hold: timedelta,
) -> tuple[list[_Ready], dict[uuid.UUID, str], timedelta]:
    """Check the safe contact rules and render each claimed row, under the row locks, in one
    transaction; extend the lease of the rows about to be sent to `hold` at least; commit
    before any send. Returns the rows to send, what became of the others, and how much of
    their lease is left (from before the clock was read)."""
    by_id = {item.id: item for item in claimed}
    lefts: list[timedelta] = []
    ready: list[_Ready] = []
    done: dict[uuid.UUID, str] = {}
    changes: list[dict[str, Any]] = []
    now = await service_now(db)
    rows = (await db.execute(PREPARE.where(models.Message.id.in_(list(by_id))))).all()
    facts_by_referral: dict[uuid.UUID, tuple[Referral, ContactRules]] = {}
    tokens: list[dict[str, Any]] = []
    for row in rows:
        item = by_id[row.id]
        if row.status != "sending" or row.attempts != item.attempts:
            done[row.id] = "not_claimed"  # finished, or claimed again by another worker
            continue
        if row.referral_status is None:
            done[row.id] = "failed"
            changes.append(_failed(row.id, now, "not sent: no referral"))
            continue
        survey = row.survey_invitation_id is not None
        loaded = facts_by_referral.get(row.referral_id)
        if loaded is None:
            facts = load_referral(row.facts)
            loaded = facts, contact_rules(facts, usable_channels(facts), catalogue)
            facts_by_referral[row.referral_id] = loaded
        facts, rules = loaded
        verdict = may_contact(
            referral_status=row.referral_status,
            paused=row.contact_paused,
            to_contact=facts.consent.to_contact,
            rules=rules,
            channel=row.channel,
            wrong_number=row.wrong_number,
            now=now,
            closing=row.step_kind == "close",
            survey=survey,
            to_survey=facts.consent.to_survey,
        )
        if verdict.allowed and survey and not _survey_open(row, now):
            # Answered, expired or cancelled since the message was written.
            verdict = Verdict(False, "survey_closed")
        cancel_reason = None
        if not verdict.allowed and item.attempts > 1:
            cancel_reason = verdict.reason  # look it up first: it may already be sent
        elif not verdict.allowed:
            done[row.id] = "cancelled"
            changes.append(
                {
                    "id": row.id,
                    "status": "cancelled",
                    "final_at": now,
                    "failure_reason": verdict.reason,
                    "claimed_until": None,
                }
            )
            continue
        if verdict.not_before is not None and item.attempts == 1:
            # Not safe now: back to the queue for the next safe moment, never early. (A row
            # that may already be at the provider is looked up first, whatever the time.)
            done[row.id] = "moved"
            changes.append(
                {
                    "id": row.id,
                    "status": "queued",
                    "due_at": verdict.not_before,
                    "attempts": row.attempts - 1,
                    "claimed_until": None,
                }
            )
            continue
        link = token = None
        if survey:
            link, token = new_link(row.survey_invitation_id, row.id)
        try:
            rendered = render_message(
                catalogue.contact, row.template, row.channel, facts.victim.first_name, link
            )
        except (UnsafeMessage, KeyError) as error:
            done[row.id] = "failed"
            changes.append(_failed(row.id, now, f"not sent: {type(error).__name__}"))
            continue
        outgoing = Outgoing(
            row.id,
            row.channel,
            row.template,
            _recipient(facts, row.channel),
            rendered.subject,
            rendered.body,
        )
        checked = _Checked(
            row.referral_id,
            row.referral_updated_at,
            rules,
            row.step_kind == "close",
            row.survey_invitation_id,
        )
        stored = rendered.body
        if link is not None and token is not None:
            tokens.append(token)
            stored = stored.replace(link, stored_link())
        ready.append(_Ready(item, outgoing, verdict.not_before, checked, cancel_reason, stored))
        # The lease is extended to `hold` below, or kept when it is already longer.
        lefts.append(max(hold, (row.claimed_until or now) - now))
    found = {row.id for row in rows}
    for item in claimed:
        if item.id not in found:
            done[item.id] = "not_claimed"  # no such row
    for change in changes:
        values = {k: v for k, v in change.items() if k != "id"}
        await db.execute(
            update(models.Message)
            .where(models.Message.id == change["id"])
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    if tokens:
        await db.execute(insert(models.SurveyToken), tokens)
    if ready:
        await db.execute(
            MARK_READY,
            {
                "ids": [r.outgoing.reference for r in ready],
                "recipients": [r.outgoing.recipient for r in ready],
                "bodies": [r.stored_body or r.outgoing.body for r in ready],
                "hold_until": now + hold,
            },
        )
    await db.commit()
    return ready, done, min(lefts, default=hold)


HOLD_FOR_OUTAGE = text("""
    UPDATE messages AS m
    SET status = 'queued', due_at = :retry_at, claimed_until = NULL, call_started_at = NULL,
        attempts = m.attempts - 1, updated_at = :now
    FROM unnest(CAST(:ids AS uuid[]), CAST(:attempts AS integer[])) AS v(id, attempts)
    WHERE m.id = v.id AND m.status = 'sending' AND m.attempts = v.attempts
""")

# One open provider outage alert at a time (a partial unique index holds it to one).
RAISE_OUTAGE = text("""
    INSERT INTO alerts (id, referral_id, kind, status, due_at, raised_at, reason)
    VALUES (:id, NULL, 'provider_outage', 'raised', :now, :now, :reason)
    ON CONFLICT DO NOTHING
""")

# An open outage alert ends when the provider takes a message of the channel it is about
# (its reason starts `channel:`), or any message when it was our credentials (`all:`): a
# channel that works never hides one that does not.
RESOLVE_OUTAGE = text("""
    UPDATE alerts SET status = 'resolved'
    WHERE kind = 'provider_outage' AND referral_id IS NULL AND status = 'raised'
      AND (reason LIKE 'all:%' OR split_part(reason, ':', 1) = ANY(CAST(:channels AS text[])))
""")


async def _hold_for_outage(db: AsyncSession, held: list[tuple[_Ready, str]]) -> None:
    """The provider refused our settings: not the recipients' failure. The messages go back to
    the queue (this claim not counted against them) and the duty lead is alerted; sending
    resumes by itself once the settings are fixed."""
    now = await service_now(db)
    await db.execute(
        HOLD_FOR_OUTAGE,
        {
            "ids": [item.claimed.id for item, _ in held],
            "attempts": [item.claimed.attempts for item, _ in held],
            "retry_at": now + OUTAGE_RETRY,
            "now": now,
        },
    )
    # One alert open at a time: the first reason stands until it is resolved.
    reason = held[0][1]
    await db.execute(RAISE_OUTAGE, {"id": uuid.uuid4(), "now": now, "reason": reason[:40]})
    await db.commit()


def _survey_open(row: Any, now: datetime) -> bool:
    """A survey message's invitation still takes answers (so its link is worth sending)."""
    return (
        row.survey_status in ANSWERABLE_SURVEY_STATUSES
        and row.survey_expires_at is not None
        and row.survey_expires_at > now
    )


def _failed(message_id: uuid.UUID, now: datetime, reason: str) -> dict[str, Any]:
    return {"id": message_id, "status": "failed", "final_at": now, "failure_reason": reason}


async def _extend(db: AsyncSession, claimed: Claimed, hold: timedelta) -> timedelta | None:
    """Extend the lease to `hold` at least before a send that follows a lookup; returns what is
    left of it, or None when the row is no longer ours."""
    now = await service_now(db)
    row = (
        await db.execute(
            EXTEND, {"id": claimed.id, "attempts": claimed.attempts, "hold_until": now + hold}
        )
    ).first()
    await db.commit()
    return None if row is None else row.claimed_until - now


@dataclass
class _Outage:
    """What the provider refused in this chunk for our settings, by channel (`all` when our
    credentials were refused): the rest of the chunk on that channel is not sent (it would be
    refused the same way); other channels go on."""

    reasons: dict[str, str] = field(default_factory=dict)

    def refusal(self, channel: str) -> str | None:
        return self.reasons.get(ALL_CHANNELS) or self.reasons.get(channel)

    def refused(self, channel: str, error: ProviderMisconfigured) -> _Outcome:
        scope = ALL_CHANNELS if error.whole_service else channel
        self.reasons.setdefault(scope, outage_reason(channel, error))
        return _Outcome("outage", reason=self.reasons[scope])


ALL_CHANNELS = "all"


def outage_reason(channel: str, error: ProviderMisconfigured) -> str:
    """An outage alert's reason: the channel refused (`email: settings refused`), or `all`
    when our credentials were (RESOLVE_OUTAGE reads the part before the colon)."""
    if error.whole_service:
        return f"{ALL_CHANNELS}: credentials refused"
    return f"{channel}: settings refused"


async def _call_provider(
    sessions: async_sessionmaker[AsyncSession],
    notifier: Notifier,
    ready: _Ready,
    lease: _Lease,
    hold: timedelta,
    outage: _Outage,
) -> _Outcome:
    """Look up (when an earlier attempt may have reached the provider), then send."""
    if ready.claimed.attempts > 1:
        try:
            found = await notifier.lookup(ready.claimed.id)
        except ProviderUnsure:
            return _Outcome("unsure")
        except ProviderMisconfigured as error:
            return outage.refused(ready.outgoing.channel, error)
        if found is not None:
            return _Outcome("accepted", found)
        if ready.cancel_reason is not None:
            return _Outcome("cancel", reason=ready.cancel_reason)
        if ready.not_before is not None:
            return _Outcome("moved")
        started = time.monotonic()
        left = await in_session(sessions, _extend, ready.claimed, hold)
        if left is None:
            return _Outcome("not_claimed")
        lease = _Lease(left, lease.budget, started)
    await notifier.wait_for_turn()  # the provider's rate limit, before the lease is judged
    if not lease.room_for_a_call():
        # The lease could run out while the send is on its way, and another worker could then
        # claim and send the row too: give it back unsent (its next claim looks it up first).
        return _Outcome("released")
    refusal = outage.refusal(ready.outgoing.channel)
    if refusal is not None:
        return _Outcome("outage", reason=refusal)
    if not await in_session(sessions, _begin_call, ready):
        # A stop (pause, withdrawal, consent, wrong number, ...) or a change since the row
        # was checked: it does not go now.
        return _Outcome("recheck")
    try:
        provider_status = await notifier.send(ready.outgoing)
    except ProviderMisconfigured as error:
        return outage.refused(ready.outgoing.channel, error)
    except PermanentFailure as error:
        return _Outcome("permanent", reason=str(error))
    except TemporaryFailure as error:
        return _Outcome("temporary", reason=str(error))
    except ProviderUnsure:
        return _Outcome("unsure")
    return _Outcome("accepted", provider_status)


async def _deliver_chunk(
    sessions: async_sessionmaker[AsyncSession],
    notifier: Notifier,
    catalogue: Catalogue,
    claimed: Sequence[Claimed],
    parallel: int,
) -> dict[uuid.UUID, str]:
    """Check and render the claimed rows together, send them `parallel` at a time, then record
    every accepted send in one statement (the rarer results one by one). Returns what became of
    each row. A database error is raised once every send started has finished (none is left
    running); a row whose result could not be written stays `sending` and is looked up at the
    provider when claimed again."""
    hold = send_hold(notifier)
    started = time.monotonic()
    ready, results, left = await in_session(sessions, _prepare_chunk, catalogue, claimed, hold)
    if not ready:
        return results
    lease = _Lease(left, call_budget(notifier), started)
    gate = asyncio.Semaphore(max(1, parallel))
    outage = _Outage()

    async def one(item: _Ready) -> _Outcome:
        async with gate:
            return await _call_provider(sessions, notifier, item, lease, hold, outage)

    outcomes = await asyncio.gather(*(one(item) for item in ready), return_exceptions=True)
    errors: list[BaseException] = []
    accepted: list[tuple[_Ready, str]] = []
    released: list[_Ready] = []
    held: list[tuple[_Ready, str]] = []
    others: list[tuple[_Ready, _Outcome]] = []
    for item, outcome in zip(ready, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            # A database error around a lookup: nothing was sent; the lease runs out and the
            # next claim looks the row up.
            errors.append(outcome)
            results[item.claimed.id] = "error"
        elif outcome.result == "accepted":
            accepted.append((item, outcome.provider_status or "created"))
        elif outcome.result == "released":
            released.append(item)
        elif outcome.result == "outage":
            held.append((item, outcome.reason or "all: settings refused"))
        else:
            others.append((item, outcome))
    if held:
        await in_session(sessions, _hold_for_outage, held)
        for item, _ in held:
            results[item.claimed.id] = "outage"
    if accepted or released:
        results.update(await in_session(sessions, _record_sends, accepted, released))
    for item, outcome in others:
        if outcome.result == "not_claimed":
            results[item.claimed.id] = outcome.result
        elif outcome.result == "recheck":
            results[item.claimed.id] = await in_session(sessions, _requeue_unsent, item.claimed)
        elif outcome.result == "cancel":
            results[item.claimed.id] = await in_session(
                sessions, _cancel, item.claimed.id, outcome.reason or "", item.claimed.attempts
            )
        elif outcome.result == "moved":
            assert item.not_before is not None
            results[item.claimed.id] = await in_session(
                sessions, _requeue, item.claimed.id, item.not_before, item.claimed.attempts
            )
        else:
            results[item.claimed.id] = await in_session(
                sessions,
                _finish,
                item.claimed.id,
                outcome.result,
                outcome.provider_status,
                outcome.reason,
                catalogue=catalogue,
                attempts=item.claimed.attempts,
            )
    if errors:
        raise errors[0]
    return results


async def _record_sends(
    db: AsyncSession, accepted: list[tuple[_Ready, str]], released: list[_Ready]
) -> dict[uuid.UUID, str]:
    """Every send the provider accepted recorded in one statement (while the row is still
    this claim's); rows given back unsent freed for the next sweep at once."""
    results: dict[uuid.UUID, str] = {}
    now = await service_now(db)
    if accepted:
        marked = {
            row.id
            for row in await db.execute(
                MARK_ACCEPTED,
                {
                    "ids": [item.claimed.id for item, _ in accepted],
                    "attempts": [item.claimed.attempts for item, _ in accepted],
                    "statuses": [status for _, status in accepted],
                    "now": now,
                },
            )
        }
        for item, _ in accepted:
            # Not marked: a receipt or another worker got there first.
            done = item.claimed.id in marked
            results[item.claimed.id] = "accepted" if done else "already_done"
        # The provider takes our messages again: an outage alert is over.
        channels = sorted({item.outgoing.channel for item, _ in accepted})
        await db.execute(RESOLVE_OUTAGE, {"channels": channels})
    if released:
        await db.execute(
            RELEASE,
            {
                "ids": [item.claimed.id for item in released],
                "attempts": [item.claimed.attempts for item in released],
                "now": now,
            },
        )
        for item in released:
            results[item.claimed.id] = "released"
    await db.commit()
    return results


async def lock_message(db: AsyncSession, message_id: uuid.UUID) -> models.Message:
    """The message row under FOR UPDATE: every change of a message's status goes through it."""
    message = await find_message(db, message_id)
    if message is None:
        raise LookupError("no such message")
    return message


async def find_message(db: AsyncSession, message_id: uuid.UUID) -> models.Message | None:
    return (
        await db.execute(
            select(models.Message).where(models.Message.id == message_id).with_for_update()
        )
    ).scalar()


async def _cancel(db: AsyncSession, message_id: uuid.UUID, reason: str, attempts: int) -> str:
    now = await service_now(db)
    message = await lock_message(db, message_id)
    if message.status == "sending" and message.attempts == attempts:
        message.status, message.final_at, message.claimed_until = "cancelled", now, None
        message.failure_reason = reason
        await db.commit()
    return "cancelled"


async def _requeue(
    db: AsyncSession,
    message_id: uuid.UUID,
    not_before: datetime,
    attempts: int,
) -> str:
    message = await lock_message(db, message_id)
    if message.status == "sending" and attempts == message.attempts:
        message.status, message.due_at, message.claimed_until = "queued", not_before, None
        message.call_started_at = None  # looked up: the provider does not have it
        await db.commit()
    return "moved"


def _recipient(facts: Referral, channel: str) -> str:
    victim = facts.victim
    if channel == "sms":
        return str(victim.phone)
    if channel == "email":
        return str(victim.email)
    address = victim.address
    assert address is not None  # a letter is a usable channel only with an address
    name = " ".join(filter(None, [victim.first_name, victim.last_name]))
    lines = [name, address.line1, address.line2, address.town, address.county, address.postcode]
    return "\n".join(line for line in lines if line)


async def _finish(
    db: AsyncSession,
    message_id: uuid.UUID,
    result: str,
    provider_status: str | None,
    reason: str | None = None,
    *,
    catalogue: Catalogue,
    attempts: int,
) -> str:
    """Record a send's result under the row lock, only while the row is still `sending` under
    the same claim (`attempts`)."""
    now = await service_now(db)
    message = await lock_message(db, message_id)
    if message.status != "sending" or attempts != message.attempts:
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
        message.call_started_at = None  # the provider refused it: nothing is on its way
    elif result == "permanent":
        message.status, message.final_at, message.failure_reason = "failed", now, reason
        message.provider_status = "permanent-failure"
        await next_channel(db, message, now, catalogue)
    else:
        message.status, message.final_at = "failed", now
        message.failure_reason = f"retries exhausted: {reason}"
    await db.commit()
    return result


async def next_channel(
    db: AsyncSession, message: models.Message, now: datetime, catalogue: Catalogue
) -> None:
    """After a permanent failure, the same message by the next channel the victim allows."""
    referral = (
        await db.execute(select(models.Referral).where(models.Referral.id == message.referral_id))
    ).scalar_one()
    facts = load_referral(referral.facts)
    usable = usable_channels(facts)
    later = usable[usable.index(message.channel) + 1 :] if message.channel in usable else []
    texts = set(catalogue.contact.templates.get(message.template) or {})
    for channel in later:
        if channel == "phone" or channel not in texts:
            continue  # a call is staff's; a channel the template has no text for cannot go
        await _queue_copy(db, message, channel, due_at=now, tries=message.tries)
        return


async def resend(db: AsyncSession, message: models.Message, now: datetime) -> bool:
    """After a temporary or technical failure receipt: a new row (a new reference), later."""
    if message.tries >= MAX_TRIES:
        return False
    await _queue_copy(
        db,
        message,
        message.channel,
        due_at=now + backoff(message.tries + 1),
        tries=message.tries + 1,
    )
    return True


async def deliver_all(
    sessions: async_sessionmaker[AsyncSession],
    notifier: Notifier,
    catalogue: Catalogue,
    claimed: list[Claimed],
    parallel: int = 16,
) -> dict[str, int]:
    """Send a claimed batch in chunks (each checked and recorded together), `parallel` sends
    at a time; returns counts by result. Claim in chunks of `CHUNK` (as `sweep` does) so that
    no lease runs out while its row waits its turn."""
    counts: dict[str, int] = {}
    for start in range(0, len(claimed), CHUNK):
        chunk = claimed[start : start + CHUNK]
        results = await _deliver_chunk(sessions, notifier, catalogue, chunk, parallel)
        for result in results.values():
            counts[result] = counts.get(result, 0) + 1
    return counts


async def _queue_copy(
    db: AsyncSession, message: models.Message, channel: str, *, due_at: datetime, tries: int
) -> None:
    """A new queued row (a new reference) for the same step, purpose and template."""
    await db.execute(insert(models.Message), [message_copy_row(message, channel, due_at, tries)])
