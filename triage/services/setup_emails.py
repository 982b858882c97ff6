"""A staff account's set-up link by email (production: the notifier is a real provider).

Creating an account or resetting its two-factor writes a `staff_setup_emails` row ("email
user X their set-up link") in the same transaction (services/staff_accounts); no token exists
yet. The sweep claims due rows with FOR UPDATE SKIP LOCKED, as it claims messages (`sending`,
a lease, one more attempt: the attempt is the claim's token), and a task can claim one by id
(the wake-up `triage users` sends); either way a row taken, sent or cancelled is not taken
again, so running twice is running once. Then, for each claimed row:

1. A row claimed before (`attempts` > 1: a worker died, or the provider's answer was lost) is
   first looked up at the provider by its reference (the row's id): found means sent, and the
   link in that email still works (no newer one was issued).
2. In one transaction under the row lock, still this claim's: the account checked (disabled,
   or set up already: cancelled), a fresh token issued (only its hash stored; earlier links
   stop working), the lease extended over one provider call, committed.
3. The email sent, outside any transaction, with the link built from TRIAGE_BASE_URL. The
   token lives only in this worker's memory and in the email: never in a row of ours, a task
   argument, Redis or a log line.
4. The result recorded under the row lock, only while the row is still this claim's: `sent`;
   a temporary failure back to `queued` with backoff; the provider refusing our settings
   back to `queued` in a minute, the attempt not counted, and the provider-outage alert
   raised (`staff_setup_email: settings refused`); no answer left `sending` for a short
   lease (looked up first next time); a refusal of the address, or the attempts run out,
   `failed`, which the admin's user page shows.

A retry after a send whose answer was lost, and which the provider turns out not to have,
issues a new token: the link of the lost attempt (if it ever arrives) no longer works. Only the
newest link ever works; the person uses the newest email.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import models
from triage.services.audit import record_event
from triage.services.claims import Claimed, LeasedQueue
from triage.services.clock import service_now
from triage.services.messaging import (
    MAX_ATTEMPTS,
    OUTAGE_RETRY,
    RAISE_OUTAGE,
    RESOLVE_OUTAGE,
    UNSURE_LEASE,
    backoff,
    outage_reason,
    send_hold,
)
from triage.services.notifier import (
    SETUP_TEMPLATE,
    Notifier,
    Outgoing,
    PermanentFailure,
    ProviderMisconfigured,
    ProviderUnsure,
    TemporaryFailure,
)
from triage.services.staff_accounts import SETUP_LINK_LIFETIME, new_setup_token, setup_link
from triage.services.units import in_session

CHANNEL = "email"
# The outage alert's channel: not "email", so a set-up email taken never closes an alert
# about victims' emails, nor a victims' email one about set-up emails (another template).
ALERT_CHANNEL = "staff_setup_email"
# The provider template: NOTIFY_TEMPLATE_IDS' `staff_setup.email`, else its `email` (both carry
# ((subject)) and ((body))); a notify worker refuses to start without one of them.
TEMPLATE = SETUP_TEMPLATE
SUBJECT = "Set up your triage account"
ACTOR = "system:setup-email"
CHUNK = 10  # rows a sweep claims at a time (each sent in turn, well inside the lease)


@dataclass(frozen=True)
class SetupLinks:
    """What a worker needs to issue and build a link: the key its hash is kept under
    (TRIAGE_SECRET_KEY) and where the pages are (TRIAGE_BASE_URL)."""

    secret_key: str
    base_url: str


def email_body(link: str) -> str:
    """Plain: what the link is for, that it works once for 3 days, and what to do if the email
    was not expected. Nothing about anyone but the reader (not even their name or role)."""
    days = SETUP_LINK_LIFETIME.days
    return (
        "An account on the victim referral triage service has been made for you, or its "
        "password and two-factor authentication have been reset.\n\n"
        "Use this link to set your password and two-factor authentication:\n\n"
        f"{link}\n\n"
        f"The link works once, for {days} days. If it has run out, ask your triage "
        "administrator for a new one.\n\n"
        "If you did not expect this email, do not use the link: tell your triage "
        "administrator."
    )


_EMAILS = LeasedQueue("staff_setup_emails")


async def claim_setup_emails(db: AsyncSession, limit: int, lease: timedelta) -> list[Claimed]:
    return await _EMAILS.claim(db, limit, lease)


async def claim_setup_email(
    db: AsyncSession, email_id: uuid.UUID, lease: timedelta
) -> Claimed | None:
    """One row by id (the task): None when it is not due, taken by another, or done."""
    return await _EMAILS.claim_by_id(db, email_id, lease)


async def _locked(db: AsyncSession, claimed: Claimed) -> models.StaffSetupEmail | None:
    """The row under FOR UPDATE while it is still this claim's, else None."""
    row = await db.get(models.StaffSetupEmail, claimed.id, with_for_update=True)
    if row is None or row.status != "sending" or row.attempts != claimed.attempts:
        return None
    return row


