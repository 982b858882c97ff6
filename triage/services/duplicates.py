"""Possible duplicates: what staff see and decide about the links that intake makes.

A trigger links each new referral to the older ones of the same person within 90 days
(normalised name and date of birth, or phone and surname; migration 0009), in the intake's own
transaction. Here the hub (`duplicate.decide`) lists a referral's links and decides each once:

- `dismiss`: not the same person, or nothing to do; the referrals are untouched.
- `merge`: the newer referral closes as a duplicate of the older, which carries on: its pending
  contact stopped (services/closures.py, as a withdrawal stops it), its open cases closed with
  the reason `duplicate`, the referral `closed`.

A hub worker merges into the referral that is still being worked, so the older one must be
open (triaged or in contact): merging into a closed or withdrawn referral would leave the
victim with no open referral at all, and is refused with what to do instead. A newer referral
that has already ended (closed, withdrawn) keeps its own ending: the link is recorded as
merged so it stops asking for a decision, and nothing else changes.

Links are shown to staff only: the machine API's views never read this table, and listing
them needs `duplicate.decide`, which no API key or public form has.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NoReturn

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db import models
from triage.domain.policy import require
from triage.domain.principals import Principal
from triage.domain.statuses import CASE, DUPLICATE, OPEN_REFERRAL_STATUSES, REFERRAL
from triage.services.audit import record_event
from triage.services.clock import service_now
from triage.services.closures import close_open_cases, stop_pending_contact
from triage.services.scoping import referrals_visible_to
from triage.services.staff_actions import person_text

MAX_REASON = 2000
CLOSURE_REASON = "duplicate"


class DuplicateNotFound(LookupError):
    """No such link or referral for this principal (it may exist outside their scope)."""


class DuplicateRefused(ValueError):
    """A decision that cannot be made: `message` is for a GOV.UK error summary, linked to the
    form's `field`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class PossibleDuplicate:
    id: int
    # "newer": this referral may be a duplicate of the other ("possible duplicate of
    # KVR-..."); "older": the other, received later, may be a duplicate of this one.
    this_is: Literal["newer", "older"]
    other_id: uuid.UUID
    other_reference: str
    other_received_at: datetime
    other_status: str
    matched_on: str  # name_and_dob | phone_and_surname
    status: str  # open | merged | dismissed
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    created_at: datetime


async def possible_duplicates(
    db: AsyncSession, principal: Principal, referral_id: uuid.UUID
) -> list[PossibleDuplicate]:
    """The referral's links in both directions, newest first, each with the other referral's
    reference; only links whose other referral is in the principal's scope. Audited as a
    reading and committed."""
    require(principal, "duplicate.decide")
    visible = await db.scalar(
        select(models.Referral.id).where(
            models.Referral.id == referral_id, referrals_visible_to(principal)
        )
    )
    if visible is None:
        await _refused(db, principal, "duplicates.view_refused", referral_id, "referral")
    link = models.ReferralDuplicate
    other = models.Referral  # unaliased: the row scope is written against it
    rows = (
        await db.execute(
            select(link, other.id, other.reference, other.received_at, other.status)
            .join(
                other,
                or_(
                    and_(link.referral_id == referral_id, other.id == link.duplicate_of),
                    and_(link.duplicate_of == referral_id, other.id == link.referral_id),
                ),
            )
            .where(
                or_(link.referral_id == referral_id, link.duplicate_of == referral_id),
                referrals_visible_to(principal),
            )
            .order_by(link.created_at.desc(), link.id.desc())
        )
    ).all()
    found = [
        PossibleDuplicate(
            id=row.ReferralDuplicate.id,
            this_is="newer" if row.ReferralDuplicate.referral_id == referral_id else "older",
            other_id=row.id,
            other_reference=row.reference,
            other_received_at=row.received_at,
            other_status=row.status,
            matched_on=row.ReferralDuplicate.matched_on,
            status=row.ReferralDuplicate.status,
            decided_by=row.ReferralDuplicate.decided_by,
            decided_at=row.ReferralDuplicate.decided_at,
            reason=row.ReferralDuplicate.reason,
            created_at=row.ReferralDuplicate.created_at,
        )
        for row in rows
    ]
    await record_event(
        db,
        principal.actor,
        "duplicates.viewed",
        referral_id,
        details={"links": [item.id for item in found]},
    )
    await db.commit()
    return found


async def dismiss(db: AsyncSession, principal: Principal, link_id: int, reason: str) -> None:
    """Not the same person (or nothing to do): the link is closed, the referrals untouched."""
    require(principal, "duplicate.decide")
    text_value = _reason(reason)
    link, newer, older = await _locked(db, principal, link_id)
    await _still_open(db, link, newer, older)
    now = await service_now(db)
    _decide(link, "dismissed", principal, text_value, now)
    await record_event(
        db,
        principal.actor,
        "duplicate.dismissed",
        link.id,
        record_type="duplicate",
        details={"referral": str(newer.id), "duplicate_of": str(older.id)},
    )
    await db.commit()


