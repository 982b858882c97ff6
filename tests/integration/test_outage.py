"""An outage is a 503 with Retry-After, never a 500 (a police system does not retry a 500, so
the referral would be lost).

The real app (`triage serve`) runs against its own embedded PostgreSQL and Redis, so that
restarting that PostgreSQL never disturbs the rest of the suite. Under a steady load of single
referrals, and in a second variant of batches, each fault is injected in PostgreSQL itself:

- every backend of the app's database terminated, a few times;
- PostgreSQL restarted (`pg_ctl restart -m fast`);
- the database refusing new connections for five seconds (ALLOW_CONNECTIONS false, as during
  maintenance), its existing backends terminated.

Every answer must be 201/200, or 503 with Retry-After; every referral answered 503 is then
sent again (as a police system would) until it is taken; and no referral is half-written.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from helpers import PROBLEM, bearer, referral

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
SECRET = "outage-secret-" + uuid.uuid4().hex
CALLBACK_TOKEN = "outage-callback-" + uuid.uuid4().hex
SINGLE_SENDERS = 6
BATCH_SENDERS = 2
BATCH_SIZE = 200
BEFORE, AFTER = 0.75, 0.75  # seconds of load before the fault and after it is over
REFUSED_FOR = 5.0  # seconds the database refuses connections
TAKEN = {"single": (200, 201), "batch": (200,)}
# Every table a referral writes rows in (besides audit_events), its decision and cases first.
ROW_TABLES = ("triage_decisions", "cases", "contact_steps", "messages", "alerts")
PAUSE = {"single": 0.05, "batch": 0.5}  # seconds a sender waits after a 503


class DatabaseAdmin:
    """Every administrative action the faults need, in one place, on the server's own
    superuser URL (when the app gets a role of its own, only this changes)."""

    def __init__(self, admin_url: str, database: str, pg: Any):
        self.admin_url = admin_url  # a superuser, on another database than the app's
        self.database = database
        self._pg = pg  # pgserver's server: its data folder, log and system user for pg_ctl

    async def _run(self, sql: str, *args: Any) -> list[Any]:
        import asyncpg

        connection = await asyncpg.connect(self.admin_url)
        try:
            return list(await connection.fetch(sql, *args))
        finally:
            await connection.close()

    async def terminate_backends(self) -> int:
        """pg_terminate_backend on every connection to the app's database; how many."""
        rows = await self._run(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            self.database,
        )
        return len(rows)

    async def allow_connections(self, allowed: bool) -> None:
        value = "true" if allowed else "false"
        await self._run(f'ALTER DATABASE "{self.database}" WITH ALLOW_CONNECTIONS {value}')

    async def restart(self) -> None:
        """`pg_ctl restart -m fast` as the server's system user (on a thread: the load goes
        on meanwhile)."""
        from pgserver.postgres_server import pg_ctl

        await asyncio.to_thread(
            pg_ctl,
            ["-w", "-l", str(self._pg.log), "restart", "-m", "fast"],
            pgdata=self._pg.pgdata,
            user=self._pg.system_user,
            timeout=60,
        )


class RedisAdmin:
    """The embedded stack's redis-server, killed and started again (same port, same folder:
    appendonly, so nothing is lost)."""

    def __init__(self, stack: Any):
        self._stack = stack

    def kill(self) -> None:
        self._stack._redis.kill()
        self._stack._redis.wait(10)

    def start(self) -> None:
        args = self._stack._redis.args
        self._stack._redis = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )


