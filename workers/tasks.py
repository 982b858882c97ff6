"""Tasks: thin. They take ids (never personal data), call the same service functions as the
web app on this process's event loop, and are safe to run twice (the services guard on each
row's status under a lock)."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import structlog
from sqlalchemy.exc import DBAPIError

from db.errors import DatabaseUnavailable
from triage.logs import describe_error
from triage.services import audit
from triage.services.messaging import claim_message, deliver
from triage.services.public_referrals import purge_expired
from triage.services.retention import erase_due
from triage.services.setup_emails import send_setup_email
from triage.services.sweeper import purge_rendered, run_step, sweep
from triage.services.units import in_session
from triage.settings import get_settings
from workers.celery_app import celery_app
from workers.runtime import run, runtime

# DatabaseUnavailable: connecting failed or the connection was lost (db.errors);
# DBAPIError holds Operational/InterfaceError; OSError, ConnectionError.
RETRY_ON = (DatabaseUnavailable, DBAPIError, OSError)


class TaskFailed(Exception):
    """A task's error as Celery may log it (on a retry, and when retries run out): the kind of
    error, where and the database's code, never its text, which can quote the parameters of
    the statement that failed (recipients, message bodies)."""


class TaskWillRetry(TaskFailed):
    """A database or network error: the task is retried with backoff."""


RETRY = {
    "autoretry_for": (TaskWillRetry,),
    "retry_backoff": 2,
    "retry_backoff_max": 120,
    "retry_jitter": True,
    "max_retries": get_settings().task_max_retries,
    "acks_late": True,
}

P = ParamSpec("P")
R = TypeVar("R")


def guarded(work: Callable[P, R]) -> Callable[P, R]:
    """Run a task's body; an error leaves it as TaskFailed or TaskWillRetry carrying only
    describe_error's account of it (the original is not chained: its text stays out of the
    logs)."""

    @functools.wraps(work)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return work(*args, **kwargs)
        except RETRY_ON as error:
            described = json.dumps(describe_error(error))
            raise TaskWillRetry(described) from None
        except Exception as error:
            described = json.dumps(describe_error(error))
            raise TaskFailed(described) from None

    return run


@celery_app.task(name="triage.sweep", **RETRY)
@guarded
def sweep_task() -> dict[str, Any]:
    rt = runtime()
    report = run(sweep(rt.sessions, rt.notifier, rt.catalogue, rt.lease, links=rt.links))
    if report.messages and sum(report.messages.values()) >= 500:
        # A full batch: there is more. Wake another sweep now rather than wait for beat.
        celery_app.send_task("triage.sweep")
    return {
        "steps": report.steps,
        "messages": report.messages,
        "alerts": report.alerts,
        "setup_emails": report.setup_emails,
        "surveys": report.surveys,
    }


@celery_app.task(name="triage.process_step", **RETRY)
@guarded
def process_step_task(step_id: str) -> str:
    rt = runtime()
    return run(in_session(rt.sessions, run_step, rt.catalogue, uuid.UUID(step_id)))


@celery_app.task(name="triage.send_message", **RETRY)
@guarded
def send_message_task(message_id: str) -> str:
    """One message by id (wake-ups and the naive design the bench compares against). When
    retries run out the row keeps its lease and the sweep, which has its own attempt limit
    and terminal `failed` state, takes it again."""
    rt = runtime()

    async def go() -> str:
        claimed = await in_session(rt.sessions, claim_message, uuid.UUID(message_id), rt.lease)
        if claimed is None:
            return "not_due"
        return await deliver(rt.sessions, rt.notifier, rt.catalogue, claimed)

    return run(go())


@celery_app.task(name="triage.send_setup_email", **RETRY)
@guarded
def send_setup_email_task(email_id: str) -> str:
    """A staff account's set-up email by its row's id (the wake-up `triage users` sends after
    its commit): never the address, the link or its token, which the worker makes itself. The
    row is claimed by id, so a second run, or a sweep that took it first, finds it taken or
    done and sends nothing. When retries run out the row stays for the sweep, which has its
    own attempt limit and terminal `failed` state."""
    rt = runtime()
    return run(send_setup_email(rt.sessions, rt.notifier, rt.links, uuid.UUID(email_id), rt.lease))


audit_log = structlog.get_logger("triage.audit")


@celery_app.task(name="triage.audit.seal", **RETRY)
@guarded
def seal_audit_task() -> int:
    """Seal, then log the head digest, every minute even when nothing was new: the logs keep
    a copy of the chain's end outside the database (`triage audit verify --head`)."""
    key = audit.audit_key(get_settings().audit_key)
    rt = runtime()

    report = run(in_session(rt.sessions, audit.seal, key))
    audit_log.info("audit_head", **report.log_fields())
    if report.ids_went_back:
        audit_log.error("audit_transaction_ids_behind_the_chain", **report.log_fields())
    return report.sealed


@celery_app.task(name="triage.retention.erase", **RETRY)
@guarded
def erase_task() -> int:
    """Daily: referrals and Appropriate Adult requests past their retention (retention.md),
    each referral erased in a transaction of its own."""
    rt = runtime()
    return run(erase_due(rt.sessions, rt.catalogue))


@celery_app.task(name="triage.retention.purge", **RETRY)
@guarded
def purge_task() -> int:
    """Rendered messages past their 7 days, and public form drafts past their 60 minutes."""
    sessions = runtime().sessions
    return run(in_session(sessions, purge_rendered)) + run(in_session(sessions, purge_expired))
