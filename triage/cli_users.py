"""`triage users ...`: staff accounts from the operator's shell (admins also manage them in
the pages).

A new or reset account's one-time set-up link is printed (the only way it is shown), or, with
a real provider (TRIAGE_NOTIFIER=notify, production), emailed to the person: then nothing is
printed, a set-up email row is written in the same transaction and the workers are woken with
its id. `--print-link` prints instead of emailing, for when the email cannot reach them (it
cancels a set-up email still waiting: its link would end the printed one)."""

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

PRINT_LINK = click.option(
    "--print-link",
    is_flag=True,
    help="Print the set-up link instead of emailing it (production emails it).",
)


def setup_link(token: str) -> str:
    from triage.services.staff_accounts import setup_link as link

    return link(get_settings().base_url, token)


def _emailed(print_link: bool) -> bool:
    from triage.services.staff_accounts import setup_links_emailed

    return setup_links_emailed(get_settings()) and not print_link


def _wake(email_id: uuid.UUID) -> None:
    """Ask a worker to send it now: the row's id only (the worker makes the link). A lost
    wake-up only waits for beat's next sweep, a few seconds."""
    try:
        from workers.celery_app import celery_app

        celery_app.send_task("triage.send_setup_email", args=[str(email_id)], expires=300)
    except Exception:
        click.echo("(the workers could not be woken: beat's next sweep sends it)", err=True)


def _say_emailed() -> None:
    # Not the address: the command's output may be kept in a job's logs.
    click.echo(
        "A set-up link is being emailed to the account's address; it works once, for 3 days. "
        "`triage users reset EMAIL --action reset_two_factor --print-link` prints one instead.",
        err=True,
    )


@click.group("users")
def users_group() -> None:
    """Staff accounts."""


@users_group.command("create")
@click.argument("email")
@click.option("--role", "roles", multiple=True, required=True, type=click.Choice(STAFF_ROLES))
@click.option("--services", default="", help="Service codes a caseworker works on: isva,cisva")
@PRINT_LINK
def create(email: str, roles: tuple[str, ...], services: str, print_link: bool) -> None:
    """Create an account and print its one-time set-up link (3 days); in production the link
    is emailed to them instead."""
    from triage.services.catalogues import current_catalogue
    from triage.services.staff_accounts import (
        AccountProblem,
        NewAccount,
        create_account,
    )

    codes = [c.strip() for c in services.split(",") if c.strip()]
    known = frozenset(current_catalogue().services)
    secret = _secret()
    emailed = _emailed(print_link)

    async def work(db: AsyncSession) -> NewAccount:
        return await create_account(
            db, OPERATOR, secret, email, list(roles), codes, known, email_link=emailed
        )

    try:
        account = run_with_session(work)
    except AccountProblem as problem:
        click.echo(f"{problem.field}: {problem.message}", err=True)
        sys.exit(1)
    if account.setup_email_id is not None:
        _wake(account.setup_email_id)
        _say_emailed()
        return
    assert account.setup_token is not None
    click.echo("Give this set-up link to the user; it works once, for 3 days:", err=True)
    click.echo(setup_link(account.setup_token))


@users_group.command("reset")
@click.argument("email")
@click.option(
    "--action",
    type=click.Choice(["unlock", "reset_two_factor", "disable", "enable"]),
    required=True,
)
@PRINT_LINK
def reset(email: str, action: str, print_link: bool) -> None:
    """Unlock, disable or enable an account, or reset its password and two-factor (a new
    set-up link is printed; in production it is emailed to them instead)."""
    from db import models
    from triage.services.staff_accounts import AccountProblem, admin_action, normalise_email

    secret = _secret()
    emailed = _emailed(print_link) and action == "reset_two_factor"

    async def work(db: AsyncSession) -> tuple[str | None, uuid.UUID | None]:
        user_id = await db.scalar(
            select(models.StaffUser.id).where(models.StaffUser.email == normalise_email(email))
        )
        if user_id is None:
            raise AccountProblem("email", "there is no account with this email address")
        token = await admin_action(
            db, OPERATOR, secret, uuid.UUID(str(user_id)), action, email_link=emailed
        )
        if not emailed:
            return token, None
        # The row the reset just wrote, the account's newest (its id is all the wake-up carries).
        queued = await db.scalar(
            select(models.StaffSetupEmail.id)
            .where(models.StaffSetupEmail.user_id == user_id)
            .order_by(models.StaffSetupEmail.created_at.desc())
            .limit(1)
        )
        return None, queued

    try:
        token, email_id = run_with_session(work)
    except AccountProblem as problem:
        click.echo(f"{problem.field}: {problem.message}", err=True)
        sys.exit(1)
    if token:
        click.echo(setup_link(token))
    elif emailed:
        if email_id is not None:
            _wake(email_id)
        _say_emailed()
    else:
        click.echo(f"{action}: done", err=True)
