"""The staff pages at 1,000,000 referrals: p50 and p95 server-side (issue 10, Performance).

Data: bench/staff_data.py, loaded with COPY into the database `bench_staff` once and kept
(`--reload` loads it again; another `--n` or `--seed` does too), VACUUM ANALYZE after loading.

Project: the real app (`create_app`, production settings) in this process, driven through
Litestar's AsyncTestClient by two people signed in through the real pages (password, then
TOTP): hub staff, and a caseworker of `--caseworker-services` (isva,cisva). Each figure is
`--requests` (200) requests of one page, one at a time, timed server-side: from the app
receiving the request to its last byte sent (the guard's session and account look-ups, the
service's queries, the view's audit event, the template), so the test client's own work is
left out. Pages:
- queue_first, queue_deep: the queue (awaiting first contact), the first page and the page
  `--deep-page` (200: rows 9,951-10,000) by its keyset cursor; hub only (a caseworker has no
  queue: their caseload is their list, timed as `caseload`);
- queue_service: the hub's queue filtered to one of the caseworker's services;
- referral: `--requests` different referrals (random; the caseworker's within their scope);
- calls: the calls-due list;
- search_postcode, search_surname: a postcode and a surname of random referrals in scope,
  through /staff/search when the app has it, else services.search.search_referrals itself
  (printed as such); `search: not available` while that module is missing.

Beside each page's p50 and p95: the p50 of the time its SQL statements took (through the
app's engine), how many it sent, and the p50 of the app's own CPU time per request (the
server thread's), which a busy machine stretches less than the wall time. `--explain` prints
EXPLAIN (ANALYZE, BUFFERS) of every SELECT each page sent, as it sent it.

Reference, in the same run, on one asyncpg connection: the raw SQL of the queue's first page,
the naive designs of the deep page (OFFSET) and of the referral page (one query per related
row, as an ORM's lazy loads would do it), and the raw SQL of calls due.
X = 50 ms / the worst project p95 (goal >= 1). The machine's load average is printed at the
start and the end: the app, PostgreSQL and anything else running share its cores.

Run: `.venv/bin/python bench/staff.py [--n 1000000] [--requests 200] [--reload] [--explain]`
(DATABASE_URL/REDIS_URL naming the servers, e.g. postgresql://root@127.0.0.1:5432/bench_staff
and redis://127.0.0.1:6379/0; else the embedded ones under .triage-data/bench).
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/http.py would shadow the standard library's `http` with this folder first on sys.path.
_BENCH = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != _BENCH] + [_BENCH]

import argparse
import asyncio
import importlib.util
import logging
import os
import re
import secrets
import statistics
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from _servers import ROOT
from staff_data import DATABASE, DEFAULT_N, prepare, print_report, server_url

from db.roles import app_role
from triage.catalogue.loader import load_catalogue
from triage.devstack import EmbeddedStack, as_role, ensure_login_role

GOAL_MS = 50.0
PASSWORD = "bench staff password, long enough"
TOKEN_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
LOGS = ROOT / ".triage-data"
WARM = 5


def pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


@dataclass
class Person:
    role: str
    user_id: uuid.UUID
    email: str
    totp_secret: str
    services: tuple[str, ...] = ()
    cookies: dict[str, str] = field(default_factory=dict)


async def make_person(database_url: str, role: str, services: tuple[str, ...]) -> Person:
    """An account made as `triage users create` makes it, its set-up link used."""
    import pyotp

    from db.engine import make_engine, make_sessionmaker
    from triage.domain.principals import OPERATOR
    from triage.services.catalogues import current_catalogue
    from triage.services.staff_accounts import confirm_two_factor, create_account, set_password
    from triage.settings import get_settings

    secret = get_settings().secret_key
    email = f"bench-{role}-{uuid.uuid4().hex[:8]}@example.org"
    engine = make_engine(database_url, null_pool=True)
    try:
        sessions = make_sessionmaker(engine)
        known = frozenset(current_catalogue().services)
        async with sessions() as db:
            account = await create_account(
                db, OPERATOR, secret, email, [role], list(services), known
            )
        async with sessions() as db:
            user = await set_password(db, secret, account.setup_token, PASSWORD, PASSWORD)
            totp_secret = user.totp_secret or ""
        async with sessions() as db:
            await confirm_two_factor(db, secret, account.setup_token, pyotp.TOTP(totp_secret).now())
    finally:
        await engine.dispose()
    return Person(role, account.user_id, email, totp_secret, services)


class Browser:
    """One person's cookies over the shared in-process client (requests one at a time)."""

    def __init__(self, client: Any, person: Person) -> None:
        self.client = client
        self.person = person

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self.client.cookies.clear()
        for name, value in self.person.cookies.items():
            self.client.cookies.set(name, value)
        response = await self.client.request(method, path, follow_redirects=False, **kwargs)
        for name, value in response.cookies.items():
            if value:
                self.person.cookies[name] = value
            else:
                self.person.cookies.pop(name, None)
        self.client.cookies.clear()
        return response

    async def sign_in(self) -> None:
        import pyotp

        page = await self.request("GET", "/staff/sign-in")
        answer = await self.request(
            "POST",
            "/staff/sign-in",
            data={
                "csrf_token": _csrf(page.text),
                "email": self.person.email,
                "password": PASSWORD,
            },
        )
        if answer.headers.get("location") != "/staff/two-factor":
            raise SystemExit(f"sign-in refused for {self.person.role}: {answer.status_code}")
        page = await self.request("GET", "/staff/two-factor")
        answer = await self.request(
            "POST",
            "/staff/two-factor",
            data={
                "csrf_token": _csrf(page.text),
                "code": pyotp.TOTP(self.person.totp_secret).now(),
            },
        )
        if answer.status_code not in (302, 303):
            raise SystemExit(f"two-factor refused for {self.person.role}: {answer.status_code}")


