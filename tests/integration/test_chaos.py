"""Chaos: real Celery worker processes sending queued messages to a Notify-compatible stub
(its own process, its own SQLite storage), while workers are killed, Redis is flushed, the
workers' database connections are dropped and the provider times out. Every message must end
`accepted` (or `delivered` once the stub's receipt arrives) and the stub must have taken each
reference exactly once.

The chaos runs in its own database on the test PostgreSQL server, so its workers never touch
the other tests' rows and its clock can be moved forward freely.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import referral
from notify_stub_support import PYTHON, ROOT, Stub, start_stub, stop_process, tail
from sqlalchemy import text

from triage.devstack import free_port
from triage.domain.vocabulary import DAYS

pytestmark = pytest.mark.integration

# A syntactically valid Notify key: name-<service id>-<secret>; the stub does not verify it.
NOTIFY_KEY = f"chaos_test-{uuid.uuid4()}-{uuid.uuid4()}"
TEMPLATES = {"sms": str(uuid.uuid4()), "email": str(uuid.uuid4()), "letter": str(uuid.uuid4())}
CALLBACK_TOKEN = "chaos-callback-" + uuid.uuid4().hex
LEASE_SECONDS = 5
SENT = ("accepted", "delivered")


# -- the chaos database ------------------------------------------------------------------


@dataclass(frozen=True)
class ChaosDatabase:
    url: str  # the application's role: the app, the workers, the checks
    owner_url: str  # the owner: migrations, ending the workers' connections


@pytest.fixture(scope="module")
def chaos_database(servers: Any) -> Iterator[ChaosDatabase]:
    from db.migrate import upgrade
    from db.roles import app_role
    from triage.devstack import as_role, create_database, drop_database

    owner_url = create_database(servers.owner_url, "triage_chaos")
    try:
        upgrade(owner_url)
        yield ChaosDatabase(as_role(owner_url, app_role()), owner_url)
    finally:
        drop_database(owner_url)


@pytest.fixture(scope="module")
def chaos_db(chaos_database: ChaosDatabase) -> str:
    return chaos_database.url


@pytest.fixture(scope="module")
async def chaos_sessions(chaos_db: str) -> AsyncIterator[Any]:
    from db.engine import make_engine, make_sessionmaker

    engine = make_engine(chaos_db, null_pool=True)
    yield make_sessionmaker(engine)
    await engine.dispose()


def _env(servers: Any, chaos_db: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": chaos_db,
        "REDIS_URL": servers.redis_url,
        "TRIAGE_ENV": "test",
        "TRIAGE_SECRET_KEY": "chaos-secret",
        "TRIAGE_LOG_FORMAT": "json",
        "TRIAGE_CLAIM_LEASE_SECONDS": str(LEASE_SECONDS),
        "TRIAGE_NOTIFIER": "notify",
        "NOTIFY_API_KEY": NOTIFY_KEY,
        "NOTIFY_TEMPLATE_IDS": json.dumps(TEMPLATES),
        # The stub is not Notify: no 3,000-a-minute limit (tested on its own).
        "NOTIFY_PER_MINUTE": "0",
        "NOTIFY_CALLBACK_TOKEN": CALLBACK_TOKEN,
    }


# -- processes: the web app (receipts), the stub, the workers ------------------------------


@pytest.fixture(scope="module")
def api(servers: Any, chaos_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app (`triage serve`), for the delivery receipts the stub posts."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("chaos-api") / "api.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [PYTHON, "-m", "triage.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=_env(servers, chaos_db),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"triage serve exited at start:\n{tail(log_path)}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"triage serve not ready in 30 s:\n{tail(log_path)}")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


@dataclass
class Workers:
    """Celery worker processes (`triage worker --concurrency 1 --pool prefork`), each in its
    own process group so that a SIGKILL takes the pool's child with it."""

    env: dict[str, str]
    directory: Path
    provider: str = ""  # the stub's URL: NOTIFY_BASE_URL
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    started: int = 0

    def start(self, name: str) -> None:
        assert self.provider, "point the workers at the stub first"
        self.started += 1
        log_path = self.directory / f"worker-{name}-{self.started}.log"
        with open(log_path, "wb") as log:
            self.running[name] = subprocess.Popen(
                [
                    PYTHON,
                    "-m",
                    "triage.cli",
                    "worker",
                    "--concurrency",
                    "1",
                    "--pool",
                    "prefork",
                    "--loglevel",
                    "WARNING",
                ],
                env={**self.env, "NOTIFY_BASE_URL": self.provider},
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.logs[name] = log_path

    def kill(self, name: str) -> None:
        """SIGKILL the worker and its pool child at once: no shutdown, no acks, no commits."""
        process = self.running.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def stop_all(self) -> None:
        for process in self.running.values():
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for process in self.running.values():
            stop_process(process, grace=10)
        self.running.clear()

    def check_alive(self) -> None:
        for name, process in self.running.items():
            if process.poll() is not None:
                raise AssertionError(
                    f"worker {name} exited ({process.returncode}):\n{tail(self.logs[name])}"
                )

    def report(self) -> str:
        return "\n".join(f"--- {n}\n{tail(p)}" for n, p in self.logs.items())


class SweepDriver:
    """Sends `triage.sweep` (as beat would), keeping at most two waiting in the queue."""

    def __init__(self, redis_url: str):
        import redis
        from celery import Celery

        self.redis = redis.Redis.from_url(redis_url)
        self.app = Celery("chaos-driver", broker=redis_url)
        self.app.conf.update(
            task_serializer="json", accept_content=["json"], task_default_queue="triage"
        )
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.sent = 0

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                if int(self.redis.llen("triage")) < 2:
                    self.app.send_task("triage.sweep", expires=10)
                    self.sent += 1
            except Exception:  # Redis flushed or restarting: try again shortly
                pass
            self.stop_event.wait(0.25)

    def start(self) -> SweepDriver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(10)
        self.app.close()
        self.redis.close()


@pytest.fixture
def workers(servers: Any, chaos_db: str, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(_env(servers, chaos_db), tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture
def driver(servers: Any) -> Iterator[SweepDriver]:
    sweeps = SweepDriver(servers.redis_url)
    try:
        yield sweeps
    finally:
        sweeps.stop()


# -- seeding and checking ----------------------------------------------------------------


async def seed(sessions: Any, count: int, per_referral: int = 20) -> list[uuid.UUID]:
    """`count` queued messages, due now, for referrals created through intake whose victims
    allow SMS and email at any time of day (so the test does not depend on the clock)."""
    from triage.services.catalogues import forget_recorded
    from triage.services.references import forget_sequences

    # The intake remembers, per process, the catalogue and reference sequence it has written;
    # this is another database, so forget both before and after (for the other tests).
    forget_recorded()
    forget_sequences()
    try:
        return await _seed(sessions, count, per_referral)
    finally:
        forget_recorded()
        forget_sequences()


async def _seed(sessions: Any, count: int, per_referral: int) -> list[uuid.UUID]:
    from db.pool import make_pool
    from triage.services.api_keys import DEFAULT_SCOPES, Caller, create_client
    from triage.services.catalogues import current_catalogue
    from triage.services.clock import service_now
    from triage.services.intake import submit_batch

    async with sessions() as db:
        client = await create_client(db, f"chaos-{uuid.uuid4().hex[:8]}", "police")
    caller = Caller(client.id, "police", frozenset(DEFAULT_SCOPES["police"]), 10**6, 10**6)
    bodies = [
        referral(
            **{
                "contact.channels": ["phone", "sms", "email"],
                "contact.safe_times": [{"days": list(DAYS), "from": "00:00", "to": "00:00"}],
            }
        )
        for _ in range(max(1, count // per_referral))
    ]
    pool = await make_pool(sessions.kw["bind"].url.render_as_string(hide_password=False), 1)
    try:
        results = await submit_batch(pool, caller.principal, bodies, current_catalogue())
    finally:
        await pool.close()
    referral_ids = [r.id for r in results if r.status == "created"]
    assert len(referral_ids) == len(bodies), results
    async with sessions() as db:
        now = await service_now(db)
        await db.execute(
            text(
                "UPDATE messages SET due_at = :due WHERE referral_id = ANY(:ids) "
                "AND status = 'queued'"
            ),
            {"due": now - _seconds(1), "ids": referral_ids},
        )
        existing = (
            await db.execute(
                text("SELECT count(*) FROM messages WHERE referral_id = ANY(:ids)"),
                {"ids": referral_ids},
            )
        ).scalar_one()
        await db.execute(
            text("""
            INSERT INTO messages (id, referral_id, purpose, channel, template, status, due_at)
            SELECT gen_random_uuid(), ids[1 + i % cardinality(ids)], 'contact',
                   CASE WHEN i % 2 = 0 THEN 'sms' ELSE 'email' END, 'introduction', 'queued',
                   :due
            FROM generate_series(0, :extra - 1) AS i, CAST(:ids AS uuid[]) AS ids
            """),
            {"ids": referral_ids, "extra": count - existing, "due": now - _seconds(1)},
        )
        ids = [
            row.id
            for row in await db.execute(
                text("SELECT id FROM messages WHERE referral_id = ANY(:ids)"),
                {"ids": referral_ids},
            )
        ]
        await db.commit()
    assert len(ids) == count
    return ids


def _seconds(n: float) -> Any:
    from datetime import timedelta

    return timedelta(seconds=n)


async def statuses(sessions: Any, ids: list[uuid.UUID]) -> dict[str, int]:
    async with sessions() as db:
        rows = await db.execute(
            text("SELECT status, count(*) AS n FROM messages WHERE id = ANY(:ids) GROUP BY 1"),
            {"ids": ids},
        )
        return {row.status: row.n for row in rows}


async def wait_until(
    sessions: Any,
    ids: list[uuid.UUID],
    done: Any,
    workers: Workers,
    within: float,
    what: str,
) -> dict[str, int]:
    deadline = time.monotonic() + within
    while True:
        counts = await statuses(sessions, ids)
        if done(counts):
            return counts
        workers.check_alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within:.0f} s: {counts}\n{workers.report()}")
        await asyncio.sleep(0.25)


def sent(counts: dict[str, int]) -> int:
    return sum(counts.get(s, 0) for s in SENT)


def assert_each_sent_once(stub: Stub, ids: list[uuid.UUID]) -> None:
    taken = Counter(s["reference"] for s in stub.sends())
    twice = {ref: n for ref, n in taken.items() if n > 1}
    assert not twice, f"sent more than once: {len(twice)} references, e.g. {list(twice)[:5]}"
    expected = {str(i) for i in ids}
    assert set(taken) == expected, (
        f"missing at the provider: {len(expected - set(taken))}, "
        f"unknown: {len(set(taken) - expected)}"
    )


async def assert_all_final(
    sessions: Any, ids: list[uuid.UUID], status: tuple[str, ...] = SENT
) -> None:
    async with sessions() as db:
        rows = list(
            await db.execute(
                text(
                    "SELECT status, provider_status, claimed_until, sent_at FROM messages "
                    "WHERE id = ANY(:ids)"
                ),
                {"ids": ids},
            )
        )
    assert len(rows) == len(ids)
    wrong = Counter(r.status for r in rows if r.status not in status)
    assert not wrong, wrong
    assert all(r.provider_status for r in rows)
    assert all(r.claimed_until is None and r.sent_at is not None for r in rows)


# -- the scenarios -----------------------------------------------------------------------


async def test_sigkill_a_worker_mid_run(
    chaos_sessions: Any,
    api: str,
    tmp_path: Path,
    workers: Workers,
    driver: SweepDriver,
) -> None:
    """2 workers on 2,000 queued messages; one is SIGKILLed mid-run and restarted: each
    reference reaches the stub exactly once, and every message ends `delivered` once the
    stub's receipts reach the callback."""
    stub = start_stub(
        tmp_path, callback=f"{api}/api/v1/notify/callback", callback_token=CALLBACK_TOKEN
    )
    try:
        ids = await seed(chaos_sessions, 2000)
        workers.provider = stub.url
        workers.start("one")
        workers.start("two")
        driver.start()
        # Mid-run: 400 sent, and rows claimed and in flight.
        await wait_until(
            chaos_sessions,
            ids,
            lambda c: sent(c) >= 400 and c.get("sending", 0) > 0,
            workers,
            60,
            "first 400 sent",
        )
        workers.kill("one")
        at_kill = await statuses(chaos_sessions, ids)
        assert sent(at_kill) < len(ids), f"the run was over before the kill: {at_kill}"
        assert at_kill.get("sending"), at_kill
        await asyncio.sleep(0.5)
        workers.start("one")
        await wait_until(
            chaos_sessions, ids, lambda c: sent(c) == len(ids), workers, 90, "all sent"
        )
        assert_each_sent_once(stub, ids)
        # The receipts: every message moves on to `delivered`.
        await wait_until(
            chaos_sessions,
            ids,
            lambda c: c.get("delivered", 0) == len(ids),
            workers,
            60,
            f"all delivered (stub: {stub.stats()})",
        )
        await assert_all_final(chaos_sessions, ids, ("delivered",))
        stats = stub.stats()
        assert stats["sends"] == len(ids) and not stats["duplicates"], stats
    finally:
        stop_process(stub.process, grace=5)


async def test_flush_redis_mid_run(
    chaos_sessions: Any, stub: Stub, workers: Workers, driver: SweepDriver, servers: Any
) -> None:
    """FLUSHALL while the workers are busy: the queued sweeps are gone, the rows are not;
    the next sweeps take every row, none twice."""
    import redis

    stub.control(receipts=False)
    ids = await seed(chaos_sessions, 800)
    workers.provider = stub.url
    workers.start("one")
    workers.start("two")
    driver.start()
    await wait_until(chaos_sessions, ids, lambda c: sent(c) >= 100, workers, 60, "first 100")
    client = redis.Redis.from_url(servers.redis_url)
    try:
        client.flushall()
        at_flush = await statuses(chaos_sessions, ids)
        assert sent(at_flush) < len(ids), f"the run was over before the flush: {at_flush}"
    finally:
        client.close()
    await wait_until(chaos_sessions, ids, lambda c: sent(c) == len(ids), workers, 60, "all sent")
    await assert_all_final(chaos_sessions, ids, ("accepted",))
    assert_each_sent_once(stub, ids)


async def test_database_connections_dropped_mid_run(
    chaos_sessions: Any,
    chaos_database: ChaosDatabase,
    stub: Stub,
    workers: Workers,
    driver: SweepDriver,
) -> None:
    """pg_terminate_backend on every worker connection, twice, mid-run: the tasks fail, retry
    and the sweep takes every row again; nothing is lost and nothing is sent twice."""
    import asyncpg

    from db.engine import plain_url

    stub.control(receipts=False)
    ids = await seed(chaos_sessions, 800)
    workers.provider = stub.url
    workers.start("one")
    workers.start("two")
    driver.start()
    terminated = 0
    for threshold in (100, 350):
        await wait_until(
            chaos_sessions, ids, lambda c, t=threshold: sent(c) >= t, workers, 60, f"{threshold}"
        )
        connection = await asyncpg.connect(plain_url(chaos_database.owner_url))
        try:
            terminated += len(
                await connection.fetch(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        finally:
            await connection.close()
    assert terminated > 0
    await wait_until(chaos_sessions, ids, lambda c: sent(c) == len(ids), workers, 90, "all sent")
    await assert_all_final(chaos_sessions, ids, ("accepted",))
    assert_each_sent_once(stub, ids)


async def test_provider_timeout_then_lookup(
    chaos_sessions: Any, stub: Stub, workers: Workers, driver: SweepDriver
) -> None:
    """The stub takes a few sends and answers them too late (after the client's 10 s
    timeout): those rows are looked up by reference before any new attempt, found, and
    marked accepted: no duplicate."""
    from triage.services.clock import advance

    slow = 3
    stub.control(receipts=False, fail="timeout", times=slow, timeout_seconds=13)
    ids = await seed(chaos_sessions, 60)
    workers.provider = stub.url
    workers.start("one")
    workers.start("two")
    driver.start()

    await wait_until(
        chaos_sessions, ids, lambda c: sent(c) >= len(ids) - slow, workers, 45, "the others"
    )
    timed_out = [r for r in stub.requests() if r["outcome"] == "timeout"]
    assert len(timed_out) == slow, timed_out
    # Once the client has given up on each of them (its timeout is 10 s), move the shared
    # clock past their retry time rather than sleep through it.
    last = max(datetime.fromisoformat(r["received_at"].replace("Z", "+00:00")) for r in timed_out)
    await asyncio.sleep(max(0.0, (last - datetime.now(UTC)).total_seconds() + 11))
    async with chaos_sessions() as db:
        await advance(db, _seconds(15 * 60))
    references = [uuid.UUID(r["reference"]) for r in timed_out]
    await wait_until(chaos_sessions, ids, lambda c: sent(c) == len(ids), workers, 45, "all sent")
    await assert_all_final(chaos_sessions, ids, ("accepted",))
    assert_each_sent_once(stub, ids)
    async with chaos_sessions() as db:
        attempts = (
            await db.execute(
                text("SELECT attempts FROM messages WHERE id = ANY(:ids)"),
                {"ids": references},
            )
        ).scalars()
        assert all(a >= 2 for a in attempts)  # the second attempt was the lookup
    # The stub took each timed-out reference once and was never asked to send it again.
    slow_refs = {r["reference"] for r in timed_out}
    again = Counter(r["reference"] for r in stub.requests() if r["reference"] in slow_refs)
    assert all(n == 1 for n in again.values()), again


class RecordingNotifier:
    """In-process notifier that records what it was asked (for the claim-token test)."""

    timeout = 10.0

    def __init__(self) -> None:
        self.sent: list[uuid.UUID] = []
        self.looked_up: list[uuid.UUID] = []

    async def wait_for_turn(self) -> None:
        return None

    async def send(self, message: Any) -> str:
        self.sent.append(message.reference)
        return "created"

    async def lookup(self, reference: uuid.UUID) -> str | None:
        self.looked_up.append(reference)
        return "created" if reference in self.sent else None


async def test_a_claim_taken_over_is_never_sent_by_its_first_holder(chaos_sessions: Any) -> None:
    """A worker whose lease ran out and whose rows were claimed again by another (both still
    `sending`) neither sends them nor records a result for them: the claim (`attempts`) is
    the token every step checks under the row lock."""
    from triage.services.catalogues import current_catalogue
    from triage.services.messaging import claim_message, deliver, deliver_all
    from triage.services.units import in_session

    ids = await seed(chaos_sessions, 20)
    notifier = RecordingNotifier()
    first = [await in_session(chaos_sessions, claim_message, i, _seconds(60)) for i in ids]
    assert all(first)
    # The first holder stalls; its leases run out and another worker claims the rows.
    async with chaos_sessions() as db:
        await db.execute(
            text(
                "UPDATE messages SET claimed_until = claimed_until - interval '1 hour' "
                "WHERE id = ANY(:ids)"
            ),
            {"ids": ids},
        )
        await db.commit()
    second = [await in_session(chaos_sessions, claim_message, i, _seconds(60)) for i in ids]
    assert all(c is not None and c.attempts == 2 for c in second)
    # The stale holder wakes up: nothing is sent, nothing written.
    counts = await deliver_all(
        chaos_sessions, notifier, current_catalogue(), [c for c in first if c]
    )
    assert counts == {"not_claimed": len(ids)}
    assert notifier.sent == []
    assert (await statuses(chaos_sessions, ids)) == {"sending": len(ids)}
    # The new holder looks each one up first (an earlier claim may have sent it), then sends.
    results = [await deliver(chaos_sessions, notifier, current_catalogue(), c) for c in second if c]
    assert results == ["accepted"] * len(ids)
    assert sorted(notifier.sent) == sorted(ids) and sorted(notifier.looked_up) == sorted(ids)
