"""The audit chain: seals by transaction id, HMAC-SHA-256 under TRIAGE_AUDIT_KEY, a late commit
never a false alarm, tampering by the owner found (an edited, removed or added event, a removed
digest, the newest digests removed against the head the logs show, digests remade without the
key), no key no seal, and the seal task's log line with the head.

Each chain test has a database of its own (a copy of a migrated template), so that tampering
leaves nothing behind: the app's role seals and verifies, the owner tampers."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from contact_support import ROOT, celery_worker
from sqlalchemy import text


@dataclass(frozen=True)
class Chain:
    app: Any  # sessions as the application's role: record, seal, verify
    owner: Any  # sessions as the owner: tampering
    url: str  # the application's role, for the CLI
    key: bytes


@pytest.fixture(scope="module")
def template(servers: Any) -> Iterator[str]:
    from db.migrate import upgrade
    from triage.devstack import create_database, drop_database

    url = create_database(servers.owner_url, "triage_audit_template")
    try:
        upgrade(url)
        yield urlsplit(url).path.lstrip("/")
    finally:
        drop_database(url)


@pytest.fixture
async def chain(servers: Any, template: str) -> AsyncIterator[Chain]:
    from db.engine import make_engine, make_sessionmaker, plain_url
    from db.roles import app_role
    from triage.devstack import as_role, with_database
    from triage.services.audit import audit_key
    from triage.settings import get_settings

    name = f"triage_audit_{uuid.uuid4().hex[:10]}"
    server = plain_url(servers.owner_url)
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await admin.close()
    owner_url = with_database(server, name)
    app_url = as_role(owner_url, app_role())
    app, owner = make_engine(app_url, null_pool=True), make_engine(owner_url, null_pool=True)
    try:
        yield Chain(
            make_sessionmaker(app),
            make_sessionmaker(owner),
            app_url,
            audit_key(get_settings().audit_key),
        )
    finally:
        await app.dispose()
        await owner.dispose()
        admin = await asyncpg.connect(server)
        try:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def add_events(chain: Chain, alone: int = 2, together: int = 2) -> None:
    """`alone` events in a transaction each, then `together` in one transaction."""
    from triage.services.audit import record_event

    for _ in range(alone):
        async with chain.app() as db:
            await record_event(db, "staff:test", "test.viewed", uuid.uuid4())
            await db.commit()
    async with chain.app() as db:
        for _ in range(together):
            await record_event(db, "staff:test", "test.changed", uuid.uuid4())
        await db.commit()


async def seal_once(chain: Chain) -> Any:
    from triage.services.audit import seal

    async with chain.app() as db:
        return await seal(db, chain.key)


async def seal_all(chain: Chain) -> Any:
    """Seal until every committed event is sealed: a transaction elsewhere on the server (an
    autovacuum's, say) can hold the seal back for a moment."""
    for _ in range(100):
        report = await seal_once(chain)
        if report.unsealed == 0:
            return report
        await asyncio.sleep(0.05)
    raise AssertionError(f"events still unsealed: {report}")


async def verify_now(chain: Chain, head: str | None = None, key: bytes | None = None) -> Any:
    from triage.services.audit import verify

    async with chain.app() as db:
        return await verify(db, key or chain.key, head)


async def digests(chain: Chain) -> list[Any]:
    async with chain.app() as db:
        return list(await db.execute(text("SELECT * FROM audit_digests ORDER BY id")))


async def events_of(chain: Chain, digest: Any) -> list[Any]:
    async with chain.app() as db:
        return list(
            await db.execute(
                text("SELECT * FROM audit_events WHERE xact >= :f AND xact < :t ORDER BY id"),
                {"f": digest.xact_from, "t": digest.xact_to},
            )
        )


async def three_or_more(chain: Chain) -> list[Any]:
    """A chain of at least three digests, each over three or more events."""
    for _ in range(3):
        await add_events(chain)
        await seal_all(chain)
    made = await digests(chain)
    assert len(made) >= 3
    return made


@asynccontextmanager
async def tampering(chain: Chain) -> AsyncIterator[Any]:
    """The owner, with the append-only triggers off for one transaction (as anyone who owns
    the tables can): what the key, and the logs' head, are there to find."""
    async with chain.owner() as db:
        for table in ("audit_events", "audit_digests"):
            await db.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        yield db
        for table in ("audit_events", "audit_digests"):
            await db.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
        await db.commit()


async def audit_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "triage.cli", "audit", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


# Sealing and verifying ----------------------------------------------------------------------


async def test_seal_then_verify(chain: Chain) -> None:
    from triage.services.audit import GENESIS

    empty = await verify_now(chain)
    assert (empty.ok, empty.digests, empty.events) == (True, 0, 0)
    nothing = await seal_once(chain)
    assert (nothing.sealed, nothing.head, nothing.unsealed) == (0, None, 0)

    await add_events(chain, alone=3, together=2)
    first = await seal_all(chain)
    assert first.head is not None
    again = await seal_once(chain)  # nothing new: no digest, the same head
    assert (again.sealed, again.head) == (0, first.head)

    await add_events(chain)
    last = await seal_all(chain)
    made = await digests(chain)
    assert made[-1].digest == last.head.digest and len(made) >= 2
    # A chain: each digest follows the one before, its range where the last one's ended.
    assert (made[0].previous, made[0].xact_from) == (GENESIS, 0)
    for before, after in itertools.pairwise(made):
        assert (after.previous, after.xact_from) == (before.digest, before.xact_to)
    assert sum(d.events for d in made) == 9

    result = await verify_now(chain)
    assert (result.ok, result.digests, result.events, result.problem) == (
        True,
        len(made),
        9,
        None,
    )
    assert (await verify_now(chain, head=last.head.digest)).ok
    assert (await verify_now(chain, head=GENESIS)).ok

    answer = await audit_cli("verify", DATABASE_URL=chain.url)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip() == f"ok: {len(made)} digests, 9 events"
    assert answer.stderr == ""  # the app's role cannot rewrite the trail: no warning
    answer = await audit_cli("verify", "--head", last.head.digest.upper(), DATABASE_URL=chain.url)
    assert answer.returncode == 0, answer.stderr
    answer = await audit_cli("verify", "--head", "not-a-digest", DATABASE_URL=chain.url)
    assert answer.returncode == 2 and "64 hexadecimal" in answer.stderr


async def test_details_are_sealed_as_canonical_json(chain: Chain) -> None:
    from datetime import UTC, datetime

    from triage.services.audit import canonical_line, record_event

    event = SimpleNamespace(
        id=7,
        at=datetime(2026, 12, 3, 9, 1, 2, 345678, tzinfo=UTC),
        xact=812,
        actor="staff:jo",
        action="referral.viewed",
        record_type="referral",
        record_id="r-1",
        details=None,
    )
    assert canonical_line(event) == (
        b'{"action":"referral.viewed","actor":"staff:jo","at":"2026-12-03T09:01:02.345678+00:00",'
        b'"id":7,"record_id":"r-1","record_type":"referral","xact":812}\n'
    )
    event.details = {"page": 2, "ids": ["b", "a"]}
    assert canonical_line(event).endswith(
        b'"details":{"ids":["b","a"],"page":2},"id":7,"record_id":"r-1",'
        b'"record_type":"referral","xact":812}\n'
    )

    async with chain.app() as db:
        await record_event(db, "staff:jo", "queue.viewed", "-", "queue", {"ids": ["r-1", "r-2"]})
        await db.commit()
    await seal_all(chain)
    assert (await verify_now(chain)).ok
    async with tampering(chain) as db:
        await db.execute(text("""UPDATE audit_events SET details = '{"ids": ["r-1"]}'"""))
    result = await verify_now(chain)
    assert not result.ok and "does not match its events" in result.problem


async def test_a_late_commit_never_false_alarms(chain: Chain) -> None:
    """A transaction open across seals commits an event whose time (its transaction's start)
    lies before digests made while it was open: it is sealed once, by a later digest, and the
    chain verifies at every step."""
    from triage.services.audit import record_event

    await add_events(chain)
    await seal_all(chain)
    async with chain.app() as earlier, chain.app() as late:
        # Two open transactions: `earlier` takes its transaction id first, then `late`.
        await record_event(earlier, "staff:test", "test.earlier", "e")
        await record_event(late, "staff:test", "test.late", "l")
        late_xact = (await late.execute(text("SELECT pg_current_xact_id()"))).scalar_one()
        await earlier.commit()
        # The seal takes `earlier`'s event (its transaction has ended) but stops below `late`.
        earlier_xact = (await events_of_action(chain, "test.earlier")).xact
        for _ in range(100):
            report = await seal_once(chain)
            if report.head.xact_to > earlier_xact:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"the ended transaction was never sealed: {report}")
        sealed_while_open = report.head
        assert sealed_while_open.xact_to <= late_xact
        # More events commit, more seals run: nothing passes the open transaction.
        for _ in range(3):
            await add_events(chain, alone=1, together=1)
            report = await seal_once(chain)
            assert report.sealed == 0 and report.head == sealed_while_open
            assert report.unsealed >= 2
            assert (await verify_now(chain)).ok
        await late.commit()
    await seal_all(chain)
    result = await verify_now(chain)
    assert result.ok, result.problem
    assert result.events == 4 + 1 + 1 + 3 * 2

    late_event = await events_of_action(chain, "test.late")
    covering = [d for d in await digests(chain) if d.xact_from <= late_event.xact < d.xact_to]
    assert len(covering) == 1 and covering[0].id > sealed_while_open.id
    # What sealing by minute got wrong: the event's time is before a seal that missed it.
    assert late_event.at < sealed_while_open.sealed_at


