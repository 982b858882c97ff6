"""Survey invitations (surveys.md): written with the closure of a case as supported, swept when
due (the invitation message, the reminder, the expiry), cancelled by anything that stops
contact, and answered through a link whose token is kept only as a hash.

The messages themselves go through services/messaging like every contact message (the same
claims, safe times, re-check immediately before the provider call, never twice); messaging asks
here for a link (`issue_link`) while it renders one, and its re-check reads the invitation's
status, so an answer, an expiry or a cancellation stops a reminder not yet on its way.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, insert, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from db import models
from triage.domain.catalogue import Catalogue
from triage.domain.referral import Referral
from triage.domain.statuses import ANSWERABLE_SURVEY_STATUSES, OPEN_SURVEY_STATUSES, SURVEY
from triage.domain.surveys import (
    ASKED_RECENTLY,
    Answers,
    contact_keys,
    expiry,
    invitation_due,
    safeguarding_words,
    survey_channel,
    why_not_invited,
)
from triage.services.audit import record_event
from triage.services.clock import service_now
from triage.services.closures import stop_messages
from triage.services.contact_plan import load_referral
from triage.services.referral_rows import alert_row
from triage.settings import get_settings

TOKEN_BYTES = 18  # 144 random bits: 24 characters in a link, short enough for one text
SAFEGUARDING_ALERT = "survey_safeguarding"
SYSTEM_ACTOR = "system:surveys"


def _wrong_number(referral_id: Any) -> Any:
    return exists().where(
        models.ContactStep.referral_id == referral_id,
        models.ContactStep.outcome == "wrong_number",
    )


_other = aliased(models.Referral)
REMINDER_WAIT = timedelta(days=1)


def _invitation_went() -> Any:
    """The invitation message (by any channel) reached the provider."""
    return exists().where(
        models.Message.survey_invitation_id == models.SurveyInvitation.id,
        models.Message.template == "survey_invitation",
        models.Message.status.in_(("accepted", "delivered")),
    )


def _invitation_waiting() -> Any:
    """The invitation message is still to go (queued, or claimed and not yet settled)."""
    return exists().where(
        models.Message.survey_invitation_id == models.SurveyInvitation.id,
        models.Message.template == "survey_invitation",
        models.Message.status.in_(("queued", "sending")),
    )


def _paused(referral: Any = models.Referral) -> Any:
    """Contact paused for this victim: on this referral, or on any other with the same phone
    number (a pause means someone else may hold the phone, whichever referral said so)."""
    return or_(
        referral.contact_paused.is_(True),
        exists().where(
            _other.victim_phone_digits == referral.victim_phone_digits,
            _other.contact_paused.is_(True),
        ),
    )


async def invite_on_closure(
    db: AsyncSession,
    case: models.Case,
    catalogue: Catalogue,
    now: datetime,
    actor: str,
) -> models.SurveyInvitation | None:
    """In the transaction that closes `case` as supported: an invitation due 2 working days
    later when surveys.md allows one (consent to survey and to contact, contact not paused, an
    SMS or email channel, nobody asked at this phone number or email address in 90 days). The
    referral is held FOR SHARE, so a pause or a withdrawal being committed is seen, and a
    transaction lock per contact key makes two closures for one victim take turns."""
    row = (
        await db.execute(
            select(
                models.Referral.facts,
                models.Referral.status,
                _paused().label("contact_paused"),
                _wrong_number(models.Referral.id).label("wrong_number"),
            )
            .where(models.Referral.id == case.referral_id)
            .with_for_update(read=True, of=models.Referral)
        )
    ).one()
    facts = load_referral(row.facts)
    policy = catalogue.surveys
    if why_not_invited(
        facts,
        policy,
        referral_status=row.status,
        paused=row.contact_paused,
        wrong_number=row.wrong_number,
    ):
        return None
    phone_key, email_key = contact_keys(facts, get_settings().secret_key)
    keys = sorted(k for k in (phone_key, email_key) if k)
    for key in keys:  # sorted: two closures never wait on each other's second key
        await db.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key}
        )
    if await asked_recently(db, phone_key, email_key, now - timedelta(days=policy.once_per_days)):
        await record_event(
            db, actor, "survey.not_invited", case.id, "case", details={"why": ASKED_RECENTLY}
        )
        return None
    invitation = models.SurveyInvitation(
        id=uuid.uuid4(),
        referral_id=case.referral_id,
        case_id=case.id,
        service=case.service,
        status="scheduled",
        due_at=invitation_due(now, catalogue),
        phone_key=phone_key,
        email_key=email_key,
        created_at=now,
        updated_at=now,
    )
    db.add(invitation)
    await db.flush()
    await record_event(db, actor, "survey.scheduled", invitation.id, "survey_invitation")
    return invitation


async def asked_recently(
    db: AsyncSession, phone_key: str | None, email_key: str | None, since: datetime
) -> bool:
    """An invitation to this phone number or email address since `since` that asked, or
    will ask, the victim: any not cancelled, and a cancelled one that had already gone."""
    same = [
        column == key
        for column, key in (
            (models.SurveyInvitation.phone_key, phone_key),
            (models.SurveyInvitation.email_key, email_key),
        )
        if key
    ]
    if not same:
        return False
    found = await db.scalar(
        select(models.SurveyInvitation.id)
        .where(
            or_(*same),
            models.SurveyInvitation.created_at > since,
            or_(
                models.SurveyInvitation.status != "cancelled",
                models.SurveyInvitation.invited_at.is_not(None),
            ),
        )
        .limit(1)
    )
    return found is not None


# Due invitations, claimed by one sweep at a time each (SKIP LOCKED), with what deciding needs.
_CLAIM = (
    select(
        models.SurveyInvitation,
        models.Referral.facts,
        models.Referral.status.label("referral_status"),
        _paused().label("contact_paused"),
        _wrong_number(models.SurveyInvitation.referral_id).label("wrong_number"),
        _invitation_went().label("went"),
        _invitation_waiting().label("waiting"),
    )
    .join(models.Referral, models.Referral.id == models.SurveyInvitation.referral_id)
    .where(models.SurveyInvitation.status.in_(OPEN_SURVEY_STATUSES))
    .order_by(models.SurveyInvitation.due_at)
    .with_for_update(of=models.SurveyInvitation, skip_locked=True)
)


async def sweep_surveys(db: AsyncSession, catalogue: Catalogue, limit: int = 200) -> dict[str, int]:
    """Due invitations, in one transaction: a scheduled one gets its invitation message, an
    invited one its reminder, a reminded one expires; each is judged again first (consent,
    pause, withdrawal, a channel left), and cancelled when it may no longer go. The messages
    are written queued and due now: the messaging sweep sends them inside the safe times."""
    now = await service_now(db)
    rows = (
        await db.execute(_CLAIM.where(models.SurveyInvitation.due_at <= now).limit(limit))
    ).all()
    counts: dict[str, int] = {}
    messages: list[dict[str, Any]] = []
    for row in rows:
        invitation: models.SurveyInvitation = row[0]
        result = _advance(invitation, row, load_referral(row.facts), catalogue, now)
        if result in ("invited", "reminded"):
            messages.append(_message_row(invitation, result, now))
        elif result in ("expired", "cancelled"):
            # A reminder still waiting for a safe time has nothing left to ask.
            await stop_messages(
                db, invitation.referral_id, now, f"survey_{result}", invitations=[invitation.id]
            )
        counts[result] = counts.get(result, 0) + 1
    if messages:
        await db.execute(insert(models.Message), messages)
    await db.commit()
    return counts


def _advance(
    invitation: models.SurveyInvitation,
    row: Any,
    facts: Referral,
    catalogue: Catalogue,
    now: datetime,
) -> str:
    policy = catalogue.surveys
    invitation.updated_at = now
    if invitation.status == "reminded" or (
        invitation.expires_at is not None and invitation.expires_at <= now
    ):
        return _final(invitation, "expired", now)
    why = why_not_invited(
        facts,
        policy,
        referral_status=row.referral_status,
        paused=row.contact_paused,
        wrong_number=row.wrong_number,
    )
    if why is not None:
        invitation.cancel_reason = why
        return _final(invitation, "cancelled", now)
    invitation.channel = survey_channel(facts, policy, row.wrong_number)
    if invitation.status == "scheduled":
        SURVEY.check(invitation.status, "invited")
        invitation.status, invitation.invited_at = "invited", now
        invitation.expires_at = expiry(now, policy)
        invitation.due_at = min(
            now + timedelta(days=policy.remind_after_days), invitation.expires_at
        )
        return "invited"
    # A reminder only follows an invitation that reached the provider: one still waiting (a
    # provider outage, a long wait for a safe time) moves the reminder a day on; one that never
    # went (every channel failed, or stopped) ends the invitation, rather than send a
    # "reminder" of something the victim never had.
    if not row.went:
        if row.waiting:
            invitation.due_at = min(now + REMINDER_WAIT, invitation.expires_at or now)
            return "reminder_waits"
        invitation.cancel_reason = "invitation_not_sent"
        return _final(invitation, "cancelled", now)
    SURVEY.check(invitation.status, "reminded")
    invitation.status, invitation.reminded_at = "reminded", now
    invitation.due_at = invitation.expires_at
    return "reminded"


def _final(invitation: models.SurveyInvitation, status: str, now: datetime) -> str:
    SURVEY.check(invitation.status, status)
    invitation.status, invitation.due_at, invitation.final_at = status, None, now
    return status


def _message_row(invitation: models.SurveyInvitation, kind: str, now: datetime) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "referral_id": invitation.referral_id,
        "contact_step_id": None,
        "survey_invitation_id": invitation.id,
        "purpose": "survey",
        "channel": invitation.channel,
        "template": "survey_invitation" if kind == "invited" else "survey_reminder",
        "status": "queued",
        "due_at": now,
    }


# --- links -------------------------------------------------------------------------------


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def survey_link(token: str) -> str:
    return f"{get_settings().base_url.rstrip('/')}/survey/{token}"


def stored_link() -> str:
    """What the message row keeps of a link: never the token (the row's body is read by staff
    pages and kept 7 days)."""
    return f"{get_settings().base_url.rstrip('/')}/survey/\u2026"


def new_link(invitation_id: uuid.UUID, message_id: uuid.UUID) -> tuple[str, dict[str, Any]]:
    """A fresh link for a survey message being rendered, and its token's row (the hash only)
    for the caller to store in the transaction that commits before the send. Every token an
    invitation was given opens it: a rendering that reached the provider before its claim was
    lost must still work, and one that never left this machine opens nothing by itself."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row = {
        "token_hash": token_hash(token),
        "invitation_id": invitation_id,
        "message_id": message_id,
    }
    return survey_link(token), row


