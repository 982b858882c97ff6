"""Staff search over referrals: by reference, external reference, date of birth, phone,
postcode (full or district) or name, within the principal's row scope, newest first.

Each kind of query compares one generated, indexed column of migration 0009 (a B-tree, or the
GIN index of the names' tsvector), so a search never reads the table through; a surname is
read newest first from migration 0011's index, so a common one costs no more than a rare
one. Names are normalised by the database's own `triage_name_key`, the function the column
is computed with, so the two can never disagree. The scope is part of the query: a
caseworker's search can only return referrals with a case of their services.

One audit event per search, `referrals.searched`: who searched, what kind of query and how
many referrals it returned. Never the text: it is a name, a phone number, a date of birth.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Text, func, literal, literal_column, select, true
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
    # A surname prefix with more surnames than a search reads: only the first SURNAME_KEYS
    # (in byte order) were searched, so newer referrals may be missing (the page says so).
    partial: bool = False


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
    # Every word a prefix of a first or last name, in any order (ix_referrals_victim_names).
    return r.victim_names.bool_op("@@")(func.to_tsquery("simple", tsquery_text(query.words)))


# A surname prefix reads at most this many different surnames (each the newest few of its
# referrals); a shorter prefix than that is asked to be narrowed (`more`).
SURNAME_KEYS = 200


def _surname_pattern(query: SearchQuery) -> ColumnElement[str]:
    """A prefix of the normalised surname as a LIKE pattern. Normalising strips '%' and '_',
    but the pattern must not rely on it: LIKE's own characters are escaped after normalising."""
    key = func.triage_name_key(literal(query.value), type_=Text)
    escaped = func.replace(func.replace(func.replace(key, "\\", "\\\\"), "%", "\\%"), "_", "\\_")
    return escaped + "%"


def _columns() -> list[Any]:
    r = models.Referral
    victim = r.facts["victim"]
    return [
        r.id,
        r.reference,
        r.received_at,
        r.status,
        r.priority,
        victim["first_name"].astext.label("first_name"),
        victim["last_name"].astext.label("last_name"),
        r.victim_dob,
    ]


def _surname_keys(query: SearchQuery, most: int) -> Any:
    """The first `most` different surnames starting with the query, in byte order: one index
    descent each (a loose index scan: a recursive query stepping to the next key of
    ix_referrals_surname_received), however many referrals each has. The index holds the
    surname with text_pattern_ops, whose order is byte order: its operators (~<~, ~>~) are
    the ones compared and sorted by here, so a prefix is one range of it."""
    surname = models.Referral.victim_surname_key
    pattern = _surname_pattern(query)
    in_byte_order: ColumnElement[str] = literal_column("victim_surname_key USING ~<~")
    first = (
        select(surname.label("key"))
        .where(surname.like(pattern, escape="\\"))
        .order_by(in_byte_order)
        .limit(1)
        .cte("surname_keys", recursive=True)
    )
    step = (
        select(surname)
        .where(surname.like(pattern, escape="\\"), surname.op("~>~")(first.c.key))
        .order_by(in_byte_order)
        .limit(1)
        .scalar_subquery()
    )
    keys = first.union_all(select(step).where(first.c.key.is_not(None)))
    return select(keys.c.key).where(keys.c.key.is_not(None)).limit(most).subquery()


def _surname_statement(principal: Principal, query: SearchQuery, limit: int) -> Select[Any]:
    """Referrals whose surname starts with the query, newest first, without sorting every
    match (a common surname is a tenth of all referrals): each surname's newest referrals
    in scope are one backward range read of ix_referrals_surname_received (surname,
    received_at, id), and only those few are merged."""
    r = models.Referral
    chosen = _surname_keys(query, SURNAME_KEYS)
    newest = (
        select(*_columns())
        .where(r.victim_surname_key == chosen.c.key, referrals_visible_to(principal))
        .order_by(r.received_at.desc(), r.id.desc())
        .limit(limit + 1)
        .lateral("newest")
    )
    return (
        select(newest)
        .select_from(chosen)
        .join(newest, true())
        .order_by(newest.c.received_at.desc(), newest.c.id.desc())
        .limit(limit + 1)
    )


async def _more_surnames_than_read(db: AsyncSession, query: SearchQuery) -> bool:
    """True when the prefix has more surnames than a search reads (its answer may miss some:
    the page asks for more letters). Scope is not applied: "may be missing" is true of the
    surnames, whoever searches."""
    keys = _surname_keys(query, SURNAME_KEYS + 1)
    return (await db.scalar(select(func.count()).select_from(keys)) or 0) > SURNAME_KEYS


def search_statement(principal: Principal, query: SearchQuery, limit: int) -> Select[Any]:
    """The one query a search runs (tests EXPLAIN it to see the index used)."""
    if query.kind == "surname":
        return _surname_statement(principal, query, limit)
    r = models.Referral
    return (
        select(*_columns())
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
    partial = parsed.kind == "surname" and await _more_surnames_than_read(db, parsed)
    more = len(found) > limit or partial
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
    return SearchResults(parsed.kind, rows, more=more, partial=partial)
