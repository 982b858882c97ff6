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
from triage.web.referral_body import CHANNELS, LABELS, body_of, field_of
from triage.web.staff.work import _flash, _staff


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