@dataclass(frozen=True)
class OpenSurvey:
    invitation_id: uuid.UUID
    case_id: uuid.UUID
    service: str


_TOKEN_ALPHABET = frozenset(string.ascii_letters + string.digits + "-_")


def _well_formed(token: str) -> bool:
    # token_urlsafe's alphabet and length; anything else is not ours and never reaches SQL.
    return 16 <= len(token) <= 64 and all(c in _TOKEN_ALPHABET for c in token)


async def _find(
    db: AsyncSession, token: str, now: datetime, *, lock: bool
) -> models.SurveyInvitation | None:
    """The invitation the token opens, while it takes answers (open, not expired); None for
    anything else. With `lock`, the row is held FOR UPDATE and read afresh (a row this session
    read before the lock, say by open_survey, would otherwise keep its older status)."""
    if not _well_formed(token):
        return None
    wanted = token_hash(token)
    query = (
        select(models.SurveyInvitation, models.SurveyToken.token_hash)
        .join(models.SurveyToken, models.SurveyToken.invitation_id == models.SurveyInvitation.id)
        .where(
            models.SurveyToken.token_hash == wanted,
            models.SurveyInvitation.status.in_(ANSWERABLE_SURVEY_STATUSES),
            models.SurveyInvitation.expires_at > now,
        )
        .execution_options(populate_existing=True)
    )
    if lock:
        query = query.with_for_update(of=models.SurveyInvitation)
    row = (await db.execute(query)).first()
    # Found by the index, compared again in constant time: the look-up's own timing says
    # nothing about a token (its hash is what is compared), and this keeps it so.
    if row is None or not hmac.compare_digest(row.token_hash, wanted):
        return None
    invitation: models.SurveyInvitation = row[0]
    return invitation


