"""Group commit of single referrals (triage/services/group_writes.py) on the real PostgreSQL.

The GroupWriter used here is the real one, writing real rows; the tests only observe it (what
each `_statement` carried) and, where they need a deterministic group, hold its statements
until the referrals under test have queued. A failure is injected either in the writer's
statement or in PostgreSQL itself (a trigger for one external_ref only).
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from helpers import referral, rows, scalar, written_for_client
from sqlalchemy import text

from triage.services.api_keys import DEFAULT_SCOPES, Caller
from triage.services.group_writes import GroupWriter, Numbering
from triage.services.intake import ItemResult
from triage.services.referral_rows import RowSet

pytestmark = pytest.mark.integration

TIMEOUT = 30  # seconds: a write that never ends fails the test instead of hanging it
CHILD_TABLES = ("triage_decisions", "cases", "contact_steps", "messages", "alerts")


class _Captured(Exception):
    pass


class InjectedFailure(RuntimeError):
    """A bad referral, as the observed writer's statement sees it."""


class ObservedWriter(GroupWriter):
    """The real GroupWriter, observed: what each statement carried (external_refs), the rows of
    every write, and how many writes have queued. `release` holds statements until set;
    `fail_for` makes every statement holding that external_ref fail before it is sent."""

    def __init__(self, pool: asyncpg.Pool, **options: Any):
        super().__init__(pool, **options)
        self.statements: list[list[str]] = []
        self.submitted: dict[uuid.UUID, RowSet] = {}
        self.queued = 0
        self._queued_more = asyncio.Event()
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()
        self.fail_for: str | None = None

    async def write(self, rows: RowSet, numbering: Numbering) -> dict[uuid.UUID, str]:
        self.submitted[rows.referrals[0]["id"]] = rows
        self.queued += 1  # no await between this and the queueing inside write()
        self._queued_more.set()
        return await super().write(rows, numbering)

    async def _statement(self, rows: RowSet, numbering: Numbering) -> dict[uuid.UUID, str]:
        refs = [r["external_ref"] for r in rows.referrals]
        self.statements.append(refs)
        self.entered.set()
        await self.release.wait()
        if self.fail_for is not None and self.fail_for in refs:
            raise InjectedFailure(f"bad referral {self.fail_for}")
        return await super()._statement(rows, numbering)

    async def until_queued(self, count: int) -> None:
        """Until `count` writes have queued (each is in the queue once its waiter runs)."""
        async with asyncio.timeout(TIMEOUT):
            while self.queued < count:
                self._queued_more.clear()
                await self._queued_more.wait()

    def expected(self, referral_ids: Iterable[uuid.UUID | None]) -> dict[str, int]:
        """Rows per table the given referrals' writes carried."""
        sets = [self.submitted[i] for i in set(referral_ids) if i is not None]
        return {
            "referrals": sum(len(s.referrals) for s in sets),
            "triage_decisions": sum(len(s.decisions) for s in sets),
            "cases": sum(len(s.cases) for s in sets),
            "contact_steps": sum(len(s.steps) for s in sets),
            "messages": sum(len(s.messages) for s in sets),
            "alerts": sum(len(s.alerts) for s in sets),
        }


@dataclass(frozen=True)
class Police:
    name: str
    caller: Caller


@pytest.fixture
async def pool(servers: Any) -> AsyncIterator[asyncpg.Pool]:
    from db.pool import make_pool

    made = await make_pool(servers.database_url, 10)
    try:
        yield made
    finally:
        await asyncio.wait_for(made.close(), TIMEOUT)


@pytest.fixture
async def police(sessions: Any) -> Police:
    """A new police API client, so a test counts only its own rows."""
    from triage.services.api_keys import create_client

    name = f"group-{uuid.uuid4().hex[:8]}"
    async with sessions() as db:
        made = await create_client(db, name, "police")
    return Police(
        name, Caller(made.id, "police", frozenset(DEFAULT_SCOPES["police"]), 10**6, 10**6)
    )


