"""Operator commands for the workers: worker, beat, the outbox, the audit chain, contacts."""

from __future__ import annotations

import json
import os
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import click

from triage.cli_admin import run_with_session
from triage.domain.vocabulary import CALL_OUTCOMES


@click.command()
@click.option("--concurrency", default=2, show_default=True, type=click.IntRange(1))
@click.option(
    "--pool", default="prefork", show_default=True, type=click.Choice(["prefork", "solo"])
)
@click.option("--loglevel", default="INFO", show_default=True)
def worker(concurrency: int, pool: str, loglevel: str) -> None:
    """Run a Celery worker (contact steps, messages, alerts, audit seal, retention)."""
    from workers.celery_app import celery_app

    celery_app.worker_main(
        [
            "worker",
            "--loglevel",
            loglevel,
            "--concurrency",
            str(concurrency),
            "--pool",
            pool,
            "--without-mingle",
            "--without-gossip",
            "--queues",
            "triage",
        ]
    )


@click.command()
@click.option("--schedule", default=None, help="Beat's schedule file (default: a temp file).")
@click.option("--loglevel", default="INFO", show_default=True)
def beat(schedule: str | None, loglevel: str) -> None:
    """Run Celery beat: the sweep every 2 s, the audit seal every minute, the purge hourly.
    Run exactly one."""
    from workers.celery_app import celery_app

    path = schedule or str(Path(os.environ.get("TMPDIR", "/tmp")) / "triage-beat-schedule")
    celery_app.start(["beat", "--loglevel", loglevel, "--schedule", path])


@click.group("outbox")
def outbox_group() -> None:
    """What the outbox notifier recorded (dev and tests)."""


@outbox_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON list, one object per send.")
@click.option("--limit", default=100, show_default=True)
def outbox_list(as_json: bool, limit: int) -> None:
    """List the sends, oldest first (a message sent twice appears twice)."""
    from sqlalchemy import select

    from db.models import OutboxEntry
    from triage.domain.decision import iso_z

    async def go(db: Any) -> list[dict[str, Any]]:
        rows = (
            (await db.execute(select(OutboxEntry).order_by(OutboxEntry.id.desc()).limit(limit)))
            .scalars()
            .all()
        )
        return [
            {
                "reference": str(r.reference),
                "channel": r.channel,
                "template": r.template,
                "sent_at": iso_z(r.sent_at),
                "recipient": r.recipient,
                "body": r.body,
            }
            for r in reversed(rows)
        ]

    sends = run_with_session(go)
    if as_json:
        click.echo(
            json.dumps(
                [{k: s[k] for k in ("reference", "channel", "template", "sent_at")} for s in sends],
                indent=2,
            )
        )
        return
    for s in sends:
        click.echo(f"{s['sent_at']}  {s['channel']:<6} {s['template']:<18} {s['recipient']}")
        click.echo("    " + s["body"].replace("\n", "\n    "))


@click.group("audit")
def audit_group() -> None:
    """The append-only audit trail."""


def _audit_key() -> bytes:
    from triage.services.audit import AuditKeyMissing, audit_key
    from triage.settings import get_settings

    try:
        return audit_key(get_settings().audit_key)
    except AuditKeyMissing as error:
        click.echo(str(error), err=True)
        sys.exit(2)


