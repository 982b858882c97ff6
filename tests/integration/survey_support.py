"""Shared by the survey tests: a victim of their own (a phone number and an address nobody else
in the database has, so the once-in-90-days rule of one test never meets another's), closing
cases through the service function as a duty lead, the survey rows, and the links the outbox
"sent"."""

from __future__ import annotations

import random
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

from contact_support import (
    all_rows,
    london,
    move_clock_to,
    outbox_of,
    plain,
    quiet_monday,
    service_time,
)
from helpers import scalar
from sqlalchemy import text

LINK = re.compile(r"/survey/([A-Za-z0-9_-]+)")
LEASE = timedelta(seconds=120)


def fresh_contact() -> dict[str, Any]:
    """A UK mobile number and an email address of this victim only."""
    number = f"07400 {random.randrange(100000, 999999)}"
    return {"victim.phone": number, "victim.email": f"{uuid.uuid4().hex}@example.org"}


def survey_body(**changes: Any) -> dict[str, Any]:
    return plain(**{**fresh_contact(), **changes})


async def at_quiet_monday(sessions: Any, hour: int = 10) -> datetime:
    """The service clock moved to a Monday morning with three quiet weeks ahead."""
    return await move_clock_to(sessions, london(quiet_monday(await service_time(sessions)), hour))


async def close_cases(sessions: Any, referral_id: str, reason: str = "supported") -> list[str]:
    """Every open case of the referral closed with `reason` by a duty lead, through the same
    service function as the case page; returns the case ids."""
    from sqlalchemy import text

    from triage.domain.principals import staff
    from triage.services import case_work
    from triage.services.catalogues import current_catalogue
    from triage.services.clock import service_now

    lead = staff(uuid.uuid4(), frozenset({"duty_lead"}), frozenset())
    closed = []
    async with sessions() as db:
        ids = (
            await db.execute(
                text("SELECT id FROM cases WHERE referral_id = :r AND status <> 'closed'"),
                {"r": referral_id},
            )
        ).scalars()
        for case_id in list(ids):
            await case_work.close(
                db, lead, case_id, reason, await service_now(db), catalogue=current_catalogue()
            )
            closed.append(str(case_id))
    return closed


async def invitations_of(sessions: Any, referral_id: str) -> list[Any]:
    return await all_rows(
        sessions,
        "SELECT * FROM survey_invitations WHERE referral_id = :r ORDER BY created_at",
        r=referral_id,
    )


async def invitation(sessions: Any, referral_id: str) -> Any:
    found = await invitations_of(sessions, referral_id)
    assert len(found) == 1, found
    return found[0]


async def survey_messages(sessions: Any, referral_id: str) -> list[Any]:
    return await all_rows(
        sessions,
        """SELECT * FROM messages WHERE referral_id = :r AND purpose = 'survey'
           ORDER BY created_at, id""",
        r=referral_id,
    )


async def sent_links(sessions: Any, referral_id: str) -> list[str]:
    """The survey links the outbox notifier "sent" to this victim, oldest first (their paths)."""
    messages = await survey_messages(sessions, referral_id)
    sent = await outbox_of(sessions, [m.id for m in messages])
    return [f"/survey/{LINK.search(row.body).group(1)}" for row in sent]  # type: ignore[union-attr]


async def sweep_surveys(sessions: Any) -> dict[str, int]:
    from triage.services.catalogues import current_catalogue
    from triage.services.surveys import sweep_surveys
    from triage.services.units import in_session

    return await in_session(sessions, sweep_surveys, current_catalogue())


async def send(sessions: Any, notifier: Any, message_id: Any) -> str:
    from triage.services.catalogues import current_catalogue
    from triage.services.messaging import claim_message, deliver
    from triage.services.units import in_session

    claimed = await in_session(sessions, claim_message, message_id, LEASE)
    assert claimed is not None
    return await deliver(sessions, notifier, current_catalogue(), claimed)


async def due_now(sessions: Any, referral_id: str) -> None:
    """The invitation's next step brought forward to now (its own timing is the lifecycle
    tests'): only this test's row, so sweeping now touches nothing of another test's."""
    async with sessions() as db:
        await db.execute(
            text("""UPDATE survey_invitations SET due_at = now() - interval '1 second'
                    WHERE referral_id = :r AND status IN ('scheduled', 'invited', 'reminded')"""),
            {"r": referral_id},
        )
        await db.commit()


async def invited(
    web: Any, sessions: Any, police: dict[str, str], notifier: Any, **changes: Any
) -> tuple[dict[str, Any], str]:
    """A referral whose first case closed as supported and whose invitation went (a second
    case keeps the referral open); returns it and the link sent."""
    from triage.domain.principals import staff
    from triage.services import case_work
    from triage.services.catalogues import current_catalogue
    from triage.services.clock import service_now

    await at_quiet_monday(sessions)
    response = await web.post("/api/v1/referrals", json=survey_body(**changes), headers=police)
    assert response.status_code == 201, response.text
    made = response.json()
    async with sessions() as db:
        [case_id] = (
            await db.execute(
                text("SELECT id FROM cases WHERE referral_id = :r LIMIT 1"), {"r": made["id"]}
            )
        ).scalars()
        await db.execute(
            text("""INSERT INTO cases (id, referral_id, service, role, status, opened_at)
                    SELECT gen_random_uuid(), :r, 'rj', 'secondary', 'awaiting_contact', now()
                    WHERE NOT EXISTS (SELECT 1 FROM cases WHERE referral_id = :r
                                      AND service = 'rj')"""),
            {"r": made["id"]},
        )
        await db.commit()
        lead = staff(uuid.uuid4(), frozenset({"duty_lead"}), frozenset())
        await case_work.close(
            db, lead, case_id, "supported", await service_now(db), catalogue=current_catalogue()
        )
    await due_now(sessions, made["id"])
    await sweep_surveys(sessions)
    [message] = await survey_messages(sessions, made["id"])
    assert await send(sessions, notifier, message.id) == "accepted"
    return made, await link_of(sessions, message.id)


async def link_of(sessions: Any, message_id: Any) -> str:
    body = await scalar(sessions, "SELECT body FROM outbox WHERE reference = :m", m=message_id)
    found = LINK.search(body)
    assert found is not None, body
    return f"/survey/{found.group(1)}"


async def open_link(web: Any, link: str) -> Any:
    """The survey page as a browser with nothing stored would ask for it."""
    web.cookies.clear()
    return await web.get(link, follow_redirects=False)


async def answer(web: Any, link: str, **answers: str) -> Any:
    """Open the link, then send `answers` with the page's own CSRF value."""
    page = await open_link(web, link)
    assert page.status_code == 200, page.text
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    web.cookies.clear()
    return await web.post(link, data={"csrf_token": csrf, **answers}, follow_redirects=False)