async def _submit(writer: GroupWriter, police: Police, body: dict[str, Any]) -> ItemResult:
    from triage.services.catalogues import current_catalogue
    from triage.services.intake import submit_referral

    return await submit_referral(writer, police.caller.principal, body, current_catalogue())


async def _finished(writer: GroupWriter) -> None:
    """Until the writer's tasks have all ended (the queue is drained)."""
    async with asyncio.timeout(TIMEOUT):
        while writer._running:
            await asyncio.wait(set(writer._running))


async def _stored(sessions: Any, police: Police) -> dict[uuid.UUID, str]:
    """id -> reference of the client's referrals in the database."""
    found = await rows(
        sessions,
        "SELECT r.id, r.reference FROM referrals r JOIN api_clients c ON c.id = r.client_id "
        "WHERE c.name = :name",
        name=police.name,
    )
    return {row[0]: row[1] for row in found}


async def _rows_of(sessions: Any, referral_id: uuid.UUID) -> dict[str, int]:
    counts = {"referrals": int(await scalar(sessions, _COUNT_REFERRAL, id=referral_id))}
    for table in CHILD_TABLES:
        counts[table] = int(
            await scalar(
                sessions, f"SELECT count(*) FROM {table} WHERE referral_id = :id", id=referral_id
            )
        )
    counts["audit_events"] = int(
        await scalar(
            sessions,
            "SELECT count(*) FROM audit_events WHERE record_id = :id",
            id=str(referral_id),
        )
    )
    return counts


_COUNT_REFERRAL = "SELECT count(*) FROM referrals WHERE id = :id"


async def test_fifty_concurrent_referrals_share_statements(
    pool: asyncpg.Pool, police: Police, sessions: Any
) -> None:
    writer = ObservedWriter(pool)
    bodies = [referral() for _ in range(50)]
    async with asyncio.timeout(TIMEOUT):
        results = await asyncio.gather(*(_submit(writer, police, b) for b in bodies))

    assert [r.status for r in results] == ["created"] * 50
    created = {r.id: r.reference for r in results}
    assert len(created) == 50
    assert len(set(created.values())) == 50, "references must be distinct"
    # Every referral is stored under the id and reference it was answered with.
    assert await _stored(sessions, police) == created
    # ... with its decision, cases, first contact step, messages and alerts.
    assert await written_for_client(sessions, police.name) == writer.expected(set(created))
    for table in ("triage_decisions", "cases", "contact_steps"):
        with_rows = await scalar(
            sessions,
            f"SELECT count(DISTINCT t.referral_id) FROM {table} t "
            "JOIN referrals r ON r.id = t.referral_id "
            "JOIN api_clients c ON c.id = r.client_id WHERE c.name = :name",
            name=police.name,
        )
        assert with_rows == 50, table
    # Grouped: fewer statements than referrals, and every referral in exactly one of them.
    assert 1 <= len(writer.statements) < 50, writer.statements
    carried = [ref for statement in writer.statements for ref in statement]
    assert sorted(carried) == sorted(b["external_ref"] for b in bodies)


