"""Changes to a referral after intake: updates from the referrer (re-triage beside the old
decision), withdrawal, and the cancelling of pending contact both can cause (lifecycle.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db import models
from triage.domain.catalogue import Catalogue
from triage.domain.checker import field_path
from triage.domain.decision import iso_z
from triage.domain.engine import first_contact, triage
from triage.domain.overrides import deadline_in_force, disagreements, in_force, priority_in_force
from triage.domain.planning import NextStep
from triage.domain.policy import require
from triage.domain.principals import Principal
from triage.domain.problems import InvalidInput, Problem
from triage.domain.referral import Referral
from triage.domain.statuses import OPEN_CASE_STATUSES, OPEN_STEP_STATUSES, REFERRAL
from triage.domain.validation import consent_given, validate_referral
from triage.services.audit import record_event
from triage.services.catalogues import record_catalogue
from triage.services.clock import service_now
from triage.services.closures import cancel_invitations, close_open_cases, stop_pending_contact
from triage.services.contact_plan import insert_step
from triage.services.overrides import overrides_of
from triage.services.referral_rows import case_row, facts_json, p1_alert_row, report_facts
from triage.services.scoping import referrals_visible_to
from triage.services.staff_views import rows_for_referral

PATCHABLE = ("victim", "contact", "offence", "flags", "risk", "needs", "consent", "notes")
PATCHABLE_VICTIM = (
    "phone",
    "email",
    "address",
    "language",
    "interpreter_needed",
    "vulnerabilities",
)
MERGED_OBJECTS = ("contact", "offence", "risk", "consent")
# Flags a re-triage keeps: raised by people or by the public form, not by the engine, and
# each waiting for a person to look (services/public_referrals, case work).
KEPT_FLAGS = frozenset({"service_review", "safeguarding_review", "possibly_automated"})


class NotFound(LookupError):
    pass


class NotOpen(ValueError):
    """The referral is closed or withdrawn: it cannot be changed any more."""


async def _locked(
    db: AsyncSession, principal: Principal, referral_id: uuid.UUID
) -> models.Referral:
    row = (
        await db.execute(
            select(models.Referral)
            .where(models.Referral.id == referral_id, referrals_visible_to(principal))
            .with_for_update()
        )
    ).scalar()
    if row is None:
        raise NotFound("no such referral")
    return row


async def withdraw(
    db: AsyncSession, principal: Principal, referral_id: uuid.UUID, reason: str
) -> None:
    require(principal, "referral.withdraw")
    referral = await _locked(db, principal, referral_id)
    if referral.erased_at is not None:
        # Erased: nothing more is recorded about the victim (not even a reason).
        raise NotOpen("an erased referral cannot be changed")
    if referral.status == "withdrawn":
        # Already done: the same request twice has the effect of once. Its answer is the
        # referral, read: audited as a reading.
        await record_event(db, principal.actor, "referral.viewed", referral.id)
        await db.commit()
        return
    if not REFERRAL.can(referral.status, "withdrawn"):
        raise NotOpen(f"a {referral.status} referral cannot be withdrawn")
    now = await service_now(db)
    await _withdraw_locked(db, referral, reason, now, principal.actor)
    await db.commit()


async def _withdraw_locked(
    db: AsyncSession, referral: models.Referral, reason: str, now: datetime, actor: str
) -> None:
    referral.status = "withdrawn"
    referral.withdrawn_reason = reason
    referral.updated_at = now
    await cancel_invitations(db, referral.id, now, "withdrawn", facts=referral.facts)
    await stop_pending_contact(db, referral.id, now, "withdrawn", cancel_alerts=True)
    await close_open_cases(db, referral.id, "withdrawn", now)
    await record_event(db, actor, "referral.withdrawn", referral.id)


def _without_nulls(patch: dict[str, Any]) -> dict[str, Any]:
    """A PATCH's null is "not sent": the field stays as it is. A null never clears a field,
    so it can never undo what was said for the victim's safety (a refusal of contact, safe
    times, a channel) and let the permissive default in: a change is made by a value."""
    cleaned: dict[str, Any] = {}
    for key, value in patch.items():
        if value is None:
            continue
        if key in (*MERGED_OBJECTS, "victim") and isinstance(value, dict):
            value = {k: v for k, v in value.items() if v is not None}
            if not value:
                continue
        cleaned[key] = value
    return cleaned


def merge_patch(current: dict[str, Any], patch: Any) -> dict[str, Any]:
    """The stored referral with a partial body laid over it; InvalidInput for fields PATCH
    may not change (identity and the external reference stay as sent)."""
    problems: list[Problem] = []
    if not isinstance(patch, dict):
        raise InvalidInput([Problem("", "must be an object")])
    patch = _without_nulls(patch)
    if not patch:
        raise InvalidInput([Problem("", "nothing to change: give at least one field")])
    for key in patch:
        if key not in PATCHABLE:
            problems.append(
                Problem(
                    field_path("", key),
                    "cannot be changed by PATCH (one of: " + ", ".join(PATCHABLE) + ")",
                )
            )
    victim_patch = patch.get("victim")
    if isinstance(victim_patch, dict):
        for key in victim_patch:
            if key not in PATCHABLE_VICTIM:
                problems.append(Problem(field_path("victim", key), "cannot be changed by PATCH"))
    if problems:
        raise InvalidInput(problems)
    merged = dict(current)
    for key, value in patch.items():
        if key in (*MERGED_OBJECTS, "victim") and isinstance(value, dict):
            merged[key] = {**(current.get(key) or {}), **value}
        else:
            merged[key] = value
    return merged


async def apply_update(
    db: AsyncSession,
    principal: Principal,
    referral_id: uuid.UUID,
    patch: Any,
    catalogue: Catalogue,
) -> None:
    require(principal, "referral.update")
    await record_catalogue(db, catalogue)
    referral = await _locked(db, principal, referral_id)
    if referral.status == "withdrawn" or referral.erased_at is not None:
        raise NotOpen(
            f"a {'withdrawn' if referral.erased_at is None else 'erased'} referral "
            "cannot be changed"
        )
    now = await service_now(db)
    if referral.status == "closed":
        await _update_closed(db, principal, referral, patch, catalogue, now)
        return
    body = merge_patch(referral.facts, patch)
    if referral.referral_consent != "given":
        # Consent that policy defaulted is not consent given: the merged referral carries
        # `to_referral` only when this change gives it, so a change that needs explicit
        # consent (a sexual offence, domestic abuse) is refused without it.
        patch_consent = patch.get("consent")
        if not (isinstance(patch_consent, dict) and patch_consent.get("to_referral") is not None):
            stored = body.get("consent")
            if isinstance(stored, dict):
                body["consent"] = {k: v for k, v in stored.items() if k != "to_referral"}
    if isinstance(body.get("consent"), dict) and body["consent"].get("to_referral") is False:
        await _withdraw_locked(db, referral, "consent to referral withdrawn", now, principal.actor)
        await db.commit()
        return
    facts = validate_referral(body, referral.source, referral.received_at, catalogue)
    given = referral.referral_consent == "given" or consent_given(body, referral.source)
    if facts.content_hash() == referral.content_hash and given == (
        referral.referral_consent == "given"
    ):
        # Nothing changes: no new decision. Its answer is the referral, read: audited.
        await record_event(db, principal.actor, "referral.viewed", referral.id)
        await db.commit()
        return
    referral.referral_consent = "given" if given else "defaulted"
    decision = triage(facts, referral.source, referral.received_at, catalogue)
    # A re-triage never undoes a person's override: the decision stored is the engine's with
    # the overrides in force, and where the two disagree a person reviews it.
    overrides = await overrides_of(db, referral.id)
    await db.execute(
        insert(models.TriageDecision).values(
            referral_id=referral.id,
            decided_at=now,
            cause="update",
            catalogue_version=catalogue.version,
            decision=in_force(decision.to_api(), overrides),
            explanation=decision.explanation,
        )
    )

    # New services open new cases; open cases no longer matched get service_review.
    cases = (
        (await db.execute(select(models.Case).where(models.Case.referral_id == referral.id)))
        .scalars()
        .all()
    )
    have = {c.service for c in cases}
    wanted = {s.code for s in decision.services}
    # The new decision's flags, plus what people must still look at, which stays until a person
    # clears it: case work's service_review, and what the public form saw (a child's own
    # referral, a filled hidden field); flags of the old decision that no longer hold go.
    flags = set(decision.flags) | (set(referral.flags) & KEPT_FLAGS)
    if disagreements(decision.to_api(), overrides):
        flags.add("service_review")
    added = [
        case_row(referral.id, choice.code, "additional", now)
        for choice in decision.services
        if choice.code not in have
    ]
    if added:
        await db.execute(insert(models.Case), added)
    for case in cases:
        if case.service not in wanted and case.status in OPEN_CASE_STATUSES:
            case.flags = sorted({*case.flags, "service_review"})
            case.updated_at = now
            flags.add("service_review")

    # Priority only ever moves the deadline earlier.
    due = decision.contact_due_by
    if deadline_in_force(overrides) is not None:
        due = referral.contact_due_by if facts.consent.to_contact else None
    elif referral.contact_due_by is not None and due is not None:
        due = min(due, referral.contact_due_by)
    elif due is None and facts.consent.to_contact:
        due = referral.contact_due_by
    if priority_in_force(overrides) is None and _rank(decision.priority) < _rank(referral.priority):
        referral.priority = decision.priority
        if decision.priority == "P1":
            await db.execute(
                insert(models.Alert), [p1_alert_row(referral.id, referral.received_at, now)]
            )
    if due is not None and due != referral.contact_due_by:
        await db.execute(
            update(models.Alert)
            .where(
                models.Alert.referral_id == referral.id,
                models.Alert.kind == "deadline_breach",
                models.Alert.status == "pending",
            )
            .values(due_at=due)
        )
    referral.contact_due_by = due
    referral.area = decision.area.code
    for column, value in report_facts(facts, decision, referral.received_at).items():
        setattr(referral, column, value)

    # Consent to contact or to a survey taken back: no survey goes (its messages not yet on
    # their way stop with it).
    await _consent_stops_surveys(db, referral.id, facts, now)
    if not facts.consent.to_contact:
        await stop_pending_contact(db, referral.id, now, "no_contact_consent", cancel_alerts=True)
        flags.add("no_contact_consent")  # also in the decision; kept explicit
    else:
        flags.discard("no_contact_consent")
        await _ensure_plan(db, referral, facts, catalogue, now)
    referral.flags = sorted(flags)
    referral.facts = facts_json(facts)
    referral.content_hash = facts.content_hash()
    referral.updated_at = now
    await record_event(db, principal.actor, "referral.updated", referral.id)
    await db.commit()


async def _consent_stops_surveys(
    db: AsyncSession, referral_id: uuid.UUID, facts: Referral, now: datetime
) -> None:
    """Consent to contact or to a survey taken back: no survey goes to this victim (its
    messages not yet on their way stop with it), from this referral or any other to the same
    phone number or email address."""
    if not facts.consent.to_contact:
        reason = "no_contact_consent"
    elif not facts.consent.to_survey:
        reason = "no_survey_consent"
    else:
        return
    await cancel_invitations(db, referral_id, now, reason, facts=facts_json(facts))


async def _update_closed(
    db: AsyncSession,
    principal: Principal,
    referral: models.Referral,
    patch: Any,
    catalogue: Catalogue,
    now: datetime,
) -> None:
    """A closed referral takes one change: its consent. Its cases are over, but a survey may
    still be due to go, and the victim's "no" must stop it; consent to the referral taken back
    withdraws it. Anything else is refused (409): a closed referral is not re-triaged."""
    body = merge_patch(referral.facts, patch)
    if set(_without_nulls(patch)) != {"consent"}:
        raise NotOpen("a closed referral takes only a change of consent")
    consent = body.get("consent")
    if isinstance(consent, dict) and consent.get("to_referral") is False:
        await _withdraw_locked(db, referral, "consent to referral withdrawn", now, principal.actor)
        await db.commit()
        return
    facts = validate_referral(body, referral.source, referral.received_at, catalogue)
    if facts.content_hash() == referral.content_hash:
        await record_event(db, principal.actor, "referral.viewed", referral.id)
        await db.commit()
        return
    await _consent_stops_surveys(db, referral.id, facts, now)
    flags = set(referral.flags)
    if facts.consent.to_contact:
        flags.discard("no_contact_consent")
    else:
        flags.add("no_contact_consent")
    referral.flags = sorted(flags)
    referral.facts = facts_json(facts)
    referral.content_hash = facts.content_hash()
    referral.updated_at = now
    await record_event(db, principal.actor, "referral.updated", referral.id)
    await db.commit()


def _rank(priority: str) -> int:
    return {"P1": 1, "P2": 2, "P3": 3}.get(priority, 9)


async def _ensure_plan(
    db: AsyncSession, referral: models.Referral, facts: Any, catalogue: Catalogue, now: datetime
) -> None:
    """Contact consent given again, or a plan that never started: write step 1 now."""
    open_step = (
        await db.execute(
            select(models.ContactStep.id).where(
                models.ContactStep.referral_id == referral.id,
                models.ContactStep.status.in_(OPEN_STEP_STATUSES),
            )
        )
    ).first()
    if open_step is not None:
        return
    any_step = (
        await db.execute(
            select(models.ContactStep.id)
            .where(models.ContactStep.referral_id == referral.id)
            .limit(1)
        )
    ).first()
    if any_step is not None and referral.status != "triaged":
        return
    if any_step is not None and referral.first_contact_at is not None:
        return
    step = first_contact(facts, now, catalogue)
    if not isinstance(step, NextStep):
        return
    await insert_step(db, referral, step)


async def decisions(
    db: AsyncSession, principal: Principal, referral_id: uuid.UUID
) -> list[dict[str, Any]]:
    require(principal, "referral.view")
    owner = (
        await db.execute(
            select(models.Referral.id).where(
                models.Referral.id == referral_id, referrals_visible_to(principal)
            )
        )
    ).first()
    if owner is None:
        raise NotFound("no such referral")
    await record_event(
        db,
        principal.actor,
        "referral.viewed",
        referral_id,
        details={"what": "decisions"},
    )
    await db.commit()
    rows = await rows_for_referral(db, models.TriageDecision, referral_id, models.TriageDecision.id)
    return [
        {
            "decided_at": iso_z(r.decided_at),
            "cause": r.cause,
            "catalogue_version": r.catalogue_version,
            "triage": r.decision,
        }
        for r in rows
    ]
