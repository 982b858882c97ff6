"""The contact plan at work: due steps, call outcomes, pause and resume, the calls-due list.

Every change locks the referral's row first (SELECT ... FOR UPDATE), then its step, so a sweep,
a staff member and a referrer's update never interleave on one referral.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db import models
from triage.domain.calendar import WORKING_DAY_START
from triage.domain.catalogue import Catalogue
from triage.domain.planning import (
    PHONE_CHANNELS,
    ContactRules,
    NextStep,
    StepRecord,
    contact_rules,
    plan_next_step,
)
from triage.domain.referral import Referral
from triage.domain.safety import may_contact
from triage.domain.statuses import OPEN_REFERRAL_STATUSES, STEP, TransitionRefused
from triage.domain.validation import usable_channels
from triage.domain.vocabulary import CALL_OUTCOMES
from triage.services.audit import record_event
from triage.services.closures import (
    cancel_invitations,
    close_open_cases,
    stop_messages,
    stop_pending_contact,
)
from triage.services.referral_rows import RowSet, add_step_rows, message_copy_row

CONTACT_OUTCOMES = ("reached", "declined")


class UnknownOutcome(ValueError):
    pass


class VoicemailNotAllowed(ValueError):
    pass


class StepNotFound(LookupError):
    pass


def load_referral(facts: dict[str, Any]) -> Referral:
    return msgspec.convert(facts, Referral)


async def lock_referral(db: AsyncSession, referral_id: uuid.UUID) -> models.Referral:
    row = (
        await db.execute(
            select(models.Referral).where(models.Referral.id == referral_id).with_for_update()
        )
    ).scalar()
    if row is None:
        raise StepNotFound("no such referral")
    return row


async def _history(db: AsyncSession, referral_id: uuid.UUID) -> list[models.ContactStep]:
    return list(
        (
            await db.execute(
                select(models.ContactStep)
                .where(
                    models.ContactStep.referral_id == referral_id,
                    models.ContactStep.status != "skipped",
                )
                .order_by(models.ContactStep.number, models.ContactStep.created_at)
            )
        ).scalars()
    )


def _wrong_number(steps: list[models.ContactStep]) -> bool:
    return any(s.outcome == "wrong_number" for s in steps)


async def _plan_next(
    db: AsyncSession,
    referral: models.Referral,
    catalogue: Catalogue,
    now: datetime,
    known: tuple[list[models.ContactStep], ContactRules] | None = None,
) -> NextStep | None:
    """Write the plan's next step (and its message) after the last one; None when it ended.
    `known`: the step history and contact rules when the caller has them already."""
    if known is None:
        facts = load_referral(referral.facts)
        known = (
            await _history(db, referral.id),
            contact_rules(facts, usable_channels(facts), catalogue),
        )
    steps, rules = known
    history = [StepRecord(s.number, s.due_at, s.outcome, s.attempted_at) for s in steps]
    nxt = plan_next_step(catalogue.contact, catalogue.calendar, history, rules, now)
    if not isinstance(nxt, NextStep):
        return None
    await insert_step(db, referral, nxt)
    return nxt


async def insert_step(db: AsyncSession, referral: models.Referral, step: NextStep) -> None:
    """A planned step and its message, as rows."""
    rows = RowSet()
    add_step_rows(rows, referral.id, step, referral.priority)
    await db.execute(insert(models.ContactStep), rows.steps)
    if rows.messages:
        await db.execute(insert(models.Message), rows.messages)


async def process_due_step(
    db: AsyncSession, step_id: uuid.UUID, catalogue: Catalogue, now: datetime
) -> str:
    """A step whose time has come: a call goes into the calls-due list, a message step is
    done once its message is queued, the close step closes the cases. Idempotent: a step
    that is no longer scheduled (or not yet due) is left alone. Commits once."""
    result = await _process_due_step(db, step_id, catalogue, now)
    await db.commit()
    return result


async def _process_due_step(
    db: AsyncSession, step_id: uuid.UUID, catalogue: Catalogue, now: datetime
) -> str:
    step = (
        await db.execute(select(models.ContactStep).where(models.ContactStep.id == step_id))
    ).scalar()
    if step is None:
        return "missing"
    referral = await lock_referral(db, step.referral_id)
    await db.refresh(step, with_for_update=True)
    if step.status != "scheduled" or step.due_at > now:
        return "not_due"
    step.claimed_until = None
    step.updated_at = now
    if step.kind == "close":
        if referral.status not in OPEN_REFERRAL_STATUSES:
            step.status, step.skip_reason = "skipped", "plan_ended"
            return "skipped"
        await _close_unable_to_contact(db, referral, step, now)
        return "closed"
    facts = load_referral(referral.facts)
    rules = contact_rules(facts, usable_channels(facts), catalogue)
    steps = await _history(db, referral.id)
    verdict = may_contact(
        referral_status=referral.status,
        paused=referral.contact_paused,
        to_contact=facts.consent.to_contact,
        rules=rules,
        channel=None if step.kind == "call" else step.channel,
        wrong_number=_wrong_number(steps),
        now=now,
    )
    if not verdict.allowed:
        if verdict.reason == "paused":
            step.status = "paused"
            return "paused"
        STEP.check(step.status, "skipped")
        step.status, step.skip_reason = "skipped", verdict.reason
        return "skipped"
    if verdict.not_before is not None:
        step.due_at = verdict.not_before  # moved forward into the next safe window, never early
        return "moved"
    if step.kind == "call":
        STEP.check(step.status, "due")
        step.status = "due"
        return "due"
    # A message-only step: its message row is the work; the plan moves on.
    step.status, step.outcome, step.attempted_at = "done", "message_queued", now
    await _plan_next(db, referral, catalogue, now, known=(steps, rules))
    return "done"


async def _close_unable_to_contact(
    db: AsyncSession, referral: models.Referral, step: models.ContactStep, now: datetime
) -> None:
    reason = step.closure_reason or "unable_to_contact"
    await close_open_cases(db, referral.id, reason, now)
    step.status, step.outcome, step.attempted_at = "done", "plan_ended", now
    referral.status = "closed"
    referral.updated_at = now
    await record_event(db, "system:contact-plan", "referral.closed", referral.id)


@dataclass(frozen=True)
class OutcomeResult:
    outcome: str
    next_step: NextStep | None


async def record_outcome(
    db: AsyncSession,
    step_id: uuid.UUID,
    outcome: str,
    actor: str,
    catalogue: Catalogue,
    now: datetime,
) -> OutcomeResult:
    """A staff member's call outcome. Advances or ends the plan. Commits once."""
    result = await _record_outcome(db, step_id, outcome, actor, catalogue, now)
    await db.commit()
    return result


