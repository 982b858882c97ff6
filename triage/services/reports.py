"""A report (reports.md): the figures of one service (or all) over a period, beside the period
before it and the same period a year earlier, as sections of rows, with disclosure control for
the commissioner (triage/domain/disclosure.py) and exact figures for staff roles. The pages, the
CSV and the API all show this one object, so they can never differ.

The figures come from services/report_queries (SQL aggregates); nothing here counts rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from triage.domain import vocabulary as v
from triage.domain.catalogue import Catalogue
from triage.domain.disclosure import Shown, count, percentage, statistic, suppress_groups
from triage.domain.periods import Period
from triage.domain.policy import require
from triage.domain.principals import Principal
from triage.domain.statuses import CLOSURE_REASONS
from triage.services import report_queries as q
from triage.services.audit import record_event

# The contract's standard for first contact within the deadline (the chart's target line).
DEADLINE_TARGET_PERCENT = 90
# Roles that see exact figures: they may see personal data anyway (reports.md).
EXACT_ROLES = frozenset({"duty_lead", "admin"})
COLUMNS = ("current", "previous", "year_earlier")


@dataclass(frozen=True)
class Row:
    name: str  # stable, for the CSV and the API
    label: str
    values: tuple[Shown, Shown, Shown]  # the period, the one before, a year earlier
    group: str | None = None  # rows that are parts of one whole (secondary suppression)


class PeriodRefused(ValueError):
    """The commissioner's reports are for whole quarters or financial years (disclosure.py
    says why)."""


@dataclass
class Section:
    name: str
    title: str
    rows: list[Row] = field(default_factory=list)


@dataclass(frozen=True)
class Month:
    label: str
    received: Shown
    in_time: Shown  # percentage of referrals with a deadline contacted by it


@dataclass(frozen=True)
class Report:
    service: str | None
    service_name: str
    period: Period
    previous: Period
    year_earlier: Period
    exact: bool
    sections: list[Section]
    months: list[Month]
    target_percent: int
    breaches: list[dict[str, Any]] | None  # staff roles only

    @property
    def periods(self) -> tuple[Period, Period, Period]:
        return self.period, self.previous, self.year_earlier


def sees_exact_figures(principal: Principal) -> bool:
    return bool(principal.roles & EXACT_ROLES)


class _Rows:
    """Rows of one section, each made from the three periods' figures by one rule."""

    def __init__(self, section: Section, figures: Sequence[q.Figures], exact: bool) -> None:
        self.section, self.figures, self.exact = section, figures, exact

    def _add(
        self,
        name: str,
        label: str,
        make: Callable[[q.Figures], Shown],
        group: str | None = None,
    ) -> None:
        values = tuple(make(f) for f in self.figures)
        self.section.rows.append(Row(name, label, (values[0], values[1], values[2]), group))

    def count(self, name: str, label: str) -> None:
        # A name like `source:police` is a part of its group (`source`).
        group = name.split(":", 1)[0] if ":" in name else None
        self._add(name, label, lambda f: count(int(f.get(name) or 0), exact=self.exact), group)

    def percent(self, name: str, label: str, part: str, whole: str) -> None:
        self._add(
            name,
            label,
            lambda f: percentage(int(f.get(part) or 0), int(f.get(whole) or 0), exact=self.exact),
        )

    def hours(self, name: str, label: str, people: str) -> None:
        self._add(
            name,
            label,
            lambda f: statistic(_float(f.get(name)), int(f.get(people) or 0), exact=self.exact),
        )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


async def build_report(
    db: AsyncSession,
    principal: Principal,
    catalogue: Catalogue,
    service: str | None,
    period: Period,
) -> Report:
    """The report, its reading audited (no figures in the event: which service and period)."""
    require(principal, "report.view")
    if service is not None and service not in catalogue.services:
        raise LookupError(service)
    exact = sees_exact_figures(principal)
    if not exact and not (period.is_quarter or period.is_financial_year):
        raise PeriodRefused(
            "Choose a whole quarter (January, April, July or October to the end of its third "
            "month) or a financial year (April to March)"
        )
    periods = [period, period.previous(), period.year_earlier()]
    sections = [
        await _received(db, catalogue, periods, service, exact),
        await _contact(db, periods, service, exact),
        await _deadlines(db, periods, service, exact),
        await _cases(db, periods, service, exact),
        await _signposts_and_overrides(db, catalogue, periods, service, exact),
        await _surveys(db, catalogue, periods, service, exact),
    ]
    if service in (None, catalogue.appropriate_adult.service):
        sections.append(await _appropriate_adults(db, periods, exact))
    # Over time: by month for staff; by quarter for the commissioner (never months beside
    # their quarter: disclosure.py).
    steps = [Period(f, f) for f in period.month_starts()] if exact else period.quarters()
    months = [
        Month(
            step.first.strftime("%b %Y") if exact else step.label,
            count(int(m["received"] or 0), exact=exact),
            percentage(int(m["in_time"] or 0), int(m["with_deadline"] or 0), exact=exact),
        )
        for step, m in zip(steps, await q.over_time(db, steps, service), strict=True)
    ]
    if not exact:
        for section in sections:
            _suppress_groups(section)
    breaches = await q.breach_list(db, period, service) if exact else None
    await record_event(
        db,
        principal.actor,
        "report.viewed",
        service or "all",
        "report",
        details={"service": service or "all", "period": period.code},
    )
    await db.commit()
    name = catalogue.services[service].name if service else "All services"
    return Report(
        service,
        name,
        period,
        periods[1],
        periods[2],
        exact,
        sections,
        months,
        DEADLINE_TARGET_PERCENT,
        breaches,
    )


