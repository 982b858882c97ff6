"""A referral typed into a form by a person (hub staff on the phone, a victim or a
professional on the public pages) as the API's referral body, so intake's rules and messages
are the API's; and an API error's path back to the form field it belongs to."""

from __future__ import annotations

from typing import Any

from triage.web.forms import Form

# Form fields are named by the API's paths, so an error's path is its field's id.
TEXT_FIELDS = (
    "victim.first_name",
    "victim.last_name",
    "victim.phone",
    "victim.email",
    "victim.address.line1",
    "victim.address.town",
    "victim.address.postcode",
    "offence.description",
    "offence.occurred_on",
    "referrer.organisation",
    "referrer.name",
    "referrer.role",
    "referrer.phone",
    "referrer.email",
    "contact.notes",
    "notes",
)
CHANNELS = (
    ("phone", "Phone call"),
    ("sms", "Text message"),
    ("email", "Email"),
    ("letter", "Letter"),
)


# Safe times as a person chooses them, and the API's windows for each (London time).
_WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
SAFE_WINDOWS = {
    "weekday_mornings": (_WEEKDAYS, "09:00", "12:00"),
    "weekday_afternoons": (_WEEKDAYS, "12:00", "17:00"),
    "weekday_evenings": (_WEEKDAYS, "17:00", "20:00"),
    "weekends": (["sat", "sun"], "10:00", "16:00"),
}


def body_of(form: Form, external_ref: str) -> dict[str, Any]:
    """The referral body the API would be sent: only what was answered."""
    body: dict[str, Any] = {"external_ref": external_ref}
    for name in TEXT_FIELDS:
        value = form.get(name)
        if not value:
            continue
        target = body
        *parents, leaf = name.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    day, month, year = (form.get(f"victim.date_of_birth-{p}") for p in ("day", "month", "year"))
    if day or month or year:
        body.setdefault("victim", {})["date_of_birth"] = (
            f"{year.zfill(4)}-{month.zfill(2)}-{day.zfill(2)}"
        )
    if form.get("offence.category"):
        body.setdefault("offence", {})["category"] = form.get("offence.category")
    channels = form.many("contact.channels")
    contact = body.setdefault("contact", {})
    if channels:
        contact["channels"] = channels
    windows = [SAFE_WINDOWS[w] for w in form.many("contact.safe_windows") if w in SAFE_WINDOWS]
    if windows:
        contact["safe_times"] = [{"days": d, "from": f, "to": t} for d, f, t in windows]
    for answer in ("voicemail_ok", "letter_ok"):
        if form.get(f"contact.{answer}"):
            contact[answer] = form.get(f"contact.{answer}") == "yes"
    if form.many("needs"):
        body["needs"] = form.many("needs")
    consent: dict[str, Any] = {"to_referral": form.get("consent.to_referral") == "yes"}
    for answer in ("to_contact", "to_survey"):
        if form.get(f"consent.{answer}"):
            consent[answer] = form.get(f"consent.{answer}") == "yes"
    body["consent"] = consent
    return body


LABELS = {
    "victim.first_name": "First name",
    "victim.last_name": "Last name",
    "victim.date_of_birth-day": "Date of birth",
    "victim.phone": "Phone number",
    "victim.email": "Email address",
    "victim.address.line1": "Address",
    "victim.address.town": "Town",
    "victim.address.postcode": "Postcode",
    "offence.category": "What happened",
    "offence.description": "Description",
    "offence.occurred_on": "Date it happened",
    "contact.channels": "How to contact",
    "contact.notes": "Contact notes",
    "referrer.organisation": "Organisation",
    "referrer.name": "Professional's name",
    "referrer.role": "Role",
    "referrer.phone": "Professional's phone",
    "referrer.email": "Professional's email",
    "consent.to_referral": "Consent",
    "notes": "Notes",
}

_FIELD_FOR = {
    "victim.date_of_birth": "victim.date_of_birth-day",
    "victim": "victim.first_name",
    "offence": "offence.category",
    "contact": "contact.channels",
    "contact.channels": "contact.channels",
    "consent": "consent.to_referral",
}


def field_of(path: str) -> str:
    """The field an API error path belongs to (list items and nested paths to their field)."""
    base = path.split("[")[0]
    if base in TEXT_FIELDS or base in (
        "offence.category",
        "consent.to_referral",
        "consent.to_contact",
        "contact.voicemail_ok",
    ):
        return base
    for prefix, field in _FIELD_FOR.items():
        if base == prefix or base.startswith(prefix + "."):
            return field
    return "victim.first_name"