async def _record_outcome(
    db: AsyncSession,
    step_id: uuid.UUID,
    outcome: str,
    actor: str,
    catalogue: Catalogue,
    now: datetime,
) -> OutcomeResult:
    if outcome not in CALL_OUTCOMES:
        raise UnknownOutcome(
            f"unknown call outcome '{outcome}' (one of {', '.join(CALL_OUTCOMES)})"
        )
    step = (
        await db.execute(select(models.ContactStep).where(models.ContactStep.id == step_id))
    ).scalar()
    if step is None:
        raise StepNotFound("no such contact step")
    referral = await lock_referral(db, step.referral_id)
    await db.refresh(step, with_for_update=True)
    if step.kind != "call":
        raise ValueError("only a call has an outcome")
    if step.status != "due":
        # A call is made when it is due (in the calls-due list); the table also lets a
        # scheduled message or closing step become done when it falls due.
        raise TransitionRefused(STEP.record, step.status, "done")
    if outcome == "voicemail_left" and not load_referral(referral.facts).contact.voicemail_ok:
        # No voicemail without the victim's permission: the record must not say otherwise.
        raise VoicemailNotAllowed("this victim did not allow voicemail: record no_answer instead")
    STEP.check(step.status, "done")
    step.status, step.outcome, step.attempted_at, step.updated_at = "done", outcome, now, now
    referral.updated_at = now
    await record_event(db, actor, f"call.{outcome}", step.id, record_type="contact_step")
    if outcome in CONTACT_OUTCOMES:
        # Contact: the victim was spoken to. The plan ends; pending contact stops.
        if referral.first_contact_at is None:
            referral.first_contact_at = now
            # The wait in the hub's working hours, for the reports (kept after erasure).
            referral.first_contact_working_minutes = catalogue.calendar.working_minutes(
                referral.received_at, now, WORKING_DAY_START, catalogue.end_of_working_day
            )
        if referral.status == "triaged":
            referral.status = "in_contact"
        await db.execute(
            update(models.Case)
            .where(models.Case.referral_id == referral.id, models.Case.first_contact_at.is_(None))
            .values(first_contact_at=now, updated_at=now)
        )
        # Contact in time resolves the P1 alert and the deadline; one whose time has already
        # passed stays pending, so the sweep raises it (a late contact is still a breach).
        # Resolved before the pending contact is cancelled: cancelling would otherwise take
        # pending alerts with it, and an overdue P1 alert would never be raised.
        await db.execute(
            update(models.Alert)
            .where(
                models.Alert.referral_id == referral.id,
                models.Alert.status == "pending",
                models.Alert.kind.in_(("p1_not_reached", "deadline_breach")),
                models.Alert.due_at >= now,
            )
            .values(status="resolved")
        )
        await stop_pending_contact(db, referral.id, now, "plan_ended")
        if outcome == "declined":
            await close_open_cases(db, referral.id, "declined", now)
            referral.status = "closed"
        return OutcomeResult(outcome, None)
    if outcome == "wrong_number":
        # Stop messages to that number at once.
        await cancel_invitations(
            db, referral.id, now, "wrong_number", facts=referral.facts, phone_only=True
        )
        await stop_messages(
            db, referral.id, now, "wrong_number", channels=PHONE_CHANNELS, purpose="contact"
        )
    return OutcomeResult(outcome, await _plan_next(db, referral, catalogue, now))


