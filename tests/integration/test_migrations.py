"""Alembic: one head, the database at it, upgrades safe to run at once (advisory lock), a full
downgrade and upgrade; the audit trail refuses UPDATE, DELETE and TRUNCATE even to the owner.
Migrations run as the owner role (`servers.owner_url`), never as the application's."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

ROOT = Path(__file__).resolve().parents[2]


def _heads(database_url: str) -> list[str]:
    from db.migrate import alembic_config

    return list(ScriptDirectory.from_config(alembic_config(database_url)).get_heads())


async def test_single_head_and_database_at_it(servers: Any, sessions: Any) -> None:
    heads = _heads(servers.database_url)
    assert len(heads) == 1, heads
    async with sessions() as db:
        current = (await db.execute(text("SELECT version_num FROM alembic_version"))).scalars()
        assert list(current) == heads


async def test_upgrades_at_once_are_safe(servers: Any, sessions: Any) -> None:
    """Several replicas start together (separate processes, as in production): each waits for
    the advisory lock, then finds nothing to do."""
    script = "import sys; from db.migrate import upgrade; upgrade(sys.argv[1])"
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            script,
            servers.owner_url,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(3)
    ]
    for process in processes:
        _, err = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 0, err.decode()[-2000:]
    async with sessions() as db:
        versions = list(
            (await db.execute(text("SELECT version_num FROM alembic_version"))).scalars()
        )
    assert versions == _heads(servers.database_url)


async def test_downgrade_to_base_and_up_again(servers: Any) -> None:
    from db.engine import plain_url
    from db.migrate import downgrade, upgrade
    from triage.devstack import with_database

    name = f"triage_mig_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(plain_url(servers.owner_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = with_database(plain_url(servers.owner_url), name)
        await asyncio.to_thread(upgrade, url)
        await asyncio.to_thread(downgrade, url, "base")
        scratch = await asyncpg.connect(url)
        try:
            tables = await scratch.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            )
            assert tables == []
        finally:
            await scratch.close()
        await asyncio.to_thread(upgrade, url)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor = 'someone else' WHERE id = :id",
        "DELETE FROM audit_events WHERE id = :id",
        "TRUNCATE audit_events",
    ],
)
async def test_audit_events_are_append_only(owner_sessions: Any, statement: str) -> None:
    """The trigger refuses even the owner (the application's role has no such rights at all:
    test_audit_roles.py)."""
    sessions = owner_sessions
    async with sessions() as db:
        event_id = (
            await db.execute(
                text(
                    "INSERT INTO audit_events (actor, action, record_type, record_id) "
                    "VALUES ('test', 'test.append_only', 'test', :r) RETURNING id"
                ),
                {"r": uuid.uuid4().hex},
            )
        ).scalar_one()
        await db.commit()
    async with sessions() as db:
        params = {"id": event_id} if ":id" in statement else {}
        with pytest.raises(DBAPIError, match="append-only"):
            await db.execute(text(statement), params)
        await db.rollback()
    async with sessions() as db:
        actor = (
            await db.execute(
                text("SELECT actor FROM audit_events WHERE id = :id"), {"id": event_id}
            )
        ).scalar_one()
    assert actor == "test"


def test_models_and_migrations_agree(servers: Any) -> None:
    """The models describe exactly what the migrations build: no change left unmigrated."""
    from alembic import command

    from db.migrate import alembic_config

    command.check(alembic_config(servers.owner_url))  # raises when they differ
