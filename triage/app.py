"""create_app(): the Litestar application factory."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from typing import Any

import structlog
from litestar import Litestar, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.response import Redirect
from redis.asyncio import Redis

from db.engine import make_engine, make_sessionmaker
from db.pool import connection, make_pool
from triage.api.aa import AppropriateAdultController
from triage.api.allow import allow_every_method
from triage.api.dependencies import provide_db
from triage.api.dev_outbox import dev_outbox
from triage.api.notify_callback import notify_callback
from triage.api.operation_docs import DOCS
from triage.api.problems import EXCEPTION_HANDLERS, problem
from triage.api.rate_limits import FailedKeyChecks, RateLimiter
from triage.api.referral_updates import ReferralUpdateController
from triage.api.referrals import ReferralController
from triage.api.reports import read_report
from triage.logs import RequestLogMiddleware, configure_logging
from triage.services.api_keys import KeyDirectory
from triage.services.catalogues import current_catalogue
from triage.services.group_writes import GroupWriter
from triage.services.wakeups import set_waker
from triage.settings import Settings, get_settings
from triage.web.assets import static_routes
from triage.web.errors import page_exception_handlers
from triage.web.public.router import public_router
from triage.web.public.session import FormSessions
from triage.web.sessions import SessionStore
from triage.web.staff.router import staff_router
from triage.web.templating import template_config

REDIS_SECONDS = 5


@get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/", include_in_schema=False)
async def home() -> Redirect:
    """The site's root is the self-referral's start page."""
    return Redirect("/refer", headers={"Cache-Control": "no-store"})


@get("/readyz", include_in_schema=False)
async def readyz(state: State) -> Any:
    try:
        async with connection(state.pg) as db:
            await db.fetchval("SELECT 1")
        await state.redis.ping()
    except Exception:
        return problem(
            503,
            "unavailable",
            "Not ready",
            "database or Redis unreachable",
            headers={"Retry-After": "5"},
        )
    return {"status": "ready"}


def _sweep_waker(settings: Settings) -> Callable[[], None] | None:
    """After an intake commits, ask a worker to sweep now rather than at the next beat (at
    most once a second per process: the sweep takes everything due)."""
    if not settings.redis_url:
        return None
    last = [0.0]

    from workers.celery_app import celery_app  # imported now, not on the first request

    def send() -> None:
        try:
            celery_app.send_task("triage.sweep", expires=30)
        except Exception as error:
            structlog.get_logger("triage.wake").warning("wake_failed", error=type(error).__name__)

    def wake() -> None:
        now = time.monotonic()
        if now - last[0] < 1.0:
            return
        last[0] = now
        # Publishing through kombu blocks: do it on a thread, never on the event loop that
        # is answering requests. A lost wake-up only waits for beat's next sweep.
        asyncio.get_running_loop().run_in_executor(None, send)

    return wake


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    problems = settings.web_problems()
    if problems:
        raise RuntimeError("; ".join(problems))
    configure_logging(json_logs=settings.log_json)
    catalogue = current_catalogue()
    set_waker(_sweep_waker(settings))

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncGenerator[None, None]:
        # Created on the server's event loop (asyncpg pools are bound to their loop).
        # The plain pool below serves keys and intake (the hot path); the engine serves the
        # other endpoints, with half as many connections (PostgreSQL's default limit is 100).
        engine = make_engine(settings.database_url, pool_size=max(2, settings.db_pool_size // 2))
        app.state.engine = engine
        app.state.sessions = make_sessionmaker(engine)
        # What start-up made (modules, the catalogue, the calendar) lives as long as the
        # process: keep it out of the cyclic collector's full passes, and collect young
        # objects less often, so no request waits behind a long collection.
        gc.collect()
        gc.freeze()
        gc.set_threshold(10_000, 20, 20)
        app.state.pg = await make_pool(settings.database_url, settings.db_pool_size)
        app.state.intake_writer = GroupWriter(app.state.pg)
        # Redis that stops answering holds no request for long: past these the request is
        # a 503 (redis TimeoutError), as when it refuses.
        app.state.redis = Redis.from_url(
            settings.redis_url, socket_connect_timeout=REDIS_SECONDS, socket_timeout=REDIS_SECONDS
        )
        app.state.rate_limiter = RateLimiter(app.state.redis)
        app.state.key_directory = KeyDirectory(settings.secret_key, settings.key_cache_seconds)
        app.state.failed_key_checks = FailedKeyChecks(
            app.state.redis, settings.secret_key, settings.failed_key_checks_per_minute
        )
        # People: sessions in Redis (every web process shares them), failed sign-ins per
        # address counted like failed key checks, under their own prefix.
        app.state.staff_sessions = SessionStore(app.state.redis, secure=True)
        app.state.form_sessions = FormSessions(app.state.redis, secure=True)
        app.state.sign_in_failures = FailedKeyChecks(
            app.state.redis,
            settings.secret_key,
            settings.sign_in_failures_per_minute,
            prefix="signinfail",
        )
        try:
            yield
        finally:
            await app.state.redis.aclose()
            await app.state.pg.close()
            await engine.dispose()

    return Litestar(
        route_handlers=[
            healthz,
            readyz,
            ReferralController,
            ReferralUpdateController,
            AppropriateAdultController,
            read_report,
            notify_callback,
            staff_router(),
            public_router(EXCEPTION_HANDLERS),
            home,
            *static_routes(),
            *([dev_outbox] if settings.env == "dev" else []),
        ],
        template_config=template_config(),
        lifespan=[lifespan],
        dependencies={"db": Provide(provide_db)},
        state=State({"settings": settings, "catalogue": catalogue}),
        # The API answers problem+json; the pages answer a GOV.UK error page (web.errors).
        exception_handlers=page_exception_handlers(EXCEPTION_HANDLERS),
        middleware=[RequestLogMiddleware],
        before_send=[allow_every_method],
        request_max_body_size=settings.single_body_limit,
        openapi_config=OpenAPIConfig(
            title="triage API",
            version="1",
            path="/schema",
            description="Victim referral triage for police and partner systems (api.md).",
            render_plugins=[ScalarRenderPlugin()],
            components=DOCS.components(),
        ),
        debug=False,
    )
