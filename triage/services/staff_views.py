"""What the staff pages read: the queue, calls due, a caseworker's caseload, alerts, and one
referral with everything about it. Every query carries the principal's row scope, so a record
outside it is simply not found (the page answers 404 and an audit event says who asked).
Each view of a referral is audited (who, which referral; never what was on the page)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    bindparam,
    exists,
    func,
    literal_column,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession

from db import models
from triage.domain.checker import parse_instant
from triage.domain.policy import require, sees_case_notes_of
from triage.domain.principals import Principal
from triage.services.audit import record_event
from triage.services.scoping import cases_visible_to, referrals_visible_to

QUEUE_PAGE = 50
PRIORITIES = ("P1", "P2", "P3")
SOURCES = ("police", "partner", "professional", "self", "phone")


# A case still open, written as a literal (not a parameter) so that the planner can prove the
# partial index on open cases (ix_cases_open) applies even to a cached generic plan.
_CLOSED: BindParameter[str] = bindparam("closed_status", "closed", literal_execute=True)


class NotInScope(LookupError):
    """Not found for this principal (it may exist outside their scope: never said)."""


@dataclass(frozen=True)
class QueueFilters:
    service: str | None = None
    area: str | None = None
    priority: str | None = None
    source: str | None = None
    status: str = "triaged"
    mine: bool = False


@dataclass
class ListPage:
    """One page of a list (the queue, calls due, a caseload) and the next page's cursor."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    next_cursor: str | None = None


def _paged(rows: Sequence[Any], limit: int, key: Callable[[Any], tuple[Any, ...]]) -> ListPage:
    """The first `limit` of `limit + 1` rows read; the next page starts after the last one
    shown, at its `key` (the list's ORDER BY)."""
    page = ListPage([dict(row._mapping) for row in rows[:limit]])
    if len(rows) > limit:
        page.next_cursor = _encode_cursor(*key(rows[limit - 1]))
    return page


def _victim_name(facts: dict[str, Any]) -> str:
    victim = facts.get("victim") or {}
    return " ".join(p for p in (victim.get("first_name"), victim.get("last_name")) if p) or "—"


def _encode_cursor(*values: str | bool | datetime | uuid.UUID | None) -> str:
    """A page's position as an opaque value for the next page's link (no personal data: a
    priority, times and ids)."""
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    raw = json.dumps([str(v) if isinstance(v, uuid.UUID) else v for v in plain])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


# A cursor this service makes is under 150 characters: anything much longer is not one of
# ours and is never decoded (a deeply nested one would exhaust the JSON parser's recursion).
_CURSOR_CHARACTERS = 200


def _decode_cursor(cursor: str, size: int) -> list[Any] | None:
    if len(cursor) > _CURSOR_CHARACTERS:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, RecursionError):
        return None
    return values if isinstance(values, list) and len(values) == size else None


def _instant(value: Any) -> datetime | None:
    """A cursor's time, or None for anything that is not one."""
    instant = parse_instant(value) if isinstance(value, str) else None
    return instant if isinstance(instant, datetime) else None


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if isinstance(value, str) else None
    except ValueError:
        return None


def encode_queue_cursor(priority: str, due: datetime | None, referral_id: uuid.UUID) -> str:
    return _encode_cursor(priority, due, referral_id)


def _position(
    cursor: str | None, first_ok: Callable[[Any], bool], *, no_time: bool = False
) -> tuple[Any, datetime | None, uuid.UUID] | None:
    """A three-part cursor (a first key, a time, an id) as a list made it, or None for
    anything that is not one (the list shows its first page). `no_time`: the time may be
    null (a referral without a deadline)."""
    values = _decode_cursor(cursor, 3) if cursor else None
    if values is None or not first_ok(values[0]):
        return None
    instant, row_id = _instant(values[1]), _uuid(values[2])
    if row_id is None or (instant is None and not (no_time and values[1] is None)):
        return None
    return values[0], instant, row_id


def decode_queue_cursor(cursor: str) -> tuple[str, datetime | None, uuid.UUID] | None:
    """None for anything that is not a cursor this page made (a page shows the first page)."""
    return _position(cursor, lambda first: first in PRIORITIES, no_time=True)


