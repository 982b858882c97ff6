"""What staff do to a referral from its page: add a note, record a call's outcome, pause and
resume all contact. Each takes the principal, checks the policy and the row scope (a referral
outside it is not found), and commits once; the contact plan's own commands do the work."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from db import models
from triage.domain.catalogue import Catalogue
from triage.domain.checker import clean_text
from triage.domain.policy import require, sees_case_notes_of
from triage.domain.principals import Principal
from triage.services import contact_plan
from triage.services.audit import record_event
from triage.services.scoping import referrals_visible_to
from triage.services.staff_views import NotInScope

NOTE_MAX = 8000


class ActionRefused(ValueError):
    """Refused with a message to show beside `field`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


UNPRINTABLE = "Remove the characters that are not letters or punctuation"


def person_text(
    value: str,
    *,
    missing: str,
    too_long: str,
    limit: int,
    refuse: Callable[[str], Exception],
    unprintable: str = UNPRINTABLE,
) -> str:
    """Free text a person typed (a note, a reason): trimmed, line breaks kept, refused when
    empty, carrying a control character, or longer than `limit` (`refuse(message)` is raised)."""
    cleaned = clean_text(value.strip(), free_text=True)
    if not value.strip():
        raise refuse(missing)
    if cleaned is None:
        raise refuse(unprintable)
    if len(cleaned) > limit:
        raise refuse(too_long)
    return cleaned


async def visible_referral(
    db: AsyncSession, principal: Principal, referral_id: uuid.UUID
) -> models.Referral:
    referral = await db.scalar(
        select(models.Referral).where(
            models.Referral.id == referral_id, referrals_visible_to(principal)
        )
    )
    if referral is None:
        await record_event(db, principal.actor, "referral.change_refused", referral_id)
        await db.commit()
        raise NotInScope(str(referral_id))
    return referral


async def add_note(
    db: AsyncSession,
    principal: Principal,
    referral_id: uuid.UUID,
    body: str,
    case_id: uuid.UUID | None = None,
) -> int:
    """An append-only note on the referral, or on one of its cases the principal works on."""
    require(principal, "referral.note")
    referral = await visible_referral(db, principal, referral_id)
    if referral.erased_at is not None:
        # Its personal data was erased: nothing new is written about the victim.
        raise ActionRefused("note", "This referral's personal data was erased: no new notes")
    text_value = person_text(
        body,
        missing="Enter the note",
        too_long=f"Note must be {NOTE_MAX:,} characters or fewer",
        limit=NOTE_MAX,
        refuse=lambda message: ActionRefused("note", message),
    )
    if case_id is not None:
        case = await db.get(models.Case, case_id)
        if (
            case is None
            or case.referral_id != referral_id
            or not sees_case_notes_of(principal, case.service)
        ):
            raise ActionRefused("case", "Choose one of your cases, or the referral")
    note_id = await db.scalar(
        insert(models.Note)
        .values(referral_id=referral_id, case_id=case_id, author=principal.actor, body=text_value)
        .returning(models.Note.id)
    )
    await record_event(db, principal.actor, "note.added", referral_id)
    await db.commit()
    return int(note_id or 0)


async def record_call(
    db: AsyncSession,
    principal: Principal,
    referral_id: uuid.UUID,
    step_id: uuid.UUID,
    outcome: str,
    catalogue: Catalogue,
    now: datetime,
) -> contact_plan.OutcomeResult:
    require(principal, "call.record")
    await visible_referral(db, principal, referral_id)
    step = await db.get(models.ContactStep, step_id)
    if step is None or step.referral_id != referral_id:
        raise ActionRefused("outcome", "This call is no longer due: reload the page")
    try:
        return await contact_plan.record_outcome(
            db, step_id, outcome, principal.actor, catalogue, now
        )
    except (ValueError, contact_plan.StepNotFound) as refused:
        await db.rollback()
        if isinstance(refused, contact_plan.VoicemailNotAllowed):
            message = "This victim did not allow voicemail: record no answer instead"
        elif isinstance(refused, contact_plan.UnknownOutcome):
            message = "Select the outcome of the call"
        else:
            message = "This call is no longer due: reload the page"
        raise ActionRefused("outcome", message) from refused


async def pause(
    db: AsyncSession, principal: Principal, referral_id: uuid.UUID, now: datetime
) -> None:
    require(principal, "contact.pause")
    await visible_referral(db, principal, referral_id)
    await contact_plan.pause_contact(db, referral_id, principal.actor, now)


async def resume(
    db: AsyncSession,
    principal: Principal,
    referral_id: uuid.UUID,
    catalogue: Catalogue,
    now: datetime,
) -> None:
    require(principal, "contact.pause")
    await visible_referral(db, principal, referral_id)
    await contact_plan.resume_contact(db, referral_id, principal.actor, catalogue, now)
