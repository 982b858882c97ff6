"""Servers for the benchmarks: DATABASE_URL / REDIS_URL when set, else the embedded ones; a
fresh migrated database per run; the real app started as `triage serve` (production mode).

Two roles, as in production: the server's administrator (MIGRATION_DATABASE_URL, else
DATABASE_URL, else the embedded superuser) creates the database and migrates it as its owner;
the app, the workers and the benches' own writes use the application's role (TRIAGE_APP_ROLE,
`triage_app`, logging in without a password: local trust or ~/.pgpass)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from db.migrate import upgrade
from db.roles import app_role
from triage.devstack import (  # noqa: F401 - free_port is the benches' too
    EmbeddedStack,
    as_role,
    create_database,
    drop_database,
    ensure_login_role,
    free_port,
    wait_ready,
)


@dataclass
class BenchServers:
    database_url: str  # the application's role
    redis_url: str
    secret: str
    owner_url: str  # the owner: migrations and the benches' own DDL
    audit_key: str


@contextmanager
def bench_database() -> Iterator[BenchServers]:
    stack = None
    base = os.environ.get("MIGRATION_DATABASE_URL") or os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    if not base or not redis_url:
        stack = EmbeddedStack(ROOT / ".triage-data" / "bench").start()
        base, redis_url = stack.owner_url, stack.redis_url
    else:
        ensure_login_role(base, app_role())
    owner_url = create_database(base, "triage_bench")
    try:
        upgrade(owner_url)
        yield BenchServers(
            as_role(owner_url, app_role()),
            redis_url,
            secrets.token_urlsafe(24),
            owner_url,
            secrets.token_urlsafe(32),
        )
    finally:
        drop_database(owner_url)
        if stack is not None:
            stack.stop()


def server_env(servers: BenchServers) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": servers.database_url,
        "REDIS_URL": servers.redis_url,
        "TRIAGE_SECRET_KEY": servers.secret,
        "TRIAGE_AUDIT_KEY": servers.audit_key,
        "TRIAGE_ENV": "production",
        "TRIAGE_HUB_PHONE": "01632 960123",  # a drama number: production needs one set
        "TRIAGE_LOG_FORMAT": "json",
    }


@contextmanager
def running(
    args: list[str], env: dict[str, str], port: int, ready_path: str
) -> Iterator[subprocess.Popen[bytes]]:
    # The server's own log, to read when a figure looks wrong.
    (ROOT / ".triage-data").mkdir(exist_ok=True)
    log = open(ROOT / ".triage-data" / f"bench-server-{port}.log", "wb")
    process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        wait_ready(f"http://127.0.0.1:{port}{ready_path}", process)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


async def make_client_key(servers: BenchServers, name: str) -> str:
    """A police client with limits raised for the bench, and its key."""
    from db.engine import make_engine, make_sessionmaker
    from triage.services.api_keys import create_client, create_key, set_limit

    engine = make_engine(servers.database_url, null_pool=True)
    try:
        async with make_sessionmaker(engine)() as db:
            await create_client(db, name, "police")
            await set_limit(db, name, 10_000_000, 1_000_000)
            return await create_key(db, servers.secret, name)
    finally:
        await engine.dispose()
