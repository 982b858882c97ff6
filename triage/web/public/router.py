"""The public pages as one router at the site's root: no sign-in, and their own error pages.

An error on a public page is a GOV.UK page in the public layout (Exit this page, no staff
links) that says what to do next and never what went wrong inside; every one gives 999 and
the hub's phone number, and 429 (too many attempts) says how long to wait. The API's handler
for the same exception still runs first when the app passes it in: it logs server errors
(without their message) and tells an outage (503) from a fault (500)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from litestar import Request, Response, Router
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.response import Template

from triage.web.pages import render
from triage.web.public.info import InfoController, PublicNotFoundController
from triage.web.public.referral import (
    ExitController,
    ProfessionalReferralController,
    SelfReferralController,
)
from triage.web.public.survey import SurveyController, survey_layout

Handler = Callable[[Request[Any, Any, Any], Any], Response[Any]]

_PAGES = {
    400: ("There is a problem with the page you sent", "Go back and try again."),
    403: (
        "Sorry, we could not take that",
        "This can happen if the page was open for a long time. Go back and try again.",
    ),
    404: ("Page not found", "If you typed the web address, check it is correct."),
    405: ("Page not found", "If you typed the web address, check it is correct."),
    413: ("What you sent is too long", "Go back and send less."),
    429: ("You have tried too many times", "Wait a few minutes, then try again."),
    500: ("Sorry, there is a problem with the service", "Try again later."),
    503: ("Sorry, the service is not working right now", "Try again in a few minutes."),
}


def public_error_page(
    status: int, retry_after: str | None = None, layout: Mapping[str, Any] | None = None
) -> Template:
    """`layout`: the page's own heading (the survey's neutral sender name, no start link)."""
    title, advice = _PAGES.get(status, _PAGES[500])
    if status == 429 and retry_after and retry_after.isdigit():
        minutes = max(1, math.ceil(int(retry_after) / 60))
        advice = f"Wait {minutes} minute{'s' if minutes != 1 else ''}, then try again."
    return render(
        "public/error.html",
        status=status,
        headers={"Retry-After": retry_after} if retry_after else None,
        title=title,
        advice=advice,
        code=status,
        **(layout or {}),
    )


def _status_of(exc: Any) -> int:
    if isinstance(exc, PermissionDeniedException | NotAuthorizedException):
        return 403
    if isinstance(exc, HTTPException):
        return exc.status_code
    return 500


def public_errors(api_handler: Handler | None = None) -> Handler:
    def handle(request: Request[Any, Any, Any], exc: Any) -> Response[Any]:
        if api_handler is None:
            status = _status_of(exc)
            headers = getattr(exc, "headers", None) or {}
            retry = headers.get("Retry-After")
        else:
            response = api_handler(request, exc)
            status = response.status_code or 500
            if isinstance(exc, PermissionDeniedException | NotAuthorizedException):
                status = 403
            retry = response.headers.get("Retry-After")
        layout = survey_layout(request) if request.url.path.startswith("/survey") else None
        return public_error_page(status, retry, layout)

    return handle


def public_router(api_handlers: Mapping[Any, Handler] | None = None) -> Router:
    """`api_handlers`: the app's exception handlers (app.py passes the API's), each answered
    here with a public page; without them, HTTP errors and every other exception still are."""
    handlers: dict[Any, Any] = {
        key: public_errors(handler) for key, handler in (api_handlers or {}).items()
    }
    handlers.setdefault(HTTPException, public_errors())
    handlers.setdefault(Exception, public_errors())
    return Router(
        path="",
        route_handlers=[
            InfoController,
            ExitController,
            SelfReferralController,
            ProfessionalReferralController,
            SurveyController,
            PublicNotFoundController,
        ],
        exception_handlers=handlers,
        include_in_schema=False,
        # Every answer, redirects included: nothing of a public page is kept by a browser or
        # a proxy (a shared phone's back button and history find nothing).
        after_request=_no_store,
    )


async def _no_store(response: Response[Any]) -> Response[Any]:
    response.headers["Cache-Control"] = "no-store"
    return response
