"""Appropriate Adult requests from custody (policy: PACE Code C, the PCC's contract).

Juvenile or vulnerable adult is decided here by PACE's rules (a suspicion is enough); which of
them is allocated or signposted, where and when, is the catalogue's `appropriate_adult.rules`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import msgspec

from triage.domain import vocabulary as v
from triage.domain.calendar import age_on, require_utc
from triage.domain.catalogue import Catalogue
from triage.domain.checker import Checker
from triage.domain.contact_details import normalise_phone
from triage.domain.decision import iso_z
from triage.domain.problems import InvalidInput

FIELDS = ("external_ref", "custody_suite", "person", "juvenile", "needed_at", "reason", "requester")
PERSON_FIELDS = ("first_name", "last_name", "date_of_birth", "vulnerabilities", "vulnerable")
REQUESTER_FIELDS = ("name", "phone")


class Person(msgspec.Struct, omit_defaults=True):
    first_name: str | None = None
    last_name: str | None = None
    date_of_birth: date | None = None
    vulnerabilities: list[str] = msgspec.field(default_factory=list)
    vulnerable: bool = False


class Requester(msgspec.Struct, omit_defaults=True):
    name: str | None = None
    phone: str | None = None


class AppropriateAdultRequest(msgspec.Struct, omit_defaults=True):
    external_ref: str
    custody_suite: str
    person: Person
    juvenile: bool | None = None
    needed_at: datetime | None = None
    reason: str | None = None
    requester: Requester | None = None


class AppropriateAdultDecision(msgspec.Struct, frozen=True):
    status: str  # allocated | signposted
    attend_by: datetime | None
    signpost_to: str | None
    reasons: list[str]
    flags: list[str]

    def to_api(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "attend_by": iso_z(self.attend_by),
            "signpost_to": self.signpost_to,
            "reasons": list(self.reasons),
            "flags": list(self.flags),
        }


def validate_aa_request(
    body: Any, received_at: datetime, catalogue: Catalogue
) -> AppropriateAdultRequest:
    c = Checker()
    root = c.object(body, "", FIELDS)
    if root is None:
        raise InvalidInput(c.problems, "Invalid appropriate adult request")
    policy = catalogue.appropriate_adult
    external_ref = c.text(root, "external_ref", "external_ref", required=True, max_length=100)
    suite = c.text(root, "custody_suite", "custody_suite", required=True, max_length=100)
    if suite is not None and suite not in policy.custody_suites:
        c.add("custody_suite", f"unknown custody suite (known: {', '.join(policy.custody_suites)})")
    # A missing person is "required"; one of the wrong type is reported once, by its type.
    person_given = root.get("person")
    person_raw = c.mapping(root, "person", "person", PERSON_FIELDS) or {}
    if person_given is None:
        c.add("person", "is required")
    first = c.text(person_raw, "first_name", "person.first_name", max_length=100)
    last = c.text(person_raw, "last_name", "person.last_name", max_length=100)
    if first is None and last is None and isinstance(person_given, dict):
        c.add("person.first_name", "give person.first_name or person.last_name")
    dob = c.date(person_raw, "date_of_birth", "person.date_of_birth")
    today = received_at.astimezone(catalogue.zone).date()
    if dob is not None:
        if dob > today:
            c.add("person.date_of_birth", "must not be in the future")
            dob = None
        elif age_on(dob, today) < policy.juvenile_from:
            c.add(
                "person.date_of_birth",
                f"gives an age under {policy.juvenile_from}, below the "
                "age of criminal responsibility",
            )
    person = Person(
        first_name=first,
        last_name=last,
        date_of_birth=dob,
        vulnerabilities=c.choices(
            person_raw, "vulnerabilities", "person.vulnerabilities", v.VULNERABILITIES
        ),
        vulnerable=bool(c.boolean(person_raw, "vulnerable", "person.vulnerable")),
    )
    requester_raw = c.mapping(root, "requester", "requester", REQUESTER_FIELDS)
    requester = None
    if requester_raw is not None:
        requester = Requester(
            name=c.text(requester_raw, "name", "requester.name", max_length=100),
            phone=c.normalised(
                requester_raw,
                "phone",
                "requester.phone",
                normalise_phone,
                "must be a possible phone number",
                30,
            ),
        )
    request = AppropriateAdultRequest(
        external_ref=external_ref or "",
        custody_suite=suite or "",
        person=person,
        juvenile=c.boolean(root, "juvenile", "juvenile"),
        needed_at=c.instant(root, "needed_at", "needed_at"),
        reason=c.text(root, "reason", "reason", max_length=500, free_text=True),
        requester=requester,
    )
    if c.problems:
        raise InvalidInput(c.problems, "Invalid appropriate adult request")
    return request


def decide_aa(
    request: AppropriateAdultRequest, received_at: datetime, catalogue: Catalogue
) -> AppropriateAdultDecision:
    policy = catalogue.appropriate_adult
    received_at = require_utc(received_at)
    needed_at = require_utc(request.needed_at) if request.needed_at else None
    judged_at = needed_at or received_at
    local = judged_at.astimezone(catalogue.zone)
    attend_by = needed_at or received_at + policy.attend_within
    reasons: list[str] = []
    flags: list[str] = []
    age = None
    if request.person.date_of_birth is not None:
        age = age_on(request.person.date_of_birth, local.date())
    if request.juvenile:
        person = "juvenile"
        reasons.append(
            "treated as a juvenile: the officer says the person appears to be under "
            f"{policy.juvenile_to + 1} "
            "(PACE Code C)"
        )
        if age is not None and age > policy.juvenile_to:
            flags.append("age_check")
    elif age is not None and age <= policy.juvenile_to:
        person = "juvenile"
        reasons.append(f"juvenile: aged {age} by date of birth")
    else:
        person = "vulnerable_adult"
        if request.person.vulnerabilities or request.person.vulnerable:
            reasons.append("vulnerable adult")
        else:
            # The request is itself the officer's suspicion of vulnerability: never refused.
            reasons.append("treated as a vulnerable adult: the request is the officer's suspicion")
            flags.append("eligibility_check")
    council = policy.custody_suites[request.custody_suite]
    office = (
        local.weekday() in policy.office_days
        and policy.office_from <= local.time() < policy.office_to
        and (
            policy.office_on_bank_holidays or catalogue.calendar.holiday_name(local.date()) is None
        )
    )
    reasons.append(
        ("in office hours" if office else "outside office hours")
        + f" ({local:%a %d %b %Y %H:%M} {catalogue.zone.key})"
    )
    facts = {"aa.person": person, "aa.council": council, "aa.office_hours": office, "age": age}
    for rule in policy.rules:
        if rule.when.test(facts):
            reasons.append(rule.reason)
            if rule.signpost_to is not None:
                return AppropriateAdultDecision(
                    "signposted", None, rule.signpost_to, reasons, flags
                )
            return AppropriateAdultDecision("allocated", attend_by, None, reasons, flags)
    # A catalogue whose rules leave a case uncovered must not drop a detainee: allocate.
    reasons.append("no catalogue rule matched: allocated so that nobody is left without an AA")
    flags.append("eligibility_check")
    return AppropriateAdultDecision("allocated", attend_by, None, reasons, flags)