async def _received(
    db: AsyncSession,
    catalogue: Catalogue,
    periods: list[Period],
    service: str | None,
    exact: bool,
) -> Section:
    section = Section("received", "Referrals received")
    rows = _Rows(section, await q.received(db, periods, service), exact)
    rows.count("received", "Referrals received")
    for source, label in (
        ("police", "From the police"),
        ("professional", "From professionals"),
        ("self", "Self-referrals"),
    ):
        rows.count(f"source:{source}", label)
    for priority in ("P1", "P2", "P3"):
        rows.count(f"priority:{priority}", f"Priority {priority}")
    for category in v.OFFENCE_CATEGORIES:
        rows.count(f"offence:{category}", "Offence: " + category.replace("_", " "))
    for code, name in (*catalogue.area_names.items(), ("outside", "Outside the area")):
        rows.count(f"area:{code}", f"Area: {name}")
    for group in v.ENHANCED_RIGHTS_GROUPS:
        rows.count(f"enhanced:{group}", "Enhanced Rights: " + group.replace("_", " "))
    for band, label in (
        ("under_18", "Aged under 18"),
        ("18_24", "Aged 18 to 24"),
        ("25_64", "Aged 25 to 64"),
        ("65_plus", "Aged 65 and over"),
        ("unknown", "Age not known"),
    ):
        rows.count(f"age:{band}", label)
    return section


async def _contact(
    db: AsyncSession, periods: list[Period], service: str | None, exact: bool
) -> Section:
    section = Section("contact", "Contact and support")
    rows = _Rows(section, await q.contact(db, periods, service), exact)
    rows.count("contacted", "Contacted")
    rows.percent("contacted_percent", "Contacted, of referrals received", "contacted", "referrals")
    rows.count("supported", "Offered support")
    rows.count("declined", "Declined support")
    rows.count("unable_to_contact", "Unable to contact")
    rows.count("no_contact_consent", "No consent to contact")
    return section


async def _deadlines(
    db: AsyncSession, periods: list[Period], service: str | None, exact: bool
) -> Section:
    section = Section("deadline", "First contact within the contract deadline")
    rows = _Rows(section, await q.deadlines(db, periods, service), exact)
    rows.count("with_deadline", "Referrals whose deadline has come")
    rows.count("in_time", "First contacted by the deadline")
    rows.percent("in_time_percent", "First contacted by the deadline", "in_time", "with_deadline")
    rows.hours("median_hours", "Median wait to first contact (calendar hours)", "contacted")
    rows.hours("p90_hours", "90th percentile wait (calendar hours)", "contacted")
    rows.hours("median_working_hours", "Median wait (working hours)", "contacted_working")
    rows.hours("p90_working_hours", "90th percentile wait (working hours)", "contacted_working")
    rows.count("breaches", "Deadlines missed")
    rows.count("breaches_paused", "Deadlines missed while contact was paused")
    rows.count(
        "safe_window_after_deadline", "Deadlines missed: the victim's safe times fell after them"
    )
    return section


async def _cases(
    db: AsyncSession, periods: list[Period], service: str | None, exact: bool
) -> Section:
    section = Section("cases", "Cases")
    rows = _Rows(section, await q.cases(db, periods, service), exact)
    rows.count("opened", "Cases opened")
    rows.count("closed", "Cases closed")
    for reason in CLOSURE_REASONS:
        rows.count(f"closed:{reason}", "Closed: " + reason.replace("_", " "))
    rows.count("open_at_end", "Open at the end of the period")
    return section


