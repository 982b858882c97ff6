"""Staff search over referrals: by reference, external reference, date of birth, phone,
postcode (full or district) or name, within the principal's row scope, newest first.

Each kind of query compares one generated, indexed column of migration 0009 (a B-tree, or the
GIN index of the names' tsvector), so a search never reads the table through. Names are
normalised by the database's own `triage_name_key`, the function the column is computed with,
so the two can never disagree. The scope is part of the query: a caseworker's search can only
return referrals with a case of their services.

One audit event per search, `referrals.searched`: who searched, what kind of query and how
many referrals it returned. Never the text: it is a name, a phone number, a date of birth.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Text, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from db import models
from triage.domain.policy import require
from triage.domain.principals import Principal
from triage.domain.search_query import QueryKind, SearchQuery, parse_query, tsquery_text
from triage.services.audit import record_event
from triage.services.scoping import referrals_visible_to

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True)
class SearchRow:
    id: uuid.UUID
    reference: str
    received_at: datetime
    status: str
    priority: str
    victim_name: str  # first and last name as sent, or "—" when neither was
    date_of_birth: date | None


@dataclass(frozen=True)
class SearchResults:
    kind: QueryKind
    rows: list[SearchRow] = field(default_factory=list)
    # More referrals matched than were returned (the page asks for a narrower search).
    more: bool = False


def _matches(query: SearchQuery) -> ColumnElement[bool]:
    r = models.Referral
    if query.kind == "reference":
        return r.reference == query.value
    if query.kind == "external_ref":
        return r.external_ref == query.value
    if query.kind == "date_of_birth":
        return r.victim_dob == query.date_of_birth
    if query.kind == "phone":
        return r.victim_phone_digits == query.value
    if query.kind == "postcode":
        return r.victim_postcode_key == query.value
    if query.kind == "postcode_district":
        # The district and exactly one inward code (digit, two letters): `ME1` must not find
        # ME14. The district is letters and digits only (search_query._DISTRICT): no escaping.
        return r.victim_postcode_key.like(query.value + "___")
    if query.kind == "surname":
        # A prefix of the normalised surname. Normalising strips '%' and '_', but the pattern
        # must not rely on it: LIKE's own characters are escaped after normalising. Every
        # part is a constant once the parameter is bound, so the planner folds it into a range
        # on ix_referrals_victim_surname_key (text_pattern_ops).
        key = func.triage_name_key(literal(query.value), type_=Text)
        escaped = func.replace(
            func.replace(func.replace(key, "\\", "\\\\"), "%", "\\%"), "_", "\\_"
        )
        return r.victim_surname_key.like(escaped + "%", escape="\\")
    # Every word a prefix of a first or last name, in any order (ix_referrals_victim_names).
    return r.victim_names.bool_op("@@")(func.to_tsquery("simple", tsquery_text(query.words)))


def search_statement(principal: Principal, query: SearchQuery, limit: int) -> Select[Any]:
    """The one query a search runs (tests EXPLAIN it to see the index used)."""
    r = models.Referral
    victim = r.facts["victim"]
    return (
        select(
            r.id,
            r.reference,
            r.received_at,
            r.status,
            r.priority,
            victim["first_name"].astext.label("first_name"),
            victim["last_name"].astext.label("last_name"),
            r.victim_dob,
        )
        .where(_matches(query), referrals_visible_to(principal))
        .order_by(r.received_at.desc(), r.id.desc())
        .limit(limit + 1)
    )


def _display_name(first: str | None, last: str | None) -> str:
    return " ".join(part for part in (first, last) if part) or "—"


async def search_referrals(
    db: AsyncSession, principal: Principal, query: str, *, limit: int = DEFAULT_LIMIT
) -> SearchResults:
    """Referrals matching `query` that the principal may see, newest first, at most `limit`.

    Raises policy.Forbidden without the `search` permission, SearchRefused (a message for
    the error summary) for text that cannot be searched for. Commits its audit event."""
    require(principal, "search")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    parsed = parse_query(query)
    found = (await db.execute(search_statement(principal, parsed, limit))).all()
    rows = [
        SearchRow(
            id=row.id,
            reference=row.reference,
            received_at=row.received_at,
            status=row.status,
            priority=row.priority,
            victim_name=_display_name(row.first_name, row.last_name),
            date_of_birth=row.victim_dob,
        )
        for row in found[:limit]
    ]
    await record_event(
        db,
        principal.actor,
        "referrals.searched",
        "referrals",
        record_type="search",
        details={"kind": parsed.kind, "results": len(rows)},
    )
    await db.commit()
    return SearchResults(parsed.kind, rows, more=len(found) > limit)