async def _prepare(
    db: AsyncSession, links: SetupLinks, claimed: Claimed, hold: timedelta
) -> Outgoing | str:
    """The account checked and a fresh link issued under the row lock, committed before the
    send: the email to send, or what became of the row."""
    now = await service_now(db)
    # The account's lock before the email's, the order an admin's reset takes them in (it
    # cancels this row under the account's lock): the other order could deadlock with it.
    user_id = await db.scalar(
        select(models.StaffSetupEmail.user_id).where(models.StaffSetupEmail.id == claimed.id)
    )
    if user_id is None:
        return "not_claimed"
    user = await db.get(models.StaffUser, user_id, with_for_update=True)
    row = await _locked(db, claimed)
    if row is None:
        await db.rollback()
        return "not_claimed"
    reason = None
    if user is None or user.disabled_at is not None:
        reason = "account disabled"
    elif user.password_hash is not None:
        # Set up (or being set up) with another link since: a new link would end that one.
        reason = "account set up already"
    if user is None or reason is not None:
        row.status, row.final_at, row.claimed_until = "cancelled", now, None
        row.failure_reason, row.updated_at = reason, now
        await record_event(
            db, ACTOR, "user.setup_email_cancelled", row.user_id, "staff_user", {"reason": reason}
        )
        await db.commit()
        return "cancelled"
    token = await new_setup_token(db, links.secret_key, user.id)
    # The lease covers one whole provider call from now (the send follows this commit).
    row.claimed_until = max(row.claimed_until or now, now + hold)
    row.updated_at = now
    await record_event(
        db,
        ACTOR,
        "user.setup_link_issued",
        user.id,
        "staff_user",
        {"setup_email": str(row.id), "attempt": row.attempts},
    )
    outgoing = Outgoing(
        reference=row.id,
        channel=CHANNEL,
        template=TEMPLATE,
        recipient=user.email,
        subject=SUBJECT,
        body=email_body(setup_link(links.base_url, token)),
    )
    await db.commit()
    return outgoing


