"""The report pages (reports.md) for `commissioner`, `duty_lead` and `admin` users: a service or
all services over whole months (a month, a quarter, a financial year or a range), beside the
period before and the same period a year earlier; charts drawn on the server with the same
figures in tables; the CSV of the same report. The commissioner sees disclosure control and no
personal data (no breach list by reference); staff roles see exact figures."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.params import FromQuery, Parameter
from litestar.response import Redirect

from triage.domain.periods import Period, PeriodError, add_months, last_quarter
from triage.services import reports
from triage.services.clock import service_now
from triage.web.dependencies import Db
from triage.web.forms import Form
from triage.web.pages import render, security_headers
from triage.web.staff.charts import bar_chart
from triage.web.staff.work import _staff


def _presets(today: date, exact: bool) -> list[tuple[str, Period]]:
    """Quick choices: last month (staff only: the commissioner's reports are by quarter or
    financial year), last quarter, the last whole financial year."""
    this_month = date(today.year, today.month, 1)
    last_month = add_months(this_month, -1)
    year_start = today.year - 1 if today.month < 4 else today.year
    presets = [
        ("Last quarter", last_quarter(today)),
        ("Last financial year", Period.financial_year(year_start - 1)),
    ]
    return [("Last month", Period(last_month, last_month)), *presets] if exact else presets


async def _period(
    db: Db, form: Form, start: str | None, end: str | None
) -> tuple[Period | None, date]:
    today = (await service_now(db)).date()
    if not start and not end:
        return last_quarter(today), today
    if not start:
        form.error("from", "Enter the first month, like 2026-07")
        return None, today
    try:
        return Period.of_months(start, end or None), today
    except PeriodError as error:
        form.error(error.field, str(error))
        return None, today


@dataclass
class _Asked:
    """A report as asked for by the query string: the form (with its errors), the service's
    code, the period and the report when nothing was wrong, and today by the service clock."""

    form: Form
    code: str
    period: Period | None
    report: reports.Report | None
    today: date


async def _asked(
    request: Request[Any, Any, Any],
    db: Db,
    service: str | None,
    start: str | None,
    end: str | None,
) -> _Asked:
    staff = _staff(request)
    catalogue = request.app.state.catalogue
    form = Form(values={"service": service or "all", "from": start or "", "to": end or ""})
    code = service or "all"
    if code != "all" and code not in catalogue.services:
        form.error("service", "Select a service")
    period, today = await _period(db, form, start, end)
    report = None
    if period is not None and not form.errors:
        try:
            report = await reports.build_report(
                db, staff.principal, catalogue, None if code == "all" else code, period
            )
        except reports.PeriodRefused as refused:
            form.error("from", str(refused))
    return _Asked(form, code, period, report, today)


class ReportsController(Controller):
    path = "/staff"

    @get("/reports", opt={"permission": "report.view"})
    async def report_page(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        service: FromQuery[str | None] = None,
        start: Annotated[str | None, Parameter(query="from")] = None,
        end: Annotated[str | None, Parameter(query="to")] = None,
    ) -> Any:
        staff = _staff(request)
        asked = await _asked(request, db, service, start, end)
        report, form = asked.report, asked.form
        return render(
            "staff/reports.html",
            status=400 if form.errors else 200,
            title="Reports",
            staff=staff,
            nav_active="/staff/reports",
            form=form,
            error_summary=form.summary if form.errors else None,
            report=report,
            services=sorted((c, s.name) for c, s in request.app.state.catalogue.services.items()),
            exact=reports.sees_exact_figures(staff.principal),
            presets=_presets(asked.today, reports.sees_exact_figures(staff.principal)),
            received_chart=_received_chart(report),
            deadline_chart=_deadline_chart(report),
            csv_query=_query(asked.code, asked.period) if report else "",
            columns=reports.COLUMNS,
        )

    @get("/reports.csv", opt={"permission": "report.view"})
    async def report_csv(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        service: FromQuery[str | None] = None,
        start: Annotated[str | None, Parameter(query="from")] = None,
        end: Annotated[str | None, Parameter(query="to")] = None,
    ) -> Any:
        asked = await _asked(request, db, service, start, end)
        report, period, code = asked.report, asked.period, asked.code
        if report is None or period is None:
            # The page says what is wrong (a CSV cannot).
            return Redirect(f"/staff/reports?{request.url.query}")
        out = io.StringIO()
        csv.writer(out).writerows(reports.csv_rows(report))
        filename = f"triage-report-{code}-{period.first:%Y-%m}-to-{period.last:%Y-%m}.csv"
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={
                **security_headers("none"),
                "Content-Disposition": f'attachment; filename="{filename}"',
            },
        )


def _query(code: str, period: Period | None) -> str:
    if period is None:
        return ""
    return f"service={code}&from={period.first:%Y-%m}&to={period.last:%Y-%m}"


def _received_chart(report: reports.Report | None) -> Any:
    if report is None:
        return None
    return bar_chart([(m.label, m.received.value, m.received.text) for m in report.months])


def _deadline_chart(report: reports.Report | None) -> Any:
    if report is None:
        return None
    return bar_chart(
        [(m.label, m.in_time.value, m.in_time.text) for m in report.months],
        top=100,
        target=report.target_percent,
    )
