"""Overriding the engine's decision by hand: a service added or removed, the priority or the
deadline changed, always with a reason. The override is kept beside the engine's decision
(its own row, and a decision of cause `override` holding what is in force, without the
reason); a later re-triage never undoes it (updates.apply_update applies the overrides and
flags `service_review` where the engine disagrees)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db import models
from triage.domain.catalogue import Catalogue
from triage.domain.checker import clean_text
from triage.domain.overrides import CONSENT_HOW, EXPLICIT_CONSENT_SERVICES, OverrideFact, in_force
from triage.domain.policy import require
from triage.domain.principals import Principal
from triage.domain.statuses import CASE
from triage.services.audit import record_event
from triage.services.contact_plan import lock_referral
from triage.services.referral_rows import case_row, p1_alert_row
from triage.services.staff_actions import ActionRefused, person_text, visible_referral

REASON_MAX = 2000
PRIORITIES = ("P1", "P2", "P3")


async def overrides_of(db: AsyncSession, referral_id: uuid.UUID) -> list[OverrideFact]:
    rows = (
        await db.execute(
            select(
                models.Override.kind,
                models.Override.service,
                models.Override.priority,
                models.Override.contact_due_by,
            )
            .where(models.Override.referral_id == referral_id)
            .order_by(models.Override.id)
        )
    ).all()
    return [OverrideFact(r.kind, r.service, r.priority, r.contact_due_by) for r in rows]


def _reason(value: str) -> str:
    return person_text(
        value,
        missing="Enter the reason for the override",
        too_long=f"Reason must be {REASON_MAX:,} characters or fewer",
        limit=REASON_MAX,
        refuse=lambda message: ActionRefused("reason", message),
    )


async def override(
    db: AsyncSession,
    principal: Principal,
    referral_id: uuid.UUID,
    kind: str,
    reason: str,
    catalogue: Catalogue,
    now: datetime,
    *,
    service: str | None = None,
    priority: str | None = None,
    contact_due_by: datetime | None = None,
    consent: dict[str, str] | None = None,
) -> None:
    """One override, checked, recorded and put in force. Commits once."""
    require(principal, "decision.override")
    await visible_referral(db, principal, referral_id)
    referral = await lock_referral(db, referral_id)
    if referral.status not in ("triaged", "in_contact"):
        raise ActionRefused("kind", f"A {referral.status} referral's decision cannot be changed")
    text_reason = _reason(reason)
    cases = {
        c.service: c
        for c in (
            await db.execute(select(models.Case).where(models.Case.referral_id == referral_id))
        ).scalars()
    }
    row: dict[str, object] = {
        "referral_id": referral_id,
        "kind": kind,
        "reason": text_reason,
        "actor": principal.actor,
    }
    if kind == "add_service":
        if (
            service is None
            or service not in catalogue.services
            or catalogue.services[service].mode != "allocate"
        ):
            raise ActionRefused("service", "Select a service from the list")
        existing = cases.get(service)
        if existing is not None and existing.status != "closed":
            raise ActionRefused("service", "This referral already has an open case of that service")
        if existing is not None:
            raise ActionRefused("service", "Re-open the closed case of that service instead")
        if service in EXPLICIT_CONSENT_SERVICES and referral.referral_consent != "given":
            row["consent"] = _consent(consent, now)
        await db.execute(insert(models.Case), [case_row(referral_id, service, "additional", now)])
        row["service"] = service
    elif kind == "remove_service":
        case = cases.get(service or "")
        if case is None or not CASE.can(case.status, "closed"):
            raise ActionRefused("service", "Select an open case to remove")
        if sum(1 for c in cases.values() if c.status != "closed") == 1:
            raise ActionRefused(
                "service", "This is the referral's only open case: add another service first"
            )
        case.status, case.closure_reason = "closed", "not_eligible"
        case.closed_at = case.updated_at = now
        row["service"] = service
    elif kind == "priority":
        if priority not in PRIORITIES:
            raise ActionRefused("priority", "Select a priority")
        if priority == referral.priority:
            raise ActionRefused("priority", f"The priority is already {priority}")
        await _replan_for_priority(db, referral, priority, now)
        row["priority"] = priority
    elif kind == "deadline":
        if contact_due_by is None:
            raise ActionRefused("deadline_date", "Enter the new deadline as a date and time")
        if contact_due_by <= now:
            raise ActionRefused("deadline_date", "The deadline must be in the future")
        referral.contact_due_by = contact_due_by
        await db.execute(
            update(models.Alert)
            .where(
                models.Alert.referral_id == referral_id,
                models.Alert.kind == "deadline_breach",
                models.Alert.status == "pending",
            )
            .values(due_at=contact_due_by)
        )
        row["contact_due_by"] = contact_due_by
    else:
        raise ActionRefused("kind", "Choose what to change")
    await db.execute(insert(models.Override).values(**row))
    latest = await db.scalar(
        select(models.TriageDecision)
        .where(models.TriageDecision.referral_id == referral_id)
        .order_by(models.TriageDecision.id.desc())
        .limit(1)
    )
    if latest is not None:
        facts = await overrides_of(db, referral_id)
        await db.execute(
            insert(models.TriageDecision).values(
                referral_id=referral_id,
                decided_at=now,
                cause="override",
                catalogue_version=latest.catalogue_version,
                decision=in_force(latest.decision, facts),
                explanation=latest.explanation,
            )
        )
    referral.updated_at = now
    await record_event(
        db, principal.actor, "decision.overridden", referral_id, details={"kind": kind}
    )
    await db.commit()


def _consent(consent: dict[str, str] | None, now: datetime) -> dict[str, str]:
    consent = consent or {}
    given_by = (consent.get("given_by") or "").strip()
    given_on = (consent.get("given_on") or "").strip()
    how = consent.get("how") or ""
    if not given_by or clean_text(given_by) is None or len(given_by) > 200:
        raise ActionRefused("consent_given_by", "Enter who gave consent")
    if not given_on:
        raise ActionRefused("consent_given_on", "Enter when consent was given")
    try:
        when = datetime.fromisoformat(given_on)
    except ValueError:
        raise ActionRefused(
            "consent_given_on", "Enter when consent was given as a date, like 2026-12-03"
        ) from None
    if when.date() > now.date():
        raise ActionRefused("consent_given_on", "Consent cannot be given in the future")
    if how not in CONSENT_HOW:
        raise ActionRefused("consent_how", "Select how consent was given")
    return {"given_by": given_by, "given_on": when.date().isoformat(), "how": how}


async def _replan_for_priority(
    db: AsyncSession, referral: models.Referral, priority: str, now: datetime
) -> None:
    """A higher priority brings the next step forward to now (never into a time the victim
    said is unsafe: the sweep checks safe times before anything is sent) and raises the P1
    alert; a lower one cancels a pending P1 alert and leaves the plan as it is."""
    raising = PRIORITIES.index(priority) < PRIORITIES.index(referral.priority)
    referral.priority = priority
    if raising:
        moved = (
            (
                await db.execute(
                    update(models.ContactStep)
                    .where(
                        models.ContactStep.referral_id == referral.id,
                        models.ContactStep.status == "scheduled",
                        models.ContactStep.due_at > now,
                    )
                    .values(due_at=now, updated_at=now)
                    .returning(models.ContactStep.id)
                )
            )
            .scalars()
            .all()
        )
        if moved:
            # The step's queued message goes with it (the sender still waits for a safe time).
            await db.execute(
                update(models.Message)
                .where(
                    models.Message.contact_step_id.in_(moved),
                    models.Message.status == "queued",
                    models.Message.due_at > now,
                )
                .values(due_at=now, updated_at=now)
            )
        if priority == "P1":
            open_alert = await db.scalar(
                select(models.Alert.id).where(
                    models.Alert.referral_id == referral.id,
                    models.Alert.kind == "p1_not_reached",
                    models.Alert.status.in_(("pending", "raised")),
                )
            )
            if open_alert is None and referral.first_contact_at is None:
                await db.execute(
                    insert(models.Alert), [p1_alert_row(referral.id, referral.received_at, now)]
                )
    elif referral.priority != "P1":
        await db.execute(
            update(models.Alert)
            .where(
                models.Alert.referral_id == referral.id,
                models.Alert.kind == "p1_not_reached",
                models.Alert.status == "pending",
            )
            .values(status="cancelled")
        )
