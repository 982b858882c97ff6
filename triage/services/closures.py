"""Ending a referral's open work, the same way wherever it ends (plan ended, declined,
withdrawn, paused, no consent): its open cases closed, its queued messages cancelled."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from db import models
from triage.domain.statuses import OPEN_CASE_STATUSES


async def close_open_cases(
    db: AsyncSession, referral_id: uuid.UUID, reason: str, now: datetime
) -> None:
    await db.execute(
        update(models.Case)
        .where(models.Case.referral_id == referral_id, models.Case.status.in_(OPEN_CASE_STATUSES))
        .values(status="closed", closure_reason=reason, closed_at=now, updated_at=now)
    )


async def cancel_queued_messages(
    db: AsyncSession, referral_id: uuid.UUID, now: datetime, reason: str | None = None
) -> None:
    """Queued messages cancelled; `reason` recorded when given (otherwise a reason a
    temporary failure left on the row stays)."""
    values: dict[str, Any] = {"status": "cancelled", "final_at": now, "updated_at": now}
    if reason is not None:
        values["failure_reason"] = reason
    await db.execute(
        update(models.Message)
        .where(models.Message.referral_id == referral_id, models.Message.status == "queued")
        .values(**values)
    )