async def events_of_action(chain: Chain, action: str) -> Any:
    async with chain.app() as db:
        return (
            await db.execute(text("SELECT * FROM audit_events WHERE action = :a"), {"a": action})
        ).one()


# Tampering by the owner ---------------------------------------------------------------------


async def test_an_edited_event_is_found(chain: Chain) -> None:
    made = await three_or_more(chain)
    middle = made[1]
    [victim, *_] = await events_of(chain, middle)
    async with tampering(chain) as db:
        await db.execute(
            text("UPDATE audit_events SET action = 'test.edited' WHERE id = :i"), {"i": victim.id}
        )
    result = await verify_now(chain)
    assert not result.ok and result.digests == 1
    assert result.problem.startswith(f"digest {middle.id} (sealed ")
    assert "does not match its events" in result.problem

    answer = await audit_cli("verify", DATABASE_URL=chain.url)
    assert answer.returncode == 1 and answer.stdout == ""
    assert f"digest {middle.id} (sealed " in answer.stderr


async def test_a_removed_or_added_event_is_found(chain: Chain) -> None:
    made = await three_or_more(chain)
    last = made[-1]
    [*_, victim] = await events_of(chain, last)
    async with tampering(chain) as db:
        await db.execute(text("DELETE FROM audit_events WHERE id = :i"), {"i": victim.id})
    result = await verify_now(chain)
    assert not result.ok and result.digests == len(made) - 1
    assert result.problem.startswith(f"digest {last.id} (sealed ")
    assert f"covers {last.events - 1} events but sealed {last.events}" in result.problem

    # Put back, the chain verifies again; one forged into the first digest's range is found.
    async with tampering(chain) as db:
        columns = "id, at, xact, actor, action, record_type, record_id, details"
        await db.execute(
            text(f"INSERT INTO audit_events ({columns}) VALUES ({_params(columns)})"),
            victim._asdict(),
        )
    assert (await verify_now(chain)).ok
    async with tampering(chain) as db:
        await db.execute(
            text("""INSERT INTO audit_events (xact, actor, action, record_type, record_id)
                    VALUES (:x, 'staff:forger', 'test.forged', 'referral', 'r')"""),
            {"x": made[0].xact_from},
        )
    result = await verify_now(chain)
    assert not result.ok and result.digests == 0
    assert f"covers {made[0].events + 1} events but sealed {made[0].events}" in result.problem


