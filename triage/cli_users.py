"""`triage users ...`: staff accounts from the operator's shell (admins also manage them in
the pages). A new account's one-time set-up link is printed (the only way it is shown)."""

from __future__ import annotations

import sys
import uuid

import click
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from triage.cli_admin import _secret, run_with_session
from triage.domain.policy import STAFF_ROLES
from triage.domain.principals import OPERATOR
from triage.settings import get_settings


def setup_link(token: str) -> str:
    return f"{get_settings().base_url}/staff/set-up/{token}"


@click.group("users")
def users_group() -> None:
    """Staff accounts."""


@users_group.command("create")
@click.argument("email")
@click.option("--role", "roles", multiple=True, required=True, type=click.Choice(STAFF_ROLES))
@click.option("--services", default="", help="Service codes a caseworker works on: isva,cisva")
def create(email: str, roles: tuple[str, ...], services: str) -> None:
    """Create an account and print its one-time set-up link (3 days)."""
    from triage.services.catalogues import current_catalogue
    from triage.services.staff_accounts import AccountProblem, create_account

    codes = [c.strip() for c in services.split(",") if c.strip()]
    known = frozenset(current_catalogue().services)
    secret = _secret()

    async def work(db: AsyncSession) -> str:
        account = await create_account(db, OPERATOR, secret, email, list(roles), codes, known)
        return account.setup_token

    try:
        token = run_with_session(work)
    except AccountProblem as problem:
        click.echo(f"{problem.field}: {problem.message}", err=True)
        sys.exit(1)
    click.echo("Give this set-up link to the user; it works once, for 3 days:", err=True)
    click.echo(setup_link(token))


@users_group.command("reset")
@click.argument("email")
@click.option(
    "--action",
    type=click.Choice(["unlock", "reset_two_factor", "disable", "enable"]),
    required=True,
)
def reset(email: str, action: str) -> None:
    """Unlock, disable or enable an account, or reset its password and two-factor (a new
    set-up link is printed)."""
    from db import models
    from triage.services.staff_accounts import AccountProblem, admin_action, normalise_email

    secret = _secret()

    async def work(db: AsyncSession) -> str | None:
        user_id = await db.scalar(
            select(models.StaffUser.id).where(models.StaffUser.email == normalise_email(email))
        )
        if user_id is None:
            raise AccountProblem("email", "there is no account with this email address")
        return await admin_action(db, OPERATOR, secret, uuid.UUID(str(user_id)), action)

    try:
        token = run_with_session(work)
    except AccountProblem as problem:
        click.echo(f"{problem.field}: {problem.message}", err=True)
        sys.exit(1)
    if token:
        click.echo(setup_link(token))
    else:
        click.echo(f"{action}: done", err=True)