async def _finish(
    db: AsyncSession,
    claimed: Claimed,
    result: str,
    provider_status: str | None = None,
    reason: str | None = None,
) -> str:
    """Record a send's (or a lookup's) result, only while the row is still this claim's."""
    now = await service_now(db)
    row = await _locked(db, claimed)
    if row is None:
        return "already_done"
    row.updated_at = now
    final = None
    if result == "accepted":
        row.status, row.provider_status = "sent", provider_status
        row.sent_at, row.claimed_until, row.failure_reason = now, None, None
        final = "sent"
        # The provider takes our email again: an outage alert about it is over.
        await db.execute(RESOLVE_OUTAGE, {"channels": [ALERT_CHANNEL]})
    elif result == "unsure":
        # Left `sending`: the next claim after this short lease looks it up first.
        row.claimed_until = now + UNSURE_LEASE
        if row.attempts >= MAX_ATTEMPTS:
            row.status, row.final_at = "failed", now
            row.claimed_until = None
            row.failure_reason = "no answer from the email provider"
            final = "failed"
    elif result == "outage":
        # Our settings refused, not the address: as for messages, this claim is not counted
        # against the email and it is tried again every minute until the settings are fixed
        # (an outage must not use up every pending email's attempts).
        row.status, row.due_at = "queued", now + OUTAGE_RETRY
        row.attempts -= 1
        row.claimed_until, row.failure_reason = None, reason
    elif result == "temporary" and row.attempts < MAX_ATTEMPTS:
        row.status, row.due_at = "queued", now + backoff(row.attempts)
        row.claimed_until, row.failure_reason = None, reason
    elif result == "permanent":
        row.status, row.final_at, row.claimed_until = "failed", now, None
        row.failure_reason = "the email provider refused the address"
        final = "failed"
    else:
        row.status, row.final_at, row.claimed_until = "failed", now, None
        row.failure_reason = f"tries ran out: {reason or result}"[:80]
        final = "failed"
    if result == "outage" and reason:
        # Our settings refused (a bad key, a template that is not ours): the duty lead's
        # provider-outage alert, as for messages.
        await db.execute(RAISE_OUTAGE, {"id": uuid.uuid4(), "now": now, "reason": reason[:40]})
    if final is not None:
        await record_event(db, ACTOR, f"user.setup_email_{final}", row.user_id, "staff_user")
    await db.commit()
    return "sent" if result == "accepted" else result


async def deliver_setup_email(
    sessions: async_sessionmaker[AsyncSession],
    notifier: Notifier,
    links: SetupLinks,
    claimed: Claimed,
) -> str:
    """Send one claimed set-up email; returns what became of it."""
    if claimed.attempts > 1:
        try:
            found = await notifier.lookup(claimed.id)
        except ProviderUnsure:
            return await in_session(sessions, _finish, claimed, "unsure")
        except ProviderMisconfigured as error:
            reason = outage_reason(ALERT_CHANNEL, error)
            return await in_session(sessions, _finish, claimed, "outage", reason=reason)
        if found is not None:
            return await in_session(sessions, _finish, claimed, "accepted", found)
    # The provider's rate limit first: the lease is extended after the wait, just before the
    # call, so no wait eats into the time the send may take.
    await notifier.wait_for_turn()
    prepared = await in_session(sessions, _prepare, links, claimed, send_hold(notifier))
    if isinstance(prepared, str):
        return prepared
    try:
        provider_status = await notifier.send(prepared)
    except ProviderMisconfigured as error:
        reason = outage_reason(ALERT_CHANNEL, error)
        return await in_session(sessions, _finish, claimed, "outage", reason=reason)
    except PermanentFailure:
        return await in_session(sessions, _finish, claimed, "permanent")
    except TemporaryFailure:
        return await in_session(
            sessions, _finish, claimed, "temporary", reason="the email provider failed"
        )
    except ProviderUnsure:
        return await in_session(sessions, _finish, claimed, "unsure")
    return await in_session(sessions, _finish, claimed, "accepted", provider_status)


async def send_setup_email(
    sessions: async_sessionmaker[AsyncSession],
    notifier: Notifier,
    links: SetupLinks,
    email_id: uuid.UUID,
    lease: timedelta,
) -> str:
    """The task's work: claim the row by id, then send it; `not_due` when it is not due, is
    another worker's, or is done (sent, failed or cancelled)."""
    claimed = await in_session(sessions, claim_setup_email, email_id, lease)
    if claimed is None:
        return "not_due"
    return await deliver_setup_email(sessions, notifier, links, claimed)


async def sweep_setup_emails(
    sessions: async_sessionmaker[AsyncSession],
    notifier: Notifier,
    links: SetupLinks,
    lease: timedelta,
    limit: int = CHUNK,
) -> dict[str, int]:
    """Due set-up emails claimed together (SKIP LOCKED), then each sent in turn."""
    counts: dict[str, int] = {}
    for claimed in await in_session(sessions, claim_setup_emails, limit, lease):
        result = await deliver_setup_email(sessions, notifier, links, claimed)
        counts[result] = counts.get(result, 0) + 1
    return counts
