"""The two roles: the application's role (DATABASE_URL, the `sessions` of every other test) may
insert and read audit events and digests and nothing else on them; it runs no DDL (the yearly
reference sequences come from the owner's function); tables a later migration adds get its
grants by default; migration 0004 creates a missing role, or refuses clearly."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

REFUSED = r"permission denied|must be owner"
AUDIT_TABLES = ("audit_events", "audit_digests")


async def _one_of_each(sessions: Any) -> None:
    """At least one audit event and one digest, so that a refused statement had rows to hit."""
    from triage.services.audit import audit_key, record_event, seal
    from triage.settings import get_settings

    async with sessions() as db:
        await record_event(db, "test:roles", "test.roles", uuid.uuid4(), "test")
        await db.commit()
    async with sessions() as db:
        await seal(db, audit_key(get_settings().audit_key))


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET action = 'test.edited'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
        "UPDATE audit_digests SET digest = repeat('0', 64)",
        "DELETE FROM audit_digests",
        "TRUNCATE audit_digests",
        "SELECT id FROM audit_events LIMIT 1 FOR UPDATE",
        "SELECT id FROM audit_digests LIMIT 1 FOR UPDATE",
        "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only",
        "ALTER TABLE audit_events DISABLE TRIGGER ALL",
        "ALTER TABLE audit_digests DISABLE TRIGGER audit_digests_append_only",
        "DROP TRIGGER audit_events_append_only ON audit_events",
        "CREATE TRIGGER forged BEFORE INSERT ON audit_events FOR EACH ROW "
        "EXECUTE FUNCTION suppress_redundant_updates_trigger()",
        "CREATE TRIGGER forged BEFORE INSERT ON audit_digests FOR EACH ROW "
        "EXECUTE FUNCTION suppress_redundant_updates_trigger()",
        "ALTER TABLE audit_events OWNER TO CURRENT_USER",
        "DROP TABLE audit_digests",
        # The database sets an event's id, time and transaction: the seal relies on `xact`.
        "INSERT INTO audit_events (xact, actor, action, record_type, record_id) "
        "VALUES ('5'::xid8, 'test', 'test.forged', 'test', 'x')",
        "INSERT INTO audit_events (at, actor, action, record_type, record_id) "
        "VALUES (now() - interval '1 day', 'test', 'test.forged', 'test', 'x')",
        "INSERT INTO audit_events (id, actor, action, record_type, record_id) "
        "VALUES (1, 'test', 'test.forged', 'test', 'x')",
        "SELECT setval('audit_events_id_seq', 1)",
        # No DDL at all: not even the yearly reference sequence.
        "CREATE SEQUENCE reference_zz_2098",
        "CREATE TABLE forged (id int)",
    ],
)
async def test_the_app_role_cannot_change_the_audit_trail(
    sessions: Any, owner_sessions: Any, statement: str
) -> None:
    await _one_of_each(sessions)
    count = "SELECT (SELECT count(*) FROM audit_events), (SELECT count(*) FROM audit_digests)"
    async with owner_sessions() as db:
        before = tuple((await db.execute(text(count))).one())
    async with sessions() as db:
        with pytest.raises(DBAPIError, match=REFUSED):
            await db.execute(text(statement))
        await db.rollback()
    async with owner_sessions() as db:
        assert tuple((await db.execute(text(count))).one()) == before


async def test_the_app_role_may_insert_and_read_audit_events_and_digests(sessions: Any) -> None:
    from triage.services.audit import audit_key, record_event, seal
    from triage.settings import get_settings

    async with sessions() as db:
        await record_event(db, "test:roles", "test.read", "r1", "test", {"ids": ["a", "b"]})
        await db.commit()
    async with sessions() as db:
        report = await seal(db, audit_key(get_settings().audit_key))
    assert report.head is not None
    async with sessions() as db:
        row = (
            await db.execute(
                text("SELECT details FROM audit_events WHERE action = 'test.read' AND actor = :a"),
                {"a": "test:roles"},
            )
        ).one()
        assert row.details == {"ids": ["a", "b"]}
        assert (await db.execute(text("SELECT count(*) FROM audit_digests"))).scalar_one() >= 1


async def test_grants_on_every_table(sessions: Any, owner_sessions: Any) -> None:
    """What migration 0004 grants, checked table by table, so that a later migration cannot
    quietly give the application more: an `audit_` table is append-only for it (SELECT and
    INSERT, never UPDATE, DELETE, TRUNCATE or TRIGGER), every other table plain DML, and it
    owns nothing."""
    from db.roles import app_role

    async with sessions() as db:
        role = (await db.execute(text("SELECT current_user"))).scalar_one()
    async with owner_sessions() as db:
        rows = (
            await db.execute(
                text("""
                SELECT c.relname AS name, c.relkind AS kind,
                       pg_get_userbyid(c.relowner) AS owner,
                       has_table_privilege(:r, c.oid, 'SELECT') AS can_select,
                       has_any_column_privilege(:r, c.oid, 'INSERT') AS can_insert,
                       has_any_column_privilege(:r, c.oid, 'UPDATE') AS can_update,
                       has_table_privilege(:r, c.oid, 'DELETE') AS can_delete,
                       has_table_privilege(:r, c.oid, 'TRUNCATE') AS can_truncate,
                       has_table_privilege(:r, c.oid, 'TRIGGER') AS can_trigger,
                       has_any_column_privilege(:r, c.oid, 'REFERENCES') AS can_reference
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"""),
                {"r": role},
            )
        ).all()
        sequences = (
            await db.execute(
                text("""
                SELECT c.relname AS name, pg_get_userbyid(c.relowner) AS owner,
                       has_sequence_privilege(:r, c.oid, 'USAGE') AS usage,
                       has_sequence_privilege(:r, c.oid, 'UPDATE') AS setval
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relkind = 'S'"""),
                {"r": role},
            )
        ).all()
        event_columns = dict(
            (
                await db.execute(
                    text("""SELECT attname, has_column_privilege(:r, 'audit_events', attname,
                                                                 'INSERT')
                            FROM pg_attribute WHERE attrelid = 'audit_events'::regclass
                            AND attnum > 0 AND NOT attisdropped"""),
                    {"r": role},
                )
            ).all()
        )
        flags = (
            await db.execute(
                text("""SELECT rolsuper, rolcreaterole, rolcreatedb,
                               has_schema_privilege(:r, 'public', 'CREATE') AS create_in_public
                        FROM pg_roles WHERE rolname = :r"""),
                {"r": role},
            )
        ).one()
    assert role == app_role()
    assert not any(flags), flags
    names = {row.name for row in rows}
    assert set(AUDIT_TABLES) <= names and {"referrals", "messages", "alembic_version"} <= names
    for row in rows:
        assert row.owner != role, row
        assert not (row.can_truncate or row.can_trigger or row.can_reference), (
            row
        )  # TRUNCATE, TRIGGER, REFERENCES: never
        granted = (row.can_select, row.can_insert, row.can_update, row.can_delete)
        if row.name.startswith("audit_"):
            assert granted == (True, True, False, False), row
        elif row.name == "alembic_version":
            assert granted == (True, False, False, False), row
        elif row.name == "status_transitions":
            # The transitions that hold every status (0006): nothing at all, the trigger
            # reads them as their owner.
            assert granted == (False, False, False, False), row
        else:
            assert granted == (True, True, True, True), row
    assert {name for name, allowed in event_columns.items() if allowed} == {
        "actor",
        "action",
        "record_type",
        "record_id",
        "details",
    }
    assert sequences and all(s.usage and not s.setval and s.owner != role for s in sequences)


async def test_a_table_a_later_migration_adds_gets_the_grants(
    sessions: Any, owner_sessions: Any
) -> None:
    """Default privileges: what the owner creates later, the application may use at once."""
    name = f"later_{uuid.uuid4().hex[:8]}"
    async with owner_sessions() as db:
        await db.execute(text(f"CREATE TABLE {name} (id bigserial PRIMARY KEY, note text)"))
        await db.commit()
    try:
        async with sessions() as db:
            await db.execute(text(f"INSERT INTO {name} (note) VALUES ('a'), ('b')"))
            await db.execute(text(f"UPDATE {name} SET note = 'c' WHERE note = 'a'"))
            await db.execute(text(f"DELETE FROM {name} WHERE note = 'b'"))
            notes = (await db.execute(text(f"SELECT note FROM {name}"))).scalars().all()
            await db.commit()
        assert notes == ["c"]
        async with sessions() as db:
            with pytest.raises(DBAPIError, match=REFUSED):
                await db.execute(text(f"TRUNCATE {name}"))
            await db.rollback()
    finally:
        async with owner_sessions() as db:
            await db.execute(text(f"DROP TABLE {name}"))
            await db.commit()


async def test_reference_sequences_come_from_the_owner_function(
    sessions: Any, owner_sessions: Any
) -> None:
    from triage.services.references import ensure_sequence, forget_sequences, next_references

    received = datetime(2097, 6, 1, 12, tzinfo=UTC)
    forget_sequences()
    try:
        async with sessions() as db:  # a service command's session, as AA requests use it
            await ensure_sequence(db, "ZZ", received)
            await ensure_sequence(db, "ZZ", received)
            await db.commit()
        async with sessions() as db:
            assert await next_references(db, "ZZ", received, 2) == [
                "ZZ-97-000001",
                "ZZ-97-000002",
            ]
            await db.commit()
        async with sessions() as db:  # a second call, as another process would make
            await db.execute(text("SELECT triage_ensure_reference_sequence('reference_zz_2097')"))
            assert await next_references(db, "ZZ", received, 1) == ["ZZ-97-000003"]
            await db.commit()
        for name in (
            "reference_zz_2097; DROP TABLE referrals",
            "audit_events",
            "reference_ZZ_2097",
            "public.reference_zz_2097",
            "reference_zz_97",
        ):
            async with sessions() as db:
                with pytest.raises(DBAPIError, match="not a reference sequence name"):
                    await db.execute(
                        text("SELECT triage_ensure_reference_sequence(:n)"), {"n": name}
                    )
                await db.rollback()
        async with owner_sessions() as db:
            owner = (
                await db.execute(
                    text("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = :n"),
                    {"n": "reference_zz_2097"},
                )
            ).scalar_one()
            assert owner == (await db.execute(text("SELECT current_user"))).scalar_one()
    finally:
        forget_sequences()
        async with owner_sessions() as db:
            await db.execute(text("DROP SEQUENCE IF EXISTS reference_zz_2097"))
            await db.commit()


# Migration 0004 and the application's role ---------------------------------------------------


@pytest.fixture
def scratch(servers: Any) -> Iterator[str]:
    """An empty database, its owner's URL."""
    from triage.devstack import create_database, drop_database

    url = create_database(servers.owner_url, "triage_roles")
    try:
        yield url
    finally:
        drop_database(url)


