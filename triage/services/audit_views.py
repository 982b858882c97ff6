"""The audit trail as an admin reads it, and the chain's check from the pages.

A page of events, newest first (by id: the order they were written), filtered by record, by
who acted and by date, keyset-paged. Only who, what, which record and when are read: never
`details`. Reading the trail is itself an event (`audit.viewed`, its filters in the details:
ids and dates only), and so is checking the chain (`audit.verified`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db import models
from db.models import ApiClient
from triage.domain.policy import require
from triage.domain.principals import OPERATOR, Principal
from triage.services.audit import (
    AuditKeyMissing,
    Verification,
    audit_key,
    record_event,
    role_problems,
    verify,
)

PAGE = 50


@dataclass(frozen=True)
class TrailFilters:
    record_id: uuid.UUID | None = None
    actor: str | None = None  # as events record it: staff:<uuid>, client:<uuid>, ...
    since: datetime | None = None  # from this instant
    before: datetime | None = None  # up to, not including, this instant

    def details(self) -> dict[str, Any]:
        """As the `audit.viewed` event records them (ids and instants only)."""
        found: dict[str, Any] = {}
        if self.record_id is not None:
            found["record_id"] = str(self.record_id)
        if self.actor is not None:
            found["actor"] = self.actor
        if self.since is not None:
            found["since"] = self.since.isoformat()
        if self.before is not None:
            found["before"] = self.before.isoformat()
        return found


@dataclass(frozen=True)
class EventRow:
    id: int
    at: datetime
    actor: str
    action: str
    record_type: str
    record_id: str


@dataclass
class TrailPage:
    rows: list[EventRow] = field(default_factory=list)
    next_cursor: int | None = None  # the last id shown, when there are older events


async def trail(
    db: AsyncSession,
    principal: Principal,
    filters: TrailFilters,
    after: int | None = None,
    limit: int = PAGE,
) -> TrailPage:
    """A page of events newest first, older than event `after` when given. Audited."""
    require(principal, "audit.view")
    e = models.AuditEvent
    conditions = []
    if filters.record_id is not None:
        conditions.append(e.record_id == str(filters.record_id))
    if filters.actor is not None:
        conditions.append(e.actor == filters.actor)
    if filters.since is not None:
        conditions.append(e.at >= filters.since)
    if filters.before is not None:
        conditions.append(e.at < filters.before)
    if after is not None:
        conditions.append(e.id < after)
    result = await db.execute(
        select(e.id, e.at, e.actor, e.action, e.record_type, e.record_id)
        .where(*conditions)
        .order_by(e.id.desc())
        .limit(limit + 1)
    )
    found = [EventRow(**row._asdict()) for row in result]
    page = TrailPage(found[:limit])
    if len(found) > limit:
        page.next_cursor = found[limit - 1].id
    details = filters.details()
    if after is not None:
        details["after"] = after
    details["shown"] = len(page.rows)
    await record_event(
        db,
        principal.actor,
        "audit.viewed",
        filters.record_id or "audit_events",
        "audit_trail",
        details,
    )
    await db.commit()
    return page


async def actor_names(db: AsyncSession, principal: Principal) -> dict[str, str]:
    """Who can appear as an actor, as a person reads them: staff by email, API clients by
    name, the operator's commands; by that name."""
    require(principal, "audit.view")
    names = {OPERATOR.actor: "Operator (command line)"}
    for user_id, email in await db.execute(
        select(models.StaffUser.id, models.StaffUser.email).order_by(models.StaffUser.email)
    ):
        names[f"staff:{user_id}"] = email
    for client_id, name in await db.execute(
        select(ApiClient.id, ApiClient.name).order_by(ApiClient.name)
    ):
        names[f"client:{client_id}"] = f"API client: {name}"
    return dict(sorted(names.items(), key=lambda item: item[1].lower()))


@dataclass(frozen=True)
class ChainCheck:
    verification: Verification | None  # None: no key to check with
    warnings: list[str] = field(default_factory=list)

    @property
    def key_missing(self) -> bool:
        return self.verification is None


async def check_chain(
    db: AsyncSession, principal: Principal, key_setting: str, head: str | None = None
) -> ChainCheck:
    """What `triage audit verify` answers: the chain recomputed with the audit key (the
    first problem, if any), and why the database role could rewrite the trail, if it could.
    Audited with its answer."""
    require(principal, "audit.view")
    try:
        key = audit_key(key_setting)
    except AuditKeyMissing:
        return ChainCheck(None)
    result = await verify(db, key, head)
    warnings = await role_problems(db)
    await record_event(
        db,
        principal.actor,
        "audit.verified",
        "audit_digests",
        "audit_trail",
        {"ok": result.ok, "digests": result.digests, "events": result.events},
    )
    await db.commit()
    return ChainCheck(result, warnings)