def _hex_digest(_: Any, __: Any, value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise click.BadParameter("a digest is 64 hexadecimal characters")
    return value.lower() if value else None


@audit_group.command("verify")
@click.option(
    "--head",
    callback=_hex_digest,
    metavar="HEX",
    help="The newest digest the logs show (the seal task's `audit_head` line): a chain that "
    "ends before it has lost its newest digests.",
)
def audit_verify(head: str | None) -> None:
    """Recompute the digest chain with TRIAGE_AUDIT_KEY: `ok: N digests, M events` (exit 0) or
    the first problem (exit 1)."""
    from triage.services.audit import Verification, role_problems, verify

    key = _audit_key()

    async def go(db: Any) -> tuple[Verification, list[str]]:
        return await verify(db, key, head), await role_problems(db)

    result, warnings = run_with_session(go)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    if result.ok:
        click.echo(f"ok: {result.digests} digests, {result.events} events")
        return
    click.echo(result.problem, err=True)
    sys.exit(1)


@audit_group.command("seal")
def audit_seal() -> None:
    """Seal every finished transaction's events now (beat does this each minute)."""
    from triage.services.audit import seal

    key = _audit_key()
    report = run_with_session(lambda db: seal(db, key))
    head = report.head
    if head is None:
        click.echo("nothing sealed yet")
        return
    click.echo(
        f"sealed {report.sealed} events; head: digest {head.id} {head.digest} "
        f"({head.events} events, transactions {head.xact_from} to {head.xact_to}), "
        f"{report.unsealed} events waiting"
    )
    if report.ids_went_back:
        click.echo(
            f"the server's transaction ids ({report.xmin}) are below the chain's end "
            f"({head.xact_to}): nothing can be sealed (deploy/OPERATIONS.md)",
            err=True,
        )
        sys.exit(1)


@click.group("contacts")
def contacts_group() -> None:
    """The contact plan from the command line (the staff UI does the same)."""


@contacts_group.command("calls-due")
def calls_due_command() -> None:
    """The calls due now, most urgent first (the first 200)."""
    from dataclasses import replace

    from triage.domain.principals import OPERATOR
    from triage.services.clock import service_now
    from triage.services.staff_views import calls_due

    # The operator reads the list as the hub does; the view is audited as the operator's.
    as_hub = replace(OPERATOR, roles=frozenset({"hub"}))

    async def go(db: Any) -> list[dict[str, Any]]:
        return (await calls_due(db, as_hub, await service_now(db), limit=200)).rows

    for row in run_with_session(go):
        click.echo(
            f"{row['priority']}  {row['reference']}  step {row['number']}  "
            f"due {row['due_at']:%Y-%m-%d %H:%M}Z  step id {row['step_id']}"
        )


@contacts_group.command("outcome")
@click.argument("step_id")
@click.argument(
    "outcome",
    type=click.Choice(CALL_OUTCOMES),
)
def outcome_command(step_id: str, outcome: str) -> None:
    """Record a call's outcome; prints the next step, if any."""
    from triage.services.catalogues import current_catalogue
    from triage.services.clock import service_now
    from triage.services.contact_plan import record_outcome

    async def go(db: Any) -> str:
        result = await record_outcome(
            db, uuid.UUID(step_id), outcome, "cli", current_catalogue(), await service_now(db)
        )
        step = result.next_step
        if step is None:
            return "the plan has ended"
        return f"next: step {step.number} {step.kind} due {step.due_at:%Y-%m-%d %H:%M}Z"

    click.echo(run_with_session(go))


@contacts_group.command("pause")
@click.argument("reference")
def pause_command(reference: str) -> None:
    """Pause all contact for a referral (by its KVR reference)."""
    from triage.services.clock import service_now
    from triage.services.contact_plan import pause_contact

    async def go(db: Any) -> None:
        await pause_contact(db, await _by_reference(db, reference), "cli", await service_now(db))

    run_with_session(go)
    click.echo(f"contact paused for {reference}")


@contacts_group.command("resume")
@click.argument("reference")
def resume_command(reference: str) -> None:
    """Resume contact: the step moves to the next safe moment."""
    from triage.services.catalogues import current_catalogue
    from triage.services.clock import service_now
    from triage.services.contact_plan import resume_contact

    async def go(db: Any) -> None:
        await resume_contact(
            db,
            await _by_reference(db, reference),
            "cli",
            current_catalogue(),
            await service_now(db),
        )

    run_with_session(go)
    click.echo(f"contact resumed for {reference}")


async def _by_reference(db: Any, reference: str) -> uuid.UUID:
    from sqlalchemy import select

    from db.models import Referral

    found = (await db.execute(select(Referral.id).where(Referral.reference == reference))).scalar()
    if found is None:
        raise click.ClickException(f"no referral {reference}")
    return uuid.UUID(str(found))


@click.group("surveys")
def surveys_group() -> None:
    """Survey invitations (surveys.md)."""


@surveys_group.command("send-due")
def surveys_send_due() -> None:
    """What the sweep runs for surveys, now: due invitations written (or cancelled when they
    may no longer go), reminders, expiries, then due survey messages sent inside each victim's
    safe times. Prints counts, never who."""
    from triage.services.sweeper import send_due_surveys
    from workers.runtime import run, runtime, shutdown

    rt = runtime()
    try:
        counts = run(send_due_surveys(rt.sessions, rt.notifier, rt.catalogue, rt.lease))
    finally:
        shutdown()
    for part in ("invitations", "messages"):
        found = counts[part]
        said = ", ".join(f"{k} {v}" for k, v in sorted(found.items())) or "none due"
        click.echo(f"{part}: {said}")


@click.group("retention")
def retention_group() -> None:
    """Retention and erasure (retention.md): preview, erase what is due, legal holds."""


@retention_group.command("preview")
def retention_preview() -> None:
    """How many records each rule would erase today and in the next 30 days."""
    from triage.services.catalogues import current_catalogue
    from triage.services.retention import preview

    for found in run_with_session(lambda db: preview(db, current_catalogue())):
        click.echo(f"{found.rule}: {found.today} today, {found.next_30_days} more in 30 days")


@retention_group.command("erase-due")
def retention_erase_due() -> None:
    """What the daily job does, now: erase what is past its retention."""
    from triage.services.retention import erase_due
    from workers.runtime import run, runtime, shutdown

    rt = runtime()
    try:
        erased = run(erase_due(rt.sessions, rt.catalogue))
    finally:
        shutdown()
    click.echo(f"erased: {erased}")


@retention_group.command("hold")
@click.argument("reference")
@click.option("--reason", required=True, help="Why (a court case, a complaint): kept with it.")
def retention_hold(reference: str, reason: str) -> None:
    """A legal hold: REFERENCE is not erased until the hold is lifted."""
    from triage.services.retention import RetentionRefused, set_hold

    try:
        run_with_session(lambda db: set_hold(db, reference, reason, "operator:cli"))
    except RetentionRefused as refused:
        raise click.ClickException(str(refused)) from None
    click.echo(f"legal hold set on {reference}")


@retention_group.command("release")
@click.argument("reference")
def retention_release(reference: str) -> None:
    """Lift REFERENCE's legal hold (it is erased when due)."""
    from triage.services.retention import RetentionRefused, lift_hold

    try:
        run_with_session(lambda db: lift_hold(db, reference, "operator:cli"))
    except RetentionRefused as refused:
        raise click.ClickException(str(refused)) from None
    click.echo(f"legal hold lifted on {reference}")


@click.command("export")
@click.argument("reference")
def export_command(reference: str) -> None:
    """Subject access: everything held about REFERENCE's victim as JSON on stdout, third-party
    data marked for review (a data protection officer reviews it before release). Audited."""
    from triage.services.retention import RetentionRefused, export_referral

    try:
        exported = run_with_session(lambda db: export_referral(db, reference, "operator:cli"))
    except RetentionRefused as refused:
        raise click.ClickException(str(refused)) from None
    click.echo(json.dumps(exported, indent=2, default=str, ensure_ascii=False))


def register(main: Any) -> None:
    for command in (
        worker,
        beat,
        outbox_group,
        audit_group,
        contacts_group,
        surveys_group,
        retention_group,
        export_command,
    ):
        main.add_command(command)