def _run(url: str, sql: str, *args: Any) -> Any:
    import asyncio

    from db.engine import plain_url

    async def go() -> Any:
        connection = await asyncpg.connect(plain_url(url))
        try:
            return await connection.fetch(sql, *args)
        finally:
            await connection.close()

    return asyncio.run(go())


def test_the_migration_creates_a_missing_app_role(
    scratch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from db.migrate import upgrade
    from triage.devstack import drop_database, with_database

    role = f"triage_app_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("TRIAGE_APP_ROLE", role)
    try:
        upgrade(scratch)
        [made] = _run(
            scratch, "SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = $1", role
        )
        assert (made["rolcanlogin"], made["rolsuper"]) == (False, False)
        [grants] = _run(
            scratch,
            "SELECT has_table_privilege($1, 'referrals', 'UPDATE') AS referrals, "
            "has_table_privilege($1, 'audit_digests', 'DELETE') AS digests",
            role,
        )
        assert (grants["referrals"], grants["digests"]) == (True, False)
    finally:
        _run(scratch, f"DROP OWNED BY {role}")
        drop_database(scratch)
        _run(with_database(scratch, "postgres"), f"DROP ROLE IF EXISTS {role}")


def test_the_migration_refuses_an_app_role_that_could_rewrite_the_trail(
    scratch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from db.migrate import upgrade
    from triage.devstack import as_role, drop_database, with_database

    suffix = uuid.uuid4().hex[:8]
    owner, superuser = f"test_owner_{suffix}", f"test_super_{suffix}"
    name = urlsplit(scratch).path.lstrip("/")
    _run(scratch, f"CREATE ROLE {owner} LOGIN")
    _run(scratch, f"CREATE ROLE {superuser} SUPERUSER")
    _run(scratch, f'ALTER DATABASE "{name}" OWNER TO {owner}')
    try:
        cases = [
            # The owner may not create roles: the operator must create it first.
            (as_role(scratch, owner), f"missing_{suffix}", "create it first"),
            (scratch, superuser, "is a superuser"),
            (as_role(scratch, owner), owner, "is the role running the migrations"),
        ]
        for url, role, refusal in cases:
            monkeypatch.setenv("TRIAGE_APP_ROLE", role)
            with pytest.raises(DBAPIError, match=refusal):
                upgrade(url)
        # Nothing half-done: each refused upgrade rolled back whole.
        assert _run(scratch, "SELECT 1 FROM pg_tables WHERE tablename = 'referrals'") == []
    finally:
        _run(scratch, f'ALTER DATABASE "{name}" OWNER TO CURRENT_USER')
        _run(scratch, f"DROP OWNED BY {owner}")
        server = with_database(scratch, "postgres")
        _run(server, f"DROP ROLE {superuser}")
        drop_database(scratch)
        _run(server, f"DROP ROLE {owner}")
