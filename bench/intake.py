"""Batch intake against a raw ceiling (issue: referral intake).

(a) raw: asyncpg executemany of the same rows (referrals, decisions, cases, first contact
    steps, messages, alerts) into the same tables, already validated and triaged;
(b) project: POST /api/v1/referrals/batch through the real app (`triage serve`, production
    settings) over HTTP on loopback, 1,000-item batches, every referral validated, triaged and
    stored with its cases and first contact step.
X = project referrals/s / raw referrals/s (goal >= 0.4).

Run: `.venv/bin/python bench/intake.py [--n 50000]` (DATABASE_URL/REDIS_URL or embedded).
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/http.py would shadow the standard library's `http` with this folder first on sys.path.
_BENCH = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != _BENCH] + [_BENCH]

import argparse
import asyncio
import json
import sys
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from _servers import (
    bench_database,
    free_port,
    make_client_key,
    running,
    server_env,
)

from triage.catalogue.loader import load_catalogue
from triage.demo import demo_referrals
from triage.devstack import serve_command
from triage.domain.engine import triage
from triage.domain.validation import consent_given, validate_referral
from triage.services.referral_rows import RowSet, add_referral_rows

BATCH = 1000
TABLES = ("referrals", "triage_decisions", "cases", "contact_steps", "messages", "alerts")


def raw_rows(bodies: list[dict[str, Any]], client_id: uuid.UUID) -> RowSet:
    catalogue = load_catalogue()
    now = datetime.now(UTC)
    rows = RowSet()
    for i, body in enumerate(bodies):
        referral = validate_referral(body, "police", now, catalogue)
        decision = triage(referral, "police", now, catalogue)
        add_referral_rows(
            rows,
            referral_id=uuid.uuid4(),
            client_id=client_id,
            source="police",
            referral=referral,
            content_hash=referral.content_hash(),
            consent_given=consent_given(body, "police"),
            decision=decision,
            received_at=now,
        )
        rows.referrals[-1]["reference"] = f"RAW-26-{i:06d}"
    return rows


async def raw_insert(url: str, rows: RowSet, client_id: uuid.UUID, version: str) -> float:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "INSERT INTO api_clients (id, name, source, per_minute, batches_per_minute) "
            "VALUES ($1, $2, 'police', 1, 1)",
            client_id,
            f"raw-{client_id}",
        )
        await connection.execute(
            "INSERT INTO catalogue_versions (version, catalogue_id, content) VALUES ($1, 'kent', "
            "'{}') ON CONFLICT DO NOTHING",
            version,
        )
        for codec in ("json", "jsonb"):
            await connection.set_type_codec(
                codec, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
            )
        # Everything but the inserts is done before the clock starts: each batch's statements
        # and row tuples, grouped by referral in one pass (the ceiling does no Python work
        # the database would not need).
        batch_of = {r["id"]: i // BATCH for i, r in enumerate(rows.referrals)}
        batches: list[list[tuple[str, list[tuple[Any, ...]]]]] = [
            [] for _ in range(-(-len(rows.referrals) // BATCH))
        ]
        for table, attribute in zip(
            TABLES, ("referrals", "decisions", "cases", "steps", "messages", "alerts"), strict=True
        ):
            table_rows = getattr(rows, attribute)
            if not table_rows:
                continue
            key = "id" if table == "referrals" else "referral_id"
            columns = list(table_rows[0])
            sql = (
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                f"({', '.join(f'${i + 1}' for i in range(len(columns)))})"
            )
            grouped: dict[int, list[tuple[Any, ...]]] = {}
            for r in table_rows:
                grouped.setdefault(batch_of[r[key]], []).append(tuple(r[c] for c in columns))
            for index, values in grouped.items():
                batches[index].append((sql, values))
        started = time.perf_counter()
        for statements in batches:
            async with connection.transaction():
                for sql, values in statements:
                    await connection.executemany(sql, values)
        return time.perf_counter() - started
    finally:
        await connection.close()


async def project_post(port: int, key: str, bodies: list[dict[str, Any]]) -> tuple[float, int]:
    import httpx

    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    created = 0
    chunks = [bodies[i : i + BATCH] for i in range(0, len(bodies), BATCH)]
    payloads = [json.dumps({"referrals": chunk}).encode() for chunk in chunks]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=300) as client:
        started = time.perf_counter()
        # Two batches in flight, as a police system with two senders would have.
        queue = list(payloads)

        async def sender() -> None:
            nonlocal created
            while queue:
                payload = queue.pop(0)
                answer = await client.post(
                    "/api/v1/referrals/batch", content=payload, headers=headers
                )
                answer.raise_for_status()
                created += answer.json()["counts"]["created"]

        await asyncio.gather(sender(), sender())
        return time.perf_counter() - started, created


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50_000)
    args = parser.parse_args()
    catalogue = load_catalogue()
    today = date.today()
    with bench_database() as servers:
        raw_client = uuid.uuid4()
        rows = raw_rows(demo_referrals(args.n, catalogue, today, seed=1, prefix="RAW"), raw_client)
        raw_seconds = asyncio.run(
            raw_insert(servers.database_url, rows, raw_client, catalogue.version)
        )
        raw_rate = args.n / raw_seconds
        tables = ("referrals", "decisions", "cases", "steps", "messages", "alerts")
        per_referral = sum(len(getattr(rows, t)) for t in tables) / args.n
        print(f"raw_rows_per_referral: {per_referral:.2f} rows")
        print(f"raw_executemany_rate: {raw_rate:.0f} referrals/s")
        key = asyncio.run(make_client_key(servers, "bench-intake"))
        port = free_port()
        bodies = demo_referrals(args.n, catalogue, today, seed=2, prefix="BENCH")
        command = serve_command(port)
        with running(command, server_env(servers), port, "/readyz"):
            seconds, created = asyncio.run(project_post(port, key, bodies))
        if created != args.n:
            raise SystemExit(f"only {created} of {args.n} referrals were created")
        project_rate = args.n / seconds
        print(f"project_batch_intake_rate: {project_rate:.0f} referrals/s")
        print(f"ratio: {project_rate / raw_rate:.2f} (goal >= 0.4)")


if __name__ == "__main__":
    main()
