"""Database errors told apart by where they happened (db.errors): failing to connect and
losing the connection are DatabaseUnavailable (503), on the plain asyncpg pool and on every
SQLAlchemy engine alike; an error on a healthy connection stays what it is (500). And no
engine's error text carries the statement's parameters."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SECRET_VALUE = "Sam Taylor 07700 900123"


async def _fails(engine: Any) -> DBAPIError:
    from db.engine import make_sessionmaker

    async with make_sessionmaker(engine)() as db:
        with pytest.raises(DBAPIError) as failed:
            await db.execute(text("SELECT CAST(:secret AS text), 1 / 0"), {"secret": SECRET_VALUE})
    return failed.value


@pytest.mark.parametrize("null_pool", [False, True])
async def test_error_text_hides_the_parameters(servers: Any, null_pool: bool) -> None:
    from db.engine import make_engine

    engine = make_engine(servers.database_url, null_pool=null_pool)
    try:
        error = await _fails(engine)
    finally:
        await engine.dispose()
    assert "division by zero" in str(error)
    assert SECRET_VALUE not in str(error) and SECRET_VALUE not in repr(error)


async def test_an_engine_not_made_by_make_engine_would_show_them(servers: Any) -> None:
    """What the test above guards against (so it cannot pass for another reason)."""
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from db.engine import async_url

    engine = create_async_engine(async_url(servers.database_url), poolclass=NullPool)
    try:
        error = await _fails(engine)
    finally:
        await engine.dispose()
    assert SECRET_VALUE in str(error)


def test_every_engine_is_made_by_make_engine() -> None:
    """The project's engines (web, workers, CLI, benchmarks, the Alembic environment) all
    come from db.engine.make_engine, which hides parameters."""
    made = re.compile(r"\b(create_async_engine|create_engine|\w*engine_from_config)\(")
    elsewhere = [
        str(path.relative_to(ROOT))
        for folder in ("triage", "workers", "db", "bench")
        for path in (ROOT / folder).rglob("*.py")
        if path != ROOT / "db" / "engine.py" and made.search(path.read_text())
    ]
    assert not elsewhere


def _missing(servers: Any) -> str:
    from db.engine import plain_url
    from triage.devstack import with_database

    return with_database(plain_url(servers.database_url), f"gone_{uuid.uuid4().hex[:8]}")


async def test_connecting_fails_as_database_unavailable(servers: Any) -> None:
    import asyncpg

    from db.engine import make_engine, make_sessionmaker
    from db.errors import DatabaseUnavailable, try_again_later
    from db.pool import connection, make_pool

    pool = await make_pool(_missing(servers), 1)
    try:
        with pytest.raises(DatabaseUnavailable) as plain:
            async with connection(pool) as db:
                await db.fetchval("SELECT 1")
    finally:
        await pool.close()
    assert isinstance(plain.value.__cause__, asyncpg.InvalidCatalogNameError)

    engine = make_engine(_missing(servers))
    try:
        async with make_sessionmaker(engine)() as session:
            with pytest.raises(DatabaseUnavailable) as orm:
                await session.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
    assert try_again_later(plain.value) and try_again_later(orm.value)


async def test_a_connection_lost_mid_statement_is_database_unavailable(servers: Any) -> None:
    from db.engine import make_engine, make_sessionmaker
    from db.errors import DatabaseUnavailable
    from db.pool import connection, make_pool

    pool = await make_pool(servers.database_url, 1)
    try:
        with pytest.raises(DatabaseUnavailable):
            async with connection(pool) as db:
                await db.fetchval("SELECT pg_terminate_backend(pg_backend_pid())")
        async with connection(pool) as db:  # and the pool connects again
            assert await db.fetchval("SELECT 1") == 1
    finally:
        await pool.close()

    engine = make_engine(servers.database_url, pool_size=1)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions() as session:
            with pytest.raises(DatabaseUnavailable):
                await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        async with sessions() as session:
            assert (await session.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await engine.dispose()


async def test_an_error_on_a_healthy_connection_is_not_an_outage(servers: Any) -> None:
    """A bug (here a division by zero) is a 500, on either path: never retried as a 503."""
    import asyncpg

    from db.engine import make_engine
    from db.errors import DatabaseUnavailable, try_again_later
    from db.pool import connection, make_pool

    pool = await make_pool(servers.database_url, 1)
    try:
        with pytest.raises(asyncpg.DivisionByZeroError) as plain:
            async with connection(pool) as db:
                await db.fetchval("SELECT 1 / 0")
    finally:
        await pool.close()
    engine = make_engine(servers.database_url)
    try:
        orm = await _fails(engine)
    finally:
        await engine.dispose()
    for error in (plain.value, orm):
        assert not isinstance(error, DatabaseUnavailable)
        assert not try_again_later(error)


async def test_the_app_and_workers_connections_have_no_jit(servers: Any) -> None:
    """A pooled engine (the web app's, the workers') turns JIT off for its sessions: a
    surname search's LATERAL passed the server's jit_above_cost and compiled for 200 ms of a
    10 ms query (the server's default is on)."""
    from db.engine import make_engine

    engine = make_engine(servers.database_url)
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("SHOW jit"))).scalar() == "off"
    finally:
        await engine.dispose()
