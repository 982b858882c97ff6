"""The figures of the commissioner's reports (reports.md), one small function per family, each
a SQL aggregate over the columns retention.md keeps (never the personal data, never rows loaded
into Python to be counted).

Every function takes the periods to report on (the period, the one before it, the same one a
year earlier) and a service (None: all services) and answers, per period index, a mapping of
figure names to numbers. Counting is by referral for all services and by the service's case
for one service (a referral has at most one case of a service), so the figures of one service
and of all services are counted the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from triage.domain.periods import Period
from triage.domain.survey_catalogue import SurveyPolicy
from triage.services.clock import service_now

Figures = dict[str, float | int | None]
ByPeriod = list[Figures]


def _periods_sql(periods: Sequence[Period]) -> tuple[str, dict[str, Any]]:
    """The periods as a VALUES list the queries join on (index, start, end)."""
    rows = []
    # The whole span as constants too: the planner reads only those months of the referrals
    # (the BRIN index), not every row tried against each period.
    values: dict[str, Any] = {
        "lo": min(p.start for p in periods),
        "hi": max(p.end for p in periods),
    }
    for index, period in enumerate(periods):
        rows.append(
            f"({index}, CAST(:start{index} AS timestamptz), CAST(:end{index} AS timestamptz))"
        )
        values[f"start{index}"] = period.start
        values[f"end{index}"] = period.end
    return "(VALUES " + ", ".join(rows) + ") AS p(idx, start_at, end_at)", values


def _scope(service: str | None) -> tuple[str, dict[str, Any]]:
    """The referrals of one service (those with a case of it), or all."""
    if service is None:
        return "true", {}
    return (
        "EXISTS (SELECT 1 FROM cases sc WHERE sc.referral_id = r.id AND sc.service = :service)",
        {"service": service},
    )


def _empty(periods: Sequence[Period]) -> ByPeriod:
    return [{} for _ in periods]


async def received(db: AsyncSession, periods: Sequence[Period], service: str | None) -> ByPeriod:
    """Referrals received: the total, and by source, offence category, area, priority and age
    band (grouping sets: one scan)."""
    values_sql, params = _periods_sql(periods)
    scope, more = _scope(service)
    rows = await db.execute(
        text(f"""
        SELECT p.idx, r.source, r.offence_category, r.area, r.priority, r.age_band,
               GROUPING(r.source, r.offence_category, r.area, r.priority, r.age_band) AS g,
               count(*) AS n
        FROM {values_sql}
        JOIN referrals r ON r.received_at >= p.start_at AND r.received_at < p.end_at
                        AND r.received_at >= :lo AND r.received_at < :hi
        WHERE {scope}
        GROUP BY GROUPING SETS ((p.idx), (p.idx, r.source), (p.idx, r.offence_category),
                               (p.idx, r.area), (p.idx, r.priority), (p.idx, r.age_band))
        """),
        {**params, **more},
    )
    out = _empty(periods)
    for row in rows:
        figures = out[row.idx]
        if row.g == 0b11111:
            figures["received"] = row.n
        elif row.source is not None:
            figures[f"source:{row.source}"] = row.n
        elif row.offence_category is not None:
            figures[f"offence:{row.offence_category}"] = row.n
        elif row.area is not None:
            figures[f"area:{row.area}"] = row.n
        elif row.priority is not None:
            figures[f"priority:{row.priority}"] = row.n
        elif row.age_band is not None:
            figures[f"age:{row.age_band}"] = row.n
    groups = await db.execute(
        text(f"""
        SELECT p.idx, g.grp, count(*) AS n
        FROM {values_sql}
        JOIN referrals r ON r.received_at >= p.start_at AND r.received_at < p.end_at
                        AND r.received_at >= :lo AND r.received_at < :hi
        CROSS JOIN LATERAL unnest(r.enhanced_rights) AS g(grp)
        WHERE {scope}
        GROUP BY p.idx, g.grp
        """),
        {**params, **more},
    )
    for row in groups:
        out[row.idx][f"enhanced:{row.grp}"] = row.n
    return out


async def contact(db: AsyncSession, periods: Sequence[Period], service: str | None) -> ByPeriod:
    """Of the referrals received in the period: contacted (spoken to), offered support (a
    case that went into support or closed as supported), declined, unable to contact, and
    without consent to contact."""
    values_sql, params = _periods_sql(periods)
    service_cases = "AND c.service = :service" if service else ""
    rows = await db.execute(
        text(f"""
        SELECT p.idx,
               count(*) AS referrals,
               count(*) FILTER (WHERE x.contacted) AS contacted,
               count(*) FILTER (WHERE x.supported) AS supported,
               count(*) FILTER (WHERE x.declined) AS declined,
               count(*) FILTER (WHERE x.unable) AS unable,
               count(*) FILTER (WHERE 'no_contact_consent' = ANY(r.flags)) AS no_consent
        FROM {values_sql}
        JOIN referrals r ON r.received_at >= p.start_at AND r.received_at < p.end_at
                        AND r.received_at >= :lo AND r.received_at < :hi
        JOIN LATERAL (
            SELECT bool_or(c.first_contact_at IS NOT NULL) AS contacted,
                   bool_or(c.status = 'in_support' OR c.closure_reason = 'supported')
                       AS supported,
                   bool_or(c.closure_reason = 'declined') AS declined,
                   bool_or(c.closure_reason = 'unable_to_contact') AS unable,
                   count(*) AS cases
            FROM cases c WHERE c.referral_id = r.id {service_cases}
        ) x ON x.cases > 0
        GROUP BY p.idx
        """),
        {**params, **({"service": service} if service else {})},
    )
    out = _empty(periods)
    for row in rows:
        out[row.idx] = {
            "referrals": row.referrals,
            "contacted": row.contacted,
            "supported": row.supported,
            "declined": row.declined,
            "unable_to_contact": row.unable,
            "no_contact_consent": row.no_consent,
        }
    return out


async def deadlines(db: AsyncSession, periods: Sequence[Period], service: str | None) -> ByPeriod:
    """First contact within the contract deadline, of the referrals received in the period
    whose deadline has come (or that were contacted), leaving out those withdrawn before it
    (no contact was owed): how many were first contacted by it; the wait to first contact
    (median and 90th percentile, calendar and working hours); breaches, from the referral's
    own times (a deadline set after intake counts too), counted apart when the victim's safe
    times fell after the deadline or contact was paused, never hidden."""
    values_sql, params = _periods_sql(periods)
    scope, more = _scope(service)
    rows = await db.execute(
        text(f"""
        SELECT p.idx,
               count(*) AS with_deadline,
               count(*) FILTER (WHERE r.first_contact_at <= r.contact_due_by) AS in_time,
               count(r.first_contact_at) AS contacted,
               count(r.first_contact_working_minutes) AS contacted_working,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY
                   extract(epoch FROM r.first_contact_at - r.received_at) / 3600)
                   AS median_hours,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY
                   extract(epoch FROM r.first_contact_at - r.received_at) / 3600) AS p90_hours,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY
                   r.first_contact_working_minutes / 60.0) AS median_working_hours,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY
                   r.first_contact_working_minutes / 60.0) AS p90_working_hours,
               count(*) FILTER (WHERE x.breach AND NOT x.safe_window AND NOT x.paused)
                   AS breaches,
               count(*) FILTER (WHERE x.breach AND x.paused AND NOT x.safe_window)
                   AS breaches_paused,
               count(*) FILTER (WHERE x.breach AND x.safe_window)
                   AS safe_window_after_deadline
        FROM {values_sql}
        JOIN referrals r ON r.received_at >= p.start_at AND r.received_at < p.end_at
                        AND r.received_at >= :lo AND r.received_at < :hi
        CROSS JOIN LATERAL (
            SELECT (r.first_contact_at IS NULL OR r.first_contact_at > r.contact_due_by)
                       AS breach,
                   'safe_window_after_deadline' = ANY(r.flags) AS safe_window,
                   EXISTS (SELECT 1 FROM alerts a WHERE a.referral_id = r.id
                           AND a.kind = 'deadline_breach' AND a.reason = 'paused') AS paused
        ) x
        WHERE r.contact_due_by IS NOT NULL AND {scope}
          AND (r.contact_due_by < :now OR r.first_contact_at IS NOT NULL)
          AND NOT (r.status = 'withdrawn' AND r.final_at <= r.contact_due_by
                   AND r.first_contact_at IS NULL)
        GROUP BY p.idx
        """),
        {**params, **more, "now": await service_now(db)},
    )
    out = _empty(periods)
    for row in rows:
        out[row.idx] = {
            "with_deadline": row.with_deadline,
            "in_time": row.in_time,
            "contacted": row.contacted,
            "contacted_working": row.contacted_working,
            "median_hours": row.median_hours,
            "p90_hours": row.p90_hours,
            "median_working_hours": row.median_working_hours,
            "p90_working_hours": row.p90_working_hours,
            "breaches": row.breaches,
            "breaches_paused": row.breaches_paused,
            "safe_window_after_deadline": row.safe_window_after_deadline,
        }
    return out


async def breach_list(
    db: AsyncSession, period: Period, service: str | None, limit: int = 500
) -> list[dict[str, Any]]:
    """The breaches of one period by reference (staff roles only, never the commissioner)."""
    scope, more = _scope(service)
    rows = await db.execute(
        text(f"""
        SELECT r.reference, r.priority, r.received_at, r.contact_due_by, r.first_contact_at,
               a.reason
        FROM referrals r
        JOIN alerts a ON a.referral_id = r.id AND a.kind = 'deadline_breach'
                     AND a.status = 'raised'
        WHERE r.received_at >= :start AND r.received_at < :end AND {scope}
        ORDER BY r.received_at
        LIMIT :limit
        """),
        {"start": period.start, "end": period.end, "limit": limit, **more},
    )
    return [dict(row._mapping) for row in rows]


async def cases(db: AsyncSession, periods: Sequence[Period], service: str | None) -> ByPeriod:
    """Cases opened and closed (by reason) in the period, and open at its end."""
    values_sql, params = _periods_sql(periods)
    service_filter = "c.service = :service" if service else "true"
    more = {"service": service} if service else {}
    out = _empty(periods)
    opened = await db.execute(
        text(f"""
        SELECT p.idx,
               count(*) FILTER (WHERE c.opened_at >= p.start_at) AS opened,
               count(*) FILTER (WHERE c.closed_at IS NULL OR c.closed_at >= p.end_at)
                   AS open_at_end
        FROM {values_sql}
        JOIN cases c ON c.opened_at < p.end_at
                    AND (c.closed_at IS NULL OR c.closed_at >= p.start_at)
        WHERE {service_filter}
        GROUP BY p.idx
        """),
        {**params, **more},
    )
    for row in opened:
        out[row.idx].update(opened=row.opened, open_at_end=row.open_at_end)
    closed = await db.execute(
        text(f"""
        SELECT p.idx, c.closure_reason, count(*) AS n
        FROM {values_sql}
        JOIN cases c ON c.closed_at >= p.start_at AND c.closed_at < p.end_at
        WHERE {service_filter}
        GROUP BY p.idx, c.closure_reason
        """),
        {**params, **more},
    )
    for row in closed:
        out[row.idx][f"closed:{row.closure_reason}"] = row.n
        out[row.idx]["closed"] = int(out[row.idx].get("closed") or 0) + row.n
    return out


async def signposts(db: AsyncSession, periods: Sequence[Period], service: str | None) -> ByPeriod:
    values_sql, params = _periods_sql(periods)
    scope, more = _scope(service)
    rows = await db.execute(
        text(f"""
        SELECT p.idx, s.target, count(*) AS n
        FROM {values_sql}
        JOIN referrals r ON r.received_at >= p.start_at AND r.received_at < p.end_at
                        AND r.received_at >= :lo AND r.received_at < :hi
        CROSS JOIN LATERAL unnest(r.signposts) AS s(target)
        WHERE {scope}
        GROUP BY p.idx, s.target
        """),
        {**params, **more},
    )
    out = _empty(periods)
    for row in rows:
        out[row.idx][f"signpost:{row.target}"] = row.n
    return out


async def overrides(db: AsyncSession, periods: Sequence[Period], service: str | None) -> ByPeriod:
    """Triage overrides made in the period, by kind (and the service added or removed): how
    often people disagree with the engine. Their reasons are free text and never counted."""
    values_sql, params = _periods_sql(periods)
    scope, more = _scope(service)
    rows = await db.execute(
        text(f"""
        SELECT p.idx, o.kind, COALESCE(o.service, '') AS service, count(*) AS n
        FROM {values_sql}
        JOIN overrides o ON o.created_at >= p.start_at AND o.created_at < p.end_at
        JOIN referrals r ON r.id = o.referral_id
        WHERE {scope}
        GROUP BY p.idx, o.kind, COALESCE(o.service, '')
        """),
        {**params, **more},
    )
    out = _empty(periods)
    for row in rows:
        figures = out[row.idx]
        if row.service:
            figures[f"override:{row.kind}:{row.service}"] = row.n
        kind = f"override:{row.kind}"
        figures[kind] = int(figures.get(kind) or 0) + row.n
        figures["overrides"] = int(figures.get("overrides") or 0) + row.n
    return out


async def surveys(
    db: AsyncSession, periods: Sequence[Period], service: str | None, policy: SurveyPolicy
) -> ByPeriod:
    """Invitations sent and answers received in the period, and per question the answers and
    how many were positive (the catalogue's `positive` values), and distance travelled per
    outcome measure: of the cases with both an assessment and a closure score, how many
    improved. Free text is never read."""
    values_sql, params = _periods_sql(periods)
    service_filter = "i.service = :service" if service else "true"
    more: dict[str, Any] = {"service": service} if service else {}
    out = _empty(periods)
    invited = await db.execute(
        text(f"""
        SELECT p.idx, count(*) AS n FROM {values_sql}
        JOIN survey_invitations i ON i.invited_at >= p.start_at AND i.invited_at < p.end_at
        WHERE {service_filter}
        GROUP BY p.idx
        """),
        {**params, **more},
    )
    for row in invited:
        out[row.idx]["invitations"] = row.n
    questions = [q for q in policy.questions if not q.free_text]
    answer_columns = []
    for number, question in enumerate(questions):
        # Names and values as parameters: the catalogue's words never become SQL.
        answer_columns.append(
            f"count(*) FILTER (WHERE s.answers ? CAST(:q{number} AS text)) AS answered_{number}, "
            f"count(*) FILTER (WHERE s.answers ->> CAST(:q{number} AS text) "
            f"= ANY(CAST(:pos{number} AS text[]))) AS positive_{number}"
        )
        more[f"q{number}"] = question.key
        more[f"pos{number}"] = [str(value) for value in question.positive]
    service_responses = "s.service = :service" if service else "true"
    responses = await db.execute(
        text(f"""
        SELECT p.idx, count(*) AS responses, {", ".join(answer_columns)}
        FROM {values_sql}
        JOIN survey_responses s ON s.completed_at >= p.start_at AND s.completed_at < p.end_at
        WHERE {service_responses}
        GROUP BY p.idx
        """),
        {**params, **more},
    )
    for row in responses:
        figures = out[row.idx]
        figures["responses"] = row.responses
        for number, question in enumerate(questions):
            figures[f"answered:{question.key}"] = getattr(row, f"answered_{number}")
            figures[f"positive:{question.key}"] = getattr(row, f"positive_{number}")
    service_cases = "AND c.service = :service" if service else ""
    distance = await db.execute(
        text(f"""
        SELECT p.idx, a.measure, count(*) AS both_scores,
               count(*) FILTER (WHERE COALESCE(sv.score, cw.score) > a.score) AS improved
        FROM {values_sql}
        JOIN cases c ON c.closed_at >= p.start_at AND c.closed_at < p.end_at {service_cases}
        JOIN case_outcomes a ON a.case_id = c.id AND a.stage = 'assessment'
        LEFT JOIN case_outcomes sv ON sv.case_id = c.id AND sv.stage = 'closure'
             AND sv.source = 'survey' AND sv.measure = a.measure
        LEFT JOIN case_outcomes cw ON cw.case_id = c.id AND cw.stage = 'closure'
             AND cw.source = 'caseworker' AND cw.measure = a.measure
        WHERE COALESCE(sv.score, cw.score) IS NOT NULL
        GROUP BY p.idx, a.measure
        """),
        {**params, **({"service": service} if service else {})},
    )
    for row in distance:
        out[row.idx][f"distance_scored:{row.measure}"] = row.both_scores
        out[row.idx][f"distance_improved:{row.measure}"] = row.improved
    return out


async def appropriate_adults(db: AsyncSession, periods: Sequence[Period]) -> ByPeriod:
    """Appropriate Adult requests received in the period: allocated, signposted, attended,
    and attended by their deadline (the attendance recorded by `attend_by`)."""
    values_sql, params = _periods_sql(periods)
    rows = await db.execute(
        text(f"""
        SELECT p.idx, count(*) AS requests,
               count(*) FILTER (WHERE a.status <> 'signposted') AS allocated,
               count(*) FILTER (WHERE a.status = 'signposted') AS signposted,
               count(*) FILTER (WHERE a.status = 'attended') AS attended,
               count(*) FILTER (WHERE a.status = 'attended' AND a.updated_at <= a.attend_by)
                   AS attended_in_time
        FROM {values_sql}
        JOIN aa_requests a
             ON a.received_at >= p.start_at AND a.received_at < p.end_at
        GROUP BY p.idx
        """),
        params,
    )
    out = _empty(periods)
    for row in rows:
        out[row.idx] = {
            "aa_requests": row.requests,
            "aa_allocated": row.allocated,
            "aa_signposted": row.signposted,
            "aa_attended": row.attended,
            "aa_attended_in_time": row.attended_in_time,
        }
    return out


async def over_time(
    db: AsyncSession, steps: Sequence[Period], service: str | None
) -> list[Figures]:
    """Per step of the period (months, or quarters): referrals received and first contacts
    within the deadline (for the charts: bars over time, the deadline percentage against its
    target)."""
    received_by = await received(db, steps, service)
    deadline_by = await deadlines(db, steps, service)
    return [
        {
            "received": r.get("received", 0),
            "with_deadline": d.get("with_deadline", 0),
            "in_time": d.get("in_time", 0),
        }
        for r, d in zip(received_by, deadline_by, strict=True)
    ]
