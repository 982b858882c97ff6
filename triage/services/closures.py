"""Ending a referral's open work, the same way wherever it ends (plan ended, declined,
withdrawn, paused, no consent, wrong number): its open steps stopped, its messages stopped,
its open cases closed, its open survey invitations cancelled.

Stopping a message means every message of the referral whose provider call has not started:
`queued` ones, and `sending` ones claimed by a worker that has not yet called the provider
(`call_started_at` is null). The worker re-checks the referral in one statement immediately
before the call (messaging._BEGIN_CALL), under a share lock on the referral's row, so once a
stop has committed no message of the referral reaches the provider. A message whose call had
already started is left to finish: it is recorded as sent, marked `stopped_at`, and shown to
staff as sent after the stop.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import and_, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from db import models
from triage.domain.referral import Referral
from triage.domain.statuses import ALERT, CASE, MESSAGE, STEP, SURVEY
from triage.domain.surveys import contact_keys
from triage.settings import get_settings

# Alerts that only make sense while contact is still being attempted.
CONTACT_ALERTS = ("p1_not_reached", "safe_window_after_deadline")


async def close_open_cases(
    db: AsyncSession, referral_id: uuid.UUID, reason: str, now: datetime
) -> None:
    await db.execute(
        update(models.Case)
        .where(
            models.Case.referral_id == referral_id,
            models.Case.status.in_(CASE.sources("closed")),
        )
        .values(status="closed", closure_reason=reason, closed_at=now, updated_at=now)
    )


async def stop_messages(
    db: AsyncSession,
    referral_id: uuid.UUID,
    now: datetime,
    reason: str,
    channels: Sequence[str] | None = None,
    invitations: Sequence[uuid.UUID] | None = None,
    purpose: str | None = None,
) -> None:
    """Cancel the referral's messages (of `channels`, of survey `invitations`, when given)
    whose provider call has not started; mark those whose call is under way `stopped_at`."""
    mine = [models.Message.referral_id == referral_id]
    if channels is not None:
        mine.append(models.Message.channel.in_(list(channels)))
    if invitations is not None:
        mine.append(models.Message.survey_invitation_id.in_(list(invitations)))
    if purpose is not None:
        mine.append(models.Message.purpose == purpose)
    await db.execute(
        update(models.Message)
        .where(
            *mine,
            # queued or sending (MESSAGE.sources("cancelled")), the call not started
            models.Message.status.in_(MESSAGE.sources("cancelled")),
            or_(models.Message.status != "sending", models.Message.call_started_at.is_(None)),
        )
        .values(
            status="cancelled",
            final_at=now,
            updated_at=now,
            claimed_until=None,
            failure_reason=reason,
        )
    )
    await db.execute(
        update(models.Message)
        .where(
            *mine,
            models.Message.status == "sending",
            models.Message.call_started_at.is_not(None),
            models.Message.stopped_at.is_(None),
        )
        .values(stopped_at=now)
    )


async def stop_pending_contact(
    db: AsyncSession,
    referral_id: uuid.UUID,
    now: datetime,
    reason: str,
    *,
    pause: bool = False,
    cancel_alerts: bool = False,
) -> None:
    """Stop a referral's pending contact at once: its open step `skipped` with `reason` (or
    `paused`, to be rescheduled by a resume), its messages stopped, and with `cancel_alerts`
    the alerts that only matter while contact is attempted. The deadline alert stays: a
    breach is reported whatever stopped the contact."""
    if pause:
        await db.execute(
            update(models.ContactStep)
            .where(
                models.ContactStep.referral_id == referral_id,
                models.ContactStep.status.in_(STEP.sources("paused")),
            )
            .values(status="paused", claimed_until=None, updated_at=now)
        )
    else:
        await db.execute(
            update(models.ContactStep)
            .where(
                models.ContactStep.referral_id == referral_id,
                models.ContactStep.status.in_(STEP.sources("skipped")),
            )
            .values(status="skipped", skip_reason=reason, updated_at=now, claimed_until=None)
        )
    # Contact messages only: a survey is stopped with its invitation (cancel_invitations), never
    # by the end of another case's contact, which would leave the invitation open and its
    # reminder to go without the invitation ever having gone.
    await stop_messages(db, referral_id, now, reason, purpose="contact")
    if cancel_alerts:
        await db.execute(
            update(models.Alert)
            .where(
                models.Alert.referral_id == referral_id,
                models.Alert.status.in_(ALERT.sources("cancelled")),
                models.Alert.kind.in_(CONTACT_ALERTS),
            )
            .values(status="cancelled")
        )


async def cancel_invitations(
    db: AsyncSession,
    referral_id: uuid.UUID,
    now: datetime,
    reason: str,
    *,
    case_id: uuid.UUID | None = None,
    facts: dict[str, Any] | None = None,
    phone_only: bool = False,
) -> list[uuid.UUID]:
    """Cancel the referral's open invitations (of one case, when given) and stop their
    messages not yet on their way: a pause, a withdrawal, a consent change, a wrong number, a
    case re-opened. With `facts` (the referral's), also every open invitation to the same phone
    number (and, unless `phone_only`, the same email address) from any other referral: one
    victim is one person whatever the referral, and "the perpetrator has her phone" must stop
    the survey of an earlier case too. Part of the caller's transaction; called before the
    contact stops, so every writer locks invitations before messages."""
    whose: Any = models.SurveyInvitation.referral_id == referral_id
    if case_id is not None:
        whose = and_(whose, models.SurveyInvitation.case_id == case_id)
    if facts is not None:
        phone_key, email_key = contact_keys(
            msgspec.convert(facts, Referral), get_settings().secret_key
        )
        same = [models.SurveyInvitation.phone_key == phone_key] if phone_key else []
        if email_key and not phone_only:
            same.append(models.SurveyInvitation.email_key == email_key)
        whose = or_(whose, *same)
    cancelled = (
        await db.execute(
            update(models.SurveyInvitation)
            .where(whose, models.SurveyInvitation.status.in_(SURVEY.sources("cancelled")))
            .values(
                status="cancelled", cancel_reason=reason, due_at=None, final_at=now, updated_at=now
            )
            .returning(models.SurveyInvitation.id, models.SurveyInvitation.referral_id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    by_referral: dict[uuid.UUID, list[uuid.UUID]] = {}
    for invitation_id, owner in cancelled:
        by_referral.setdefault(owner, []).append(invitation_id)
    for owner, ids in by_referral.items():
        await stop_messages(db, owner, now, reason, invitations=ids)
    return [invitation_id for invitation_id, _ in cancelled]
