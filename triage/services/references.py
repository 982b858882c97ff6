"""Human references (`KVR-26-004211`): the catalogue's prefix, the year of receipt in
Europe/London and a number from a sequence per prefix and year, at least 6 digits."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from triage.domain.calendar import LONDON
from triage.domain.catalogue import Catalogue
from triage.services.catalogues import is_recorded, record_catalogue
from triage.services.clock import production_now, service_now

_known: set[str] = set()


def sequence_name(prefix: str, received_at: datetime) -> str:
    if not (prefix.isascii() and prefix.isalpha()):
        raise ValueError("reference prefixes are letters only")
    return f"reference_{prefix.lower()}_{received_at.astimezone(LONDON).year}"


async def ensure_sequence(
    db: asyncpg.Connection | AsyncSession, prefix: str, received_at: datetime
) -> None:
    """Make sure of the year's sequence: a sequence, not a counter row, so no lock is shared
    by every intake. The application's role runs no DDL: the owner's SECURITY DEFINER function
    (migration 0004) creates the sequence and grants this role its use, under an advisory lock
    that makes two first referrals of the year wait for each other. On a plain asyncpg
    connection, in a transaction of its own before any intake transaction uses it (and
    remembered by the process); in a service command's session, inside its transaction (not
    remembered until it is known to be there)."""
    name = sequence_name(prefix, received_at)
    if name in _known:
        return
    if isinstance(db, AsyncSession):
        await db.execute(text("SELECT triage_ensure_reference_sequence(:n)"), {"n": name})
        return
    async with db.transaction():
        await db.execute("SELECT triage_ensure_reference_sequence($1)", name)
    _known.add(name)


def has_sequence(prefix: str, received_at: datetime) -> bool:
    """Whether this process has made sure of the year's sequence."""
    return sequence_name(prefix, received_at) in _known


def reference_stem(prefix: str, received_at: datetime) -> str:
    """`KVR-26-`: what comes before the number."""
    return f"{prefix}-{received_at.astimezone(LONDON).year % 100:02d}-"


def forget_sequences() -> None:
    """For tests that drop and recreate databases in one process."""
    _known.clear()


async def next_references(
    db: AsyncSession, prefix: str, received_at: datetime, count: int, min_digits: int = 6
) -> list[str]:
    """`count` new references; `ensure_sequence` must have run for this prefix and year."""
    if count == 0:
        return []
    name = sequence_name(prefix, received_at)
    rows = await db.execute(
        text(f"SELECT nextval('{name}') FROM generate_series(1, :n)"), {"n": count}
    )
    stem = reference_stem(prefix, received_at)
    return [f"{stem}{number:0{min_digits}d}" for (number,) in rows]


async def ready_to_number(
    connect: Callable[[], AbstractAsyncContextManager[Any]], catalogue: Catalogue, prefix: str
) -> datetime:
    """Now, with the catalogue recorded and the year's sequence for `prefix` there (each
    once per process; in production, after the first time, no round trip at all).
    `connect()` gives an asyncpg connection."""
    now = production_now()
    if now is not None and is_recorded(catalogue) and has_sequence(prefix, now):
        return now
    async with connect() as db:
        await record_catalogue(db, catalogue)
        now = await service_now(db)
        await ensure_sequence(db, prefix, now)
    return now
