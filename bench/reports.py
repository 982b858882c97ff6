"""Reports at national scale (issue 13, Performance): a quarter's report over 10,000,000
referrals spanning five years, for one service and for all services.

Data: `--n` referrals (10,000,000) received over the five years before now, each with one or two
cases, a first contact for 78% and closures, loaded by COPY with only the columns reports read
(the facts are empty: reports never read them) into the database `--database`
(`bench_reports`), kept for later runs (`--keep` skips the load when the data is there; the
marker table says what was loaded). The free disk is checked first (about 1,300 bytes a referral
with its cases and indexes) and the run stops with a clear message when it lacks room; the disk
the database uses is printed.

Project: `services.reports.build_report` (the page's, the CSV's and the API's report: every
figure family, three periods, the over-time series) for the last whole quarter, as a duty lead
(exact figures, the breach list) and as the commissioner (disclosure control), for one service
and for all services. Each is run `--runs` times (3); the best is printed (the machine is
shared).

Reference, in the same run: the naive design, every referral of the quarter (with its cases)
loaded into Python and counted there (only the referrals-received and contact families, so it
does less work than the project).

X = 2 s / the worst project time (goal >= 1).

Run: `DATABASE_URL=postgresql://root@127.0.0.1:5432/test .venv/bin/python bench/reports.py
[--n 10000000] [--keep]` (the server of DATABASE_URL; its database part is ignored).
"""

from __future__ import annotations

import sys
from pathlib import Path

_BENCH = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != _BENCH] + [_BENCH]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import os
import random
import shutil
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

MARKER = "bench_reports_marker"
BYTES_PER_REFERRAL = 1300  # measured: 1.18 GB for 1,000,000 with their cases and indexes
CHUNK = 100_000
SERVICES = ("core", "isva", "domestic-abuse", "stalking", "rj", "hate-crime", "fraud")


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--database", default="bench_reports")
    parser.add_argument("--keep", action="store_true", help="skip the load when it is there")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=13)
    return parser.parse_args()


