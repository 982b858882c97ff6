"""Survey invitations end to end (surveys.md, issue 12) with a real Celery worker, real
PostgreSQL and Redis and the shared service clock: a case closed as supported runs to its
invitation 2 working days later, a reminder 7 days after, an answer or an expiry 28 days after
the invitation; who is never invited; safe times; and everything that cancels an invitation and
its reminder after it was written."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from contact_support import (
    LONDON,
    celery_worker,
    eventually,
    london,
    move_clock_to,
    open_step,
    record,
    reset_clock,
    service_time,
    working_days_after,
)
from helpers import scalar
from survey_support import (
    answer,
    at_quiet_monday,
    close_cases,
    invitation,
    invitations_of,
    open_link,
    sent_links,
    survey_body,
    survey_messages,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def worker(servers: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with celery_worker(log) as process:
        yield process
    assert process.returncode is not None


@pytest.fixture(autouse=True)
async def clock(sessions: Any, worker: Any) -> AsyncIterator[None]:
    await reset_clock(sessions)
    yield
    assert worker.poll() is None, "the Celery worker died during the test"
    await reset_clock(sessions)


async def _referral(web: Any, police: dict[str, str], **changes: Any) -> dict[str, Any]:
    response = await web.post("/api/v1/referrals", json=survey_body(**changes), headers=police)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def _status(sessions: Any, referral_id: str) -> str:
    return str((await invitation(sessions, referral_id)).status)


def _status_is(sessions: Any, referral_id: str, wanted: str) -> Any:
    async def check() -> bool:
        return await _status(sessions, referral_id) == wanted

    return check


def _sent(sessions: Any, referral_id: str, count: int) -> Any:
    async def check() -> list[str] | None:
        links = await sent_links(sessions, referral_id)
        return links if len(links) >= count else None

    return check


async def test_a_closed_case_runs_to_invitation_reminder_and_answer(
    web: Any, sessions: Any, police: dict[str, str]
) -> None:
    closed_at = await at_quiet_monday(sessions)
    made = await _referral(web, police)
    case_ids = await close_cases(sessions, made["id"])
    found = await invitation(sessions, made["id"])
    assert found.status == "scheduled" and str(found.case_id) in case_ids
    # Due 2 working days after the closure, at the same time of day.
    due = london(working_days_after(closed_at.astimezone(LONDON).date(), 2), 10)
    assert abs(found.due_at - due) < timedelta(seconds=5), (found.due_at, due)
    assert found.phone_key and found.email_key and len(found.phone_key) == 64

    # A day early: nothing goes.
    await move_clock_to(sessions, due - timedelta(days=1))
    await eventually(_status_is(sessions, made["id"], "scheduled"), sweep=True)
    assert await survey_messages(sessions, made["id"]) == []

    await move_clock_to(sessions, due + timedelta(minutes=1))
    [first] = await eventually(_sent(sessions, made["id"], 1), sweep=True, what="the invitation")
    assert await _status(sessions, made["id"]) == "invited"
    [message] = await survey_messages(sessions, made["id"])
    assert (message.channel, message.template) == ("sms", "survey_invitation")
    # The message row keeps the body without the token; the token is stored only as a hash.
    token = first.rsplit("/", 1)[1]
    assert len(token) >= 22  # at least 128 random bits in base64url
    assert token not in (message.body or "") and "/survey/\u2026" in (message.body or "")
    hashes = await scalar(
        sessions,
        "SELECT count(*) FROM survey_tokens WHERE token_hash = sha256(convert_to(:t, 'UTF8'))",
        t=token,
    )
    assert hashes == 1
    assert (
        await scalar(
            sessions,
            "SELECT count(*) FROM survey_tokens WHERE encode(token_hash, 'escape') LIKE :t",
            t=f"%{token}%",
        )
        == 0
    )
    page = await open_link(web, first)
    assert page.status_code == 200 and "Your feedback" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"

    # 7 days without an answer: the reminder, with a link of its own; both links work.
    invited = await invitation(sessions, made["id"])
    await move_clock_to(sessions, invited.invited_at + timedelta(days=7, minutes=1))
    links = await eventually(_sent(sessions, made["id"], 2), sweep=True, what="the reminder")
    assert await _status(sessions, made["id"]) == "reminded"
    reminder = links[1]
    assert reminder != first
    templates = [m.template for m in await survey_messages(sessions, made["id"])]
    assert templates == ["survey_invitation", "survey_reminder"]
    assert (await open_link(web, first)).status_code == 200

    answered = await answer(
        web,
        reminder,
        satisfaction="4",
        recommend="yes",
        wellbeing="5",
        safety="3",
        comments="The caseworker listened.",
    )
    assert answered.status_code == 303 and answered.headers["location"] == "/survey/thank-you"
    done = await invitation(sessions, made["id"])
    assert done.status == "completed" and done.due_at is None
    response = await scalar(
        sessions, "SELECT answers FROM survey_responses WHERE invitation_id = :i", i=done.id
    )
    assert response == {"satisfaction": 4, "recommend": "yes", "wellbeing": 5, "safety": 3}
    outcomes = await scalar(
        sessions,
        """SELECT json_object_agg(measure, score) FROM case_outcomes
           WHERE case_id = :c AND stage = 'closure' AND source = 'survey'""",
        c=done.case_id,
    )
    assert outcomes == {"wellbeing": 5, "safety": 3}
    # Used: neither link opens it again, and nothing more is sent.
    for link in (first, reminder):
        assert (await open_link(web, link)).status_code == 404
    await move_clock_to(sessions, invited.invited_at + timedelta(days=29))
    await eventually(_status_is(sessions, made["id"], "completed"), sweep=True)
    assert len(await survey_messages(sessions, made["id"])) == 2


async def test_an_invitation_expires_28_days_after_it_went_without_an_answer(
    web: Any, sessions: Any, police: dict[str, str]
) -> None:
    await at_quiet_monday(sessions)
    made = await _referral(web, police, **{"contact.channels": ["email"]})
    await close_cases(sessions, made["id"])
    due = (await invitation(sessions, made["id"])).due_at
    await move_clock_to(sessions, due + timedelta(minutes=1))
    [link] = await eventually(_sent(sessions, made["id"], 1), sweep=True)
    [message] = await survey_messages(sessions, made["id"])
    assert message.channel == "email"  # the only channel the victim allowed
    invited = await invitation(sessions, made["id"])
    assert invited.expires_at - invited.invited_at == timedelta(days=28)
    await move_clock_to(sessions, invited.invited_at + timedelta(days=7, minutes=1))
    await eventually(_status_is(sessions, made["id"], "reminded"), sweep=True)
    await move_clock_to(sessions, invited.expires_at - timedelta(minutes=5))
    assert (await open_link(web, link)).status_code == 200  # still open just before
    await move_clock_to(sessions, invited.expires_at + timedelta(minutes=1))
    await eventually(_status_is(sessions, made["id"], "expired"), sweep=True, what="expiry")
    page = await open_link(web, link)
    assert page.status_code == 404 and "This link does not work" in page.text


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"consent.to_survey": False}, "no consent to a survey"),
        ({"contact.channels": ["phone"]}, "only calls allowed"),
        ({"contact.channels": ["phone", "letter"], "contact.letter_ok": True}, "no SMS or email"),
        ({"consent.to_contact": False}, "no consent to contact"),
    ],
)
async def test_no_invitation_when_surveys_md_does_not_allow_one(
    web: Any, sessions: Any, police: dict[str, str], changes: dict[str, Any], why: str
) -> None:
    made = await _referral(web, police, **changes)
    await close_cases(sessions, made["id"])
    assert await invitations_of(sessions, made["id"]) == [], why


async def test_no_invitation_while_contact_is_paused(
    web: Any, sessions: Any, police: dict[str, str]
) -> None:
    from triage.services.clock import service_now
    from triage.services.contact_plan import pause_contact

    made = await _referral(web, police)
    async with sessions() as db:
        await pause_contact(db, made["id"], "staff:test", await service_now(db))
    await close_cases(sessions, made["id"])
    assert await invitations_of(sessions, made["id"]) == []


async def test_one_invitation_per_phone_or_email_in_90_days_whatever_the_referral(
    web: Any, sessions: Any, police: dict[str, str]
) -> None:
    await at_quiet_monday(sessions)
    first = await _referral(web, police)
    await close_cases(sessions, first["id"])
    assert len(await invitations_of(sessions, first["id"])) == 1
    body = await scalar(sessions, "SELECT facts FROM referrals WHERE id = :r", r=first["id"])
    phone, email = body["victim"]["phone"], body["victim"]["email"]
    # The same phone written another way, on another referral with another email: not asked.
    spaced = "+44 " + phone[3:]
    same_phone = await _referral(web, police, **{"victim.phone": spaced})
    await close_cases(sessions, same_phone["id"])
    assert await invitations_of(sessions, same_phone["id"]) == []
    # The same email in capitals, another phone: not asked either.
    same_email = await _referral(web, police, **{"victim.email": email.upper()})
    await close_cases(sessions, same_email["id"])
    assert await invitations_of(sessions, same_email["id"]) == []
    # 91 days later the same victim may be asked again.
    now = await service_time(sessions)
    await move_clock_to(sessions, now + timedelta(days=91))
    later = await _referral(web, police, **{"victim.phone": phone, "victim.email": email})
    await close_cases(sessions, later["id"])
    assert len(await invitations_of(sessions, later["id"])) == 1


async def test_a_closure_other_than_supported_invites_nobody(
    web: Any, sessions: Any, police: dict[str, str]
) -> None:
    made = await _referral(web, police)
    await close_cases(sessions, made["id"], reason="declined")
    assert await invitations_of(sessions, made["id"]) == []


async def test_never_outside_the_victims_safe_times(
    web: Any, sessions: Any, police: dict[str, str]
) -> None:
    # Only weekday evenings, 18:00 to 19:00: the invitation due at 10:00 waits for 18:00.
    windows = [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "18:00", "to": "19:00"}]
    await at_quiet_monday(sessions)
    made = await _referral(web, police, **{"contact.safe_times": windows})
    await close_cases(sessions, made["id"])
    due = (await invitation(sessions, made["id"])).due_at
    await move_clock_to(sessions, due + timedelta(minutes=1))
    await eventually(_status_is(sessions, made["id"], "invited"), sweep=True)

    async def queued_for_the_evening() -> Any:
        found = await survey_messages(sessions, made["id"])
        return found if found and found[0].status == "queued" and found[0].due_at > due else None

    [message] = await eventually(queued_for_the_evening, sweep=True, what="the safe moment")
    evening = london(due.astimezone(LONDON).date(), 18)
    assert message.due_at == evening
    assert await sent_links(sessions, made["id"]) == []
    await move_clock_to(sessions, evening + timedelta(minutes=1))
    links = await eventually(_sent(sessions, made["id"], 1), sweep=True)
    assert len(links) == 1
    sent_at = await scalar(sessions, "SELECT sent_at FROM messages WHERE id = :m", m=message.id)
    assert 18 <= sent_at.astimezone(LONDON).hour < 19


async def _two_cases(web: Any, sessions: Any, police: dict[str, str], **changes: Any) -> Any:
    """A referral with a case closed as supported (its invitation written) and another case
    still open, so the referral itself is still in contact (and can still change)."""
    made = await _referral(web, police, **changes)
    cases = await scalar(
        sessions,
        "SELECT array_agg(id ORDER BY service) FROM cases WHERE referral_id = :r",
        r=made["id"],
    )
    if len(cases) < 2:
        from sqlalchemy import text

        async with sessions() as db:
            await db.execute(
                text("""INSERT INTO cases (id, referral_id, service, role, status, opened_at)
                        VALUES (gen_random_uuid(), :r, 'rj', 'secondary', 'awaiting_contact',
                                now())"""),
                {"r": made["id"]},
            )
            await db.commit()
    from triage.domain.principals import staff
    from triage.services import case_work
    from triage.services.catalogues import current_catalogue
    from triage.services.clock import service_now

    lead = staff(uuid.uuid4(), frozenset({"duty_lead"}), frozenset())
    async with sessions() as db:
        await case_work.close(
            db, lead, cases[0], "supported", await service_now(db), catalogue=current_catalogue()
        )
    assert await scalar(sessions, "SELECT status FROM referrals WHERE id = :r", r=made["id"]) in (
        "triaged",
        "in_contact",
    )
    return made


async def _invited(sessions: Any, made: dict[str, Any]) -> Any:
    due = (await invitation(sessions, made["id"])).due_at
    await move_clock_to(sessions, due + timedelta(minutes=1))
    await eventually(_status_is(sessions, made["id"], "invited"), sweep=True)
    return await invitation(sessions, made["id"])


async def _pause(sessions: Any, made: dict[str, Any], web: Any, police: dict[str, str]) -> None:
    from triage.services.clock import service_now
    from triage.services.contact_plan import pause_contact

    async with sessions() as db:
        await pause_contact(db, made["id"], "staff:test", await service_now(db))


async def _withdraw(sessions: Any, made: dict[str, Any], web: Any, police: dict[str, str]) -> None:
    response = await web.post(
        f"/api/v1/referrals/{made['id']}/withdraw",
        json={"reason": "victim asked"},
        headers=police,
    )
    assert response.status_code in (200, 204), response.text


def _consent_taken_back(which: str) -> Any:
    async def patch(sessions: Any, made: dict[str, Any], web: Any, police: dict[str, str]) -> None:
        response = await web.patch(
            f"/api/v1/referrals/{made['id']}", json={"consent": {which: False}}, headers=police
        )
        assert response.status_code == 200, response.text

    return patch


async def _wrong_number(
    sessions: Any, made: dict[str, Any], web: Any, police: dict[str, str]
) -> None:
    from sqlalchemy import text

    # The other case's first call, made now: the number is wrong.
    async with sessions() as db:
        await db.execute(
            text("""UPDATE contact_steps SET status = 'due'
                    WHERE referral_id = :r AND status = 'scheduled' AND kind = 'call'"""),
            {"r": made["id"]},
        )
        await db.commit()
    step = await open_step(sessions, made["id"])
    await record(sessions, step.id, "wrong_number")


STOPS = {
    "pause": _pause,
    "withdrawal": _withdraw,
    "survey consent taken back": _consent_taken_back("to_survey"),
    "contact consent taken back": _consent_taken_back("to_contact"),
    "wrong number": _wrong_number,
}


@pytest.mark.parametrize("stop", list(STOPS))
async def test_a_stop_after_the_invitation_went_cancels_it_and_its_reminder(
    web: Any, sessions: Any, police: dict[str, str], stop: str
) -> None:
    await at_quiet_monday(sessions)
    made = await _two_cases(web, sessions, police)
    invited = await _invited(sessions, made)
    [link] = await eventually(_sent(sessions, made["id"], 1), sweep=True)
    await STOPS[stop](sessions, made, web, police)
    cancelled = await invitation(sessions, made["id"])
    assert cancelled.status == "cancelled" and cancelled.due_at is None
    # The link no longer opens, and no reminder is ever written.
    assert (await open_link(web, link)).status_code == 404
    await move_clock_to(sessions, invited.invited_at + timedelta(days=8))
    await eventually(_status_is(sessions, made["id"], "cancelled"), sweep=True)
    assert [m.template for m in await survey_messages(sessions, made["id"])] == [
        "survey_invitation"
    ]


@pytest.mark.parametrize("stop", ["pause", "survey consent taken back", "withdrawal"])
async def test_a_stop_before_the_safe_moment_cancels_the_queued_invitation(
    web: Any, sessions: Any, police: dict[str, str], stop: str
) -> None:
    """The invitation message is written and waits for the evening; a stop in between cancels
    it and nothing reaches the victim."""
    windows = [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "18:00", "to": "19:00"}]
    await at_quiet_monday(sessions)
    made = await _two_cases(web, sessions, police, **{"contact.safe_times": windows})
    invited = await _invited(sessions, made)

    async def queued() -> Any:
        found = await survey_messages(sessions, made["id"])
        return found if found and found[0].status == "queued" else None

    await eventually(queued, sweep=True)
    await STOPS[stop](sessions, made, web, police)
    [message] = await survey_messages(sessions, made["id"])
    assert message.status == "cancelled"
    evening = london(invited.invited_at.astimezone(LONDON).date(), 18)
    await move_clock_to(sessions, evening + timedelta(minutes=5))
    await eventually(_status_is(sessions, made["id"], "cancelled"), sweep=True)
    assert await sent_links(sessions, made["id"]) == []


async def test_reopening_the_case_cancels_its_scheduled_invitation(
    web: Any, sessions: Any, police: dict[str, str]
) -> None:
    from triage.domain.principals import staff
    from triage.services import case_work
    from triage.services.clock import service_now

    made = await _referral(web, police)
    await close_cases(sessions, made["id"])
    lead = staff(uuid.uuid4(), frozenset({"duty_lead"}), frozenset())
    case_of = (await invitation(sessions, made["id"])).case_id
    async with sessions() as db:
        await case_work.reopen(db, lead, case_of, "more support needed", await service_now(db))
    found = await invitation(sessions, made["id"])
    assert found.status == "cancelled" and found.cancel_reason == "case_reopened"


async def test_triage_surveys_send_due_does_what_the_sweep_does(
    web: Any, sessions: Any, police: dict[str, str]
) -> None:
    import os
    import subprocess
    import sys

    from contact_support import ROOT

    await at_quiet_monday(sessions)
    made = await _referral(web, police)
    await close_cases(sessions, made["id"])
    due = (await invitation(sessions, made["id"])).due_at
    await move_clock_to(sessions, due + timedelta(minutes=1))
    ran = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "triage.cli", "surveys", "send-due"],
        cwd=ROOT,
        env=dict(os.environ, TRIAGE_NOTIFIER="outbox"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("invitations: ")
    # Invited either by this command or by the worker's sweep that got there first.
    await eventually(_status_is(sessions, made["id"], "invited"))
    await eventually(_sent(sessions, made["id"], 1), sweep=True)
    # Counts only: never a phone number, an address or a link.
    body = await scalar(sessions, "SELECT facts FROM referrals WHERE id = :r", r=made["id"])
    for secret in (body["victim"]["phone"], body["victim"]["email"], "/survey/"):
        assert secret not in ran.stdout + ran.stderr
