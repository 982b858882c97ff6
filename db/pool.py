"""A plain asyncpg pool for the API's hot path (key check, intake), beside SQLAlchemy's.

Intake is one statement with JSON parameters; going through SQLAlchemy's session, its adapter
and its pool cost more CPU per referral than PostgreSQL spends writing it. Here each
connection keeps its prepared statements, and nothing is sent when a connection goes back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from db.engine import CONNECT_SECONDS, STATEMENT_SECONDS, plain_url
from db.errors import CONNECTING, LOST, DatabaseUnavailable

# A request never waits longer than these for the database: past them it answers 503 with
# Retry-After (an acquire timeout is DatabaseUnavailable, a statement timeout a TimeoutError,
# see db.errors).
ACQUIRE_SECONDS = 10
# A row lock held by another transaction (a batch carrying the same external_ref, say) is
# waited for this long; then the statement fails and is retried or answered 503, instead of
# holding up every referral that shares its statement.
LOCK_TIMEOUT = "1s"


async def _reset(connection: asyncpg.Connection) -> None:
    """Nothing: asyncpg has already rolled back any open transaction before calling this.
    Its default reset sends RESET ALL, UNLISTEN and more on every release, a round trip per
    request for session state this pool never sets."""


async def make_pool(url: str, size: int) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        plain_url(url),
        # None at start: the app starts (and answers 503) while the database is away.
        min_size=0,
        max_size=size,
        reset=_reset,
        # A connection unused for a while is closed, and opened again when needed.
        max_inactive_connection_lifetime=300,
        timeout=CONNECT_SECONDS,
        command_timeout=STATEMENT_SECONDS,
        server_settings={"lock_timeout": LOCK_TIMEOUT},
    )
    assert pool is not None
    return pool


@asynccontextmanager
async def connection(pool: asyncpg.Pool) -> AsyncIterator[Any]:
    """`async with connection(pool) as db:` a connection. Any failure to get one (none free
    within ACQUIRE_SECONDS, or the database refusing or not answering a new connection), and
    any failure that leaves the connection closed, is DatabaseUnavailable (503); an error
    on a connection still open is the statement's own."""
    acquiring = pool.acquire(timeout=ACQUIRE_SECONDS)
    try:
        db = await acquiring.__aenter__()
    except Exception as error:
        raise DatabaseUnavailable(CONNECTING) from error
    try:
        yield db
    except Exception as error:
        if _closed(db):
            raise DatabaseUnavailable(LOST) from error
        raise
    finally:
        await acquiring.__aexit__(None, None, None)


def _closed(db: Any) -> bool:
    try:
        return bool(db.is_closed())
    except asyncpg.InterfaceError:
        # The pool has already taken the connection back from this request: it does that
        # only when the connection closes.
        return True