async def pause_contact(
    db: AsyncSession, referral_id: uuid.UUID, actor: str, now: datetime
) -> None:
    """Stop every pending step and message at once (e.g. police say the perpetrator has the
    victim's phone). The deadline does not stop. Commits once."""
    referral = await lock_referral(db, referral_id)
    if referral.contact_paused:
        return
    referral.contact_paused = True
    referral.updated_at = now
    # A survey is not resumed with the contact: it could come long after the danger that
    # paused it, and it is only ever a request. Every survey to this victim's phone or email
    # stops, whatever the referral.
    await cancel_invitations(db, referral_id, now, "paused", facts=referral.facts)
    await stop_pending_contact(db, referral_id, now, "paused", pause=True)
    await record_event(db, actor, "contact.paused", referral_id)
    await db.commit()


async def resume_contact(
    db: AsyncSession, referral_id: uuid.UUID, actor: str, catalogue: Catalogue, now: datetime
) -> None:
    """Reschedule the paused step to the next safe moment (never earlier), with a fresh
    message in place of one the pause cancelled (never a second copy of one already sent).
    Commits once."""
    referral = await lock_referral(db, referral_id)
    if not referral.contact_paused:
        return
    referral.contact_paused = False
    referral.updated_at = now
    facts = load_referral(referral.facts)
    rules = contact_rules(facts, usable_channels(facts), catalogue)
    for step in (
        await db.execute(
            select(models.ContactStep).where(
                models.ContactStep.referral_id == referral_id, models.ContactStep.status == "paused"
            )
        )
    ).scalars():
        STEP.check(step.status, "scheduled")
        step.status = "scheduled"
        step.due_at = rules.safe_times.next_safe_moment(max(step.due_at, now))
        step.updated_at = now
        copies = [
            message_copy_row(cancelled, cancelled.channel, step.due_at, cancelled.tries)
            for cancelled in await _paused_messages(db, step.id)
        ]
        if copies:
            await db.execute(insert(models.Message), copies)
    await record_event(db, actor, "contact.resumed", referral_id)
    await db.commit()


async def _paused_messages(db: AsyncSession, step_id: uuid.UUID) -> list[models.Message]:
    """The step's messages the pause cancelled, one per channel and template, leaving out any
    that has a copy queued, being sent or sent (never a second copy of a message)."""
    messages = (
        (
            await db.execute(
                select(models.Message)
                .where(models.Message.contact_step_id == step_id)
                .order_by(models.Message.created_at)
            )
        )
        .scalars()
        .all()
    )
    live = {
        (m.channel, m.template)
        for m in messages
        if m.status in ("queued", "sending", "accepted", "delivered")
    }
    found: dict[tuple[str, str], models.Message] = {}
    for message in messages:
        key = (message.channel, message.template)
        if message.status == "cancelled" and message.failure_reason == "paused" and key not in live:
            found[key] = message
    return list(found.values())
