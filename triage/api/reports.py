"""GET /api/v1/reports: a report as JSON for the commissioner's own tools (reports.md), the
same figures and rules as the report pages. Keys of a `commissioner` client carry only
`reports:read`, which reaches this route and nothing else; an API client always gets
disclosure control."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get
from litestar.params import FromQuery, Parameter

from triage.api.dependencies import Db
from triage.api.operation_docs import READ_REPORT
from triage.api.security import caller_for
from triage.domain.periods import Period, PeriodError
from triage.domain.problems import InvalidInput, Problem
from triage.services import reports


@get(
    "/api/v1/reports",
    summary="A report of one service or all services over whole months",
    operation_id="read_report",
    operation_class=READ_REPORT,
    description="`?service=CODE|all&from=YYYY-MM&to=YYYY-MM`: a whole calendar quarter or a "
    "financial year (April to March), beside the period before it and the same period a "
    "year earlier, with disclosure control (over time by quarter, never by month).",
)
async def read_report(
    request: Request[Any, Any, Any],
    db: Db,
    service: FromQuery[str | None] = None,
    start: Annotated[str | None, Parameter(query="from")] = None,
    to: FromQuery[str | None] = None,
) -> dict[str, Any]:
    caller = await caller_for(request, "report.view")
    catalogue = request.app.state.catalogue
    problems: list[Problem] = []
    code = service or "all"
    if code != "all" and code not in catalogue.services:
        problems.append(Problem("service", "must be `all` or one of the catalogue's services"))
    period = None
    if not start:
        problems.append(Problem("from", "is required: the first month, YYYY-MM"))
    else:
        try:
            period = Period.of_months(start, to)
        except PeriodError as error:
            problems.append(Problem(error.field, str(error)))
    if problems or period is None:
        raise InvalidInput(problems)
    try:
        report = await reports.build_report(
            db, caller.principal, catalogue, None if code == "all" else code, period
        )
    except reports.PeriodRefused as refused:
        raise InvalidInput([Problem("from", str(refused))]) from None
    return reports.as_json(report)
