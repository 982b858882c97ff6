"""Who works here, as the pages need it: the caseworkers a case can be assigned to. Emails
only, for staff who may assign work (never shown to a caseworker's own scope beyond that)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db import models
from triage.domain.policy import allows, require
from triage.domain.principals import Principal


async def caseworkers(db: AsyncSession, principal: Principal) -> list[dict[str, Any]]:
    """Active caseworkers with their services, by email."""
    if not (allows(principal, "case.assign") or allows(principal, "case.reassign")):
        require(principal, "case.assign")
    rows = await db.execute(
        select(models.StaffUser.id, models.StaffUser.email, models.StaffUser.services)
        .where(
            models.StaffUser.roles.contains(["caseworker"]),
            models.StaffUser.disabled_at.is_(None),
        )
        .order_by(models.StaffUser.email)
    )
    return [dict(row._mapping) for row in rows]