def _params(columns: str) -> str:
    return ", ".join(f":{name.strip()}" for name in columns.split(","))


async def test_a_removed_digest_is_a_gap(chain: Chain) -> None:
    made = await three_or_more(chain)
    async with tampering(chain) as db:
        await db.execute(text("DELETE FROM audit_digests WHERE id = :i"), {"i": made[1].id})
    result = await verify_now(chain)
    assert not result.ok and result.digests == 1
    assert result.problem.startswith(
        f"gap: digest {made[2].id} (sealed "
    ) and result.problem.endswith(
        f"does not follow digest {made[0].id}: a digest between them was removed"
    )
    answer = await audit_cli("verify", DATABASE_URL=chain.url)
    assert answer.returncode == 1 and answer.stderr.startswith("gap: ")

    async with tampering(chain) as db:
        await db.execute(text("DELETE FROM audit_digests WHERE id = :i"), {"i": made[0].id})
    result = await verify_now(chain)
    assert not result.ok and result.digests == 0
    assert "does not follow the start of the chain" in result.problem


async def test_removed_newest_digests_are_found_against_the_logged_head(chain: Chain) -> None:
    """Removing the newest digests and their events leaves a shorter chain that verifies on
    its own; the head the seal task logged is not in it."""
    made = await three_or_more(chain)
    logged = (await seal_once(chain)).log_fields()["digest"]
    assert logged == made[-1].digest
    async with tampering(chain) as db:
        for digest in made[-2:]:
            await db.execute(
                text("DELETE FROM audit_events WHERE xact >= :f AND xact < :t"),
                {"f": digest.xact_from, "t": digest.xact_to},
            )
            await db.execute(text("DELETE FROM audit_digests WHERE id = :i"), {"i": digest.id})
    alone = await verify_now(chain)
    assert alone.ok and alone.digests == len(made) - 2  # without the logs it looks whole
    result = await verify_now(chain, head=logged)
    assert not result.ok and result.digests == len(made) - 2
    assert result.problem == (
        "gap: the chain ends before the digest the logs show (its newest were removed)"
    )
    answer = await audit_cli("verify", "--head", logged, DATABASE_URL=chain.url)
    assert answer.returncode == 1
    assert answer.stderr.startswith("gap: the chain ends before the digest the logs show")
    # An earlier logged head is still in the chain: fine.
    assert (await verify_now(chain, head=made[0].digest)).ok


