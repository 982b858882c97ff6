"""A person's overrides of the engine's decision, applied to it: the services, priority and
deadline in force. Pure, so the override command, a later re-triage and the machine API all
see the same decision in force; an override's reason is never part of it (it stays with the
override, for staff)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

KINDS = ("add_service", "remove_service", "priority", "deadline")

# Services about sexual violence and domestic abuse: the catalogue's rules make explicit
# consent necessary for such referrals from the police (consent.police_explicit_required), so
# adding one of them by hand to a referral whose consent was only defaulted asks who gave
# consent, when and how.
EXPLICIT_CONSENT_SERVICES = frozenset(
    {"isva", "cisva", "sv-counselling", "male-sv", "domestic-abuse"}
)
CONSENT_HOW = ("phone", "in_person", "written", "police_recorded")


@dataclass(frozen=True)
class OverrideFact:
    kind: str
    service: str | None = None
    priority: str | None = None
    contact_due_by: datetime | None = None


def removed_services(overrides: Sequence[OverrideFact]) -> frozenset[str]:
    """Services taken away and not added back since."""
    removed: set[str] = set()
    for override in overrides:
        if override.kind == "remove_service" and override.service:
            removed.add(override.service)
        elif override.kind == "add_service" and override.service:
            removed.discard(override.service)
    return frozenset(removed)


def added_services(overrides: Sequence[OverrideFact]) -> list[str]:
    added: list[str] = []
    for override in overrides:
        if override.kind == "add_service" and override.service and override.service not in added:
            added.append(override.service)
        elif override.kind == "remove_service" and override.service in added:
            added.remove(override.service)
    return added


def priority_in_force(overrides: Sequence[OverrideFact]) -> str | None:
    last = [o.priority for o in overrides if o.kind == "priority" and o.priority]
    return last[-1] if last else None


def deadline_in_force(overrides: Sequence[OverrideFact]) -> datetime | None:
    last = [o.contact_due_by for o in overrides if o.kind == "deadline" and o.contact_due_by]
    return last[-1] if last else None


def in_force(decision: dict[str, Any], overrides: Sequence[OverrideFact]) -> dict[str, Any]:
    """The decision (its API shape) with the overrides applied."""
    if not overrides:
        return decision
    result = dict(decision)
    removed = removed_services(overrides)
    services = [s for s in decision.get("services", []) if s.get("code") not in removed]
    have = {s.get("code") for s in services}
    for code in added_services(overrides):
        if code not in have:
            services.append({"code": code, "role": "additional", "reasons": ["added by staff"]})
    result["services"] = services
    priority = priority_in_force(overrides)
    if priority:
        result["priority"] = priority
    return result


def disagreements(decision: dict[str, Any], overrides: Sequence[OverrideFact]) -> list[str]:
    """Where a new engine decision and the overrides differ: a person reviews them
    (service_review); the override stands."""
    found = []
    wanted = {s.get("code") for s in decision.get("services", [])}
    for code in sorted(removed_services(overrides) & wanted):
        found.append(f"engine allocates {code}, removed by override")
    for code in added_services(overrides):
        if code not in wanted:
            found.append(f"engine does not allocate {code}, added by override")
    priority = priority_in_force(overrides)
    if priority and decision.get("priority") != priority:
        found.append(f"engine priority {decision.get('priority')}, override {priority}")
    return found
