"""Retention and erasure (retention.md): what is erased and when, legal holds, the preview, and
a subject access export.

Erasure falls due from a referral's final state (`final_at`, kept by a trigger: migration
0016) plus the catalogue's years; the daily job claims due referrals with FOR UPDATE SKIP LOCKED
and erases each in a transaction of its own: the personal data replaced by nulls (the facts
cut down to what is not personal), the referral marked `erased_at`, an audit event
`referral.erased` (no personal data). What reports read are columns of their own, untouched,
so a past period's report gives the same figures before and after. A referral under a legal
hold is never erased; an open referral is never erased by itself (one with no change for the
catalogue's years is listed for staff review)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import models
from triage.domain.catalogue import Catalogue
from triage.services.audit import record_event
from triage.services.clock import service_now
from triage.services.units import in_session

SYSTEM_ACTOR = "system:retention"

# Due referrals: final, not erased, not held, past their years (by their final state).
_DUE = """
    r.erased_at IS NULL AND r.legal_hold_reason IS NULL
    AND ((r.status = 'closed'
          AND r.final_at < CAST(:until AS timestamptz) - make_interval(years => :closed))
      OR (r.status = 'withdrawn'
          AND r.final_at < CAST(:until AS timestamptz) - make_interval(years => :withdrawn)))
"""


def _years(catalogue: Catalogue) -> dict[str, int]:
    return {
        "closed": catalogue.retention.closed_after_years,
        "withdrawn": catalogue.retention.withdrawn_after_years,
    }


async def due_referrals(
    db: AsyncSession, catalogue: Catalogue, limit: int = 100
) -> list[uuid.UUID]:
    now = await service_now(db)
    rows = await db.execute(
        text(f"SELECT r.id FROM referrals r WHERE {_DUE} ORDER BY r.final_at LIMIT :limit"),
        {"until": now, "limit": limit, **_years(catalogue)},
    )
    ids = [row.id for row in rows]
    await db.commit()
    return ids


async def erase_referral(
    db: AsyncSession, referral_id: uuid.UUID, catalogue: Catalogue, actor: str = SYSTEM_ACTOR
) -> bool:
    """Erase one due referral's personal data, in this transaction, once: the row is claimed
    FOR UPDATE SKIP LOCKED and judged due again (a hold set meanwhile, or another worker that
    erased it first, leaves it)."""
    now = await service_now(db)
    row = (
        await db.execute(
            text(
                f"SELECT r.id, r.facts FROM referrals r WHERE r.id = :id AND {_DUE} "
                "FOR UPDATE SKIP LOCKED"
            ),
            {"id": referral_id, "until": now, **_years(catalogue)},
        )
    ).first()
    if row is None:
        await db.rollback()
        return False
    facts = row.facts or {}
    consent = facts.get("consent") or {}
    # What is not personal: the external reference (the client's own id), the offence's
    # category, the consent given, flags and needs. Everything else goes (names, date of birth,
    # contact details, address, descriptions, safe-contact notes, the referrer).
    kept = {
        "external_ref": facts.get("external_ref") or "",
        "victim": {},
        "offence": {"category": (facts.get("offence") or {}).get("category", "other")},
        "consent": {
            "to_referral": bool(consent.get("to_referral", True)),
            "to_contact": False,
            "to_survey": False,
        },
        "flags": list(facts.get("flags") or []),
        "needs": list(facts.get("needs") or []),
    }
    await db.execute(
        update(models.Referral)
        .where(models.Referral.id == referral_id)
        .values(facts=kept, withdrawn_reason=None, erased_at=now)
    )
    await db.execute(
        update(models.Message)
        .where(models.Message.referral_id == referral_id)
        .values(recipient=None, body=None)
    )
    await db.execute(text("DELETE FROM notes WHERE referral_id = :id"), {"id": referral_id})
    await db.execute(
        text("UPDATE overrides SET reason = '', consent = NULL WHERE referral_id = :id"),
        {"id": referral_id},
    )
    await db.execute(
        text("""UPDATE survey_responses SET free_text = NULL
                WHERE invitation_id IN (SELECT id FROM survey_invitations
                                        WHERE referral_id = :id)"""),
        {"id": referral_id},
    )
    await db.execute(
        text("""UPDATE survey_invitations SET phone_key = NULL, email_key = NULL
                WHERE referral_id = :id"""),
        {"id": referral_id},
    )
    # The decisions keep their services, signposts, priority, groups and area code, never
    # their reasons (which can name an age, a gender, a vulnerability or a motivation), the
    # postcode district or the explanation.
    await db.execute(
        text("""UPDATE triage_decisions SET explanation = '{}'::jsonb,
                    decision = jsonb_set(jsonb_set(jsonb_set(decision,
                        '{area,district}', 'null'::jsonb),
                        '{services}', COALESCE((SELECT jsonb_agg(s - 'reasons')
                            FROM jsonb_array_elements(decision -> 'services') s), '[]')),
                        '{signposts}', COALESCE((SELECT jsonb_agg(s - 'reasons')
                            FROM jsonb_array_elements(decision -> 'signposts') s), '[]'))
                WHERE referral_id = :id"""),
        {"id": referral_id},
    )
    await record_event(db, actor, "referral.erased", referral_id)
    await db.commit()
    return True


async def erase_due_requests(db: AsyncSession, catalogue: Catalogue, limit: int = 500) -> int:
    """Appropriate Adult requests past their year: the person's details go."""
    now = await service_now(db)
    years = catalogue.retention.appropriate_adult_after_years
    ids = [
        row.id
        for row in await db.execute(
            # The request keeps its suite, times, status and signpost; the person, the whole
            # request as sent (the person again, the requester) and the reasons (an age) go.
            # A signposted request has no attend_by: its year runs from its receipt.
            text("""UPDATE aa_requests SET person = '{}'::jsonb, request = '{}'::jsonb,
                        reasons = '{}', erased_at = :now
                    WHERE id IN (SELECT id FROM aa_requests
                                 WHERE erased_at IS NULL
                                   AND COALESCE(attend_by, received_at)
                                       < CAST(:now AS timestamptz)
                                         - make_interval(years => :years)
                                 LIMIT :limit FOR UPDATE SKIP LOCKED)
                    RETURNING id"""),
            {"now": now, "years": years, "limit": limit},
        )
    ]
    for request_id in ids:
        await record_event(db, SYSTEM_ACTOR, "aa_request.erased", request_id, "aa_request")
    await db.commit()
    return len(ids)


