"""Validation of a victim referral body (api.md): every problem at once, then a `Referral`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from triage.domain import vocabulary as v
from triage.domain.calendar import age_on, parse_clock
from triage.domain.catalogue import Catalogue
from triage.domain.checker import Checker
from triage.domain.contact_details import normalise_email, normalise_phone, normalise_postcode
from triage.domain.facts import referral_facts
from triage.domain.problems import InvalidInput
from triage.domain.referral import (
    Address,
    Consent,
    Contact,
    Offence,
    Referral,
    Referrer,
    Risk,
    SafeTimeWindow,
    Victim,
)

TOP_FIELDS = (
    "external_ref",
    "referred_at",
    "victim",
    "contact",
    "offence",
    "flags",
    "risk",
    "needs",
    "consent",
    "referrer",
    "notes",
)
VICTIM_FIELDS = (
    "first_name",
    "last_name",
    "date_of_birth",
    "age",
    "gender",
    "phone",
    "email",
    "address",
    "language",
    "interpreter_needed",
    "vulnerabilities",
)
ADDRESS_FIELDS = ("line1", "line2", "town", "county", "postcode")
CONTACT_FIELDS = ("channels", "safe_times", "voicemail_ok", "letter_ok", "notes")
OFFENCE_FIELDS = ("category", "ho_code", "description", "occurred_on", "hate_motivations")
RISK_FIELDS = ("dash_score", "level", "marac_referred")
CONSENT_FIELDS = ("to_referral", "to_contact", "to_survey", "recorded_by", "recorded_at")
REFERRER_FIELDS = ("organisation", "name", "role", "phone", "email")
PHONE_MESSAGE = "must be a possible phone number (UK numbers may start 0, others need +)"
POSTCODE_MESSAGE = "must be a UK postcode, such as CT1 2AB"
EMAIL_MESSAGE = "must be an email address"


def validate_referral(
    body: Any, source: str, received_at: datetime, catalogue: Catalogue, prefix: str = ""
) -> Referral:
    """A normalised `Referral`, or `InvalidInput` with every problem (paths under `prefix`)."""
    c = Checker()
    referral = _check(c, body, source, received_at, catalogue)
    if c.problems or referral is None:
        problems = c.problems
        if prefix:
            problems = [
                type(p)(f"{prefix}.{p.path}" if p.path else prefix, p.message) for p in problems
            ]
        raise InvalidInput(problems)
    return referral


def _check(
    c: Checker, body: Any, source: str, received_at: datetime, catalogue: Catalogue
) -> Referral | None:
    root = c.object(body, "", TOP_FIELDS)
    if root is None:
        return None
    today = received_at.astimezone(catalogue.zone).date()
    external_ref = c.text(root, "external_ref", "external_ref", required=True, max_length=100)
    referred_at = c.instant(root, "referred_at", "referred_at")

    # A missing object is "required"; one of the wrong type is reported once, by its type.
    victim_given = root.get("victim")
    victim_raw = c.mapping(root, "victim", "victim", VICTIM_FIELDS) or {}
    if victim_given is None:
        c.add("victim", "is required")
    first = c.text(victim_raw, "first_name", "victim.first_name", max_length=100)
    last = c.text(victim_raw, "last_name", "victim.last_name", max_length=100)
    if first is None and last is None and isinstance(victim_given, dict):
        c.add("victim.first_name", "give victim.first_name or victim.last_name")
    dob = c.date(victim_raw, "date_of_birth", "victim.date_of_birth")
    age = c.integer(victim_raw, "age", "victim.age", 0, 120)
    if dob is not None:
        if dob > today:
            c.add("victim.date_of_birth", "must not be in the future")
            dob = None
        elif age_on(dob, today) > 120:
            c.add("victim.date_of_birth", "gives an age over 120")
            dob = None
    if dob is not None and age is not None and age_on(dob, today) != age:
        c.add("victim.age", "does not match victim.date_of_birth")
    address_raw = c.mapping(victim_raw, "address", "victim.address", ADDRESS_FIELDS)
    address = None
    if address_raw is not None:
        address = Address(
            line1=c.text(address_raw, "line1", "victim.address.line1"),
            line2=c.text(address_raw, "line2", "victim.address.line2"),
            town=c.text(address_raw, "town", "victim.address.town", max_length=100),
            county=c.text(address_raw, "county", "victim.address.county", max_length=100),
            postcode=c.normalised(
                address_raw,
                "postcode",
                "victim.address.postcode",
                normalise_postcode,
                POSTCODE_MESSAGE,
                max_length=10,
            ),
        )
    language = c.text(victim_raw, "language", "victim.language", max_length=2)
    if language is not None and language not in v.LANGUAGES:
        c.add("victim.language", "must be an ISO 639-1 language code, such as en")
        language = None
    victim = Victim(
        first_name=first,
        last_name=last,
        date_of_birth=dob,
        age=age if dob is None else age_on(dob, today),
        gender=c.choice(victim_raw, "gender", "victim.gender", v.GENDERS),
        phone=c.normalised(victim_raw, "phone", "victim.phone", normalise_phone, PHONE_MESSAGE, 30),
        email=c.normalised(
            victim_raw, "email", "victim.email", normalise_email, EMAIL_MESSAGE, 254
        ),
        address=address,
        language=language,
        interpreter_needed=bool(
            c.boolean(victim_raw, "interpreter_needed", "victim.interpreter_needed")
        ),
        vulnerabilities=c.choices(
            victim_raw, "vulnerabilities", "victim.vulnerabilities", v.VULNERABILITIES
        ),
    )

    contact_raw = c.mapping(root, "contact", "contact", CONTACT_FIELDS) or {}
    contact = Contact(
        channels=c.choices(contact_raw, "channels", "contact.channels", v.CHANNELS),
        safe_times=_safe_times(c, contact_raw),
        voicemail_ok=bool(c.boolean(contact_raw, "voicemail_ok", "contact.voicemail_ok")),
        letter_ok=bool(c.boolean(contact_raw, "letter_ok", "contact.letter_ok")),
        notes=c.text(contact_raw, "notes", "contact.notes", max_length=2000, free_text=True),
    )

    offence_given = root.get("offence")
    offence_raw = c.mapping(root, "offence", "offence", OFFENCE_FIELDS) or {}
    if offence_given is None:
        c.add("offence.category", "is required")
    occurred_on = c.date(offence_raw, "occurred_on", "offence.occurred_on")
    if occurred_on is not None and occurred_on > today:
        c.add("offence.occurred_on", "must not be in the future")
        occurred_on = None
    category = c.choice(
        offence_raw,
        "category",
        "offence.category",
        v.OFFENCE_CATEGORIES,
        required=isinstance(offence_given, dict),
    )
    offence = Offence(
        category=category or "other",
        ho_code=c.text(offence_raw, "ho_code", "offence.ho_code", max_length=20),
        description=c.text(
            offence_raw, "description", "offence.description", max_length=4000, free_text=True
        ),
        occurred_on=occurred_on,
        hate_motivations=c.choices(
            offence_raw, "hate_motivations", "offence.hate_motivations", v.HATE_MOTIVATIONS
        ),
    )
    flags = c.choices(root, "flags", "flags", v.REFERRAL_FLAGS)
    risk_raw = c.mapping(root, "risk", "risk", RISK_FIELDS) or {}
    risk = Risk(
        dash_score=c.integer(risk_raw, "dash_score", "risk.dash_score", 0, 27),
        level=c.choice(risk_raw, "level", "risk.level", v.RISK_LEVELS),
        marac_referred=bool(c.boolean(risk_raw, "marac_referred", "risk.marac_referred")),
    )
    needs = c.choices(root, "needs", "needs", v.NEEDS)
    referrer_raw = c.mapping(root, "referrer", "referrer", REFERRER_FIELDS)
    referrer = None
    if referrer_raw is not None:
        referrer = Referrer(
            organisation=c.text(referrer_raw, "organisation", "referrer.organisation"),
            name=c.text(referrer_raw, "name", "referrer.name"),
            role=c.text(referrer_raw, "role", "referrer.role"),
            phone=c.normalised(
                referrer_raw, "phone", "referrer.phone", normalise_phone, PHONE_MESSAGE, 30
            ),
            email=c.normalised(
                referrer_raw, "email", "referrer.email", normalise_email, EMAIL_MESSAGE, 254
            ),
        )
    notes = c.text(root, "notes", "notes", max_length=8000, free_text=True)

    consent_raw = c.mapping(root, "consent", "consent", CONSENT_FIELDS)
    given = consent_raw or {}
    to_referral = c.boolean(given, "to_referral", "consent.to_referral")
    to_contact = c.boolean(given, "to_contact", "consent.to_contact")
    to_survey = c.boolean(given, "to_survey", "consent.to_survey")
    consent = Consent(
        to_referral=True,
        to_contact=to_contact is not False,
        to_survey=to_survey is True,
        recorded_by=c.text(given, "recorded_by", "consent.recorded_by", max_length=100),
        recorded_at=c.instant(given, "recorded_at", "consent.recorded_at"),
    )
    # Checked on, even without an external_ref, so that every problem is reported at once.
    referral = Referral(
        external_ref=external_ref or "",
        referred_at=referred_at,
        victim=victim,
        offence=offence,
        contact=contact,
        consent=consent,
        flags=flags,
        risk=risk,
        needs=needs,
        referrer=referrer,
        notes=notes,
    )
    _check_consent(c, referral, to_referral, source, received_at, catalogue)
    if consent.to_contact and not usable_channels(referral):
        c.add(
            "contact.channels",
            "no usable contact route: list a channel with what it needs "
            "(phone or sms with a phone number, email with an email "
            "address, letter with a postal address and letter_ok true)",
        )
    return referral if external_ref is not None else None


def _check_consent(
    c: Checker,
    referral: Referral,
    to_referral: bool | None,
    source: str,
    received_at: datetime,
    catalogue: Catalogue,
) -> None:
    if source == "self":
        return  # a self-referral consents by being submitted
    if source == "professional":
        if to_referral is not True:
            c.add(
                "consent.to_referral",
                "a professional must confirm the victim's consent (consent.to_referral: true)",
            )
        return
    if to_referral is False:
        c.add("consent.to_referral", "the victim asked not to be referred")
        return
    if to_referral is True:
        return
    facts = referral_facts(referral, source, received_at)
    for rule in catalogue.explicit_consent:
        if rule.when is not None and rule.when.test(facts):
            c.add("consent.to_referral", rule.reason)
            return


def consent_given(body: Any, source: str) -> bool:
    """Whether consent to the referral was given (explicitly by a police sender, confirmed by
    a professional, or by a victim referring themselves) rather than defaulted, as policy
    allows a police referral of, say, a theft. For a body `validate_referral` accepted."""
    if source != "police":
        return True
    consent = body.get("consent") if isinstance(body, dict) else None
    return isinstance(consent, dict) and consent.get("to_referral") is True


def usable_channels(referral: Referral) -> list[str]:
    """The listed channels that have what they need, in the victim's order of preference."""
    victim, contact = referral.victim, referral.contact
    usable = []
    for channel in contact.channels:
        if channel in ("phone", "sms") and victim.phone:
            usable.append(channel)
        elif channel == "email" and victim.email:
            usable.append(channel)
        elif (
            channel == "letter"
            and contact.letter_ok
            and victim.address is not None
            and victim.address.line1
            and victim.address.postcode
        ):
            usable.append(channel)
    return usable


def _safe_times(c: Checker, contact_raw: dict[str, Any]) -> list[SafeTimeWindow]:
    raw = contact_raw.get("safe_times")
    if raw is None:
        return []
    if not isinstance(raw, list):
        c.add("contact.safe_times", "must be a list")
        return []
    windows = []
    for index, item in enumerate(raw):
        path = f"contact.safe_times[{index}]"
        window = c.object(item, path, ("days", "from", "to"))
        if window is None:
            continue
        days = c.choices(window, "days", f"{path}.days", v.DAYS)
        if not days and window.get("days") is None:  # null is absent, as everywhere
            c.add(f"{path}.days", "is required")
        times = []
        for key in ("from", "to"):
            value = window.get(key)
            try:
                times.append(parse_clock(value) if isinstance(value, str) else None)
                if not isinstance(value, str):
                    c.add(f"{path}.{key}", "is required, as HH:MM")
            except ValueError as error:
                c.add(f"{path}.{key}", str(error))
                times.append(None)
        if days and all(times):
            # Days in week order: the same window listed another way is the same content.
            ordered = sorted(days, key=v.DAYS.index)
            windows.append(SafeTimeWindow(days=ordered, from_=window["from"], to=window["to"]))
    return windows
