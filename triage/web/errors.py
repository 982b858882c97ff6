"""Errors as people see them: a GOV.UK-styled page for 403, 404, 429, 500 and 503 under the
pages' paths, and the API's problem+json everywhere else. The page says what to do next and
never what went wrong inside (no exception text, no input quoted)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.response import Redirect, Template

from triage.domain.policy import Forbidden
from triage.web.pages import render
from triage.web.public.router import public_errors
from triage.web.staff.guards import SignInRequired

PAGE_PREFIXES = ("/staff",)
# The public pages (issue 11): an error the public router never sees (a wrong method on one of
# its pages, an address no route matches) is still the public page, never the API's JSON.
PUBLIC_PREFIXES = ("/refer", "/survey", "/accessibility", "/privacy", "/cover-your-tracks")

_PAGES = {
    400: ("There is a problem with the page you sent", "Go back and try again."),
    403: ("You do not have permission to see this page", "Ask your duty lead if you need it."),
    404: ("Page not found", "If you typed the web address, check it is correct."),
    405: ("Page not found", "If you typed the web address, check it is correct."),
    413: ("What you sent is too large", "Go back and send less."),
    429: ("Too many attempts", "Wait 15 minutes, then try again."),
    500: ("Sorry, there is a problem with the service", "Try again later."),
    503: ("Sorry, the service is unavailable", "Try again in a few minutes."),
}


def is_page(request: Request[Any, Any, Any]) -> bool:
    path = request.url.path
    return any(path == p or path.startswith(p + "/") for p in PAGE_PREFIXES)


def error_page(status: int, headers: dict[str, str] | None = None, staff: Any = None) -> Template:
    title, advice = _PAGES.get(status, _PAGES[500])
    return render(
        "error.html",
        status=status,
        headers=headers,
        title=title,
        advice=advice,
        code=status,
        staff=staff,
    )


def for_pages(
    api_handler: Callable[[Request[Any, Any, Any], Any], Response[Any]],
) -> Callable[[Request[Any, Any, Any], Any], Response[Any]]:
    """The API's handler for the API, a page for the pages."""

    def handle(request: Request[Any, Any, Any], exc: Any) -> Response[Any]:
        path = request.url.path
        if path == "/" or any(path == p or path.startswith(p + "/") for p in PUBLIC_PREFIXES):
            return public_errors(api_handler)(request, exc)
        if not is_page(request):
            return api_handler(request, exc)
        if isinstance(exc, SignInRequired):
            return Redirect(f"/staff/sign-in?next={quote(exc.next_path, safe='/')}")
        # The API's handler still runs: it logs a server error (without its message) and
        # knows which failures are an outage (503) rather than a fault (500).
        response = api_handler(request, exc)
        status = response.status_code or 500
        if isinstance(exc, Forbidden | PermissionDeniedException | NotAuthorizedException):
            status = 403
        retry = response.headers.get("Retry-After")
        # Signed in (the guard got that far): the page keeps its header and sign-out.
        staff = getattr(request.state, "staff", None)
        return error_page(status, {"Retry-After": retry} if retry else None, staff)

    return handle


def page_exception_handlers(api_handlers: dict[Any, Any]) -> dict[Any, Any]:
    """Every API handler, answering a page under the pages' paths; signing in is pages-only."""
    handlers = {key: for_pages(handler) for key, handler in api_handlers.items()}
    handlers[SignInRequired] = for_pages(api_handlers[Exception])
    return handlers
