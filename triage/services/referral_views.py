"""What the API answers about referrals (api.md): status, the latest decision, the cases.
No personal data: a referring system already has it, and a response must not carry more."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select, tuple_
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from db import models
from triage.domain.checker import parse_instant
from triage.domain.decision import iso_z
from triage.domain.policy import require
from triage.domain.principals import Principal
from triage.services.audit import record_event
from triage.services.scoping import referrals_visible_to

PAGE_SIZE = 100


class BadCursor(ValueError):
    pass


async def views(db: AsyncSession, referrals: Sequence[models.Referral]) -> list[dict[str, Any]]:
    if not referrals:
        return []
    ids = [r.id for r in referrals]
    decisions = {
        row.referral_id: row.decision
        for row in await db.execute(
            select(models.TriageDecision.referral_id, models.TriageDecision.decision)
            .where(models.TriageDecision.referral_id.in_(ids))
            .ext(distinct_on(models.TriageDecision.referral_id))
            .order_by(models.TriageDecision.referral_id, models.TriageDecision.id.desc())
        )
    }
    cases: dict[uuid.UUID, list[dict[str, Any]]] = {i: [] for i in ids}
    for case in (
        await db.execute(
            select(models.Case)
            .where(models.Case.referral_id.in_(ids))
            .order_by(models.Case.referral_id, models.Case.opened_at)
        )
    ).scalars():
        cases[case.referral_id].append(
            case_view(
                case.service,
                case.role,
                case.status,
                case.first_contact_at,
                case.closed_at,
                case.closure_reason,
            )
        )
    return [
        referral_view(
            r.id,
            r.reference,
            r.external_ref,
            r.status,
            r.received_at,
            r.updated_at,
            _current_triage(decisions.get(r.id), r),
            cases[r.id],
        )
        for r in referrals
    ]


def case_view(
    service: str,
    role: str,
    status: str,
    first_contact_at: datetime | None,
    closed_at: datetime | None,
    closure_reason: str | None,
) -> dict[str, Any]:
    return {
        "service": service,
        "role": role,
        "status": status,
        "first_contact_at": iso_z(first_contact_at),
        "closed_at": iso_z(closed_at),
        # `duplicate` would tell the referrer the victim is known to us by another referral
        # (a self-referral, perhaps): a possible duplicate is never shown outside the staff
        # pages, so the referrer sees a closed case without a reason.
        "closure_reason": None if closure_reason == "duplicate" else closure_reason,
    }


def referral_view(
    referral_id: uuid.UUID,
    reference: str,
    external_ref: str | None,
    status: str,
    received_at: datetime,
    updated_at: datetime,
    decision: dict[str, Any] | None,
    cases: list[dict[str, Any]],
) -> dict[str, Any]:
    """The API's referral object; cases primary first, then in the order they were opened."""
    ordered = sorted(cases, key=lambda c: (c["role"] != "primary", c["service"]))
    return {
        "id": str(referral_id),
        "reference": reference,
        "external_ref": external_ref,
        "status": status,
        "received_at": iso_z(received_at),
        "updated_at": iso_z(updated_at),
        "triage": decision,
        "cases": [{k: v for k, v in c.items() if k != "role"} for c in ordered],
    }


def _current_triage(
    decision: dict[str, Any] | None, referral: models.Referral
) -> dict[str, Any] | None:
    if decision is None:
        return None
    # Flags raised by case work (service_review) live on the referral beside the decision's.
    merged = dict(decision)
    merged["flags"] = list(dict.fromkeys([*decision.get("flags", []), *referral.flags]))
    # The deadline in force is the referral's: a re-triage only ever moves it earlier, so a
    # later one computed by the newest decision (a P1's 24 hours after a P2's 17:00) does not
    # stand.
    merged["contact_due_by"] = iso_z(referral.contact_due_by)
    return merged


