"""A caseworker's work on a case: assign it, start support (the needs assessment and a
support plan note), record the outcome measures (at the needs assessment and at closure), put
it on the service's waiting list, close it with a reason, re-open it with a reason; and the
duty lead's reassignment of a whole caseload (a caseworker who leaves).

Each command takes the principal, finds the case within its scope (outside it: not found, and
audited), checks the transition against the case's lifecycle, and commits once. Re-opening
never restarts a contact plan by itself, and a withdrawn referral's cases never re-open (a new
referral is needed)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db import models
from triage.domain.catalogue import Catalogue
from triage.domain.policy import allows, require
from triage.domain.principals import Principal
from triage.domain.statuses import CASE, OPEN_CASE_STATUSES, REFERRAL
from triage.domain.vocabulary import NEEDS
from triage.services.audit import record_event
from triage.services.closures import cancel_invitations, stop_pending_contact
from triage.services.scoping import cases_visible_to
from triage.services.staff_actions import ActionRefused, person_text
from triage.services.staff_views import NotInScope
from triage.services.surveys import invite_on_closure, save_outcomes

STAFF_CLOSURE_REASONS = ("supported", "declined", "unable_to_contact", "not_eligible", "moved_area")
TEXT_MAX = 8000


async def _case(db: AsyncSession, principal: Principal, case_id: uuid.UUID) -> models.Case:
    case = await db.scalar(
        select(models.Case)
        .where(models.Case.id == case_id, cases_visible_to(principal))
        .with_for_update()
    )
    if case is None:
        await record_event(db, principal.actor, "case.change_refused", case_id, "case")
        await db.commit()
        raise NotInScope(str(case_id))
    return case


def _text(value: str, field: str, missing: str) -> str:
    return person_text(
        value,
        missing=missing,
        too_long=f"Must be {TEXT_MAX:,} characters or fewer",
        limit=TEXT_MAX,
        refuse=lambda message: ActionRefused(field, message),
    )


async def _note(db: AsyncSession, principal: Principal, case: models.Case, body: str) -> None:
    await db.execute(
        insert(models.Note).values(
            referral_id=case.referral_id, case_id=case.id, author=principal.actor, body=body
        )
    )


async def assign(
    db: AsyncSession, principal: Principal, case_id: uuid.UUID, user_id: uuid.UUID, now: datetime
) -> uuid.UUID:
    """To a caseworker of the case's service: by the hub or duty lead, or a caseworker taking
    it themselves."""
    taking_own = principal.kind == "staff" and principal.id == str(user_id)
    if not (allows(principal, "case.assign") or (taking_own and allows(principal, "case.work"))):
        require(principal, "case.assign")
    case = await _case(db, principal, case_id)
    if case.status not in OPEN_CASE_STATUSES:
        raise ActionRefused("assignee", "A closed case cannot be assigned: re-open it first")
    user = await db.get(models.StaffUser, user_id)
    if (
        user is None
        or user.disabled_at is not None
        or "caseworker" not in user.roles
        or case.service not in user.services
    ):
        raise ActionRefused("assignee", "Select a caseworker of this case's service")
    case.assigned_to, case.updated_at = user_id, now
    await record_event(db, principal.actor, "case.assigned", case.id, "case")
    await db.commit()
    return case.referral_id


async def start_support(
    db: AsyncSession,
    principal: Principal,
    case_id: uuid.UUID,
    needs: list[str],
    plan: str,
    now: datetime,
) -> uuid.UUID:
    """`in_support`: the needs assessment recorded (the needs, and the support plan as a case
    note)."""
    require(principal, "case.work")
    case = await _case(db, principal, case_id)
    if not CASE.can(case.status, "in_support") or case.status == "closed":
        raise ActionRefused(
            "needs", f"A case that is {case.status.replace('_', ' ')} cannot start support"
        )
    chosen = [n for n in needs if n in NEEDS]
    if not chosen or len(chosen) != len(needs):
        raise ActionRefused("needs", "Select the needs the assessment found")
    plan_text = _text(plan, "plan", "Enter the support plan")
    case.status = "in_support"
    case.needs = {"needs": sorted(set(chosen)), "assessed_at": now.isoformat()}
    case.updated_at = now
    if case.first_contact_at is None:
        case.first_contact_at = now
    await _note(db, principal, case, "Support plan: " + plan_text)
    await record_event(db, principal.actor, "case.support_started", case.id, "case")
    await db.commit()
    return case.referral_id


async def record_outcomes(
    db: AsyncSession,
    principal: Principal,
    case_id: uuid.UUID,
    stage: str,
    scores: dict[str, str],
    catalogue: Catalogue,
    now: datetime,
) -> uuid.UUID:
    """The outcome measures (the survey's, catalogue data) as the caseworker records them: at
    the needs assessment while the case is open, at closure once it is closed (the survey's
    answers are the victim's own closure scores, kept beside these). Measures left blank are
    left as they were; a measure recorded again replaces the caseworker's earlier score."""
    require(principal, "case.work")
    case = await _case(db, principal, case_id)
    if stage not in ("assessment", "closure"):
        raise ActionRefused("stage", "Select when these were recorded")
    if stage == "assessment" and case.status == "closed":
        raise ActionRefused("stage", "The case is closed: record the measures at closure")
    if stage == "closure" and case.status != "closed":
        raise ActionRefused("stage", "Close the case before recording the measures at closure")
    rows = []
    for measure in catalogue.surveys.outcome_measures:
        raw = (scores.get(measure.key) or "").strip()
        if not raw:
            continue
        value = measure.value_of(raw)
        if not isinstance(value, int):
            raise ActionRefused(measure.key, f"Select a score for {measure.assessment_text}")
        rows.append(
            {
                "case_id": case.id,
                "stage": stage,
                "source": "caseworker",
                "measure": measure.key,
                "score": value,
                "recorded_at": now,
                "recorded_by": principal.actor,
            }
        )
    if not rows:
        first = catalogue.surveys.outcome_measures[0].key
        raise ActionRefused(first, "Select a score for at least one measure")
    await save_outcomes(db, rows)
    await record_event(
        db,
        principal.actor,
        "case.outcomes_recorded",
        case.id,
        "case",
        details={"stage": stage, "measures": len(rows)},
    )
    await db.commit()
    return case.referral_id


async def to_waiting_list(
    db: AsyncSession, principal: Principal, case_id: uuid.UUID, catalogue: Catalogue, now: datetime
) -> uuid.UUID:
    require(principal, "case.work")
    case = await _case(db, principal, case_id)
    service = catalogue.services.get(case.service)
    if service is None or not service.waiting_list:
        raise ActionRefused("action", "This service has no waiting list")
    if not CASE.can(case.status, "waiting_list"):
        raise ActionRefused("action", "Only a case awaiting contact can go on the waiting list")
    case.status, case.updated_at = "waiting_list", now
    await record_event(db, principal.actor, "case.waiting_list", case.id, "case")
    await db.commit()
    return case.referral_id


async def close(
    db: AsyncSession,
    principal: Principal,
    case_id: uuid.UUID,
    reason: str,
    now: datetime,
    *,
    catalogue: Catalogue,
) -> uuid.UUID:
    """Closed with a reason. The last open case closing closes the referral, and its pending
    contact stops. Closed as supported: a survey invitation, when surveys.md allows one, in
    the same transaction."""
    require(principal, "case.work")
    case = await _case(db, principal, case_id)
    if reason not in STAFF_CLOSURE_REASONS:
        raise ActionRefused("reason", "Select why the case is closing")
    if not CASE.can(case.status, "closed"):
        raise ActionRefused("reason", "This case is already closed")
    case.status, case.closure_reason = "closed", reason
    case.closed_at = case.updated_at = now
    await db.flush()
    still_open = await db.scalar(
        select(models.Case.id).where(
            models.Case.referral_id == case.referral_id,
            models.Case.status.in_(OPEN_CASE_STATUSES),
        )
    )
    if still_open is None:
        referral = await db.get(models.Referral, case.referral_id, with_for_update=True)
        if referral is not None and REFERRAL.can(referral.status, "closed"):
            referral.status, referral.updated_at = "closed", now
            await stop_pending_contact(db, referral.id, now, "plan_ended", cancel_alerts=True)
            await record_event(db, principal.actor, "referral.closed", referral.id)
    await record_event(
        db, principal.actor, "case.closed", case.id, "case", details={"reason": reason}
    )
    if reason == "supported":
        await invite_on_closure(db, case, catalogue, now, principal.actor)
    await db.commit()
    return case.referral_id


async def reopen(
    db: AsyncSession, principal: Principal, case_id: uuid.UUID, reason: str, now: datetime
) -> uuid.UUID:
    """Back to `in_support` with a reason (a case note); a closed referral goes back to
    `in_contact`. A withdrawn referral's cases never re-open. No contact plan restarts."""
    require(principal, "case.work")
    case = await _case(db, principal, case_id)
    if case.status != "closed":
        raise ActionRefused("reopen_reason", "Only a closed case can be re-opened")
    text_reason = _text(reason, "reopen_reason", "Enter why the case is re-opening")
    referral = await db.get(models.Referral, case.referral_id, with_for_update=True)
    if referral is None or referral.status == "withdrawn":
        raise ActionRefused("reopen_reason", "The referral was withdrawn: a new referral is needed")
    if referral.erased_at is not None:
        raise ActionRefused(
            "reopen_reason", "The referral's personal data was erased: a new referral is needed"
        )
    if case.closure_reason in ("duplicate", "withdrawn"):
        raise ActionRefused(
            "reopen_reason", "A case closed as a duplicate or withdrawn stays closed"
        )
    CASE.check(case.status, "in_support")
    case.status, case.closure_reason, case.closed_at, case.updated_at = (
        "in_support",
        None,
        None,
        now,
    )
    if referral.status == "closed":
        REFERRAL.check(referral.status, "in_contact")
        referral.status, referral.updated_at = "in_contact", now
    # Support goes on: a survey about it would come too soon (a new one follows the next
    # closure as supported, within the 90-day rule).
    await cancel_invitations(db, referral.id, now, "case_reopened", case_id=case.id)
    await _note(db, principal, case, "Re-opened: " + text_reason)
    await record_event(db, principal.actor, "case.reopened", case.id, "case")
    await db.commit()
    return case.referral_id


async def reassign_caseload(
    db: AsyncSession,
    principal: Principal,
    from_user: uuid.UUID,
    to_user: uuid.UUID,
    now: datetime,
) -> int:
    """Every open case of one caseworker to another (who must work on the same services:
    cases of a service the new caseworker does not work on are left, and counted out)."""
    require(principal, "case.reassign")
    target = await db.get(models.StaffUser, to_user)
    if (
        target is None
        or target.disabled_at is not None
        or "caseworker" not in target.roles
        or from_user == to_user
    ):
        raise ActionRefused("to_user", "Select another caseworker to take the cases")
    moved = (
        (
            await db.execute(
                update(models.Case)
                .where(
                    models.Case.assigned_to == from_user,
                    models.Case.status.in_(OPEN_CASE_STATUSES),
                    models.Case.service.in_(target.services),
                )
                .values(assigned_to=to_user, updated_at=now)
                .returning(models.Case.id)
            )
        )
        .scalars()
        .all()
    )
    await record_event(
        db,
        principal.actor,
        "caseload.reassigned",
        from_user,
        "staff_user",
        details={"to": str(to_user), "cases": len(moved)},
    )
    await db.commit()
    return len(moved)