async def queue(
    db: AsyncSession,
    principal: Principal,
    filters: QueueFilters,
    cursor: str | None = None,
    limit: int = QUEUE_PAGE,
) -> ListPage:
    """Referrals awaiting first contact (or in contact), most urgent first: priority, then
    deadline (none last), then id; keyset paging on those three."""
    require(principal, "queue.view")
    r = models.Referral
    conditions = [referrals_visible_to(principal), r.status == filters.status]
    if filters.priority in PRIORITIES:
        conditions.append(r.priority == filters.priority)
    if filters.source:
        conditions.append(r.source == filters.source)
    if filters.area:
        conditions.append(r.area == filters.area)
    if filters.service:
        # The service in force: its case still open (one an override removed is closed).
        conditions.append(
            exists(
                select(models.Case.id).where(
                    models.Case.referral_id == r.id,
                    models.Case.service == filters.service,
                    models.Case.status != _CLOSED,
                )
            )
        )
    if filters.mine and principal.kind == "staff":
        conditions.append(
            exists(
                select(models.Case.id).where(
                    models.Case.referral_id == r.id, models.Case.assigned_to == principal.uuid
                )
            )
        )
    # A referral without a deadline sorts last: 'infinity' stands in for it, so the keyset
    # comparison is one row comparison that an index on the same expression serves.
    due = func.coalesce(r.contact_due_by, literal_column("'infinity'::timestamptz"))
    position = decode_queue_cursor(cursor) if cursor else None
    if position is not None:
        priority, after_due, after_id = position
        after: Any = literal_column("'infinity'::timestamptz") if after_due is None else after_due
        conditions.append(tuple_(r.priority, due, r.id) > tuple_(priority, after, after_id))
    rows = (
        await db.execute(
            select(
                r.id,
                r.reference,
                r.priority,
                r.contact_due_by,
                r.status,
                r.source,
                r.received_at,
                r.contact_paused,
                r.facts["victim"]["first_name"].astext.label("first_name"),
                r.facts["victim"]["last_name"].astext.label("last_name"),
            )
            .where(*conditions)
            .order_by(r.priority, due, r.id)
            .limit(limit + 1)
        )
    ).all()
    page = _paged(rows, limit, lambda last: (last.priority, last.contact_due_by, last.id))
    services = await _services_of(db, principal, [item["id"] for item in page.rows])
    for item in page.rows:
        item["services"] = services.get(item["id"], [])
    await _list_viewed(db, principal, "queue", page.rows)
    return page


async def _list_viewed(
    db: AsyncSession, principal: Principal, what: str, shown: list[dict[str, Any]]
) -> None:
    """A list of referrals shown to a person: one event naming the referrals it showed."""
    ids = sorted({str(row.get("referral_id") or row.get("id")) for row in shown})
    await record_event(
        db,
        principal.actor,
        f"{what}.viewed",
        what,
        what,
        details={"referrals": ids} if ids else None,
    )
    await db.commit()