def _referrals() -> Select[models.Referral]:
    """Referral rows for the views, without `facts`: the largest column, personal data, and
    never shown by the API's referral object (raises if anything reads it by mistake)."""
    return select(models.Referral).options(defer(models.Referral.facts, raiseload=True))


async def get_visible(
    db: AsyncSession, principal: Principal, referral_id: uuid.UUID
) -> dict[str, Any] | None:
    """The referral, if the principal may see it (a client: the referrals it sent)."""
    row = (
        await db.execute(
            _referrals().where(models.Referral.id == referral_id, referrals_visible_to(principal))
        )
    ).scalar()
    if row is None:
        return None
    return (await views(db, [row]))[0]


async def by_external_ref(
    db: AsyncSession, principal: Principal, external_ref: str
) -> list[dict[str, Any]]:
    rows = (
        (
            await db.execute(
                _referrals().where(
                    referrals_visible_to(principal),
                    models.Referral.external_ref == external_ref,
                )
            )
        )
        .scalars()
        .all()
    )
    return await views(db, rows)


def encode_cursor(updated_at: datetime, referral_id: uuid.UUID) -> str:
    raw = json.dumps([updated_at.isoformat(), str(referral_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, referral_id = json.loads(raw)
        after_at, after_id = parse_instant(stamp), uuid.UUID(referral_id)
    except (ValueError, TypeError, RecursionError) as error:
        raise BadCursor("cursor is not one this service gave") from error
    if isinstance(after_at, str):  # every cursor given carries a time with its offset
        raise BadCursor("cursor is not one this service gave")
    return after_at, after_id


async def changed_since(
    db: AsyncSession,
    principal: Principal,
    since: datetime | None,
    cursor: str | None,
    limit: int = PAGE_SIZE,
) -> tuple[list[dict[str, Any]], str | None]:
    """The client's referrals changed since a time, oldest change first, keyset-paginated."""
    query = _referrals().where(referrals_visible_to(principal))
    if cursor:
        after_at, after_id = decode_cursor(cursor)
        query = query.where(
            tuple_(models.Referral.updated_at, models.Referral.id) > tuple_(after_at, after_id)
        )
    elif since is not None:
        query = query.where(models.Referral.updated_at >= since)
    rows = (
        (
            await db.execute(
                query.order_by(models.Referral.updated_at, models.Referral.id).limit(limit + 1)
            )
        )
        .scalars()
        .all()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].updated_at, rows[-1].id) if more and rows else None
    return await views(db, rows), next_cursor


# The reads a referring system makes, each audited (lifecycle.md: every view and every change):
# who read which referral, never what it holds. Each commits its event once.


async def read_referral(
    db: AsyncSession,
    principal: Principal,
    referral_id: uuid.UUID,
    permission: str = "referral.view",
) -> dict[str, Any] | None:
    """The referral (None when the principal may not see it), its reading audited. A resend's
    answer is the referral the sender sent: `referral.create` is enough for it."""
    require(principal, permission)
    view = await get_visible(db, principal, referral_id)
    if view is not None:
        await record_event(db, principal.actor, "referral.viewed", referral_id)
        await db.commit()
    return view


async def read_by_external_ref(
    db: AsyncSession, principal: Principal, external_ref: str
) -> list[dict[str, Any]]:
    require(principal, "referral.view")
    items = await by_external_ref(db, principal, external_ref)
    for item in items:
        await record_event(db, principal.actor, "referral.viewed", item["id"])
    await db.commit()
    return items


async def read_changed_since(
    db: AsyncSession,
    principal: Principal,
    since: datetime | None,
    cursor: str | None,
    limit: int = PAGE_SIZE,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the status feed; one event for the page, listing the referrals it returned."""
    require(principal, "referral.view")
    items, next_cursor = await changed_since(db, principal, since, cursor, limit)
    await record_event(
        db,
        principal.actor,
        "referrals.feed_read",
        principal.id,
        record_type="api_client",
        details={"referrals": [item["id"] for item in items]},
    )
    await db.commit()
    return items, next_cursor
