"""A phone referral: hub staff type what a victim or a professional tells them; the answers
become the API's referral body and go through intake, so the rules and the error messages are
the API's (shown as a GOV.UK error summary, each linked to its field, values kept)."""

from __future__ import annotations

import secrets
from typing import Any

from litestar import Controller, Request, get, post
from litestar.response import Redirect

from triage.domain.problems import InvalidInput
from triage.domain.vocabulary import OFFENCE_CATEGORIES
from triage.services.phone_referrals import take_phone_referral
from triage.web.dependencies import Db
from triage.web.forms import Form, read_form
from triage.web.pages import render
from triage.web.staff.work import _flash, _staff

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
    if form.get("contact.voicemail_ok"):
        contact["voicemail_ok"] = form.get("contact.voicemail_ok") == "yes"
    consent: dict[str, Any] = {"to_referral": form.get("consent.to_referral") == "yes"}
    if form.get("consent.to_contact"):
        consent["to_contact"] = form.get("consent.to_contact") == "yes"
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


class PhoneReferralController(Controller):
    path = "/staff/phone-referral"

    @get("/", opt={"permission": "referral.create"})
    async def form_page(self, request: Request[Any, Any, Any]) -> Any:
        return _page(request, None, "PHONE-" + secrets.token_hex(8))

    @post("/", opt={"permission": "referral.create"})
    async def submit(self, request: Request[Any, Any, Any], db: Db) -> Any:
        staff = _staff(request)
        form = await read_form(request, staff.csrf)
        external_ref = form.get("external_ref")
        if not external_ref.startswith("PHONE-") or len(external_ref) > 40:
            external_ref = "PHONE-" + secrets.token_hex(8)
        source = form.get("source")
        if source not in ("self", "professional"):
            form.error("source", "Select who is calling")
        if form.get("consent.to_referral") != "yes":
            form.error(
                "consent.to_referral",
                "The caller must agree to the referral: without consent, signpost instead",
            )
        if not form.errors:
            try:
                result = await take_phone_referral(
                    db,
                    request.app.state.pg,
                    staff.principal,
                    source,
                    body_of(form, external_ref),
                    request.app.state.catalogue,
                )
            except InvalidInput as invalid:
                for problem in invalid.problems:
                    field = field_of(problem.path)
                    label = LABELS.get(field, "This answer")
                    form.error(field, f"{label} {problem.message}")
            else:
                await _flash(request, f"Referral {result.reference} taken")
                return Redirect(f"/staff/referrals/{result.id}")
        return _page(request, form, external_ref, status=400)


def _page(
    request: Request[Any, Any, Any], form: Form | None, external_ref: str, status: int = 200
) -> Any:
    staff = _staff(request)
    return render(
        "staff/phone_referral.html",
        status=status,
        title="Take a phone referral",
        staff=staff,
        nav_active="/staff/phone-referral",
        form=form,
        external_ref=external_ref,
        categories=[(c, c.replace("_", " ").capitalize()) for c in OFFENCE_CATEGORIES],
        channels=CHANNELS,
        error_summary=form.summary if form and form.errors else None,
    )