@pytest.mark.parametrize("fail_in", ["writer", "database"])
async def test_one_bad_referral_in_a_shared_statement_fails_alone(
    pool: asyncpg.Pool, police: Police, sessions: Any, owner_sessions: Any, fail_in: str
) -> None:
    # One writer, its first statement held until the ten have queued: they then share one.
    writer = ObservedWriter(pool, writers=1)
    bodies = [referral() for _ in range(10)]
    bad = bodies[3]["external_ref"]
    if fail_in == "writer":
        writer.fail_for = bad
    writer.release.clear()
    async with _failing_insert(owner_sessions, bad if fail_in == "database" else None):
        async with asyncio.timeout(TIMEOUT):
            blocker = asyncio.create_task(_submit(writer, police, referral()))
            await writer.entered.wait()
            tasks = [asyncio.create_task(_submit(writer, police, b)) for b in bodies]
            await writer.until_queued(11)
            writer.release.set()
            first = await blocker
            results = await asyncio.gather(*tasks, return_exceptions=True)

    assert first.status == "created"
    # The ten went into one statement (which failed), then each was written alone.
    assert sorted(writer.statements[1]) == sorted(b["external_ref"] for b in bodies)
    assert sorted(s[0] for s in writer.statements[2:]) == sorted(writer.statements[1])
    assert all(len(s) == 1 for s in writer.statements[2:])

    failed = results[3]
    if fail_in == "writer":
        assert isinstance(failed, InjectedFailure), failed
    else:
        assert isinstance(failed, asyncpg.PostgresError), failed
        assert "injected failure" in str(failed)
    others = [r for i, r in enumerate(results) if i != 3]
    assert all(not isinstance(r, BaseException) for r in others), others
    assert [r.status for r in others] == ["created"] * 9  # type: ignore[union-attr]

    good = {r.id: r.reference for r in [first, *others]}  # type: ignore[union-attr]
    assert await _stored(sessions, police) == good
    assert await written_for_client(sessions, police.name) == writer.expected(set(good))
    # The bad referral is all-or-nothing: none of its rows anywhere.
    (bad_id,) = [i for i, s in writer.submitted.items() if s.referrals[0]["external_ref"] == bad]
    assert await _rows_of(sessions, bad_id) == dict.fromkeys(
        ("referrals", *CHILD_TABLES, "audit_events"), 0
    )


class _NoFault:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *_: object) -> None:
        return None


class _FailingInsert:
    """A referral with this external_ref fails in PostgreSQL at the end of the statement that
    inserts it (an AFTER row trigger fires once every row of the statement is in). Triggers are
    the owner's to add: `sessions` are the owner's."""

    def __init__(self, sessions: Any, external_ref: str):
        self.sessions = sessions
        self.external_ref = external_ref
        self.suffix = uuid.uuid4().hex[:8]

    async def __aenter__(self) -> None:
        assert "'" not in self.external_ref
        async with self.sessions() as db:
            await db.execute(
                text(
                    f"CREATE FUNCTION group_fault_{self.suffix}() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'injected failure'; END; $$ LANGUAGE plpgsql"
                )
            )
            await db.execute(
                text(
                    f"CREATE TRIGGER group_fault_{self.suffix} AFTER INSERT ON referrals "
                    f"FOR EACH ROW WHEN (NEW.external_ref = '{self.external_ref}') "
                    f"EXECUTE FUNCTION group_fault_{self.suffix}()"
                )
            )
            await db.commit()

    async def __aexit__(self, *_: object) -> None:
        async with self.sessions() as db:
            await db.execute(text(f"DROP TRIGGER group_fault_{self.suffix} ON referrals"))
            await db.execute(text(f"DROP FUNCTION group_fault_{self.suffix}()"))
            await db.commit()


def _failing_insert(sessions: Any, external_ref: str | None) -> _FailingInsert | _NoFault:
    return _NoFault() if external_ref is None else _FailingInsert(sessions, external_ref)


@pytest.mark.parametrize("shared", [False, True], ids=["concurrent", "one-statement"])
async def test_same_external_ref_twice_at_once_is_created_once(
    pool: asyncpg.Pool, police: Police, sessions: Any, shared: bool
) -> None:
    body = referral()
    if shared:
        # Held behind another referral so that both copies are in the same statement.
        writer = ObservedWriter(pool, writers=1)
        writer.release.clear()
        async with asyncio.timeout(TIMEOUT):
            blocker = asyncio.create_task(_submit(writer, police, referral()))
            await writer.entered.wait()
            tasks = [
                asyncio.create_task(_submit(writer, police, copy.deepcopy(body))) for _ in range(2)
            ]
            await writer.until_queued(3)
            writer.release.set()
            assert (await blocker).status == "created"
            results = await asyncio.gather(*tasks)
        assert writer.statements[1] == [body["external_ref"]] * 2
    else:
        writer = ObservedWriter(pool)
        async with asyncio.timeout(TIMEOUT):
            results = await asyncio.gather(
                *(_submit(writer, police, copy.deepcopy(body)) for _ in range(2))
            )

    assert sorted(r.status for r in results) == ["created", "existing"]
    assert results[0].id == results[1].id
    assert results[0].reference == results[1].reference
    stored = await rows(
        sessions,
        "SELECT r.id FROM referrals r JOIN api_clients c ON c.id = r.client_id "
        "WHERE c.name = :name AND r.external_ref = :ref",
        name=police.name,
        ref=body["external_ref"],
    )
    assert [row[0] for row in stored] == [results[0].id]
    written = await written_for_client(sessions, police.name)
    expected = writer.expected({results[0].id} | ({_blocker_id(writer, body)} if shared else set()))
    assert written == expected


