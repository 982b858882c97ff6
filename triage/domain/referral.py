"""A victim referral as api.md defines it, after validation and normalisation.

Values are normalised (E.164 phones, formatted postcodes, consent defaults applied), so two
bodies that say the same thing give equal structs and the same content hash.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any

import msgspec


class Address(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    line1: str | None = None
    line2: str | None = None
    town: str | None = None
    county: str | None = None
    postcode: str | None = None


class Victim(msgspec.Struct, omit_defaults=True):
    first_name: str | None = None
    last_name: str | None = None
    date_of_birth: date | None = None
    age: int | None = None
    gender: str | None = None
    phone: str | None = None
    email: str | None = None
    address: Address | None = None
    language: str | None = None
    interpreter_needed: bool = False
    vulnerabilities: list[str] = msgspec.field(default_factory=list)


class SafeTimeWindow(msgspec.Struct):
    days: list[str]
    from_: str = msgspec.field(name="from")
    to: str = ""


class Contact(msgspec.Struct, omit_defaults=True):
    channels: list[str] = msgspec.field(default_factory=list)
    safe_times: list[SafeTimeWindow] = msgspec.field(default_factory=list)
    voicemail_ok: bool = False
    letter_ok: bool = False
    notes: str | None = None


class Offence(msgspec.Struct, omit_defaults=True):
    category: str = "other"
    ho_code: str | None = None
    description: str | None = None
    occurred_on: date | None = None
    hate_motivations: list[str] = msgspec.field(default_factory=list)


class Risk(msgspec.Struct, omit_defaults=True):
    dash_score: int | None = None
    level: str | None = None
    marac_referred: bool = False


class Consent(msgspec.Struct):
    """Effective consent after the intake rules (defaults applied)."""

    to_referral: bool = True
    to_contact: bool = True
    to_survey: bool = False
    recorded_by: str | None = None
    recorded_at: datetime | None = None


class Referrer(msgspec.Struct, omit_defaults=True):
    organisation: str | None = None
    name: str | None = None
    role: str | None = None
    phone: str | None = None
    email: str | None = None


class Referral(msgspec.Struct, omit_defaults=True):
    external_ref: str
    victim: Victim
    offence: Offence
    contact: Contact = msgspec.field(default_factory=Contact)
    consent: Consent = msgspec.field(default_factory=Consent)
    referred_at: datetime | None = None
    flags: list[str] = msgspec.field(default_factory=list)
    risk: Risk = msgspec.field(default_factory=Risk)
    needs: list[str] = msgspec.field(default_factory=list)
    referrer: Referrer | None = None
    notes: str | None = None

    def content_hash(self) -> str:
        """SHA-256 of the normalised content: the idempotency comparison for resends."""
        return content_hash_of(msgspec.to_builtins(self))


def content_hash_of(facts: dict[str, Any]) -> str:
    """SHA-256 of a referral's normalised content as the sender sent it (`facts`, the stored
    JSON shape): never of a value derived from the clock. The victim's age derived from a date
    of birth changes on every birthday, so with a date of birth the age is left out (an age
    sent beside it was checked against it at intake, and says nothing more)."""
    victim = facts.get("victim")
    if isinstance(victim, dict) and victim.get("date_of_birth") is not None and "age" in victim:
        facts = {**facts, "victim": {k: v for k, v in victim.items() if k != "age"}}
    return hashlib.sha256(msgspec.json.encode(facts, order="sorted")).hexdigest()