async def merge(db: AsyncSession, principal: Principal, link_id: int, reason: str) -> None:
    """The newer referral closes as a duplicate of the older one (see the module's note)."""
    require(principal, "duplicate.decide")
    text_value = _reason(reason)
    link, newer, older = await _locked(db, principal, link_id)
    await _still_open(db, link, newer, older)
    if older.status not in OPEN_REFERRAL_STATUSES:
        if older.status == "closed":
            advice = f"Re-open a case of {older.reference} first, or dismiss this link"
        else:
            advice = f"Dismiss this link: {newer.reference} carries on as it is"
        message = (
            f"{newer.reference} cannot be merged into {older.reference}: it is "
            f"{older.status}. {advice}"
        )
        await db.rollback()  # the locks go at once (the rows read are expired by it)
        raise DuplicateRefused("decision", message)
    now = await service_now(db)
    details = {"referral": str(newer.id), "duplicate_of": str(older.id)}
    if newer.status in OPEN_REFERRAL_STATUSES:
        await _close_as_duplicate(db, principal, newer, older, now)
    else:
        # Its own ending (withdrawn, closed) stands: a withdrawal is not rewritten.
        details["referral_status"] = newer.status
    _decide(link, "merged", principal, text_value, now)
    await record_event(
        db, principal.actor, "duplicate.merged", link.id, record_type="duplicate", details=details
    )
    await db.commit()


async def _close_as_duplicate(
    db: AsyncSession,
    principal: Principal,
    newer: models.Referral,
    older: models.Referral,
    now: datetime,
) -> None:
    REFERRAL.check(newer.status, "closed")
    # Locked here so that the cases closed are exactly the ones audited below.
    case_ids = (
        await db.scalars(
            select(models.Case.id)
            .where(
                models.Case.referral_id == newer.id,
                models.Case.status.in_(CASE.sources("closed")),
            )
            .order_by(models.Case.id)
            .with_for_update()
        )
    ).all()
    await stop_pending_contact(db, newer.id, now, CLOSURE_REASON, cancel_alerts=True)
    # A deadline not yet passed is owed on the older referral now, not on this one; a breach
    # that already happened stays reported (as for a withdrawal).
    await db.execute(
        update(models.Alert)
        .where(
            models.Alert.referral_id == newer.id,
            models.Alert.kind == "deadline_breach",
            models.Alert.status == "pending",
            models.Alert.due_at > now,
        )
        .values(status="cancelled")
    )
    await close_open_cases(db, newer.id, CLOSURE_REASON, now)
    newer.status = "closed"
    newer.updated_at = now
    reason = {"reason": CLOSURE_REASON}
    await record_event(db, principal.actor, "contact.stopped", newer.id, details=reason)
    for case_id in case_ids:
        await record_event(
            db, principal.actor, "case.closed", case_id, record_type="case", details=reason
        )
    await record_event(
        db,
        principal.actor,
        "referral.closed",
        newer.id,
        details={**reason, "duplicate_of": str(older.id)},
    )


def _reason(reason: str) -> str:
    return person_text(
        reason,
        missing="Enter the reason for the decision",
        too_long=f"Reason must be {MAX_REASON:,} characters or fewer",
        limit=MAX_REASON,
        refuse=lambda message: DuplicateRefused("reason", message),
        unprintable="Reason must only include letters, numbers, spaces and punctuation",
    )


async def _locked(
    db: AsyncSession, principal: Principal, link_id: int
) -> tuple[models.ReferralDuplicate, models.Referral, models.Referral]:
    """The link and both its referrals, locked (the link first, then the referrals in id
    order), or DuplicateNotFound when any is missing or outside the principal's scope."""
    link = await db.scalar(
        select(models.ReferralDuplicate)
        .where(models.ReferralDuplicate.id == link_id)
        .with_for_update()
    )
    if link is None:
        await _refused(db, principal, "duplicate.change_refused", link_id, "duplicate")
    referrals = {
        row.id: row
        for row in (
            await db.scalars(
                select(models.Referral)
                .where(
                    models.Referral.id.in_([link.referral_id, link.duplicate_of]),
                    referrals_visible_to(principal),
                )
                .order_by(models.Referral.id)
                .with_for_update()
            )
        ).all()
    }
    if len(referrals) != 2:
        await _refused(db, principal, "duplicate.change_refused", link_id, "duplicate")
    return link, referrals[link.referral_id], referrals[link.duplicate_of]


async def _still_open(
    db: AsyncSession,
    link: models.ReferralDuplicate,
    newer: models.Referral,
    older: models.Referral,
) -> None:
    """A link is decided once: a second decision (a double click, two colleagues at once)
    is refused, saying what was decided."""
    if link.status == "open":
        return
    if link.status == "merged":
        message = f"{newer.reference} was already merged into {older.reference}"
    else:
        message = f"This possible duplicate of {older.reference} was already {link.status}"
    await db.rollback()
    raise DuplicateRefused("decision", message)


def _decide(
    link: models.ReferralDuplicate, status: str, principal: Principal, reason: str, now: datetime
) -> None:
    DUPLICATE.check(link.status, status)
    link.status = status
    link.decided_by = principal.actor
    link.decided_at = now
    link.reason = reason


async def _refused(
    db: AsyncSession, principal: Principal, action: str, record_id: object, record_type: str
) -> NoReturn:
    """Not found for this principal: the attempt is audited (who, which record), then
    DuplicateNotFound."""
    await db.rollback()
    await record_event(db, principal.actor, action, record_id, record_type=record_type)
    await db.commit()
    raise DuplicateNotFound(str(record_id))