async def _services_of(
    db: AsyncSession, principal: Principal, referral_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    if not referral_ids:
        return {}
    found: dict[uuid.UUID, list[str]] = {}
    for referral_id, service in await db.execute(
        select(models.Case.referral_id, models.Case.service)
        .where(models.Case.referral_id.in_(referral_ids), cases_visible_to(principal))
        .order_by(models.Case.service)
    ):
        found.setdefault(referral_id, []).append(service)
    return found


async def calls_due(
    db: AsyncSession,
    principal: Principal,
    now: datetime,
    cursor: str | None = None,
    limit: int = QUEUE_PAGE,
) -> ListPage:
    """Due calls, most urgent first (priority, then due time, then step), within the
    principal's scope; 50 a page, keyset paging on those three."""
    require(principal, "calls.view")
    r, s = models.Referral, models.ContactStep
    conditions = [
        s.status == "due",
        s.kind == "call",
        s.due_at <= now,
        r.contact_paused.is_(False),
        referrals_visible_to(principal, s.referral_id),
    ]
    position = _position(cursor, lambda first: first in PRIORITIES)
    if position is not None:
        conditions.append(tuple_(s.priority, s.due_at, s.id) > tuple_(*position))
    rows = (
        await db.execute(
            select(
                s.id.label("step_id"),
                s.number,
                s.due_at,
                r.id.label("referral_id"),
                r.reference,
                s.priority,
                r.contact_due_by,
            )
            .join(r, r.id == s.referral_id)
            .where(*conditions)
            # The step's copy of the priority: the order of ix_contact_steps_calls_due.
            .order_by(s.priority, s.due_at, s.id)
            .limit(limit + 1)
        )
    ).all()
    page = _paged(rows, limit, lambda last: (last.priority, last.due_at, last.step_id))
    await _list_viewed(db, principal, "calls", page.rows)
    return page


async def caseload(
    db: AsyncSession, principal: Principal, cursor: str | None = None, limit: int = QUEUE_PAGE
) -> ListPage:
    """A caseworker's open cases (their services'), assigned to them first, oldest first;
    50 a page, keyset paging on (not theirs, opened, id)."""
    require(principal, "caseload.view")
    c, r = models.Case, models.Referral
    others = (
        c.assigned_to.is_distinct_from(principal.uuid)
        if principal.kind == "staff"
        else c.id.is_not(None)
    )
    conditions = [c.status != _CLOSED, cases_visible_to(principal)]
    position = _position(cursor, lambda first: isinstance(first, bool))
    if position is not None:
        conditions.append(tuple_(others, c.opened_at, c.id) > tuple_(*position))
    # The page's cases first (an index-only scan of the open cases), then their referrals: a
    # join before the limit would look up the referral of every open case of the services.
    first = (
        select(
            c.id,
            c.service,
            c.status,
            c.opened_at,
            c.assigned_to,
            c.referral_id,
            others.label("others"),
        )
        .where(*conditions)
        .order_by(others, c.opened_at, c.id)
        .limit(limit + 1)
        .subquery()
    )
    rows = (
        await db.execute(
            select(
                first.c.id,
                first.c.service,
                first.c.status,
                first.c.opened_at,
                first.c.assigned_to,
                first.c.others,
                r.id.label("referral_id"),
                r.reference,
                r.priority,
            )
            .join(r, r.id == first.c.referral_id)
            .order_by(first.c.others, first.c.opened_at, first.c.id)
        )
    ).all()
    page = _paged(rows, limit, lambda last: (last.others, last.opened_at, last.id))
    await _list_viewed(db, principal, "caseload", page.rows)
    return page


async def alerts(db: AsyncSession, principal: Principal) -> list[dict[str, Any]]:
    require(principal, "alert.view")
    a, r = models.Alert, models.Referral
    rows = await db.execute(
        select(a.id, a.kind, a.raised_at, a.reason, r.id.label("referral_id"), r.reference)
        .outerjoin(r, r.id == a.referral_id)
        .where(a.status == "raised")
        .order_by(a.raised_at.desc())
        .limit(500)
    )
    return [dict(row._mapping) for row in rows]


async def rows_for_referral(
    db: AsyncSession, model: Any, referral_id: uuid.UUID, *order: Any
) -> list[Any]:
    """Every row of `model` belonging to one referral, in `order` (no scope: the caller has
    checked the referral is the principal's to see)."""
    result = await db.execute(
        select(model).where(model.referral_id == referral_id).order_by(*order)
    )
    return list(result.scalars().all())


async def referral_page(
    db: AsyncSession, principal: Principal, referral_id: uuid.UUID
) -> dict[str, Any]:
    """Everything about one referral the principal may see; the view audited. NotInScope
    (and an audit event of the attempt) when it is not theirs to see, or does not exist."""
    require(principal, "referral.view")
    referral = await db.scalar(
        select(models.Referral).where(
            models.Referral.id == referral_id, referrals_visible_to(principal)
        )
    )
    if referral is None:
        await record_event(db, principal.actor, "referral.view_refused", referral_id)
        await db.commit()
        raise NotInScope(str(referral_id))
    cases = await rows_for_referral(
        db, models.Case, referral_id, models.Case.opened_at, models.Case.service
    )
    # A caseworker sees their services' cases in full; the others only as a service name, so
    # they know who else is supporting the victim.
    own_cases = [c for c in cases if sees_case_notes_of(principal, c.service)]
    other_services = sorted(c.service for c in cases if c not in own_cases)
    decisions = await rows_for_referral(
        db, models.TriageDecision, referral_id, models.TriageDecision.id
    )
    steps = await rows_for_referral(db, models.ContactStep, referral_id, models.ContactStep.number)
    messages = await rows_for_referral(db, models.Message, referral_id, models.Message.created_at)
    own_case_ids = {c.id for c in own_cases}
    notes = [
        n
        for n in await rows_for_referral(db, models.Note, referral_id, models.Note.id)
        if n.case_id is None or n.case_id in own_case_ids
    ]
    overrides = await rows_for_referral(db, models.Override, referral_id, models.Override.id)
    await record_event(db, principal.actor, "referral.viewed", referral_id)
    await db.commit()
    return {
        "referral": referral,
        "victim_name": _victim_name(referral.facts),
        "cases": own_cases,
        "other_services": other_services,
        "decisions": decisions,
        "steps": steps,
        "messages": messages,
        "notes": notes,
        "overrides": overrides,
        "timeline": _timeline(referral, cases, steps, messages, notes, overrides),
    }


def _timeline(
    referral: models.Referral,
    cases: Any,
    steps: Any,
    messages: Any,
    notes: list[models.Note],
    overrides: Any,
) -> list[dict[str, Any]]:
    """Everything that happened, newest first, as the MOJ timeline shows it (no note text:
    notes have their own list)."""
    items: list[dict[str, Any]] = [
        {"at": referral.received_at, "label": "Referral received", "text": referral.source}
    ]
    for case in cases:
        items.append({"at": case.opened_at, "label": f"Case opened: {case.service}", "text": ""})
        if case.closed_at:
            items.append(
                {
                    "at": case.closed_at,
                    "label": f"Case closed: {case.service}",
                    "text": case.closure_reason or "",
                }
            )
    for step in steps:
        if step.attempted_at:
            items.append(
                {
                    "at": step.attempted_at,
                    "label": f"Call attempt {step.number}",
                    "text": (step.outcome or "").replace("_", " "),
                }
            )
    for message in messages:
        if message.sent_at:
            items.append(
                {
                    "at": message.sent_at,
                    "label": f"{message.channel.upper()} sent",
                    "text": message.status + (" (after the stop)" if message.stopped_at else ""),
                }
            )
    for note in notes:
        items.append({"at": note.created_at, "label": "Note added", "text": note.author})
    for override in overrides:
        items.append(
            {
                "at": override.created_at,
                "label": "Decision overridden",
                "text": override.kind.replace("_", " "),
            }
        )
    items.sort(key=lambda item: item["at"], reverse=True)
    return items


async def audit_refused(db: AsyncSession, principal: Principal, what: str, record_id: str) -> None:
    """A request for a record outside the principal's scope: recorded, then answered 404."""
    await record_event(db, principal.actor, f"{what}.view_refused", record_id, what)
    await db.commit()


async def case_page(db: AsyncSession, principal: Principal, case_id: uuid.UUID) -> dict[str, Any]:
    """One case the principal may see, with its referral's reference and the case's notes;
    the view audited. NotInScope (audited) otherwise."""
    require(principal, "referral.view")
    row = (
        await db.execute(
            select(models.Case, models.Referral.reference, models.Referral.status)
            .join(models.Referral, models.Referral.id == models.Case.referral_id)
            .where(models.Case.id == case_id, cases_visible_to(principal))
        )
    ).first()
    if row is None:
        await record_event(db, principal.actor, "case.view_refused", case_id, "case")
        await db.commit()
        raise NotInScope(str(case_id))
    case, reference, referral_status = row
    notes = (
        (
            await db.execute(
                select(models.Note).where(models.Note.case_id == case_id).order_by(models.Note.id)
            )
        )
        .scalars()
        .all()
    )
    await record_event(db, principal.actor, "case.viewed", case_id, "case")
    await db.commit()
    return {
        "case": case,
        "reference": reference,
        "referral_status": referral_status,
        "notes": notes,
    }
