"""Demo staff accounts for `triage dev`: one per role, with a known password and TOTP secret
printed in the banner (dev only: `triage dev` never runs in production)."""

from __future__ import annotations

from dataclasses import dataclass

import pyotp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db import models
from triage.domain.principals import OPERATOR
from triage.services.staff_accounts import confirm_two_factor, create_account, set_password

DEMO_PASSWORD = "demo password for triage"
DEMO_ROLES: dict[str, tuple[str, ...]] = {
    "hub": (),
    "caseworker": ("core", "isva", "domestic-abuse", "stalking"),
    "duty_lead": (),
    "commissioner": (),
    "admin": (),
}


@dataclass(frozen=True)
class DemoLogin:
    role: str
    email: str
    totp_secret: str


def demo_email(role: str) -> str:
    return f"{role.replace('_', '-')}@demo.triage.test"


async def ensure_demo_staff(
    db: AsyncSession, secret_key: str, known_services: frozenset[str]
) -> list[DemoLogin]:
    logins = []
    for role, services in DEMO_ROLES.items():
        email = demo_email(role)
        user = await db.scalar(select(models.StaffUser).where(models.StaffUser.email == email))
        if user is None or user.totp_secret is None or not user.recovery_codes:
            if user is None:
                account = await create_account(
                    db, OPERATOR, secret_key, email, [role], list(services), known_services
                )
                assert account.setup_token is not None  # shown, never emailed, here
                token = account.setup_token
            else:
                from triage.services.staff_accounts import admin_action

                reset = await admin_action(db, OPERATOR, secret_key, user.id, "reset_two_factor")
                assert reset is not None
                token = reset
            user = await set_password(db, secret_key, token, DEMO_PASSWORD, DEMO_PASSWORD)
            await confirm_two_factor(
                db, secret_key, token, pyotp.TOTP(user.totp_secret or "").now()
            )
        logins.append(DemoLogin(role, email, user.totp_secret or ""))
    return logins
