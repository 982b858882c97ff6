"""The facts a rule may test, with their kinds, and the facts built from a referral.

Facts are a flat dict keyed by dotted names (`offence.category`), lists as frozensets, so a
rule leaf is a dict look-up. Adding a fact here is the only code change a new rule may need.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from triage.domain import vocabulary as v
from triage.domain.calendar import LONDON, age_on
from triage.domain.referral import Referral
from triage.domain.rules import BOOL, NUMBER, SET, TEXT

VICTIM_FACTS: dict[str, str] = {
    "kind": TEXT,
    "source": TEXT,
    "age": NUMBER,
    "age_at_offence": NUMBER,
    "gender": TEXT,
    "vulnerabilities": SET,
    "language": TEXT,
    "interpreter_needed": BOOL,
    "offence.category": TEXT,
    "offence.hate_motivations": SET,
    "flags": SET,
    "needs": SET,
    "risk.level": TEXT,
    "risk.dash_score": NUMBER,
    "risk.marac_referred": BOOL,
    "area": TEXT,
    "local_authority": TEXT,
    "district": TEXT,
    "consent.to_referral": BOOL,
    "consent.to_contact": BOOL,
    "consent.to_survey": BOOL,
    "contact.channels": SET,
    # Derived during triage, for the rules that follow: enhanced_rights for priority,
    # services for flags.
    "enhanced_rights": SET,
    "services": SET,
}

FACT_VALUES: dict[str, tuple[Any, ...]] = {
    "kind": v.KINDS,
    "source": v.SOURCES,
    "gender": v.GENDERS,
    "vulnerabilities": v.VULNERABILITIES,
    "offence.category": v.OFFENCE_CATEGORIES,
    "offence.hate_motivations": v.HATE_MOTIVATIONS,
    "flags": v.REFERRAL_FLAGS,
    "needs": v.NEEDS,
    "risk.level": v.RISK_LEVELS,
    "contact.channels": v.CHANNELS,
    "enhanced_rights": v.ENHANCED_RIGHTS_GROUPS,
}

APPROPRIATE_ADULT_FACTS: dict[str, str] = {
    "aa.person": TEXT,
    "aa.council": TEXT,
    "aa.office_hours": BOOL,
    "age": NUMBER,
}
APPROPRIATE_ADULT_VALUES: dict[str, tuple[Any, ...]] = {
    "aa.person": ("juvenile", "vulnerable_adult"),
}


def victim_age(referral: Referral, on: date) -> int | None:
    victim = referral.victim
    if victim.date_of_birth is not None:
        return age_on(victim.date_of_birth, on)
    return victim.age


def referral_facts(referral: Referral, source: str, received_at: datetime) -> dict[str, Any]:
    """Facts from the referral itself; area facts are added by the engine from the catalogue."""
    received_day = received_at.astimezone(LONDON).date()
    age = victim_age(referral, received_day)
    offence = referral.offence
    age_at_offence = age
    if offence.occurred_on is not None and referral.victim.date_of_birth is not None:
        age_at_offence = age_on(referral.victim.date_of_birth, offence.occurred_on)
    elif offence.occurred_on is not None and age is not None:
        # Only a given age: assume no birthday fell between the offence and receipt beyond
        # the whole years elapsed (calendar years would age a New Year's offence by one).
        years_since = age_on(offence.occurred_on, received_day)
        age_at_offence = max(age - years_since, 0)
    return {
        "kind": "victim",
        "source": source,
        "age": age,
        "age_at_offence": age_at_offence,
        "gender": referral.victim.gender,
        "vulnerabilities": frozenset(referral.victim.vulnerabilities),
        "language": referral.victim.language,
        "interpreter_needed": referral.victim.interpreter_needed,
        "offence.category": offence.category,
        "offence.hate_motivations": frozenset(offence.hate_motivations),
        "flags": frozenset(referral.flags),
        "needs": frozenset(referral.needs),
        "risk.level": referral.risk.level,
        "risk.dash_score": referral.risk.dash_score,
        "risk.marac_referred": referral.risk.marac_referred,
        "consent.to_referral": referral.consent.to_referral,
        "consent.to_contact": referral.consent.to_contact,
        "consent.to_survey": referral.consent.to_survey,
        "contact.channels": frozenset(referral.contact.channels),
        "area": None,
        "local_authority": None,
        "district": None,
        "enhanced_rights": frozenset(),
        "services": frozenset(),
    }