async def _admin(url: str, sql: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _loaded(url: str) -> int | None:
    connection = await asyncpg.connect(url)
    try:
        if not await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", MARKER):
            return None
        return int(await connection.fetchval(f"SELECT n FROM {MARKER} LIMIT 1"))
    finally:
        await connection.close()


async def _free_disk(url: str, needed: int) -> None:
    connection = await asyncpg.connect(url)
    try:
        directory = await connection.fetchval("SHOW data_directory")
    finally:
        await connection.close()
    free = shutil.disk_usage(directory).free
    print(f"disk_free: {free / 1e9:.1f} GB")
    if free < needed:
        raise SystemExit(
            f"not enough free disk for {needed / 1e9:.1f} GB of data under {directory}: "
            "free some, or give a smaller --n"
        )


def _rows(
    rng: random.Random,
    start: int,
    count: int,
    n: int,
    now: datetime,
    client: uuid.UUID,
    catalogue: Any,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Referrals `start` to `start + count` of `n`, received in time order over five years."""
    referrals, cases = [], []
    span = 5 * 365 * 86400
    areas = list(catalogue.area_names)
    offences = ("violence", "domestic_abuse", "theft", "criminal_damage", "burglary", "sexual")
    for index in range(start, start + count):
        rid = uuid.UUID(int=rng.getrandbits(128))
        received = now - timedelta(seconds=span * (1 - index / max(1, n)))
        due = received + timedelta(days=rng.choice((1, 3, 5)))
        contacted = rng.random() < 0.78
        first = received + timedelta(hours=rng.uniform(1, 120)) if contacted else None
        closed = received + timedelta(days=rng.randint(14, 90))
        final = closed if closed < now else None
        status = "closed" if final else ("in_contact" if contacted else "triaged")
        referrals.append(
            (
                rid,
                f"BR-{index:09d}",
                client,
                "police" if rng.random() < 0.8 else rng.choice(("professional", "self")),
                status,
                received,
                "x",
                "{}",
                "given",
                rng.choice(("P1", "P2", "P3", "P3", "P3")),
                rng.choice(areas),
                rng.choice(offences),
                rng.choice(("under_18", "18_24", "25_64", "25_64", "65_plus")),
                ["most_serious_crime"] if rng.random() < 0.1 else [],
                due,
                first,
                int((first - received).total_seconds() // 120) if first else None,
                final,
            )
        )
        services = {rng.choice(SERVICES)} | ({"core"} if rng.random() < 0.6 else set())
        for service in services:
            reason = ("supported" if contacted else "unable_to_contact") if final else None
            cases.append(
                (
                    uuid.UUID(int=rng.getrandbits(128)),
                    rid,
                    service,
                    "primary",
                    "closed" if final else "in_support",
                    received,
                    first,
                    final,
                    reason,
                )
            )
    return referrals, cases


async def _load(url: str, n: int, seed: int) -> float:
    from triage.services.catalogues import current_catalogue, record_catalogue

    catalogue = current_catalogue()
    started = time.perf_counter()
    connection = await asyncpg.connect(url)
    try:
        await record_catalogue(connection, catalogue)
        client = uuid.uuid4()
        await connection.execute(
            "INSERT INTO api_clients (id, name, source, per_minute, batches_per_minute) "
            "VALUES ($1, 'bench-reports', 'police', 600, 20)",
            client,
        )
        now = datetime.now(UTC)
        rng = random.Random(seed)
        for start in range(0, n, CHUNK):
            referrals, cases = await asyncio.to_thread(
                _rows, rng, start, min(CHUNK, n - start), n, now, client, catalogue
            )
            await connection.copy_records_to_table(
                "referrals",
                records=referrals,
                columns=[
                    "id",
                    "reference",
                    "client_id",
                    "source",
                    "status",
                    "received_at",
                    "content_hash",
                    "facts",
                    "referral_consent",
                    "priority",
                    "area",
                    "offence_category",
                    "age_band",
                    "enhanced_rights",
                    "contact_due_by",
                    "first_contact_at",
                    "first_contact_working_minutes",
                    "final_at",
                ],
            )
            await connection.copy_records_to_table(
                "cases",
                records=cases,
                columns=[
                    "id",
                    "referral_id",
                    "service",
                    "role",
                    "status",
                    "opened_at",
                    "first_contact_at",
                    "closed_at",
                    "closure_reason",
                ],
            )
            if (start + CHUNK) % 1_000_000 == 0:
                print(f"  {start + CHUNK:,} referrals, {time.perf_counter() - started:.0f} s")
        await connection.execute(f"CREATE TABLE {MARKER} (n integer)")
        await connection.execute(f"INSERT INTO {MARKER} VALUES ($1)", n)
    finally:
        await connection.close()
    await _admin(url, "VACUUM ANALYZE")
    return time.perf_counter() - started


async def _measure(url: str, runs: int) -> dict[str, float]:
    from db.engine import make_engine, make_sessionmaker
    from triage.domain.periods import last_quarter
    from triage.domain.principals import staff
    from triage.services import reports
    from triage.services.catalogues import current_catalogue

    catalogue = current_catalogue()
    engine = make_engine(url, null_pool=True)
    sessions = make_sessionmaker(engine)
    period = last_quarter(date.today())
    figures: dict[str, float] = {}
    try:
        for role in ("duty_lead", "commissioner"):
            principal = staff(uuid.uuid4(), frozenset({role}), frozenset())
            for service in ("core", None):
                best = float("inf")
                for _ in range(runs):
                    started = time.perf_counter()
                    async with sessions() as db:
                        await reports.build_report(db, principal, catalogue, service, period)
                    best = min(best, time.perf_counter() - started)
                figures[f"quarter_{role}_{service or 'all'}"] = best
        # The naive design: the quarter's referrals and cases into Python, counted there.
        best = float("inf")
        for _ in range(runs):
            started = time.perf_counter()
            connection = await asyncpg.connect(url)
            try:
                rows = await connection.fetch(
                    "SELECT r.id, r.source, r.priority, r.area, r.first_contact_at, c.service, "
                    "c.closure_reason FROM referrals r JOIN cases c ON c.referral_id = r.id "
                    "WHERE r.received_at >= $1 AND r.received_at < $2",
                    period.start,
                    period.end,
                )
                counts: dict[Any, int] = {}
                for row in rows:
                    for key in (row["source"], row["priority"], row["area"], row["service"]):
                        counts[key] = counts.get(key, 0) + 1
            finally:
                await connection.close()
            best = min(best, time.perf_counter() - started)
        figures["reference_naive_in_python"] = best
    finally:
        await engine.dispose()
    return figures


def main() -> None:
    args = _args()
    os.environ.setdefault("TRIAGE_ENV", "test")
    base = os.environ.get("MIGRATION_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not base:
        raise SystemExit("set DATABASE_URL to a PostgreSQL server (its database part is ignored)")
    from db.engine import plain_url
    from db.migrate import upgrade
    from triage.devstack import with_database

    owner_url = with_database(plain_url(base), args.database)
    admin_url = with_database(plain_url(base), "postgres")
    loaded = None
    try:
        loaded = asyncio.run(_loaded(owner_url))
    except (OSError, asyncpg.PostgresError):
        loaded = None
    if not (args.keep and loaded == args.n):
        asyncio.run(_free_disk(admin_url, args.n * BYTES_PER_REFERRAL))
        asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)'))
        asyncio.run(_admin(admin_url, f'CREATE DATABASE "{args.database}"'))
        upgrade(owner_url)
        print(f"loading {args.n:,} referrals into {args.database}")
        print(f"load: {asyncio.run(_load(owner_url, args.n, args.seed)):.0f} s")
    else:
        upgrade(owner_url)

    async def size() -> int:
        connection = await asyncpg.connect(owner_url)
        try:
            return int(await connection.fetchval("SELECT pg_database_size(current_database())"))
        finally:
            await connection.close()

    print(f"disk_used: {asyncio.run(size()) / 1e9:.2f} GB")
    figures = asyncio.run(_measure(owner_url, args.runs))
    for name, seconds in figures.items():
        print(f"{name}: {seconds * 1000:.0f} ms")
    worst = max(v for k, v in figures.items() if k.startswith("quarter_"))
    print(f"ratio: {2.0 / worst:.2f} (goal >= 1)")


if __name__ == "__main__":
    main()
