"""Operator commands: database, API clients and keys, the dev clock, demo data."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncSession

from db.engine import make_engine, make_sessionmaker
from triage.settings import get_settings

T = TypeVar("T")


def _database_url() -> str:
    url = get_settings().database_url
    if not url:
        click.echo("DATABASE_URL is not set (or run `triage dev`)", err=True)
        sys.exit(2)
    return url


def run_with_session(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    url = _database_url()

    async def go() -> T:
        engine = make_engine(url, null_pool=True)
        try:
            async with make_sessionmaker(engine)() as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _run_or_exit(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """run_with_session, with a refused request (no such client, bad scope) said on stderr
    and exit status 1."""
    from triage.services.api_keys import KeyError_

    try:
        return run_with_session(work)
    except KeyError_ as error:
        click.echo(str(error), err=True)
        sys.exit(1)


def _print_new_key(key: str) -> None:
    click.echo("Store this key now; it is not shown again:", err=True)
    click.echo(key)  # alone on the last line of stdout, for scripts


def _secret() -> str:
    secret = get_settings().secret_key
    if not secret:
        click.echo("TRIAGE_SECRET_KEY is not set: keys are stored as an HMAC under it", err=True)
        sys.exit(2)
    return secret


@click.group("db")
def db_group() -> None:
    """The database schema."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Migrate as the owner role: MIGRATION_DATABASE_URL, else DATABASE_URL (under an advisory
    lock: replicas may start at once)."""
    from db.migrate import upgrade

    url = get_settings().migration_url
    if not url:
        click.echo("MIGRATION_DATABASE_URL (or DATABASE_URL) is not set", err=True)
        sys.exit(2)
    upgrade(url, revision)
    click.echo(f"database at {revision}")


@click.group("clients")
def clients_group() -> None:
    """API clients (organisations that send referrals)."""


@clients_group.command("create")
@click.argument("name")
@click.option(
    "--source", type=click.Choice(["police", "professional", "commissioner"]), required=True
)
def clients_create(name: str, source: str) -> None:
    """Create an API client."""
    from triage.services.api_keys import create_client

    client = _run_or_exit(lambda db: create_client(db, name, source))
    click.echo(f"client {client.name} ({client.source}) created")


@clients_group.command("set-limit")
@click.argument("name")
@click.option("--per-minute", type=click.IntRange(1), help="Requests a minute.")
@click.option("--batches-per-minute", type=click.IntRange(1), help="Batches a minute.")
def clients_set_limit(name: str, per_minute: int | None, batches_per_minute: int | None) -> None:
    """Set a client's rate limits."""
    from triage.services.api_keys import set_limit

    client = _run_or_exit(lambda db: set_limit(db, name, per_minute, batches_per_minute))
    click.echo(
        f"{client.name}: {client.per_minute} requests and "
        f"{client.batches_per_minute} batches a minute"
    )


@click.group("keys")
def keys_group() -> None:
    """API keys: shown once, stored as an HMAC."""


@keys_group.command("create")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help="referrals:write, referrals:read, aa:write or reports:read (repeatable; "
    "default by the client's source).",
)
def keys_create(name: str, scopes: tuple[str, ...]) -> None:
    """Create a key for client NAME; the key is printed once, alone on the last line."""
    from triage.services.api_keys import create_key

    secret = _secret()
    _print_new_key(_run_or_exit(lambda db: create_key(db, secret, name, scopes)))


@keys_group.command("rotate")
@click.argument("name")
def keys_rotate(name: str) -> None:
    """A new key for NAME; the old ones work until revoked."""
    from triage.services.api_keys import rotate_key

    secret = _secret()
    _print_new_key(_run_or_exit(lambda db: rotate_key(db, secret, name)))


@keys_group.command("revoke")
@click.argument("prefix")
def keys_revoke(prefix: str) -> None:
    """Revoke the key whose prefix (the 8 characters after trg_) is PREFIX."""
    from triage.services.api_keys import revoke_key

    if not run_with_session(lambda db: revoke_key(db, prefix)):
        click.echo(f"no active key with prefix {prefix}", err=True)
        sys.exit(1)
    click.echo(f"key {prefix} revoked")


@click.group("clock")
def clock_group() -> None:
    """The service clock (dev and tests only; refused in production)."""