async def test_digests_remade_without_the_key_do_not_verify(chain: Chain) -> None:
    """The old chain was plain SHA-256: whoever could write the tables could change an event
    and compute every digest again. Without the key they cannot."""
    from triage.services.audit import canonical_line

    made = await three_or_more(chain)
    other = await verify_now(chain, key=b"a key that is not TRIAGE_AUDIT_KEY")
    assert not other.ok and other.digests == 0 and "not made with this key" in other.problem

    last = made[-1]
    [victim, *_] = await events_of(chain, last)
    async with tampering(chain) as db:
        await db.execute(
            text("UPDATE audit_events SET action = 'test.edited' WHERE id = :i"), {"i": victim.id}
        )
        rows = (
            await db.execute(
                text("SELECT * FROM audit_events WHERE xact >= :f AND xact < :t ORDER BY id"),
                {"f": last.xact_from, "t": last.xact_to},
            )
        ).all()
        unkeyed = hashlib.sha256(f"{last.previous}{last.xact_from}:{last.xact_to}\n".encode())
        for row in rows:
            unkeyed.update(canonical_line(row))
        await db.execute(
            text("UPDATE audit_digests SET digest = :d WHERE id = :i"),
            {"d": unkeyed.hexdigest(), "i": last.id},
        )
    result = await verify_now(chain)
    assert not result.ok and result.digests == len(made) - 1
    assert result.problem.startswith(f"digest {last.id} (sealed ")