async def open_survey(db: AsyncSession, token: str) -> OpenSurvey | None:
    """The invitation a link opens: None for a token that is wrong, expired, used, cancelled
    or malformed, all alike (the page says the same for each)."""
    now = await service_now(db)
    invitation = await _find(db, token, now, lock=False)
    await db.commit()
    if invitation is None:
        return None
    return OpenSurvey(invitation.id, invitation.case_id, invitation.service)


async def submit_survey(
    db: AsyncSession, token: str, answers: Answers, catalogue: Catalogue
) -> bool:
    """Store the answers under the invitation's row lock, once: a second submit (a double
    click, a replay) finds it completed and stores nothing. The outcome measures answered are
    the case's closure scores from the survey; free text with a safeguarding word raises an
    alert for the duty lead at once. Returns whether these answers were stored."""
    now = await service_now(db)
    invitation = await _find(db, token, now, lock=True)
    if invitation is None or not answers.safe_to_store:
        await db.rollback()
        return False
    policy = catalogue.surveys
    flagged = bool(safeguarding_words(answers.free_text, policy))
    SURVEY.check(invitation.status, "completed")
    invitation.status, invitation.completed_at = "completed", now
    invitation.due_at, invitation.final_at, invitation.updated_at = None, now, now
    db.add(
        models.SurveyResponse(
            invitation_id=invitation.id,
            case_id=invitation.case_id,
            service=invitation.service,
            questions_version=policy.version,
            answers=dict(answers.values),
            free_text=answers.free_text,
            safeguarding=flagged,
            completed_at=now,
        )
    )
    measures = [
        {
            "case_id": invitation.case_id,
            "stage": "closure",
            "source": "survey",
            "measure": q.key,
            "score": answers.values[q.key],
            "recorded_at": now,
            "recorded_by": SYSTEM_ACTOR,
        }
        for q in policy.outcome_measures
        if q.key in answers.values
    ]
    if measures:
        # A case surveyed again (re-opened, closed again): the newest answer is its closure
        # score from the survey.
        await save_outcomes(db, measures)
    if flagged:
        alert = alert_row(invitation.referral_id, SAFEGUARDING_ALERT, now)
        alert.update(status="raised", raised_at=now, reason="survey_free_text")
        await db.execute(insert(models.Alert), [alert])
    # The reminder, if it is still waiting, has nothing left to ask.
    await stop_messages(
        db, invitation.referral_id, now, "survey_answered", invitations=[invitation.id]
    )
    await record_event(db, SYSTEM_ACTOR, "survey.completed", invitation.id, "survey_invitation")
    await db.commit()
    return True