def _blocker_id(writer: ObservedWriter, body: dict[str, Any]) -> uuid.UUID:
    (found,) = [
        i
        for i, s in writer.submitted.items()
        if s.referrals[0]["external_ref"] != body["external_ref"]
    ]
    return found


@pytest.mark.parametrize("when", ["queued", "in-flight"])
async def test_cancelled_requester_does_not_cancel_the_write(
    pool: asyncpg.Pool, police: Police, sessions: Any, when: str
) -> None:
    body = referral()
    writer = ObservedWriter(pool, writers=1)
    writer.release.clear()
    async with asyncio.timeout(TIMEOUT):
        if when == "queued":
            # Another referral's statement is held: ours waits in the queue when cancelled.
            blocker = asyncio.create_task(_submit(writer, police, referral()))
            await writer.entered.wait()
            request = asyncio.create_task(_submit(writer, police, body))
            await writer.until_queued(2)
            assert len(writer.statements) == 1  # not taken by a statement yet
        else:
            # Our own statement has started (and is held) when the requester goes away.
            request = asyncio.create_task(_submit(writer, police, body))
            await writer.entered.wait()
            assert writer.statements == [[body["external_ref"]]]
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        assert await _stored(sessions, police) == {}  # nothing written yet: the hold is on
        writer.release.set()
        if when == "queued":
            assert (await blocker).status == "created"
        await _finished(writer)

    (mine,) = [
        i
        for i, s in writer.submitted.items()
        if s.referrals[0]["external_ref"] == body["external_ref"]
    ]
    counts = await _rows_of(sessions, mine)
    assert counts["referrals"] == 1, "the cancelled requester's referral was not written"
    assert {k: v for k, v in counts.items() if k != "audit_events"} == writer.expected({mine})
    # Sent again (the client retrying), it is found: `existing`, the same referral.
    async with asyncio.timeout(TIMEOUT):
        again = await _submit(writer, police, copy.deepcopy(body))
    assert (again.status, again.id) == ("existing", mine)


async def test_write_arriving_as_the_writer_finishes_is_written(
    pool: asyncpg.Pool, police: Police, sessions: Any
) -> None:
    # Rows and numbering as intake builds them: captured from submit_referral's write.
    class Capture(GroupWriter):
        async def write(self, rows: RowSet, numbering: Numbering) -> dict[uuid.UUID, str]:
            captured.append((rows, numbering))
            raise _Captured

    captured: list[tuple[RowSet, Numbering]] = []
    for _ in range(4):
        with pytest.raises(_Captured):
            await _submit(Capture(pool), police, referral())
    numbering = captured[0][1]
    assert all(n == numbering for _, n in captured)
    prepared = [rows for rows, _ in captured]

    def built() -> RowSet:
        return prepared.pop()

    woken = asyncio.Event()

    class Waking(GroupWriter):
        async def _statement(self, rows: RowSet, numbering: Numbering) -> dict[uuid.UUID, str]:
            won = await super()._statement(rows, numbering)
            # Another request becomes ready in the same turn of the loop as the writer ends
            # (in production: a request whose body has just arrived; intake does no I/O
            # before the write there).
            woken.set()
            return won

    writer = Waking(pool)
    async with asyncio.timeout(TIMEOUT):
        assert await writer.write(built(), numbering)  # a warm connection: a fast statement
        woken.clear()
        second_rows = built()

        async def second() -> dict[uuid.UUID, str]:
            await woken.wait()
            return await writer.write(second_rows, numbering)

        late = asyncio.create_task(second())
        assert await writer.write(built(), numbering)
        done, _ = await asyncio.wait({late}, timeout=2)
        stranded = late not in done
        if stranded:
            # Only the next write starts a writer, which takes the stranded one with it.
            assert await writer.write(built(), numbering)
        assert await late
    assert not stranded, "a write was left in the queue with no writer to take it"