async def test_transaction_ids_behind_the_chain_stop_sealing_loudly(chain: Chain) -> None:
    """A chain whose end lies beyond the server's transaction ids (a logical restore into a
    new server, or a forged digest): the seal writes nothing and says so, verify finds it."""
    made = await three_or_more(chain)
    last = made[-1]
    async with tampering(chain) as db:
        await db.execute(
            text("""INSERT INTO audit_digests (xact_from, xact_to, events, digest, previous)
                    VALUES (:f, :t, 0, repeat('f', 64), :p)"""),
            {"f": last.xact_to, "t": last.xact_to + 10**12, "p": last.digest},
        )
    await add_events(chain)
    report = await seal_once(chain)
    assert report.ids_went_back and report.sealed == 0
    assert report.head.xact_to == last.xact_to + 10**12
    answer = await audit_cli("seal", DATABASE_URL=chain.url)
    assert answer.returncode == 1 and "below the chain's end" in answer.stderr
    result = await verify_now(chain)
    assert not result.ok and result.digests == len(made)
    assert "covers 4 events but sealed 0" in result.problem


# The key and the logs -------------------------------------------------------------------------


async def test_no_key_no_seal_and_no_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    from triage.services.audit import AuditKeyMissing, audit_key
    from triage.settings import get_settings

    with pytest.raises(AuditKeyMissing, match="TRIAGE_AUDIT_KEY is not set"):
        audit_key("")
    for command in ("verify", "seal"):
        answer = await audit_cli(command, TRIAGE_AUDIT_KEY="", TRIAGE_ENV="production")
        assert answer.returncode == 2, answer
        assert "TRIAGE_AUDIT_KEY is not set" in answer.stderr
        assert "never in the database" in answer.stderr

    from workers.tasks import TaskFailed, seal_audit_task

    monkeypatch.setenv("TRIAGE_AUDIT_KEY", "")
    get_settings.cache_clear()
    try:
        # The task's errors leave it described, never with their text (workers.tasks).
        with pytest.raises(TaskFailed, match="AuditKeyMissing"):
            seal_audit_task()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def _audit_heads_in(log: Path) -> list[dict[str, Any]]:
    heads = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            parsed = json.loads(line) if line.startswith("{") else None
        except json.JSONDecodeError:  # a line still being written
            parsed = None
        if isinstance(parsed, dict) and parsed.get("event") == "audit_head":
            heads.append(parsed)
    return heads


async def _audit_heads(log: Path, count: int, within: float = 60) -> list[dict[str, Any]]:
    deadline = asyncio.get_running_loop().time() + within
    while len(heads := _audit_heads_in(log)) < count:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"fewer than {count} audit_head lines in {log}")
        await asyncio.sleep(0.1)
    return heads


async def test_the_seal_task_logs_the_head_every_minute(
    servers: Any, sessions: Any, tmp_path: Path
) -> None:
    """Beat sends the seal each minute; each run logs the head (also when nothing was new),
    which `triage audit verify --head` takes. The whole suite's trail so far verifies."""
    from triage.services.audit import record_event
    from workers.celery_app import celery_app

    async with sessions() as db:  # at least one event, whatever ran before
        await record_event(db, "staff:test", "test.logged", uuid.uuid4())
        await db.commit()
    assert celery_app.conf.beat_schedule["seal-audit"] == {
        "task": "triage.audit.seal",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    }
    log = tmp_path / "worker.log"
    with celery_worker(log):
        celery_app.send_task("triage.audit.seal")
        await _audit_heads(log, 1)
        celery_app.send_task("triage.audit.seal")
        first, second = (await _audit_heads(log, 2))[:2]
    async with sessions() as db:
        head = (
            await db.execute(text("SELECT * FROM audit_digests ORDER BY id DESC LIMIT 1"))
        ).one()
    assert second["digest"] == head.digest and second["digest_id"] == head.id
    assert (second["xact_from"], second["xact_to"], second["events"]) == (
        head.xact_from,
        head.xact_to,
        head.events,
    )
    assert first["digest_id"] <= second["digest_id"]
    assert set(second) == {
        "event",
        "level",
        "timestamp",
        "digest",
        "digest_id",
        "xact_from",
        "xact_to",
        "events",
        "sealed_now",
        "unsealed",
        "xmin",
    }
    answer = await audit_cli("verify", "--head", second["digest"])
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.startswith("ok: ")