def _csrf(html: str) -> str:
    found = TOKEN_INPUT.search(html)
    if not found:
        raise SystemExit("no CSRF token on the sign-in page")
    return found.group(1)


class ServerClock:
    """The app's own time for each request: from the ASGI call to its return (the last byte
    of the answer sent), around Litestar's handler stack (middleware, guard, handler,
    template). Beside it, the time its SQL statements took (sent to answered, through the
    app's engine) and how many there were: where the time went."""

    def __init__(self, app: Any) -> None:
        self.last: float | None = None
        self.sql_seconds = 0.0
        self.statements = 0
        self.last_sql: tuple[float, int] = (0.0, 0)
        self.last_cpu = 0.0
        self.sent_statements: list[tuple[str, Any]] = []
        self._sent: list[float] = []
        inner = app.asgi_handler

        async def timed(scope: Any, receive: Any, send: Any) -> None:
            self.sql_seconds, self.statements = 0.0, 0
            self.sent_statements = []
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                await inner(scope, receive, send)
            finally:
                self.last = time.perf_counter() - started
                self.last_sql = (self.sql_seconds * 1000, self.statements)
                self.last_cpu = (time.thread_time() - cpu) * 1000

        app.asgi_handler = timed

    def watch(self, engine: Any) -> None:
        from sqlalchemy import event

        def before(_c: Any, _k: Any, statement: str, parameters: Any, *_: Any) -> None:
            self.sent_statements.append((statement, tuple(parameters or ())))
            self._sent.append(time.perf_counter())

        def after(*_: Any) -> None:
            self.sql_seconds += time.perf_counter() - self._sent.pop()
            self.statements += 1

        event.listen(engine.sync_engine, "before_cursor_execute", before)
        event.listen(engine.sync_engine, "after_cursor_execute", after)

    def take(self) -> float:
        if self.last is None:
            raise RuntimeError("no request was timed")
        value, self.last = self.last, None
        return value * 1000