@dataclass
class App:
    url: str
    key: str
    client: str
    admin: DatabaseAdmin
    database_url: str
    log: Path
    stack: Any  # triage.devstack.EmbeddedStack


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@pytest.fixture(scope="module")
def outage_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    from db.engine import plain_url
    from db.migrate import upgrade
    from db.roles import app_role
    from triage.devstack import (
        EmbeddedStack,
        as_role,
        create_database,
        free_port,
        wait_ready,
        with_database,
    )

    stack_dir = ROOT / ".triage-data" / f"outage-{uuid.uuid4().hex[:8]}"
    stack = EmbeddedStack(stack_dir).start()
    process: subprocess.Popen[bytes] | None = None
    log_path = tmp_path_factory.mktemp("outage") / "app.log"
    try:
        # Migrated as the owner; the app connects as the application's role (db.roles).
        owner_database_url = create_database(stack.owner_url, "triage_outage")
        upgrade(owner_database_url)
        database_url = as_role(owner_database_url, app_role())
        name = f"outage-{uuid.uuid4().hex[:8]}"
        key = asyncio.run(_client_and_key(database_url, name))
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": stack.redis_url,
            "TRIAGE_SECRET_KEY": SECRET,
            "TRIAGE_ENV": "production",
            "TRIAGE_HUB_PHONE": "01632 960123",
            "TRIAGE_LOG_FORMAT": "json",
            "NOTIFY_CALLBACK_TOKEN": CALLBACK_TOKEN,
            # A key once checked is trusted this long: a request with it reaches its
            # endpoint's own database work during an outage (a new key tests the check).
            "TRIAGE_KEY_CACHE_SECONDS": "300",
        }
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [PYTHON, "-m", "triage.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_ready(f"http://127.0.0.1:{port}/readyz", process)
        admin = DatabaseAdmin(
            with_database(plain_url(stack.owner_url), "postgres"),
            urlsplit(database_url).path.lstrip("/"),
            stack._pg,
        )
        yield App(f"http://127.0.0.1:{port}", key, name, admin, database_url, log_path, stack)
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        stack.stop()
        if stack._pg is not None:
            # pgserver's bookkeeping for this server done now, not at exit, when its log
            # line would go to a stream pytest has closed.
            stack._pg.cleanup()
            atexit.unregister(stack._pg._cleanup)
        shutil.rmtree(stack_dir, ignore_errors=True)


async def new_key(app: App) -> str:
    """A key of a new client: never checked, never rate-limited yet by this server."""
    return await _client_and_key(app.database_url, f"outage-{uuid.uuid4().hex[:8]}")


async def _client_and_key(database_url: str, name: str) -> str:
    from db.engine import make_engine, make_sessionmaker
    from triage.services.api_keys import create_client, create_key, set_limit

    engine = make_engine(database_url, null_pool=True)
    try:
        async with make_sessionmaker(engine)() as db:
            await create_client(db, name, "police")
            await set_limit(db, name, 10_000_000, 1_000_000)
            return await create_key(db, SECRET, name)
    finally:
        await engine.dispose()


# -- the load ------------------------------------------------------------------------------


@dataclass
class Sent:
    """One request and its answer (a single referral, or a batch of them)."""

    body: dict[str, Any]
    status: int = 0
    retry_after: str | None = None
    content_type: str = ""
    text: str = ""


@dataclass
class Load:
    kind: str  # single | batch
    sent: list[Sent] = field(default_factory=list)

    def statuses(self) -> Counter[int]:
        return Counter(s.status for s in self.sent)

    def refs(self) -> set[str]:
        if self.kind == "single":
            return {s.body["external_ref"] for s in self.sent}
        return {r["external_ref"] for s in self.sent for r in s.body["referrals"]}


def _path(kind: str) -> str:
    return "/api/v1/referrals" if kind == "single" else "/api/v1/referrals/batch"


def _body(kind: str) -> dict[str, Any]:
    if kind == "single":
        return referral()
    return {"referrals": [referral() for _ in range(BATCH_SIZE)]}


async def _send(http: httpx.AsyncClient, kind: str, body: dict[str, Any]) -> Sent:
    response = await http.post(_path(kind), json=body)
    return Sent(
        body,
        response.status_code,
        response.headers.get("retry-after"),
        response.headers.get("content-type", "").split(";")[0],
        response.text[:500],
    )


async def under_load(
    app: App, kind: str, fault: Callable[[], Awaitable[None]]
) -> tuple[Load, float]:
    """Referrals sent steadily from a few clients while `fault` runs; (what was sent and
    answered, how long the fault took)."""
    load = Load(kind)
    stop = asyncio.Event()

    async def sender(http: httpx.AsyncClient) -> None:
        while not stop.is_set():
            sent = await _send(http, kind, _body(kind))
            load.sent.append(sent)
            if sent.status == 503:  # a moment's pause, not the whole Retry-After
                await asyncio.sleep(PAUSE[kind])

    senders = SINGLE_SENDERS if kind == "single" else BATCH_SENDERS
    async with httpx.AsyncClient(base_url=app.url, headers=bearer(app.key), timeout=60) as http:
        tasks = [asyncio.create_task(sender(http)) for _ in range(senders)]
        try:
            await asyncio.sleep(BEFORE)
            started = time.monotonic()
            await fault()
            took = time.monotonic() - started
            await asyncio.sleep(AFTER)
        finally:
            stop.set()
            await asyncio.gather(*tasks)
    return load, took


async def resend_refused(app: App, load: Load) -> int:
    """Every request answered 503 sent again, as its sender would, until it is taken (201 or
    200; a batch with every item created or existing); how many were sent again."""
    refused = [s for s in load.sent if s.status == 503]
    turns = asyncio.Semaphore(SINGLE_SENDERS if load.kind == "single" else BATCH_SENDERS)

    async def resend(http: httpx.AsyncClient, original: Sent) -> None:
        async with turns:
            deadline = time.monotonic() + 20
            while True:
                again = await http.post(_path(load.kind), json=original.body)
                if again.status_code != 503 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
        assert again.status_code in TAKEN[load.kind], (again.status_code, again.text[:500])
        if load.kind == "batch":
            counts = again.json()["counts"]
            assert counts["created"] + counts["existing"] == BATCH_SIZE, counts

    async with httpx.AsyncClient(base_url=app.url, headers=bearer(app.key), timeout=60) as http:
        await asyncio.gather(*(resend(http, original) for original in refused))
    return len(refused)


# For each of the client's referrals (by external_ref): how many rows of each table it has.
ROWS_PER_REFERRAL = (
    "WITH mine AS (SELECT r.id, r.external_ref FROM referrals r "
    "JOIN api_clients c ON c.id = r.client_id "
    "WHERE c.name = $1 AND r.external_ref = ANY($2::text[])), "
    + "".join(
        f"{t} AS (SELECT referral_id AS id, count(*) AS n FROM {t} "
        "WHERE referral_id IN (SELECT id FROM mine) GROUP BY 1), "
        for t in ROW_TABLES
    )
    + "audit AS (SELECT record_id AS id, count(*) AS n FROM audit_events "
    "WHERE record_type = 'referral' AND record_id IN (SELECT id::text FROM mine) GROUP BY 1) "
    "SELECT mine.external_ref, "
    + "".join(f"coalesce({t}.n, 0), " for t in ROW_TABLES)
    + "coalesce(audit.n, 0) FROM mine "
    + "".join(f"LEFT JOIN {t} ON {t}.id = mine.id " for t in ROW_TABLES)
    + "LEFT JOIN audit ON audit.id = mine.id::text"
)


async def assert_whole(app: App, load: Load) -> None:
    """Every referral sent is there once, each with all of its rows: its decision, cases,
    contact steps, messages, alerts and audit event (every referral here has the same body
    but its external_ref, so the same number of each)."""
    import asyncpg

    from db.engine import plain_url

    connection = await asyncpg.connect(plain_url(app.database_url))
    try:
        rows = await connection.fetch(
            ROWS_PER_REFERRAL,
            app.client,
            sorted(load.refs()),
        )
    finally:
        await connection.close()
    stored = Counter(row["external_ref"] for row in rows)
    assert set(stored) == load.refs(), f"missing: {len(load.refs() - set(stored))}"
    assert set(stored.values()) == {1}
    shapes = Counter(tuple(row)[1:] for row in rows)
    assert len(shapes) == 1, f"referrals written in part: {shapes}"
    ((decisions, cases, *_), _) = shapes.popitem()
    assert decisions == 1 and cases >= 1


def assert_no_server_error(app: App, load: Load, fault: str) -> None:
    statuses = load.statuses()
    print(f"\n{fault} under {load.kind} load: {dict(statuses)}")
    wrong = [s for s in load.sent if s.status not in (*TAKEN[load.kind], 503)]
    assert not wrong, (
        f"{fault}, {load.kind}: {dict(statuses)}; e.g. {wrong[0].status} {wrong[0].text}\n"
        f"{_tail(app.log)}"
    )
    for refused in (s for s in load.sent if s.status == 503):
        assert refused.content_type == PROBLEM, refused.content_type
        assert refused.retry_after is not None and int(refused.retry_after) > 0, refused


# -- the faults ----------------------------------------------------------------------------


async def terminate_every_backend(admin: DatabaseAdmin) -> None:
    terminated = 0
    for _ in range(6):
        terminated += await admin.terminate_backends()
        await asyncio.sleep(0.25)
    assert terminated > 0


async def restart_postgres(admin: DatabaseAdmin) -> None:
    await admin.restart()


async def refuse_connections(admin: DatabaseAdmin) -> None:
    await admin.allow_connections(False)
    try:
        await admin.terminate_backends()
        await asyncio.sleep(REFUSED_FOR)
    finally:
        await admin.allow_connections(True)


FAULTS: dict[str, Callable[[DatabaseAdmin], Awaitable[None]]] = {
    "terminate": terminate_every_backend,
    "restart": restart_postgres,
    "refuse": refuse_connections,
}


@pytest.mark.parametrize("kind", ["single", "batch"])
@pytest.mark.parametrize("fault", list(FAULTS))
async def test_an_outage_is_a_503_never_a_500(outage_app: App, fault: str, kind: str) -> None:
    app = outage_app
    started = time.monotonic()
    load, took = await under_load(app, kind, lambda: FAULTS[fault](app.admin))
    assert_no_server_error(app, load, fault)
    if fault != "terminate":  # PostgreSQL was away for a while: the load must have met it
        assert load.statuses()[503] > 0, (fault, took, dict(load.statuses()))
    loaded = time.monotonic()
    resent = await resend_refused(app, load)
    await assert_whole(app, load)
    print(
        f"fault {took:.1f} s, load {loaded - started:.1f} s, {resent} resent and checked in "
        f"{time.monotonic() - loaded:.1f} s"
    )


def assert_unavailable(response: httpx.Response, what: str) -> None:
    assert response.status_code == 503, (what, response.status_code, response.text[:300])
    assert response.headers["content-type"].split(";")[0] == PROBLEM, what
    assert int(response.headers["retry-after"]) > 0, what
    assert response.json()["status"] == 503, what


async def test_every_path_answers_503_while_the_database_refuses(outage_app: App) -> None:
    """Each endpoint's own database work (the SQLAlchemy session endpoints, the key check,
    intake, readiness) answers 503 while the database refuses connections, and answers
    again once it takes them, without a 503 left over from a dead pooled connection."""
    app = outage_app
    unchecked = await new_key(app)
    async with httpx.AsyncClient(base_url=app.url, timeout=30) as http:
        known = bearer(app.key)
        created = await http.post("/api/v1/referrals", json=referral(), headers=known)
        assert created.status_code == 201, created.text
        one = f"/api/v1/referrals/{created.json()['id']}"
        # A connection in the session endpoints' pool too, for the outage to close.
        assert (await http.get(one, headers=known)).status_code == 200
        aa = {
            "external_ref": f"KC/ME/27/{uuid.uuid4().hex[:8]}",
            "custody_suite": "Maidstone",
            "person": {"first_name": "A", "last_name": "B", "date_of_birth": "1990-02-01"},
            "juvenile": False,
            "needed_at": "2027-01-13T22:30:00Z",
            "reason": "voluntary interview",
            "requester": {"name": "Sgt Pat Ellis", "phone": "01632 960777"},
        }
        receipt = {"reference": str(uuid.uuid4()), "status": "delivered"}
        calls: list[tuple[str, str, dict[str, str], Any]] = [
            ("GET", one, known, None),
            ("GET", f"{one}/decisions", known, None),
            ("GET", "/api/v1/referrals?external_ref=x", known, None),
            ("PATCH", one, known, {"needs": ["emotional"]}),
            ("POST", f"{one}/withdraw", known, {"reason": "moved away"}),
            ("POST", "/api/v1/appropriate-adult-requests", known, aa),
            ("POST", "/api/v1/notify/callback", bearer(CALLBACK_TOKEN), receipt),
            ("POST", "/api/v1/referrals", known, referral()),
            ("POST", "/api/v1/referrals/batch", known, {"referrals": [referral()]}),
            # The key check itself: a key this server has not seen yet.
            ("GET", one, bearer(unchecked), None),
            ("POST", "/api/v1/referrals", bearer(unchecked), referral()),
            ("GET", "/readyz", {}, None),
        ]
        await app.admin.allow_connections(False)
        try:
            assert await app.admin.terminate_backends() > 0
            for method, path, headers, body in calls:
                response = await http.request(method, path, headers=headers, json=body)
                assert_unavailable(response, f"{method} {path}")
        finally:
            await app.admin.allow_connections(True)
        # Back at once: the pooled connections the server closed are replaced on checkout.
        assert (await http.get(one, headers=known)).status_code == 200
        assert (await http.get(f"{one}/decisions", headers=known)).status_code == 200
        assert (await http.get("/readyz")).status_code == 200
        again = await http.post("/api/v1/referrals", json=referral(), headers=bearer(unchecked))
        assert again.status_code == 201, again.text


async def test_idle_connections_the_server_closed_are_replaced(outage_app: App) -> None:
    """Connections the server closed while they sat in a pool (terminated, or a restart
    while no request ran) are seen closed and replaced when taken: not even a 503."""
    app = outage_app
    async with httpx.AsyncClient(base_url=app.url, headers=bearer(app.key), timeout=30) as http:
        created = await http.post("/api/v1/referrals", json=referral())
        assert created.status_code == 201, created.text
        one = f"/api/v1/referrals/{created.json()['id']}"
        assert (await http.get(one)).status_code == 200
        for _ in range(2):
            assert await app.admin.terminate_backends() > 0
            await asyncio.sleep(0.2)  # the server's goodbye reaches the app
            assert (await http.get(one)).status_code == 200
            assert (await http.post("/api/v1/referrals", json=referral())).status_code == 201


async def test_redis_going_away_is_503(outage_app: App) -> None:
    """Redis killed while the app runs: a request that needs it (a client's first rate-limit
    lease, readiness) answers 503 with Retry-After; once Redis is back, 201."""
    app = outage_app
    redis = RedisAdmin(app.stack)
    key = await new_key(app)
    async with httpx.AsyncClient(base_url=app.url, timeout=30) as http:
        redis.kill()
        try:
            response = await http.post("/api/v1/referrals", json=referral(), headers=bearer(key))
            assert_unavailable(response, "POST /api/v1/referrals")
            assert_unavailable(await http.get("/readyz"), "GET /readyz")
        finally:
            redis.start()
        deadline = time.monotonic() + 10
        while (await http.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, "Redis did not come back"
            await asyncio.sleep(0.1)
        response = await http.post("/api/v1/referrals", json=referral(), headers=bearer(key))
        assert response.status_code == 201, response.text
