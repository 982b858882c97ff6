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


async def test_0004_drops_the_unkeyed_digests_and_the_first_seal_covers_older_events(
    servers: Any,
) -> None:
    """An audit trail written before 0004 (SHA-256 minute digests): its digests go (they cannot
    be re-keyed), its events stay, and the first seal after the upgrade covers every one."""
    from db.engine import make_engine, make_sessionmaker, plain_url
    from db.migrate import upgrade
    from db.roles import app_role
    from triage.devstack import as_role, create_database, drop_database
    from triage.services.audit import GENESIS, audit_key, seal, verify
    from triage.settings import get_settings

    url = await asyncio.to_thread(create_database, servers.owner_url, "triage_mig")
    try:
        await asyncio.to_thread(upgrade, url, "0002")
        old = await asyncpg.connect(plain_url(url))
        try:
            await old.execute(
                "INSERT INTO audit_events (at, actor, action, record_type, record_id) "
                "SELECT now() - n * interval '1 minute', 'staff:old', 'test.old', 'referral', "
                "n::text FROM generate_series(1, 5) n"
            )
            await old.execute(
                "INSERT INTO audit_digests (minute, events, digest, previous) "
                "VALUES (date_trunc('minute', now()) - interval '9 minutes', 5, $1, $2)",
                "a" * 64,
                GENESIS,
            )
        finally:
            await old.close()
        await asyncio.to_thread(upgrade, url)
        engine = make_engine(as_role(url, app_role()), null_pool=True)
        try:
            sessions = make_sessionmaker(engine)
            async with sessions() as db:
                xacts = (await db.execute(text("SELECT DISTINCT xact FROM audit_events"))).all()
                assert [x for (x,) in xacts] == [1]
                assert (await db.execute(text("SELECT count(*) FROM audit_digests"))).scalar() == 0
            key = audit_key(get_settings().audit_key)
            async with sessions() as db:
                report = await seal(db, key)
            assert report.sealed == 5 and report.head is not None
            assert report.head.xact_from == 0
            async with sessions() as db:
                result = await verify(db, key)
            assert (result.ok, result.digests, result.events) == (True, 1, 5)
        finally:
            await engine.dispose()
    finally:
        await asyncio.to_thread(drop_database, url)


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


async def test_0011_takes_rows_from_the_app_of_before_it(sessions: Any) -> None:
    """While a release rolls out, the previous app still writes referrals without an area and
    contact steps without a priority (intake's one statement writes both): neither fails a
    referral; the area is `unknown` and the step takes its referral's priority."""
    import uuid

    from sqlalchemy import text

    referral_id, step_id = uuid.uuid4(), uuid.uuid4()
    async with sessions() as db:
        await db.execute(
            text("""
            WITH r AS (
                INSERT INTO referrals (id, reference, source, status, received_at, content_hash,
                                       facts, referral_consent, priority)
                VALUES (:r, :ref, 'police', 'triaged', now(), 'x', '{}', 'given', 'P1')
                RETURNING id
            )
            INSERT INTO contact_steps (id, referral_id, number, kind, status, due_at)
            SELECT :s, id, 1, 'call', 'scheduled', now() + interval '50 years' FROM r"""),
            {"r": referral_id, "s": step_id, "ref": "OLD-" + referral_id.hex[:12]},
        )
        area = (
            await db.execute(text("SELECT area FROM referrals WHERE id = :r"), {"r": referral_id})
        ).scalar()
        priority = (
            await db.execute(
                text("SELECT priority FROM contact_steps WHERE id = :s"), {"s": step_id}
            )
        ).scalar()
        await db.rollback()
    assert (area, priority) == ("unknown", "P1")