@contextmanager
def server_log(path: Path) -> Iterator[None]:
    """The app writes a JSON access line to file descriptor 1 on every request, as in
    production: into a file here, not between the figures."""
    sys.stdout.flush()
    saved = os.dup(1)
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)
    os.close(log)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


@dataclass
class Targets:
    deep_cursor: str | None
    deep_offset: int
    queue_service: str
    referrals: dict[str, list[uuid.UUID]]  # role -> referral ids in scope
    postcodes: dict[str, list[str]]
    surnames: dict[str, list[str]]
    steps: int  # due calls


async def find_targets(
    owner_url: str, requests: int, deep_page: int, services: tuple[str, ...]
) -> Targets:
    import asyncpg

    from triage.services.staff_views import QUEUE_PAGE, encode_queue_cursor

    connection = await asyncpg.connect(owner_url)
    try:
        queued = await connection.fetchval(
            "SELECT count(*) FROM referrals WHERE status = 'triaged'"
        )
        page = max(2, min(deep_page, queued // QUEUE_PAGE))
        offset = (page - 1) * QUEUE_PAGE
        last = await connection.fetchrow(
            "SELECT priority, contact_due_by, id FROM referrals WHERE status = 'triaged' "
            "ORDER BY priority, coalesce(contact_due_by, 'infinity'::timestamptz), id "
            "OFFSET $1 LIMIT 1",
            offset - 1,
        )
        cursor = (
            encode_queue_cursor(last["priority"], last["contact_due_by"], last["id"])
            if last
            else None
        )
        everyone = await connection.fetch(
            "SELECT id, facts->'victim'->'address'->>'postcode' AS postcode, "
            "facts->'victim'->>'last_name' AS surname "
            "FROM referrals TABLESAMPLE BERNOULLI (1) REPEATABLE (7) ORDER BY random() LIMIT $1",
            requests * 3,
        )
        scoped = await connection.fetch(
            "SELECT r.id, r.facts->'victim'->'address'->>'postcode' AS postcode, "
            "r.facts->'victim'->>'last_name' AS surname FROM referrals r "
            "WHERE r.id IN (SELECT referral_id FROM cases WHERE service = ANY($1::text[])) "
            "ORDER BY random() LIMIT $2",
            list(services),
            requests * 3,
        )
        due = await connection.fetchval(
            "SELECT count(*) FROM contact_steps WHERE status = 'due' AND kind = 'call'"
        )
    finally:
        await connection.close()

    def ids(rows: list[Any]) -> list[uuid.UUID]:
        return [r["id"] for r in rows][: requests + WARM]

    def column(rows: list[Any], name: str) -> list[str]:
        return [r[name] for r in rows if r[name]][: requests + WARM]

    return Targets(
        deep_cursor=cursor,
        deep_offset=offset,
        queue_service=services[0],
        referrals={"hub": ids(everyone), "caseworker": ids(scoped)},
        postcodes={"hub": column(everyone, "postcode"), "caseworker": column(scoped, "postcode")},
        surnames={"hub": column(everyone, "surname"), "caseworker": column(scoped, "surname")},
        steps=due,
    )


Request = Callable[[int], Awaitable[float]]


async def timed_requests(count: int, one: Request) -> list[float]:
    """WARM requests not counted (a template's first use, a statement's first plan), then
    `count` timed; targets WARM onwards are new to the timed ones."""
    for i in range(WARM):
        await one(i)
    return [await one(WARM + i) for i in range(count)]


# Per page: the statements of its last request, for --explain.
STATEMENTS: dict[str, list[tuple[str, Any]]] = {}
# Per page: (SQL ms, statements, the app's own CPU ms) of each request.
SQL_TIMES: dict[str, list[tuple[float, int, float]]] = {}


def page_request(
    browser: Browser, clock: ServerClock, paths: list[str], check: str, name: str
) -> Request:
    async def one(i: int) -> float:
        answer = await browser.request("GET", paths[i % len(paths)])
        elapsed = clock.take()
        SQL_TIMES.setdefault(name, []).append((*clock.last_sql, clock.last_cpu))
        STATEMENTS[name] = clock.sent_statements
        if answer.status_code != 200 or check not in answer.text:
            raise SystemExit(
                f"{browser.person.role} {paths[i % len(paths)]}: {answer.status_code} "
                f"(expected 200 with {check!r})"
            )
        return elapsed

    return one


async def search_request(
    app: Any, browser: Browser, clock: ServerClock, kind: str, queries: list[str]
) -> tuple[Request, str]:
    """Through /staff/search when the app has the page, else the service call itself."""
    # The empty form: a query of one letter would be refused (400), not "no page".
    first = await browser.request("GET", "/staff/search")
    clock.take()
    if first.status_code == 200:
        paths = ["/staff/search?" + urllib.parse.urlencode({"q": q}) for q in queries]
        name = f"{browser.person.role}_search_{kind}"
        return page_request(browser, clock, paths, "</html>", name), "page /staff/search"

    from triage.domain.principals import staff
    from triage.services.search import search_referrals  # type: ignore[import-not-found]

    person = browser.person
    principal = staff(person.user_id, frozenset({person.role}), frozenset(person.services))

    async def call(query: str) -> float:
        started = time.perf_counter()
        async with app.state.sessions() as db:
            await search_referrals(db, principal, query)
        return (time.perf_counter() - started) * 1000

    async def one(i: int) -> float:
        # On the app's own event loop (the test client's thread), where its pool lives.
        elapsed: float = browser.client.blocking_portal.call(call, queries[i % len(queries)])
        return elapsed

    return one, "the service call search_referrals (no page yet)"


# -- the reference: raw SQL and the naive designs, on one asyncpg connection --------------------

QUEUE_SQL = """
SELECT r.id, r.reference, r.priority, r.contact_due_by, r.status, r.source, r.received_at,
       r.contact_paused, r.facts->'victim'->>'first_name', r.facts->'victim'->>'last_name'
FROM referrals r WHERE r.status = 'triaged'
ORDER BY r.priority, coalesce(r.contact_due_by, 'infinity'::timestamptz), r.id
"""
SERVICES_SQL = (
    "SELECT referral_id, service FROM cases WHERE referral_id = ANY($1::uuid[]) ORDER BY service"
)
CALLS_SQL = """
SELECT s.id, s.number, s.due_at, r.id, r.reference, r.priority, r.contact_due_by
FROM contact_steps s JOIN referrals r ON r.id = s.referral_id
WHERE s.status = 'due' AND s.kind = 'call' AND s.due_at <= now() AND NOT r.contact_paused
ORDER BY r.priority, s.due_at LIMIT 200
"""
RELATED = ("cases", "triage_decisions", "contact_steps", "messages", "notes", "overrides")


async def reference_figures(
    database_url: str, targets: Targets, requests: int
) -> dict[str, list[float]]:
    import asyncpg

    from db.engine import plain_url

    connection = await asyncpg.connect(plain_url(database_url))
    figures: dict[str, list[float]] = {}

    async def measure(name: str, one: Callable[[int], Awaitable[Any]]) -> None:
        for i in range(WARM):
            await one(i)
        times = []
        for i in range(requests):
            started = time.perf_counter()
            await one(WARM + i)
            times.append((time.perf_counter() - started) * 1000)
        figures[name] = times

    async def queue_first(_: int) -> None:
        rows = await connection.fetch(QUEUE_SQL + " LIMIT 51")
        await connection.fetch(SERVICES_SQL, [r["id"] for r in rows[:50]])

    async def queue_deep_offset(_: int) -> None:
        rows = await connection.fetch(QUEUE_SQL + f" OFFSET {targets.deep_offset} LIMIT 51")
        await connection.fetch(SERVICES_SQL, [r["id"] for r in rows[:50]])

    async def referral_per_row(i: int) -> None:
        referral_id = targets.referrals["hub"][i % len(targets.referrals["hub"])]
        await connection.fetchrow("SELECT * FROM referrals WHERE id = $1", referral_id)
        for table in RELATED:
            key = "id"
            for row in await connection.fetch(
                f"SELECT {key} FROM {table} WHERE referral_id = $1", referral_id
            ):
                await connection.fetchrow(f"SELECT * FROM {table} WHERE id = $1", row[key])

    async def calls(_: int) -> None:
        await connection.fetch(CALLS_SQL)

    try:
        await measure("raw_queue_first", queue_first)
        await measure("naive_queue_deep_offset", queue_deep_offset)
        await measure("naive_referral_query_per_row", referral_per_row)
        await measure("raw_calls", calls)
    finally:
        await connection.close()
    return figures


async def explain(database_url: str, statements: dict[str, list[tuple[str, Any]]]) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of every SELECT each page sent, exactly as the app sent it
    (captured from its engine on the page's last timed request), with its parameters."""
    import asyncpg

    from db.engine import plain_url

    connection = await asyncpg.connect(plain_url(database_url))
    try:
        for page, sent in statements.items():
            for sql, parameters in sent:
                if not sql.lstrip().upper().startswith("SELECT"):
                    continue
                print(f"-- {page}: {' '.join(sql.split())[:160]}")
                plan = await connection.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *parameters)
                for row in plan:
                    print("   " + row[0])
    finally:
        await connection.close()


async def measure(
    database_url: str,
    owner_url: str,
    args: argparse.Namespace,
    services: tuple[str, ...],
) -> dict[str, list[float]]:
    from litestar.testing import AsyncTestClient

    from triage.app import create_app
    from triage.settings import get_settings

    hub = await make_person(database_url, "hub", ())
    caseworker = await make_person(database_url, "caseworker", services)
    targets = await find_targets(owner_url, args.requests, args.deep_page, services)
    print(
        f"queue_deep_page: page {targets.deep_offset // 50 + 1} "
        f"(rows {targets.deep_offset + 1}-{targets.deep_offset + 50}), by its cursor"
    )
    print(f"calls_due_rows: {targets.steps} due calls")

    app = create_app(get_settings())
    # The test client logs every request at INFO: not between the figures.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    clock = ServerClock(app)
    figures: dict[str, list[float]] = {}
    search_how = None
    has_search = importlib.util.find_spec("triage.services.search") is not None
    with server_log(LOGS / "bench-staff-server.log"):
        async with AsyncTestClient(app=app, base_url="https://testserver.local") as client:
            browsers = {"hub": Browser(client, hub), "caseworker": Browser(client, caseworker)}
            for browser in browsers.values():
                await browser.sign_in()
                clock.last = None
            clock.watch(app.state.engine)
            referral_paths = {
                role: [f"/staff/referrals/{i}" for i in ids]
                for role, ids in targets.referrals.items()
            }
            pages: list[tuple[str, str, list[str], str]] = [
                ("hub_queue_first", "hub", ["/staff/queue"], "most urgent first"),
                (
                    "hub_queue_deep",
                    "hub",
                    [f"/staff/queue?cursor={targets.deep_cursor}"],
                    "most urgent first",
                ),
                (
                    "hub_queue_service",
                    "hub",
                    [f"/staff/queue?service={targets.queue_service}"],
                    "most urgent first",
                ),
                ("hub_referral", "hub", referral_paths["hub"], "Timeline"),
                ("hub_calls", "hub", ["/staff/calls"], "Most urgent first"),
                # A caseworker has no queue (policy.py): their caseload is their list.
                ("caseworker_caseload", "caseworker", ["/staff/caseload"], "yours first"),
                ("caseworker_referral", "caseworker", referral_paths["caseworker"], "Timeline"),
                ("caseworker_calls", "caseworker", ["/staff/calls"], "Calls due"),
            ]
            plan: list[tuple[str, Request]] = [
                (name, page_request(browsers[role], clock, paths, check, name))
                for name, role, paths, check in pages
            ]
            if has_search:
                for role, browser in browsers.items():
                    for kind, queries in (
                        ("postcode", targets.postcodes[role]),
                        ("surname", targets.surnames[role]),
                    ):
                        one, search_how = await search_request(app, browser, clock, kind, queries)
                        plan.append((f"{role}_search_{kind}", one))
            for name, one in plan:
                figures[name] = await timed_requests(args.requests, one)
    if args.explain:
        await explain(database_url, STATEMENTS)
    if has_search:
        print(f"search: timed through {search_how}")
    else:
        print("search: not available (triage/services/search.py is not on this branch)")
    return figures | {
        f"reference_{k}": v
        for k, v in (await reference_figures(database_url, targets, args.requests)).items()
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=DEFAULT_N, help="referrals in the data")
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--templates", type=int, default=20_000)
    parser.add_argument("--reload", action="store_true", help="load the data again")
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument("--requests", type=int, default=200, help="requests per page and role")
    parser.add_argument("--deep-page", type=int, default=200, help="the queue's deep page")
    parser.add_argument("--caseworker-services", default="isva,cisva")
    parser.add_argument(
        "--explain", action="store_true", help="print EXPLAIN (ANALYZE, BUFFERS) of the queries"
    )
    args = parser.parse_args()
    services = tuple(s for s in args.caseworker_services.split(",") if s)
    LOGS.mkdir(exist_ok=True)
    base, redis_url = server_url()
    stack = None
    if not base or not redis_url:
        stack = EmbeddedStack(LOGS / "bench").start()
        base, redis_url = stack.owner_url, stack.redis_url
    else:
        ensure_login_role(base, app_role())
    try:
        owner_url, report = prepare(
            base, load_catalogue(), args.n, args.seed, args.templates, args.reload, args.database
        )
        print_report(report)
        database_url = as_role(owner_url, app_role())
        os.environ.update(
            {
                "DATABASE_URL": database_url,
                "MIGRATION_DATABASE_URL": owner_url,
                "REDIS_URL": redis_url,
                "TRIAGE_SECRET_KEY": secrets.token_urlsafe(32),
                "TRIAGE_AUDIT_KEY": secrets.token_urlsafe(32),
                "TRIAGE_ENV": "production",
                "TRIAGE_HUB_PHONE": "01632 960123",  # a drama number: production needs one set
                "TRIAGE_LOG_FORMAT": "json",
            }
        )
        from triage.settings import get_settings

        get_settings.cache_clear()
        print(f"load_average_before: {os.getloadavg()[0]:.2f} (1 minute, {os.cpu_count()} cores)")
        figures = asyncio.run(measure(database_url, owner_url, args, services))
    finally:
        if stack is not None:
            stack.stop()
    project = {k: v for k, v in figures.items() if not k.startswith("reference_")}
    for name, times in figures.items():
        print(f"{name}_p50: {pct(times, 50):.1f} ms")
        print(f"{name}_p95: {pct(times, 95):.1f} ms")
        sql = SQL_TIMES.get(name)
        if sql:
            timed = sql[WARM:]
            print(f"{name}_sql_p50: {pct([t for t, _, _ in timed], 50):.1f} ms")
            print(f"{name}_sql_statements: {max(n for _, n, _ in timed)} statements")
            print(f"{name}_app_cpu_p50: {pct([c for _, _, c in timed], 50):.1f} ms")
    print(f"load_average_after: {os.getloadavg()[0]:.2f} (1 minute, {os.cpu_count()} cores)")
    worst = max(project, key=lambda k: pct(project[k], 95))
    worst_p95 = pct(project[worst], 95)
    print(f"worst_p95: {worst_p95:.1f} ms ({worst})")
    print(f"ratio: {GOAL_MS / worst_p95:.2f} (goal >= 1)")


if __name__ == "__main__":
    main()
