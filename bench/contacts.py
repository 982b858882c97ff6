"""Sending queued messages to a Notify-compatible stub: the sweeper against the naive design.

(a) sweeper: the shipped design. `triage beat` sends `triage.sweep` every 2 s (and a sweep
    that found a full batch wakes another at once); each sweep claims due messages with
    FOR UPDATE SKIP LOCKED and sends them. Run with 1, then 2 worker processes
    (`triage worker --concurrency 1 --pool prefork`).
(b) naive: one Celery task per message (`triage.send_message` with the message id, claiming
    and sending that one row), on the same 2 worker processes.

Every phase sends `n` fresh queued rows (due now) to the stub (tests/stubs/notify_stub.py, its
own process and SQLite storage) through the `notify` notifier and notifications-python-client.
Rates are messages over the span of their `sent_at` times (worker start-up left out); the wall
time from starting the workers is printed beside them. The stub's count of references taken
more than once is printed too (it must be 0).
X = sweeper messages/s with 2 workers / naive messages/s (goal >= 3).

Run: `.venv/bin/python bench/contacts.py [--n 50000]` (DATABASE_URL/REDIS_URL or embedded).
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/http.py would shadow the standard library's `http` with this folder first on sys.path.
_BENCH = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != _BENCH] + [_BENCH]

import argparse
import asyncio
import copy
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from _servers import ROOT, BenchServers, bench_database, free_port, server_env

from triage.domain import vocabulary

STUB = ROOT / "tests" / "stubs" / "notify_stub.py"
LOGS = ROOT / ".triage-data"
MESSAGES_PER_REFERRAL = 50
DAYS = list(vocabulary.DAYS)
TEMPLATES = {"sms": str(uuid.uuid4()), "email": str(uuid.uuid4()), "letter": str(uuid.uuid4())}


def worker_env(servers: BenchServers, stub_url: str) -> dict[str, str]:
    return {
        **server_env(servers),
        "TRIAGE_NOTIFIER": "notify",
        "NOTIFY_BASE_URL": stub_url,
        "NOTIFY_API_KEY": f"bench-{uuid.uuid4()}-{uuid.uuid4()}",
        "NOTIFY_TEMPLATE_IDS": json.dumps(TEMPLATES),
        # The stub is not Notify: no 3,000-a-minute limit (tested on its own).
        "NOTIFY_PER_MINUTE": "0",
    }


@contextmanager
def process_group(args: list[str], env: dict[str, str], log_name: str) -> Iterator[None]:
    """A process in its own group (a prefork worker's pool children go with it)."""
    log = open(LOGS / log_name, "wb")
    process = subprocess.Popen(
        args, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        yield
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(10)
        log.close()


@contextmanager
def stub_server() -> Iterator[str]:
    import httpx

    port = free_port()
    database = LOGS / f"bench-stub-{port}.db"
    with process_group(
        [sys.executable, str(STUB), "--port", str(port), "--db", str(database)],
        dict(os.environ),
        f"bench-stub-{port}.log",
    ):
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{url}/_stats", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the stub did not start in 15 s") from None
                time.sleep(0.1)
        try:
            yield url
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{database}{suffix}").unlink(missing_ok=True)


def worker_args(concurrency: int = 1) -> list[str]:
    return [
        sys.executable,
        "-m",
        "triage.cli",
        "worker",
        "--concurrency",
        str(concurrency),
        "--pool",
        "prefork",
        "--loglevel",
        "WARNING",
    ]


async def seed_referrals(servers: BenchServers, count: int) -> list[uuid.UUID]:
    """Referrals through intake whose victims allow SMS and email at any time of day."""
    from db.engine import make_engine, make_sessionmaker
    from db.pool import make_pool
    from triage.services.api_keys import DEFAULT_SCOPES, Caller, create_client
    from triage.services.catalogues import current_catalogue
    from triage.services.intake import submit_batch

    example = json.loads((ROOT / "example-referral.json").read_text())
    bodies = []
    for i in range(count):
        body = copy.deepcopy(example)
        body["external_ref"] = f"46/{i:06d}/26"
        body["contact"]["channels"] = ["phone", "sms", "email"]
        body["contact"]["safe_times"] = [{"days": DAYS, "from": "00:00", "to": "00:00"}]
        bodies.append(body)
    engine = make_engine(servers.database_url, null_pool=True)
    try:
        sessions = make_sessionmaker(engine)
        async with sessions() as db:
            client = await create_client(db, "bench-contacts", "police")
        caller = Caller(client.id, "police", frozenset(DEFAULT_SCOPES["police"]), 10**7, 10**7)
        ids: list[uuid.UUID] = []
        pool = await make_pool(servers.database_url, 1)
        try:
            for start in range(0, count, 1000):
                results = await submit_batch(
                    pool, caller.principal, bodies[start : start + 1000], current_catalogue()
                )
                ids += [r.id for r in results if r.status == "created" and r.id is not None]
        finally:
            await pool.close()
        # The intake's own introduction messages are not part of any phase.
        async with engine.begin() as connection:
            from sqlalchemy import text

            await connection.execute(
                text("UPDATE messages SET status = 'cancelled' WHERE status = 'queued'")
            )
        return ids
    finally:
        await engine.dispose()


async def queue_messages(
    url: str, referrals: list[uuid.UUID], n: int
) -> tuple[datetime, list[uuid.UUID]]:
    """`n` queued rows due now, spread over the referrals; returns the phase's start mark."""
    import asyncpg

    from db.engine import plain_url

    connection = await asyncpg.connect(plain_url(url))
    try:
        mark = await connection.fetchval("SELECT clock_timestamp()")
        rows = await connection.fetch(
            """
            INSERT INTO messages (id, referral_id, purpose, channel, template, status, due_at,
                                  created_at, updated_at)
            SELECT gen_random_uuid(), ids[1 + i % cardinality(ids)], 'contact',
                   CASE WHEN i % 2 = 0 THEN 'sms' ELSE 'email' END, 'introduction', 'queued',
                   clock_timestamp() - interval '1 second', clock_timestamp(), clock_timestamp()
            FROM generate_series(0, $2 - 1) AS i, CAST($1 AS uuid[]) AS ids
            RETURNING id
            """,
            referrals,
            n,
        )
        await connection.execute("ANALYZE messages")
        return mark, [r["id"] for r in rows]
    finally:
        await connection.close()


async def wait_sent(url: str, mark: datetime, n: int, within: float) -> dict[str, Any]:
    """Until the phase's rows are all accepted; returns counts and the sent_at span."""
    import asyncpg

    from db.engine import plain_url

    connection = await asyncpg.connect(plain_url(url))
    try:
        deadline = time.monotonic() + within
        while True:
            counts = {
                r["status"]: r["n"]
                for r in await connection.fetch(
                    "SELECT status, count(*) AS n FROM messages WHERE created_at >= $1 "
                    "GROUP BY status",
                    mark,
                )
            }
            if counts.get("accepted", 0) + counts.get("failed", 0) >= n:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"not all sent within {within:.0f} s: {counts}")
            await asyncio.sleep(0.5)
        span = await connection.fetchrow(
            "SELECT min(sent_at) AS first, max(sent_at) AS last FROM messages "
            "WHERE created_at >= $1 AND status = 'accepted'",
            mark,
        )
        return {"counts": counts, "first": span["first"], "last": span["last"]}
    finally:
        await connection.close()