async def erase_due(
    sessions: async_sessionmaker[AsyncSession],
    catalogue: Catalogue,
    limit: int = 100,
    budget: timedelta = timedelta(minutes=20),
) -> int:
    """The daily job: due referrals, each erased in a transaction of its own, a claim of
    `limit` at a time until none is due (or the time `budget` is spent: the next run goes on),
    then due Appropriate Adult requests likewise."""
    erased = 0
    ends = time.monotonic() + budget.total_seconds()
    while time.monotonic() < ends:
        due = await in_session(sessions, due_referrals, catalogue, limit)
        done = 0
        for referral_id in due:
            if await in_session(sessions, erase_referral, referral_id, catalogue):
                done += 1
        erased += done
        if len(due) < limit or done == 0:
            break
    while time.monotonic() < ends:
        requests = await in_session(sessions, erase_due_requests, catalogue)
        erased += requests
        if requests == 0:
            break
    return erased


@dataclass(frozen=True)
class Preview:
    rule: str
    today: int
    next_30_days: int


async def preview(db: AsyncSession, catalogue: Catalogue) -> list[Preview]:
    """How many records each rule would erase today and in the next 30 days (counts only);
    and the open referrals with no change for the review years (listed, never erased), and
    those held."""
    now = await service_now(db)
    soon = now + timedelta(days=30)
    years = _years(catalogue)
    found: list[Preview] = []
    for rule, status in (("closed referrals", "closed"), ("withdrawn referrals", "withdrawn")):
        counts = []
        for until in (now, soon):
            counts.append(
                int(
                    await db.scalar(
                        text(
                            f"SELECT count(*) FROM referrals r WHERE {_DUE} AND r.status = :status"
                        ),
                        {"until": until, "status": status, **years},
                    )
                    or 0
                )
            )
        found.append(Preview(rule, counts[0], counts[1] - counts[0]))
    aa_years = catalogue.retention.appropriate_adult_after_years
    aa = []
    for until in (now, soon):
        aa.append(
            int(
                await db.scalar(
                    text("""SELECT count(*) FROM aa_requests WHERE erased_at IS NULL
                            AND COALESCE(attend_by, received_at) < CAST(:until AS timestamptz)
                                            - make_interval(years => :years)"""),
                    {"until": until, "years": aa_years},
                )
                or 0
            )
        )
    found.append(Preview("appropriate adult requests", aa[0], aa[1] - aa[0]))
    review_years = catalogue.retention.open_review_after_years
    stale = int(
        await db.scalar(
            text("""SELECT count(*) FROM referrals WHERE status IN ('triaged', 'in_contact')
                    AND updated_at < CAST(:now AS timestamptz) - make_interval(years => :years)"""),
            {"now": now, "years": review_years},
        )
        or 0
    )
    found.append(Preview("open referrals to review (never erased by themselves)", stale, 0))
    held = int(
        await db.scalar(
            select(func.count())
            .select_from(models.Referral)
            .where(models.Referral.legal_hold_reason.is_not(None))
        )
        or 0
    )
    found.append(Preview("referrals under a legal hold (not erased)", held, 0))
    await db.commit()
    return found