async def test_too_many_waiting_is_writer_busy(
    pool: asyncpg.Pool, police: Police, sessions: Any
) -> None:
    """Past max_queue waiting referrals a request is refused at once (503 and Retry-After
    at the API) instead of joining a queue the database is not keeping up with."""
    from triage.services.group_writes import WriterBusy

    writer = ObservedWriter(pool, writers=1, max_queue=2)
    writer.release.clear()  # the first statement holds; the next referrals wait behind it
    first = asyncio.create_task(_submit(writer, police, referral()))
    async with asyncio.timeout(TIMEOUT):
        await writer.entered.wait()
    waiting = [asyncio.create_task(_submit(writer, police, referral())) for _ in range(2)]
    await writer.until_queued(3)
    with pytest.raises(WriterBusy):
        await _submit(writer, police, referral())
    writer.release.set()
    async with asyncio.timeout(TIMEOUT):
        results = await asyncio.gather(first, *waiting)
    assert [r.status for r in results] == ["created"] * 3
    assert len(await _stored(sessions, police)) == 3


async def test_a_row_locked_elsewhere_fails_alone_and_quickly(
    pool: asyncpg.Pool, police: Police, sessions: Any, servers: Any
) -> None:
    """A referral whose external_ref another open transaction is writing (a batch, say)
    waits at most the pool's lock_timeout, then fails on its own (503 at the API: try again);
    the referrals that shared its statement are written."""
    from db.errors import try_again_later
    from db.pool import LOCK_TIMEOUT

    body = referral()
    # Another transaction takes the external_ref first and stays open.
    holder = await asyncpg.connect(_plain(servers.database_url))
    held = holder.transaction()
    await held.start()
    try:
        holder_pool = _OneConnection(holder)
        batch = await submit_batch_in(holder_pool, police, [copy.deepcopy(body)])
        assert batch[0].status == "created"

        writer = ObservedWriter(pool, writers=1)
        writer.release.clear()
        others = [referral() for _ in range(5)]
        blocked = asyncio.create_task(_submit(writer, police, copy.deepcopy(body)))
        rest = [asyncio.create_task(_submit(writer, police, b)) for b in others]
        await writer.until_queued(6)
        writer.release.set()
        started = asyncio.get_running_loop().time()
        async with asyncio.timeout(TIMEOUT):
            outcome = await asyncio.gather(blocked, *rest, return_exceptions=True)
        waited = asyncio.get_running_loop().time() - started
    finally:
        await held.rollback()
        await holder.close()
    error = outcome[0]
    assert isinstance(error, BaseException) and try_again_later(error), error
    assert [getattr(r, "status", r) for r in outcome[1:]] == ["created"] * 5
    # Waited for the lock about lock_timeout (once shared, once alone), never for the holder.
    assert waited < 4 * float(LOCK_TIMEOUT.rstrip("s")) + 2, waited
    stored = await _stored(sessions, police)
    assert len(stored) == 5  # the holder rolled back; the blocked one wrote nothing


def _plain(url: str) -> str:
    from db.engine import plain_url

    return plain_url(url)


class _OneConnection:
    """A pool of one connection already in a transaction (what submit_batch acquires)."""

    def __init__(self, connection: asyncpg.Connection):
        self._connection = connection

    def acquire(self, timeout: float | None = None) -> Any:
        connection = self._connection

        class _Held:
            async def __aenter__(self) -> asyncpg.Connection:
                return connection

            async def __aexit__(self, *_: Any) -> None:
                return None

        return _Held()


async def submit_batch_in(pool: Any, police: Police, bodies: list[dict[str, Any]]) -> Any:
    """A batch written inside the holder's open transaction (its own becomes a savepoint)."""
    from triage.services.catalogues import current_catalogue
    from triage.services.intake import submit_batch

    return await submit_batch(pool, police.caller.principal, bodies, current_catalogue())
