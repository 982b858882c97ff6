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
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.engine import plain_url


async def _reset(connection: asyncpg.Connection) -> None:
    # asyncpg's default reset sends RESET ALL, UNLISTEN and more on every release: one round
    # trip per request for state we never set. An open transaction is still never handed on.
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


async def make_pool(url: str, size: int) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        plain_url(url),
        # None at start: the app starts (and answers 503) while the database is away.
        min_size=0,
        max_size=size,
        reset=_reset,
        # A connection unused for a while is closed, and opened again when needed.
        max_inactive_connection_lifetime=300,
    )
    assert pool is not None
    return pool


@asynccontextmanager
async def driver_connection(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Any]:
    """The asyncpg connection under an autocommit SQLAlchemy connection, for services that
    hold a sessionmaker but call a function written for asyncpg."""
    async with sessions() as db:
        connection = await db.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        raw = await connection.get_raw_connection()
        yield raw.driver_connection