async def save_outcomes(db: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Outcome scores (the caseworker's or the survey's): a measure recorded again at the same
    stage by the same source replaces the score, so the newest counts."""
    statement = pg_insert(models.CaseOutcome).values(rows)
    await db.execute(
        statement.on_conflict_do_update(
            index_elements=["case_id", "stage", "source", "measure"],
            set_={
                "score": statement.excluded.score,
                "recorded_at": statement.excluded.recorded_at,
                "recorded_by": statement.excluded.recorded_by,
            },
        )
    )


# --- the case page ---------------------------------------------------------------------


@dataclass(frozen=True)
class CaseSurvey:
    status: str
    channel: str | None
    created_at: datetime
    due_at: datetime | None
    invited_at: datetime | None
    expires_at: datetime | None
    cancel_reason: str | None
    response: models.SurveyResponse | None


async def case_surveys(db: AsyncSession, case_id: uuid.UUID) -> list[CaseSurvey]:
    """The case's invitations, newest first, with their answers (the case page; the caller
    has checked that the viewer may see the case)."""
    rows = (
        await db.execute(
            select(models.SurveyInvitation, models.SurveyResponse)
            .outerjoin(
                models.SurveyResponse,
                models.SurveyResponse.invitation_id == models.SurveyInvitation.id,
            )
            .where(models.SurveyInvitation.case_id == case_id)
            .order_by(models.SurveyInvitation.created_at.desc())
        )
    ).all()
    return [
        CaseSurvey(
            i.status,
            i.channel,
            i.created_at,
            i.due_at,
            i.invited_at,
            i.expires_at,
            i.cancel_reason,
            response,
        )
        for i, response in rows
    ]


async def open_invitations(db: AsyncSession, referral_id: uuid.UUID) -> int:
    """How many of the referral's invitations may still reach the victim (a closed referral
    still offers staff "Pause all contact" while one may)."""
    return int(
        await db.scalar(
            select(func.count())
            .select_from(models.SurveyInvitation)
            .where(
                models.SurveyInvitation.referral_id == referral_id,
                models.SurveyInvitation.status.in_(OPEN_SURVEY_STATUSES),
            )
        )
        or 0
    )


async def case_outcomes(db: AsyncSession, case_id: uuid.UUID) -> dict[tuple[str, str, str], int]:
    rows = await db.execute(
        select(
            models.CaseOutcome.stage,
            models.CaseOutcome.source,
            models.CaseOutcome.measure,
            models.CaseOutcome.score,
        ).where(models.CaseOutcome.case_id == case_id)
    )
    return {(r.stage, r.source, r.measure): r.score for r in rows}
