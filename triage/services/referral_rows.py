"""The rows one triaged referral writes: referral, decision, cases, first contact step,
its message and the alerts due later. Built in memory so that one referral and a batch of ten
thousand are written by the same set-based statements."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import msgspec

from triage.domain.calendar import age_band
from triage.domain.decision import Decision
from triage.domain.planning import NextStep
from triage.domain.referral import Referral

P1_ALERT_AFTER = timedelta(hours=4)


@dataclass
class RowSet:
    referrals: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    cases: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def extend(self, other: RowSet) -> None:
        self.referrals += other.referrals
        self.decisions += other.decisions
        self.cases += other.cases
        self.steps += other.steps
        self.messages += other.messages
        self.alerts += other.alerts


def facts_json(referral: Referral) -> dict[str, Any]:
    return msgspec.to_builtins(referral)  # type: ignore[no-any-return]


def report_facts(referral: Referral, decision: Decision, received_at: datetime) -> dict[str, Any]:
    """The referral's columns reports read (migration 0015): written with it, and again when
    its facts change, never derived from personal data later (it may be erased by then)."""
    return {
        "offence_category": referral.offence.category,
        "age_band": age_band(referral.victim.date_of_birth, received_at, age=referral.victim.age),
        "enhanced_rights": list(decision.enhanced_rights),
        "signposts": [s.code for s in decision.signposts],
    }


def add_referral_rows(
    rows: RowSet,
    *,
    referral_id: uuid.UUID,
    client_id: uuid.UUID | None,
    source: str,
    referral: Referral,
    content_hash: str,
    consent_given: bool,
    decision: Decision,
    received_at: datetime,
) -> None:
    rows.referrals.append(
        {
            "id": referral_id,
            "client_id": client_id,
            "external_ref": referral.external_ref,
            "source": source,
            "status": "triaged",
            "received_at": received_at,
            "referred_at": referral.referred_at,
            "content_hash": content_hash,
            "facts": facts_json(referral),
            "referral_consent": "given" if consent_given else "defaulted",
            "priority": decision.priority,
            "contact_due_by": decision.contact_due_by,
            "area": decision.area.code,
            "flags": list(decision.flags),
            **report_facts(referral, decision, received_at),
            "created_at": received_at,
            "updated_at": received_at,
        }
    )
    rows.decisions.append(
        {
            "referral_id": referral_id,
            "decided_at": received_at,
            "cause": "intake",
            "catalogue_version": decision.catalogue_version,
            "decision": decision.to_api(),
            "explanation": decision.explanation,
        }
    )
    for choice in decision.services:
        rows.cases.append(case_row(referral_id, choice.code, choice.role, received_at))
    step = decision.planned_step
    if step is None:
        return
    add_step_rows(rows, referral_id, step, decision.priority)
    if decision.priority == "P1":
        rows.alerts.append(p1_alert_row(referral_id, received_at, received_at))
    if "safe_window_after_deadline" in decision.flags:
        rows.alerts.append(alert_row(referral_id, "safe_window_after_deadline", received_at))
    if decision.contact_due_by is not None:
        rows.alerts.append(alert_row(referral_id, "deadline_breach", decision.contact_due_by))


def case_row(referral_id: uuid.UUID, service: str, role: str, now: datetime) -> dict[str, Any]:
    """A new case of a service, awaiting contact."""
    return {
        "id": uuid.uuid4(),
        "referral_id": referral_id,
        "service": service,
        "role": role,
        "status": "awaiting_contact",
        "opened_at": now,
        "updated_at": now,
    }


def p1_alert_row(referral_id: uuid.UUID, received_at: datetime, now: datetime) -> dict[str, Any]:
    """The duty lead's alert when a P1 victim is not reached 4 hours after receipt (at once
    when a referral becomes P1 later than that)."""
    return alert_row(referral_id, "p1_not_reached", max(now, received_at + P1_ALERT_AFTER))


def add_step_rows(rows: RowSet, referral_id: uuid.UUID, step: NextStep, priority: str) -> uuid.UUID:
    """A planned step (and its message) of a referral of `priority`: the step carries its
    referral's priority for the calls-due list's index (a trigger keeps it when it changes)."""
    step_id = uuid.uuid4()
    rows.steps.append(
        {
            "id": step_id,
            "referral_id": referral_id,
            "priority": priority,
            "number": step.number,
            "kind": step.kind,
            "channel": step.channel,
            "status": "scheduled",
            "due_at": step.due_at,
            "message_template": step.message_template,
            "message_channel": step.message_channel,
            "closure_reason": step.closure_reason,
        }
    )
    if step.message_template and step.message_channel:
        # A call's accompanying message, or the step's own message: due with the step.
        rows.messages.append(
            {
                "id": uuid.uuid4(),
                "referral_id": referral_id,
                "contact_step_id": step_id,
                "purpose": "contact",
                "channel": step.message_channel,
                "template": step.message_template,
                "status": "queued",
                "due_at": step.due_at,
            }
        )
    return step_id


def alert_row(referral_id: uuid.UUID, kind: str, due_at: datetime) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "referral_id": referral_id,
        "kind": kind,
        "status": "pending",
        "due_at": due_at,
    }


def message_copy_row(message: Any, channel: str, due_at: datetime, tries: int) -> dict[str, Any]:
    """A new queued message (a new reference) for the same step, purpose and template as
    `message`: by the next channel after a permanent failure, again after a temporary one,
    or in place of one a pause cancelled."""
    return {
        "id": uuid.uuid4(),
        "referral_id": message.referral_id,
        "contact_step_id": message.contact_step_id,
        "survey_invitation_id": message.survey_invitation_id,
        "purpose": message.purpose,
        "channel": channel,
        "template": message.template,
        "status": "queued",
        "due_at": due_at,
        "tries": tries,
    }
