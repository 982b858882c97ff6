"""Single-referral HTTP intake against a ceiling (issue: referral intake).

Both servers run under the production server settings: uvicorn with the production image's
two web processes (`triage serve --workers 2`, deploy/Dockerfile; `--workers` changes both
sides alike), production logging, the bench client's rate limit raised. The load is 32
concurrent connections of POST with a new referral each time:
- project: POST /api/v1/referrals on the real app (validated, triaged, stored with its
  decision, cases, first contact step, message, alerts and audit event);
- ceiling: a minimal Litestar endpoint that decodes the same body and does one insert.
The two take turns (`--rounds`, default 4, `--seconds` in all for each side), so the noise of
a shared machine falls on both alike. Then the project again for `--seconds` while a
10,000-item batch is being taken, for the p99 under that load.
X = project requests/s / ceiling requests/s (goal >= 0.5; project p99 under 100 ms).

Run: `.venv/bin/python bench/http.py [--seconds 20] [--workers 2]` (DATABASE_URL/REDIS_URL
or the embedded servers).
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named http.py (the issue names it so); as a script its folder comes first on
# sys.path and would shadow the standard library's `http`. Put the folder last instead.
_BENCH = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != _BENCH] + [_BENCH]

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Sequence
from datetime import date

from _loadgen import Bodies, LoadResult, run_load
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

CONCURRENCY = 32


async def load(
    port: int,
    path: str,
    headers: dict[str, str],
    bodies: Sequence[bytes],
    seconds: float,
    batch_body: bytes | None = None,
) -> LoadResult:
    """Singles at CONCURRENCY connections; with `batch_body`, a batch is posted a quarter of
    the way in and the singles finished while it ran are kept apart."""
    window = [float("inf"), float("inf")]

    async def batch() -> None:
        import httpx

        await asyncio.sleep(seconds / 4)
        async with httpx.AsyncClient(timeout=600) as client:
            window[0] = time.perf_counter()
            answer = await client.post(
                f"http://127.0.0.1:{port}{path}/batch", content=batch_body, headers=headers
            )
            window[1] = time.perf_counter()
            answer.raise_for_status()

    singles = run_load(
        port, path, bodies, headers, CONCURRENCY, seconds, window=lambda: (window[0], window[1])
    )
    if batch_body is None:
        return await singles
    result, _ = await asyncio.gather(singles, batch())
    result.batch_seconds = window[1] - window[0]
    return result


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="web processes, the same for the ceiling and the project (2: the production "
        "image's `triage serve --workers 2`, deploy/Dockerfile)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="the ceiling and the project take turns this many times (noise hits both alike)",
    )
    args = parser.parse_args()
    catalogue = load_catalogue()
    today = date.today()
    with bench_database() as servers:
        import asyncpg

        async def ceiling_table() -> None:
            # DDL is the owner's; default privileges let the app's role write the table.
            connection = await asyncpg.connect(servers.owner_url)
            await connection.execute(
                "CREATE TABLE ceiling_referrals (id uuid PRIMARY KEY, external_ref text, "
                "body jsonb, created_at timestamptz DEFAULT now())"
            )
            await connection.close()

        asyncio.run(ceiling_table())
        key = asyncio.run(make_client_key(servers, "bench-http"))
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        env = server_env(servers)
        env["CEILING_DATABASE_URL"] = servers.database_url
        # Enough new referrals that the project never sees one twice (a resend is cheaper).
        count = int(args.seconds * 6_000)
        ceiling_bodies = [
            json.dumps(b).encode()
            for b in demo_referrals(40_000, catalogue, today, seed=3, prefix="C")
        ]
        project_bodies = Bodies(
            [
                json.dumps(b).encode()
                for b in demo_referrals(count, catalogue, today, seed=4, prefix="P")
            ]
        )
        batch_body = json.dumps(
            {"referrals": demo_referrals(10_000, catalogue, today, seed=6, prefix="B")}
        ).encode()

        c_port, p_port = free_port(), free_port()
        ceiling = [
            sys.executable,
            "-m",
            "uvicorn",
            "bench._ceiling_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(c_port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--workers",
            str(args.workers),
        ]
        project = [*serve_command(p_port), "--workers", str(args.workers)]
        path = "/api/v1/referrals"
        turn = args.seconds / args.rounds
        c, p = LoadResult(), LoadResult()
        with running(ceiling, env, c_port, "/ready"), running(project, env, p_port, "/readyz"):
            for round_ in range(args.rounds):
                # Alternate who goes first, so neither always follows the other's writes.
                order = ["ceiling", "project"] if round_ % 2 == 0 else ["project", "ceiling"]
                for side in order:
                    if side == "ceiling":
                        c.add(
                            asyncio.run(load(c_port, "/referrals", headers, ceiling_bodies, turn))
                        )
                    else:
                        p.add(asyncio.run(load(p_port, path, headers, project_bodies, turn)))
            loaded = asyncio.run(
                load(p_port, path, headers, project_bodies, args.seconds, batch_body)
            )
        for name, result in (("ceiling", c), ("project", p), ("project_with_batch", loaded)):
            bad = {s: n for s, n in result.statuses.items() if s not in (200, 201)}
            if bad:
                raise SystemExit(f"{name}: unexpected statuses {bad}")
        if p.statuses.get(200) or loaded.statuses.get(200):
            raise SystemExit("the project was sent a referral twice: raise the body count")
        c_rate, c_lat, p_rate, p_lat = c.rate, c.latencies_ms, p.rate, p.latencies_ms
        during = loaded.marked_ms
        print(f"ceiling_requests_per_s: {c_rate:.0f} requests/s")
        print(f"ceiling_p50: {pct(c_lat, 50):.1f} ms")
        print(f"ceiling_p99: {pct(c_lat, 99):.1f} ms")
        print(f"project_requests_per_s: {p_rate:.0f} requests/s")
        print(f"project_p50: {pct(p_lat, 50):.1f} ms")
        print(f"project_p99: {pct(p_lat, 99):.1f} ms (goal < 100)")
        print(
            f"project_p99_during_10000_batch: {pct(during, 99):.1f} ms "
            f"({len(during)} requests during the batch)"
        )
        # A batch gives way to single referrals: under this load it takes longer.
        print(f"project_batch_of_10000_under_load: {loaded.batch_seconds:.1f} s")
        print(f"ratio: {p_rate / c_rate:.2f} (goal >= 0.5)")


if __name__ == "__main__":
    main()
