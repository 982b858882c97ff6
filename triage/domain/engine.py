"""The triage engine: facts + catalogue -> decision, with reasons. Pure: no I/O, no clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from triage.domain.calendar import require_utc
from triage.domain.catalogue import Catalogue, Rule
from triage.domain.contact_details import postcode_district
from triage.domain.decision import Area, Decision, FirstContactStep, ServiceChoice, Signpost
from triage.domain.facts import referral_facts
from triage.domain.planning import NextStep, contact_rules, plan_next_step
from triage.domain.referral import Referral
from triage.domain.validation import usable_channels

OUTSIDE, UNKNOWN = "outside", "unknown"


def resolve_area(postcode: str | None, catalogue: Catalogue) -> tuple[Area, bool]:
    """The area of a normalised postcode, and whether a person must check it."""
    if not postcode:
        return Area(UNKNOWN, None, None), True
    district = postcode_district(postcode)
    entry = catalogue.districts.get(district)
    if entry is None:
        return Area(OUTSIDE, None, district), True
    return Area(entry.area, entry.local_authority, district), entry.straddles


def _matches(rules: tuple[Rule, ...], facts: dict[str, Any]) -> list[tuple[Rule, list[str]]]:
    found = []
    for rule in rules:
        if rule.when is None or rule.when.test(facts):
            reasons = [rule.reason]
            if rule.when is not None:
                reasons += rule.when.reasons(facts)
            found.append((rule, reasons))
    return found


def triage(
    referral: Referral, source: str, received_at: datetime, catalogue: Catalogue
) -> Decision:
    received_at = require_utc(received_at)
    facts = referral_facts(referral, source, received_at)
    postcode = referral.victim.address.postcode if referral.victim.address else None
    area, area_check = resolve_area(postcode, catalogue)
    facts["area"] = area.code
    facts["local_authority"] = area.local_authority
    facts["district"] = area.district

    # Services: every allocation rule that matches; one primary by the catalogue's order.
    allocated: dict[str, list[str]] = {}
    for rule, reasons in _matches(catalogue.allocation_rules, facts):
        allocated.setdefault(rule.target, []).extend(reasons)
    if not allocated:
        allocated[catalogue.fallback.target] = [catalogue.fallback.reason]
    order = _rank(catalogue.primary_order)
    codes = sorted(allocated, key=lambda code: order.get(code, len(order)))
    services = [
        ServiceChoice(code, "primary" if i == 0 else "additional", allocated[code])
        for i, code in enumerate(codes)
    ]
    facts["services"] = frozenset(codes)

    signposts = [
        Signpost(rule.target, reasons)
        for rule, reasons in _matches(catalogue.signpost_rules, facts)
    ]

    explanation: dict[str, list[str]] = {}
    groups: list[str] = []
    for rule, reasons in _matches(catalogue.enhanced_rights, facts):
        if rule.target not in groups:
            groups.append(rule.target)
            explanation[f"enhanced_rights.{rule.target}"] = reasons[1:]
    facts["enhanced_rights"] = frozenset(groups)

    level = next(lv for lv in catalogue.priorities if lv.when is None or lv.when.test(facts))
    explanation["priority"] = [level.reason] + (level.when.reasons(facts) if level.when else [])
    if level.elapsed_hours is not None:
        due_by = received_at + timedelta(hours=level.elapsed_hours)
    else:
        due_by = catalogue.calendar.end_of_working_day(
            received_at, level.working_days or 0, catalogue.end_of_working_day
        )

    flags: list[str] = []
    for rule, reasons in _matches(catalogue.flag_rules, facts):
        if rule.target not in flags:
            flags.append(rule.target)
            explanation[f"flags.{rule.target}"] = reasons
    if area_check:
        flags.append("area_check")

    first_step: FirstContactStep | None = None
    planned: NextStep | None = None
    contact_due_by: datetime | None = due_by
    if not referral.consent.to_contact:
        flags.append("no_contact_consent")
        contact_due_by = None
    else:
        rules = contact_rules(referral, usable_channels(referral), catalogue)
        step = plan_next_step(catalogue.contact, catalogue.calendar, [], rules, received_at)
        if isinstance(step, NextStep):
            first_step = FirstContactStep(step.kind, step.channel, step.due_at)
            planned = step
        # Safety beats the deadline: flagged when the victim's first safe moment is after it
        # (not when the plan's first usable step is late for want of a channel).
        if rules.safe_times.next_safe_moment(received_at) > due_by:
            flags.append("safe_window_after_deadline")

    return Decision(
        area=area,
        priority=level.priority,
        enhanced_rights=groups,
        contact_due_by=contact_due_by,
        services=services,
        signposts=signposts,
        first_contact_step=first_step,
        flags=flags,
        catalogue_version=catalogue.version,
        explanation=explanation,
        planned_step=planned,
    )


@lru_cache(maxsize=16)
def _rank(primary_order: tuple[str, ...]) -> dict[str, int]:
    return {code: i for i, code in enumerate(primary_order)}


def first_contact(referral: Referral, received_at: datetime, catalogue: Catalogue) -> object:
    rules = contact_rules(referral, usable_channels(referral), catalogue)
    return plan_next_step(catalogue.contact, catalogue.calendar, [], rules, received_at)