async def _signposts_and_overrides(
    db: AsyncSession,
    catalogue: Catalogue,
    periods: list[Period],
    service: str | None,
    exact: bool,
) -> Section:
    section = Section("signposts", "Signposts and overrides")
    figures = await q.signposts(db, periods, service)
    for mine, theirs in zip(figures, await q.overrides(db, periods, service), strict=True):
        mine.update(theirs)
    rows = _Rows(section, figures, exact)
    for code, name in catalogue.signpost_targets.items():
        rows.count(f"signpost:{code}", f"Signposted to {name}")
    rows.count("overrides", "Triage decisions overridden")
    for kind, label in (
        ("add_service", "Service added"),
        ("remove_service", "Service removed"),
        ("priority", "Priority changed"),
        ("deadline", "Deadline changed"),
    ):
        rows.count(f"override:{kind}", label)
    if exact:
        # Staff see which services people add and remove, where any were (a row left out for
        # being zero would tell the commissioner a count under 5 exactly, so they see kinds).
        for code, found in sorted(catalogue.services.items()):
            for kind, label in (("add_service", "added"), ("remove_service", "removed")):
                name = f"override:{kind}:{code}"
                if any(f.get(name) for f in figures):
                    rows.count(name, f"Service {label}: {found.name}")
    return section


async def _surveys(
    db: AsyncSession,
    catalogue: Catalogue,
    periods: list[Period],
    service: str | None,
    exact: bool,
) -> Section:
    section = Section("surveys", "Satisfaction and outcomes")
    policy = catalogue.surveys
    rows = _Rows(section, await q.surveys(db, periods, service, policy), exact)
    rows.count("invitations", "Survey invitations sent")
    rows.count("responses", "Surveys answered")
    rows.percent("response_rate", "Response rate", "responses", "invitations")
    labels = {
        "satisfaction": "Satisfied (very or fairly)",
        "recommend": "Would recommend",
        "cope_recover": "Helped to cope and recover",
        "report_to_police": "Felt able to report to the police",
    }
    for question in policy.questions:
        if question.free_text:
            continue
        label = labels.get(question.key) or f"Agree: {question.assessment_text}"
        rows.percent(
            f"positive:{question.key}",
            label,
            f"positive:{question.key}",
            f"answered:{question.key}",
        )
    for measure in policy.outcome_measures:
        rows.percent(
            f"distance:{measure.key}",
            f"Improved since assessment: {measure.assessment_text}",
            f"distance_improved:{measure.key}",
            f"distance_scored:{measure.key}",
        )
    return section


async def _appropriate_adults(db: AsyncSession, periods: list[Period], exact: bool) -> Section:
    section = Section("appropriate_adults", "Appropriate Adults")
    rows = _Rows(section, await q.appropriate_adults(db, periods), exact)
    rows.count("aa_requests", "Requests")
    rows.count("aa_allocated", "Allocated")
    rows.count("aa_signposted", "Signposted")
    rows.count("aa_attended", "Attended")
    rows.percent(
        "aa_attended_in_time_percent",
        "Attended by the deadline",
        "aa_attended_in_time",
        "aa_attended",
    )
    return section


def _suppress_groups(section: Section) -> None:
    """Secondary suppression of each group of parts with a count under 5 (disclosure.py)."""
    groups: dict[str, list[int]] = {}
    for index, row in enumerate(section.rows):
        if row.group is not None:
            groups.setdefault(row.group, []).append(index)
    suppressed = suppress_groups(
        {name: [list(section.rows[i].values) for i in rows] for name, rows in groups.items()}
    )
    for name, rows in groups.items():
        for index, values in zip(rows, suppressed[name], strict=True):
            row = section.rows[index]
            section.rows[index] = Row(
                row.name, row.label, (values[0], values[1], values[2]), row.group
            )


def csv_rows(report: Report) -> list[list[str]]:
    """The report as CSV rows: the same figures and rules as the page."""
    header = [
        "section",
        "figure",
        "name",
        report.period.label,
        f"previous ({report.previous.label})",
        f"year earlier ({report.year_earlier.label})",
    ]
    rows = [header]
    for section in report.sections:
        for row in section.rows:
            rows.append([section.title, row.label, row.name, *(x.text for x in row.values)])
    return rows


def as_json(report: Report) -> dict[str, Any]:
    return {
        "service": report.service or "all",
        "from": f"{report.period.first:%Y-%m}",
        "to": f"{report.period.last:%Y-%m}",
        "periods": {
            name: {"from": f"{p.first:%Y-%m}", "to": f"{p.last:%Y-%m}"}
            for name, p in zip(COLUMNS, report.periods, strict=True)
        },
        "disclosure_control": not report.exact,
        "sections": [
            {
                "name": section.name,
                "title": section.title,
                "figures": [
                    {
                        "name": row.name,
                        "label": row.label,
                        **{
                            column: {"value": shown.value, "text": shown.text}
                            for column, shown in zip(COLUMNS, row.values, strict=True)
                        },
                    }
                    for row in section.rows
                ],
            }
            for section in report.sections
        ],
    }
