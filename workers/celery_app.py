"""The Celery app: Redis broker, JSON only, explicit task names, acks late, one task at a time
per process. Redis carries wake-ups only: the rows in PostgreSQL are the work, so a lost
message, a flushed Redis or a dead worker only delays it until the next sweep."""

from __future__ import annotations

from typing import Any

import redis
from celery import Celery, signals

from triage.settings import get_settings

SWEEP_EVERY = 2.0  # seconds
TASK_TIME_LIMIT = 300


def make_celery() -> Celery:
    settings = get_settings()
    app = Celery("triage", broker=settings.redis_url or "redis://", include=["workers.tasks"])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=TASK_TIME_LIMIT,
        task_soft_time_limit=TASK_TIME_LIMIT - 30,
        # Longer than any task, or Redis would hand an unacknowledged task to a second worker.
        broker_transport_options={"visibility_timeout": TASK_TIME_LIMIT * 4},
        task_default_queue="triage",
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=False,
        beat_schedule={
            "sweep": {
                "task": "triage.sweep",
                "schedule": SWEEP_EVERY,
                "options": {"expires": SWEEP_EVERY * 5},
            },
            "seal-audit": {
                "task": "triage.audit.seal",
                "schedule": 60.0,
                "options": {"expires": 60.0},
            },
            # Daily: personal data past its retention (retention.md); rows claimed with SKIP
            # LOCKED, so a second run at once finds nothing left to do.
            "erase-due": {
                "task": "triage.retention.erase",
                "schedule": 86400.0,
                "options": {"expires": 3600.0},
            },
            # Every 5 minutes: a public form's draft is deleted soon after its 60 minutes.
            "purge-rendered": {
                "task": "triage.retention.purge",
                "schedule": 300.0,
                "options": {"expires": 300.0},
            },
        },
    )
    return app


celery_app = make_celery()


def check_broker() -> None:
    """Fail loudly at start when the broker is missing or wrong, not on the first task."""
    url = get_settings().redis_url
    if not url:
        raise SystemExit("REDIS_URL is not set: the workers need the Redis broker")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except (redis.RedisError, ValueError) as error:
        raise SystemExit(
            f"the Redis broker at REDIS_URL cannot be reached ({type(error).__name__})"
        ) from None


def check_notifier() -> None:
    """Refuse to start a worker whose notifier settings cannot send every message the
    catalogue uses (a missing template id would fail each of them at the provider)."""
    from triage.services.catalogues import current_catalogue
    from triage.services.notifier import check_notifier_settings

    problem = check_notifier_settings(get_settings(), current_catalogue())
    if problem:
        raise SystemExit(problem)


@signals.worker_init.connect
def _worker_init(**_: Any) -> None:
    check_broker()
    check_notifier()
    # The tasks' own lines (the audit head each minute) as the web app writes its lines;
    # before the pool forks, so its processes inherit it.
    from triage.logs import configure_logging

    configure_logging(json_logs=get_settings().log_json)


@signals.beat_init.connect
def _beat_init(**_: Any) -> None:
    check_broker()


@signals.worker_process_init.connect
def _process_init(**_: Any) -> None:
    # The event loop, engine and notifier of this worker process, made at its start (after
    # the fork) rather than at its first task.
    from workers.runtime import runtime

    runtime()


@signals.worker_process_shutdown.connect
def _process_shutdown(**_: Any) -> None:
    from workers.runtime import shutdown

    shutdown()
