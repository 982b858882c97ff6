"""The survey pages (surveys.md), at `/survey/{token}`: no sign-in, the token in the link is the
only key. One short page of questions, every one optional, sent once.

Why one page rather than one question per page: the survey is short (ten questions, all
optional), so one page with one "Send" keeps nothing half-way (no answers stored between pages,
no session or cookie at all), carries the token in as few requests as possible, and a person on
a phone scrolls it in about three minutes; each question is its own fieldset with its own
legend, so a screen reader still meets them one at a time.

Every link that does not open a survey (wrong, malformed, expired, used, cancelled) answers the
same neutral page with the same status, so the page tells nobody anything about whose link it
was or what became of it. The token never reaches a log (logs.loggable_path), a Referer
(`no-referrer` on every page) or a cache (`no-store`); the form's CSRF value is derived from
the token, so only a page opened with the link can send it.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from triage.domain.catalogue import Catalogue
from triage.domain.surveys import read_answers
from triage.services import surveys
from triage.web.dependencies import Db
from triage.web.forms import Form, read_form
from triage.web.pages import render
from triage.web.public.referral import count_public_post

DONE = "/survey/thank-you"


def _csrf(request: Request[Any, Any, Any], token: str) -> str:
    key = request.app.state.settings.secret_key.encode()
    return hmac.new(key, f"survey-form:{token}".encode(), hashlib.sha256).hexdigest()


def _catalogue(request: Request[Any, Any, Any]) -> Catalogue:
    return request.app.state.catalogue  # type: ignore[no-any-return]


def survey_layout(request: Request[Any, Any, Any]) -> dict[str, Any]:
    # The sender's neutral name (the one the text message came from) heads the page, so a
    # browser's history shows "Your feedback – Kent Support Line", not a crime.
    return {
        "public_service_name": _catalogue(request).contact.sender_name,
        "public_service_url": None,
    }


def _gone(request: Request[Any, Any, Any]) -> Any:
    return render(
        "public/survey_gone.html",
        status=404,
        title="This link does not work",
        **survey_layout(request),
    )


class SurveyController(Controller):
    path = "/survey"
    include_in_schema = False

    @get("/thank-you")
    async def thank_you(self, request: Request[Any, Any, Any]) -> Any:
        return render("public/survey_done.html", title="Thank you", **survey_layout(request))

    # `path`, not `str`: any address under /survey (an extra segment, an encoded slash) is the
    # same neutral page, never the site's "Page not found".
    @get("/{token:path}")
    async def show(self, request: Request[Any, Any, Any], db: Db, token: FromPath[str]) -> Any:
        token = token.lstrip("/")
        if await surveys.open_survey(db, token) is None:
            return _gone(request)
        return self._page(request, token, Form())

    @post("/{token:path}", status_code=200)
    async def send(self, request: Request[Any, Any, Any], db: Db, token: FromPath[str]) -> Any:
        token = token.lstrip("/")
        await count_public_post(request)
        if await surveys.open_survey(db, token) is None:
            return _gone(request)
        form = await read_form(request, _csrf(request, token))
        answers = read_answers(_catalogue(request).surveys, form.values)
        for name, message in answers.errors.items():
            form.error(name, message)
        if form.errors:
            return self._page(request, token, form, status=400)
        if not await surveys.submit_survey(db, token, answers, _catalogue(request)):
            # Sent already (a second click, a replay) or run out meanwhile: the same page as
            # any link that does not work.
            return _gone(request)
        return Redirect(DONE, status_code=303)

    def _page(
        self, request: Request[Any, Any, Any], token: str, form: Form, status: int = 200
    ) -> Any:
        return render(
            "public/survey.html",
            status=status,
            title="Your feedback",
            policy=_catalogue(request).surveys,
            form=form,
            csrf=_csrf(request, token),
            action=f"/survey/{token}",
            error_summary=form.summary if form.errors else None,
            **survey_layout(request),
        )
