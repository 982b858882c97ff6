"""The staff accounts as an admin reads them: every account with its roles, services and
state (disabled, throttled, set up, last sign-in, its newest set-up email). Reads only: the
changes are services.staff_accounts (create_account, admin_action, sign_out_everywhere), each
audited."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db import models
from triage.domain.policy import require
from triage.domain.principals import Principal
from triage.services.clock import service_now


class NoSuchUser(LookupError):
    """No account with this id (a page answers 404)."""


@dataclass(frozen=True)
class SetupEmail:
    """The account's newest set-up email (production), as its page shows it."""

    status: str  # queued | sending | sent | failed | cancelled
    created_at: datetime
    sent_at: datetime | None
    final_at: datetime | None
    failure_reason: str | None  # our words, never the address or the provider's text


@dataclass(frozen=True)
class UserRow:
    id: uuid.UUID
    email: str
    roles: tuple[str, ...]
    services: tuple[str, ...]
    disabled_at: datetime | None
    throttled_until: datetime | None  # None unless throttled now
    failed_sign_ins: int
    last_sign_in_at: datetime | None
    created_at: datetime
    # False until the set-up link's password step is done (a new or reset account).
    set_up: bool
    # The newest set-up email's status (None: its link was shown, never emailed).
    setup_email_status: str | None = None
    setup_email: SetupEmail | None = None  # in full, on the account's own page

    @property
    def actor(self) -> str:
        return f"staff:{self.id}"


_COLUMNS = (
    models.StaffUser.id,
    models.StaffUser.email,
    models.StaffUser.roles,
    models.StaffUser.services,
    models.StaffUser.disabled_at,
    models.StaffUser.throttled_until,
    models.StaffUser.failed_sign_ins,
    models.StaffUser.last_sign_in_at,
    models.StaffUser.created_at,
    models.StaffUser.password_hash.is_not(None).label("set_up"),
    select(models.StaffSetupEmail.status)
    .where(models.StaffSetupEmail.user_id == models.StaffUser.id)
    .order_by(models.StaffSetupEmail.created_at.desc())
    .limit(1)
    .correlate(models.StaffUser)
    .scalar_subquery()
    .label("setup_email_status"),
)


def _row(row: Any, now: datetime) -> UserRow:
    r = row._mapping
    throttled = r["throttled_until"]
    return UserRow(
        id=r["id"],
        email=r["email"],
        roles=tuple(r["roles"]),
        services=tuple(r["services"]),
        disabled_at=r["disabled_at"],
        throttled_until=throttled if throttled is not None and throttled > now else None,
        failed_sign_ins=r["failed_sign_ins"],
        last_sign_in_at=r["last_sign_in_at"],
        created_at=r["created_at"],
        set_up=bool(r["set_up"]),
        setup_email_status=r["setup_email_status"],
    )


async def users(db: AsyncSession, principal: Principal) -> list[UserRow]:
    """Every account, by email."""
    require(principal, "user.manage")
    now = await service_now(db)
    result = await db.execute(select(*_COLUMNS).order_by(models.StaffUser.email))
    return [_row(row, now) for row in result]


async def user(db: AsyncSession, principal: Principal, user_id: uuid.UUID) -> UserRow:
    require(principal, "user.manage")
    now = await service_now(db)
    row = (await db.execute(select(*_COLUMNS).where(models.StaffUser.id == user_id))).first()
    if row is None:
        raise NoSuchUser(str(user_id))
    email = (
        await db.execute(
            select(
                models.StaffSetupEmail.status,
                models.StaffSetupEmail.created_at,
                models.StaffSetupEmail.sent_at,
                models.StaffSetupEmail.final_at,
                models.StaffSetupEmail.failure_reason,
            )
            .where(models.StaffSetupEmail.user_id == user_id)
            .order_by(models.StaffSetupEmail.created_at.desc())
            .limit(1)
        )
    ).first()
    found = _row(row, now)
    if email is None:
        return found
    return replace(found, setup_email=SetupEmail(*email))
