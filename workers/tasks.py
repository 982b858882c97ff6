"""Tasks: thin. They take ids (never personal data), call the same service functions as the
web app on this process's event loop, and are safe to run twice (the services guard on each
row's status under a lock)."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy.exc import DBAPIError

from triage.services import audit
from triage.services.messaging import claim_message, deliver
from triage.services.sweeper import purge_rendered, run_step, sweep
from triage.settings import get_settings
from workers.celery_app import celery_app
from workers.runtime import run, runtime

RETRY_ON = (
    DBAPIError,
    OSError,
)  # DBAPIError holds Operational/InterfaceError; OSError, ConnectionError
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


audit_log = structlog.get_logger("triage.audit")


@celery_app.task(name="triage.audit.seal", **RETRY)
def seal_audit_task() -> int:
    """Seal, then log the head digest, every minute even when nothing was new: the logs keep
    a copy of the chain's end outside the database (`triage audit verify --head`)."""
    key = audit.audit_key(get_settings().audit_key)
    rt = runtime()

    async def go() -> audit.SealReport:
        async with rt.sessions() as db:
            return await audit.seal(db, key)

    report = run(go())
    audit_log.info("audit_head", **report.log_fields())
    if report.ids_went_back:
        audit_log.error("audit_transaction_ids_behind_the_chain", **report.log_fields())
    return report.sealed


@celery_app.task(name="triage.retention.purge", **RETRY)
def purge_task() -> int:
    return run(purge_rendered(runtime().sessions))
