"""Tasks: thin. They take ids (never personal data), call the same service functions as the
web app on this process's event loop, and are safe to run twice (the services guard on each
row's status under a lock)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.exc import DBAPIError

from db.errors import DatabaseUnavailable
from triage.services import audit
from triage.services.clock import service_now
from triage.services.messaging import claim_message, deliver
from triage.services.sweeper import purge_rendered, run_step, sweep
from workers.celery_app import celery_app
from workers.runtime import run, runtime

RETRY_ON = (
    DatabaseUnavailable,
    DBAPIError,
    OSError,
)  # DatabaseUnavailable: connecting failed or the connection was lost (db.errors);
# DBAPIError holds Operational/InterfaceError; OSError, ConnectionError
RETRY = {
    "autoretry_for": RETRY_ON,
    "retry_backoff": 2,
    "retry_backoff_max": 120,
    "retry_jitter": True,
    "max_retries": 8,
    "acks_late": True,
}


@celery_app.task(name="triage.sweep", **RETRY)
def sweep_task() -> dict[str, Any]:
    rt = runtime()
    report = run(sweep(rt.sessions, rt.notifier, rt.catalogue, rt.lease))
    if report.messages and sum(report.messages.values()) >= 500:
        # A full batch: there is more. Wake another sweep now rather than wait for beat.
        celery_app.send_task("triage.sweep")
    return {"steps": report.steps, "messages": report.messages, "alerts": report.alerts}


@celery_app.task(name="triage.process_step", **RETRY)
def process_step_task(step_id: str) -> str:
    rt = runtime()
    return run(run_step(rt.sessions, rt.catalogue, uuid.UUID(step_id)))


@celery_app.task(name="triage.send_message", **RETRY)
def send_message_task(message_id: str) -> str:
    """One message by id (wake-ups and the naive design the bench compares against). When
    retries run out the row keeps its lease and the sweep, which has its own attempt limit
    and terminal `failed` state, takes it again."""
    rt = runtime()

    async def go() -> str:
        claimed = await claim_message(rt.sessions, uuid.UUID(message_id), rt.lease)
        if claimed is None:
            return "not_due"
        return await deliver(rt.sessions, rt.notifier, rt.catalogue, claimed)

    return run(go())


@celery_app.task(name="triage.audit.seal", **RETRY)
def seal_audit_task() -> int:
    rt = runtime()

    async def go() -> int:
        async with rt.sessions() as db:
            return await audit.seal(db, await service_now(db))

    return run(go())


@celery_app.task(name="triage.retention.purge", **RETRY)
def purge_task() -> int:
    return run(purge_rendered(runtime().sessions))