def cpu_times() -> tuple[float, float] | None:
    """(busy, total) jiffies of the whole machine, from /proc/stat (Linux), else None."""
    try:
        fields = [float(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def stub_stats(stub_url: str) -> dict[str, Any]:
    import httpx

    return dict(httpx.get(f"{stub_url}/_stats", timeout=60).json())


def reset_stub(stub_url: str) -> None:
    import httpx

    httpx.post(f"{stub_url}/_reset", timeout=60).raise_for_status()
    httpx.post(f"{stub_url}/_control", json={"receipts": False}, timeout=10).raise_for_status()


def clear_queue(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.delete("triage", "unacked", "unacked_index")
    finally:
        client.close()


def publish_sends(redis_url: str, ids: list[uuid.UUID]) -> float:
    """The naive design's wake-ups: one `triage.send_message` task per message."""
    from celery import Celery

    app = Celery("bench-naive", broker=redis_url)
    app.conf.update(task_serializer="json", accept_content=["json"], task_default_queue="triage")
    started = time.perf_counter()
    with app.producer_or_acquire() as producer:
        for message_id in ids:
            app.send_task("triage.send_message", args=[str(message_id)], producer=producer)
    app.close()
    return time.perf_counter() - started


def run_phase(
    name: str,
    servers: BenchServers,
    stub_url: str,
    referrals: list[uuid.UUID],
    n: int,
    workers: int,
    naive: bool,
) -> float:
    reset_stub(stub_url)
    clear_queue(servers.redis_url)
    mark, ids = asyncio.run(queue_messages(servers.database_url, referrals, n))
    if naive:
        seconds = publish_sends(servers.redis_url, ids)
        print(f"{name}_publish_rate: {n / seconds:.0f} tasks/s")
    env = worker_env(servers, stub_url)
    with_beat = not naive
    started = time.perf_counter()
    cpu_before = cpu_times()
    with contextlib_stack() as stack:
        for i in range(workers):
            stack.enter_context(process_group(worker_args(), env, f"bench-{name}-worker{i}.log"))
        if with_beat:
            schedule = LOGS / f"bench-{name}-beat-schedule"
            stack.enter_context(
                process_group(
                    [
                        sys.executable,
                        "-m",
                        "triage.cli",
                        "beat",
                        "--loglevel",
                        "WARNING",
                        "--schedule",
                        str(schedule),
                    ],
                    env,
                    f"bench-{name}-beat.log",
                )
            )
        result = asyncio.run(wait_sent(servers.database_url, mark, n, within=max(600, n / 10)))
        wall = time.perf_counter() - started
        cpu_after = cpu_times()
    stats = stub_stats(stub_url)
    span = (result["last"] - result["first"]).total_seconds()
    rate = (n - 1) / span if span > 0 else float("inf")
    failed = result["counts"].get("failed", 0)
    print(f"{name}_messages: {n} messages")
    print(f"{name}_rate: {rate:.0f} messages/s")
    print(f"{name}_wall_rate: {n / wall:.0f} messages/s (from worker start)")
    print(f"{name}_failed: {failed} messages")
    print(f"{name}_provider_duplicates: {len(stats['duplicates'])} references")
    if cpu_before and cpu_after and cpu_after[1] > cpu_before[1]:
        busy = (cpu_after[0] - cpu_before[0]) / (cpu_after[1] - cpu_before[1])
        print(f"{name}_machine_cpu_busy: {100 * busy:.0f} % of {os.cpu_count()} cores")
    if stats["sends"] != n - failed or stats["duplicates"]:
        raise SystemExit(f"{name}: the stub took {stats['sends']} sends for {n} messages")
    return rate


@contextmanager
def contextlib_stack() -> Iterator[Any]:
    from contextlib import ExitStack

    with ExitStack() as stack:
        yield stack


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50_000, help="messages per phase")
    parser.add_argument(
        "--naive-n", type=int, default=None, help="messages for the naive phase (default: n)"
    )
    args = parser.parse_args()
    naive_n = args.naive_n or args.n
    LOGS.mkdir(exist_ok=True)
    with bench_database() as servers:
        os.environ.update(
            {
                "DATABASE_URL": servers.database_url,
                "REDIS_URL": servers.redis_url,
                "TRIAGE_SECRET_KEY": servers.secret,
                "TRIAGE_AUDIT_KEY": servers.audit_key,
                "TRIAGE_ENV": "production",
                "TRIAGE_HUB_PHONE": "01632 960123",  # a drama number: production needs one set
            }
        )
        from triage.settings import get_settings

        get_settings.cache_clear()
        referrals = asyncio.run(
            seed_referrals(servers, max(1, max(args.n, naive_n) // MESSAGES_PER_REFERRAL))
        )
        with stub_server() as stub_url:
            phases = (
                ("sweeper_1_worker", args.n, 1, False),
                ("sweeper_2_workers", args.n, 2, False),
            )
            sweeper_1, sweeper_2 = (
                run_phase(name, servers, stub_url, referrals, n, workers, naive)
                for name, n, workers, naive in phases
            )
            naive_2 = run_phase("naive_2_workers", servers, stub_url, referrals, naive_n, 2, True)
        print(f"sweeper_scaling_1_to_2: {sweeper_2 / sweeper_1:.2f} x")
        print(f"ratio: {sweeper_2 / naive_2:.2f} (goal >= 3)")


if __name__ == "__main__":
    main()