class RetentionRefused(ValueError):
    pass


async def _by_reference(db: AsyncSession, reference: str) -> models.Referral:
    referral = await db.scalar(
        select(models.Referral).where(models.Referral.reference == reference).with_for_update()
    )
    if referral is None:
        raise RetentionRefused(f"no referral {reference}")
    return referral


async def set_hold(db: AsyncSession, reference: str, reason: str, actor: str) -> None:
    """A legal hold: the referral is not erased until the hold is lifted (the reason is kept
    with it, not in the audit trail)."""
    reason = reason.strip()
    if not reason or len(reason) > 500:
        raise RetentionRefused("give the hold's reason (a court case, a complaint), 500 at most")
    referral = await _by_reference(db, reference)
    if referral.erased_at is not None:
        raise RetentionRefused(f"{reference} was erased on {referral.erased_at:%Y-%m-%d}")
    referral.legal_hold_reason = reason
    referral.legal_hold_at = await service_now(db)
    referral.legal_hold_by = actor[:60]
    await record_event(db, actor, "referral.legal_hold_set", referral.id)
    await db.commit()


async def lift_hold(db: AsyncSession, reference: str, actor: str) -> None:
    referral = await _by_reference(db, reference)
    referral.legal_hold_reason = referral.legal_hold_at = referral.legal_hold_by = None
    await record_event(db, actor, "referral.legal_hold_lifted", referral.id)
    await db.commit()


async def export_referral(db: AsyncSession, reference: str, actor: str) -> dict[str, Any]:
    """Everything held about one referral's victim, for a data protection officer to review
    before release (subject access): the referral, its decisions, cases, contact attempts,
    messages, notes, survey answers and the audit trail's events about it. Third-party data
    is marked for review, never removed: the referrer, staff names, other people a note may
    name."""
    referral = await db.scalar(
        select(models.Referral).where(models.Referral.reference == reference)
    )
    if referral is None:
        raise RetentionRefused(f"no referral {reference}")
    rid = referral.id

    async def rows(sql: str) -> list[dict[str, Any]]:
        # The id as text too: the audit trail keeps record ids as text.
        found = await db.execute(text(sql), {"id": rid, "text_id": str(rid)})
        return [dict(r._mapping) for r in found]

    facts = dict(referral.facts or {})
    referrer = facts.pop("referrer", None)
    export: dict[str, Any] = {
        "reference": referral.reference,
        "exported_at": await service_now(db),
        "erased_at": referral.erased_at,
        "referral": {
            "source": referral.source,
            "status": referral.status,
            "received_at": referral.received_at,
            "facts": facts,
        },
        "third_party_for_review": {
            "referrer": referrer,
            "note": "The referrer, the staff who acted and anyone a note names are third "
            "parties: review before release.",
        },
        "decisions": await rows(
            "SELECT decided_at, cause, decision FROM triage_decisions WHERE referral_id = :id "
            "ORDER BY id"
        ),
        "cases": await rows(
            "SELECT service, status, opened_at, closed_at, closure_reason FROM cases "
            "WHERE referral_id = :id"
        ),
        "contact_attempts": await rows(
            "SELECT number, kind, status, due_at, attempted_at, outcome FROM contact_steps "
            "WHERE referral_id = :id ORDER BY number"
        ),
        "messages": await rows(
            "SELECT channel, template, status, sent_at, recipient, body FROM messages "
            "WHERE referral_id = :id ORDER BY created_at"
        ),
        "notes_for_review": await rows(
            "SELECT created_at, author AS staff_for_review, body FROM notes "
            "WHERE referral_id = :id ORDER BY id"
        ),
        "survey_answers": await rows(
            "SELECT s.completed_at, s.answers, s.free_text FROM survey_responses s "
            "JOIN survey_invitations i ON i.id = s.invitation_id WHERE i.referral_id = :id"
        ),
        "audit_events": await rows(
            "SELECT at, actor AS staff_for_review, action FROM audit_events "
            "WHERE record_id = :text_id ORDER BY id"
        ),
    }
    await record_event(db, actor, "referral.exported", rid)
    await db.commit()
    return export
