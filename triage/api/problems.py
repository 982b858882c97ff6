"""RFC 9457 problem+json answers, for every error the API gives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException

from db.errors import try_again_later
from triage.api.wire_answers import FieldProblem, ProblemDetails
from triage.domain.policy import Forbidden
from triage.domain.problems import InvalidInput, Problem, problem_body
from triage.logs import describe_error
from triage.services.group_writes import WriterBusy
from triage.services.staff_views import NotInScope
from triage.services.updates import NotFound, NotOpen

_log = structlog.get_logger("triage.errors")
PROBLEM = "application/problem+json"
BASE = "https://triage.example/problems/"


class ApiProblem(Exception):
    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str = "",
        errors: Sequence[Problem] = (),
        headers: dict[str, str] | None = None,
    ):
        super().__init__(title)
        self.status, self.slug, self.title, self.detail = status, slug, title, detail
        self.errors = list(errors)
        self.headers = headers or {}


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str = "",
    errors: Sequence[Problem] = (),
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    # Built from the Struct the OpenAPI document describes problems with.
    body = ProblemDetails(
        type=BASE + slug,
        title=title,
        status=status,
        detail=detail,
        errors=[FieldProblem(path=e.path, message=e.message) for e in errors],
    )
    return Response(body, status_code=status, media_type=PROBLEM, headers=headers)


def on_api_problem(_: Request[Any, Any, Any], exc: ApiProblem) -> Response[Any]:
    return problem(exc.status, exc.slug, exc.title, exc.detail, exc.errors, exc.headers)


def on_invalid(_: Request[Any, Any, Any], exc: InvalidInput) -> Response[Any]:
    return Response(problem_body(exc.problems, exc.title), status_code=422, media_type=PROBLEM)


_TITLES = {
    400: "Bad request",
    401: "Unauthorised",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    413: "Request body too large",
    415: "Unsupported media type",
    429: "Too many requests",
}


def on_http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if status >= 500:
        return problem(
            status,
            "server-error",
            "Server error",
            "the service could not answer; nothing was written",
        )
    # Litestar's own detail can quote the input; answer with a fixed sentence instead.
    title = _TITLES.get(status, "Request refused")
    return problem(
        status,
        title.lower().replace(" ", "-"),
        title,
        title,
        headers=getattr(exc, "headers", None) or None,
    )


def on_database_down(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return problem(
        503,
        "unavailable",
        "Service unavailable",
        "the database or Redis could not be reached; nothing was written, try again",
        headers={"Retry-After": "5"},
    )


def on_unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if try_again_later(exc):
        return on_database_down(_, exc)
    # Where it failed, never the exception's message: it can quote the data sent.
    _log.error("unhandled_exception", **describe_error(exc))
    return problem(
        500, "server-error", "Server error", "the service could not answer; nothing was written"
    )


def on_not_found(_: Request[Any, Any, Any], exc: NotFound) -> Response[Any]:
    # Another client's referral answers the same: its existence is never revealed.
    return problem(404, "not-found", "Not found", "no such referral")


def on_not_open(_: Request[Any, Any, Any], exc: NotOpen) -> Response[Any]:
    return problem(409, "conflict", "Conflict", str(exc))


def on_forbidden(_: Request[Any, Any, Any], exc: Forbidden) -> Response[Any]:
    return problem(403, "forbidden", "Forbidden", "the policy does not allow this")


def on_not_in_scope(_: Request[Any, Any, Any], exc: NotInScope) -> Response[Any]:
    # Outside the principal's scope: the same answer as a record that does not exist.
    return problem(404, "not-found", "Not found", "no such record")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    NotFound: on_not_found,
    NotInScope: on_not_in_scope,
    Forbidden: on_forbidden,
    NotOpen: on_not_open,
    ApiProblem: on_api_problem,
    InvalidInput: on_invalid,
    HTTPException: on_http,
    WriterBusy: on_database_down,
    # Database and Redis errors that mean "try again later" are told apart once, by
    # db.errors.try_again_later, in on_unexpected.
    Exception: on_unexpected,
}