@clock_group.command("advance")
@click.argument("duration")
def clock_advance(duration: str) -> None:
    """Move the clock forward by DURATION (2d, 36h, 90m, 1d12h)."""
    from triage.services.clock import ClockRefused, advance, parse_duration

    refuse_in_production("triage clock advance")
    try:
        by = parse_duration(duration)
        offset = run_with_session(lambda db: advance(db, by))
    except (ValueError, ClockRefused) as error:
        click.echo(str(error), err=True)
        sys.exit(1)
    click.echo(f"clock offset now {offset}")


@clock_group.command("reset")
def clock_reset() -> None:
    """Put the clock back to the system time."""
    from triage.services.clock import ClockRefused, reset

    refuse_in_production("triage clock reset")
    try:
        run_with_session(reset)
    except ClockRefused as error:
        click.echo(str(error), err=True)
        sys.exit(1)
    click.echo("clock reset")


@click.group("demo")
def demo_group() -> None:
    """Demo data (made-up people, drama-range phone numbers)."""


@demo_group.command("load")
@click.option("--referrals", "count", default=200, show_default=True, type=click.IntRange(0))
@click.option("--client", "client_name", default="Demo Police", show_default=True)
@click.option(
    "--year-like",
    type=click.Choice(["kent-2022"]),
    default=None,
    help="Instead: a past year shaped like the seed's (Kent 2022-23), as history.",
)
@click.option(
    "--scale",
    default=0.01,
    show_default=True,
    type=click.FloatRange(0.0001, 1.0),
    help="With --year-like: the share of the year's 103,650 referrals to write.",
)
def demo_load(count: int, client_name: str, year_like: str | None, scale: float) -> None:
    """Load COUNT demo referrals through the intake service as CLIENT (dev and test only), or
    with --year-like a past year's referrals with their contact, closures and surveys."""
    refuse_in_production("triage demo load")
    if year_like:
        click.echo(load_year_like(year_like, scale, client_name))
        return
    click.echo(load_demo(count, client_name))


def load_year_like(shape: str, scale: float, client_name: str) -> str:
    from db.pool import make_pool
    from triage.demo_history import load_year
    from triage.services.catalogues import current_catalogue

    url = _database_url()

    async def go() -> dict[str, int]:
        pool = await make_pool(url, 1)
        try:
            client = await _client_row(pool, client_name)
            return await load_year(
                pool, current_catalogue(), client["id"], client["source"], shape, scale
            )
        finally:
            await pool.close()

    counts = asyncio.run(go())
    return f"{shape} history: " + ", ".join(f"{n} {k}" for k, n in counts.items())


def refuse_in_production(what: str) -> None:
    if get_settings().is_production:
        click.echo(f"{what} is refused in production (TRIAGE_ENV=production)", err=True)
        sys.exit(1)


async def _client_row(pool: Any, client_name: str) -> Any:
    """The demo's API client by name (its referrals arrive as the client's)."""
    client = await pool.fetchrow("SELECT id, source FROM api_clients WHERE name = $1", client_name)
    if client is None:
        raise click.ClickException(f"no client named {client_name!r}")
    return client


def load_demo(count: int, client_name: str) -> str:
    from db.pool import make_pool
    from triage.demo import demo_referrals
    from triage.domain.principals import client as client_principal
    from triage.services.catalogues import current_catalogue
    from triage.services.intake import submit_batch

    url = _database_url()
    catalogue = current_catalogue()

    async def go() -> dict[str, int]:
        pool = await make_pool(url, 1)
        try:
            client = await _client_row(pool, client_name)
            # The demo's referrals arrive as the client's, as a key of it would send them.
            caller = client_principal(
                client["id"], frozenset({"referrals:write"}), client["source"]
            )
            bodies = demo_referrals(count, catalogue, date.today())
            counts: dict[str, int] = {}
            for start in range(0, len(bodies), 1000):
                for result in await submit_batch(
                    pool, caller, bodies[start : start + 1000], catalogue
                ):
                    counts[result.status] = counts.get(result.status, 0) + 1
            return counts
        finally:
            await pool.close()

    counts = asyncio.run(go())
    return "demo referrals: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))


def register(main: Any) -> None:
    from triage.cli_users import users_group

    for group in (db_group, clients_group, keys_group, clock_group, demo_group, users_group):
        main.add_command(group)
