"""What stops a survey, beyond its own referral's stops (issue 12, found in review): a closed
referral can still be withdrawn or have its consent taken back, and that stops its survey; a
pause or a wrong number on one referral stops the surveys to the same phone from any other; the
end of another case's contact leaves a survey alone; a reminder follows only an invitation that
went; a case surveyed twice keeps both answers; an answer racing a cancellation is refused, not
a server error."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from contact_support import open_step, record, service_time
from helpers import scalar
from sqlalchemy import text
from survey_support import (
    close_cases,
    due_now,
    fresh_contact,
    invitation,
    invitations_of,
    invited,
    survey_body,
    survey_messages,
    sweep_surveys,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("service_clock_reset")]


async def _referral(web: Any, police: dict[str, str], **changes: Any) -> dict[str, Any]:
    response = await web.post("/api/v1/referrals", json=survey_body(**changes), headers=police)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def _closed_with_invitation(
    web: Any, sessions: Any, police: dict[str, str], **changes: Any
) -> dict[str, Any]:
    made = await _referral(web, police, **changes)
    await close_cases(sessions, made["id"])
    status = await scalar(sessions, "SELECT status FROM referrals WHERE id = :r", r=made["id"])
    assert status == "closed"
    assert (await invitation(sessions, made["id"])).status == "scheduled"
    return made


async def test_a_closed_referral_withdrawn_stops_its_survey(
    web: Any, sessions: Any, police: dict[str, str]
) -> None:
    made = await _closed_with_invitation(web, sessions, police)
    answer = await web.post(
        f"/api/v1/referrals/{made['id']}/withdraw", json={"reason": "asked"}, headers=police
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "withdrawn"
    found = await invitation(sessions, made["id"])
    assert (found.status, found.cancel_reason) == ("cancelled", "withdrawn")


@pytest.mark.parametrize("which", ["to_survey", "to_contact"])
async def test_a_closed_referrals_consent_taken_back_stops_its_survey(
    web: Any, sessions: Any, police: dict[str, str], which: str
) -> None:
    made = await _closed_with_invitation(web, sessions, police)
    url = f"/api/v1/referrals/{made['id']}"
    answer = await web.patch(url, json={"consent": {which: False}}, headers=police)
    assert answer.status_code == 200, answer.text
    found = await invitation(sessions, made["id"])
    assert (found.status, found.cancel_reason) == ("cancelled", f"no_{which[3:]}_consent")
    stored = await scalar(sessions, "SELECT facts FROM referrals WHERE id = :r", r=made["id"])
    assert stored["consent"][which] is False
    # Anything else on a closed referral is still refused, and changes nothing.
    refused = await web.patch(url, json={"notes": "more"}, headers=police)
    assert refused.status_code == 409, refused.text
    mixed = await web.patch(
        url, json={"consent": {"to_contact": True}, "notes": "more"}, headers=police
    )
    assert mixed.status_code == 409
    after = await scalar(sessions, "SELECT facts FROM referrals WHERE id = :r", r=made["id"])
    assert after == stored


async def test_a_pause_on_another_referral_of_the_same_phone_stops_the_survey(
    web: Any, sessions: Any, police: dict[str, str]
) -> None:
    from triage.services.clock import service_now
    from triage.services.contact_plan import pause_contact

    contact = fresh_contact()
    earlier = await _closed_with_invitation(web, sessions, police, **contact)
    # A new referral for the same person (another email): police say he has her phone.
    later = await _referral(
        web, police, **{**contact, "victim.email": f"{uuid.uuid4().hex}@example.org"}
    )
    async with sessions() as db:
        await pause_contact(db, uuid.UUID(later["id"]), "staff:test", await service_now(db))
    found = await invitation(sessions, earlier["id"])
    assert (found.status, found.cancel_reason) == ("cancelled", "paused")
    # And while that pause stands, no closure invites that phone.
    third = await _referral(
        web, police, **{**contact, "victim.email": f"{uuid.uuid4().hex}@example.org"}
    )
    async with sessions() as db:
        await db.execute(
            text(
                "UPDATE survey_invitations SET created_at = created_at - interval '91 days' "
                "WHERE referral_id = :r"
            ),
            {"r": earlier["id"]},
        )
        await db.commit()
    await close_cases(sessions, third["id"])
    assert await invitations_of(sessions, third["id"]) == []


async def test_a_wrong_number_on_another_referral_stops_the_survey_to_that_phone(
    web: Any, sessions: Any, police: dict[str, str]
) -> None:
    contact = fresh_contact()
    earlier = await _closed_with_invitation(web, sessions, police, **contact)
    later = await _referral(
        web, police, **{**contact, "victim.email": f"{uuid.uuid4().hex}@example.org"}
    )
    async with sessions() as db:
        await db.execute(
            text("UPDATE contact_steps SET status = 'due' WHERE referral_id = :r"),
            {"r": later["id"]},
        )
        await db.commit()
    step = await open_step(sessions, later["id"])
    await record(sessions, step.id, "wrong_number")
    found = await invitation(sessions, earlier["id"])
    assert (found.status, found.cancel_reason) == ("cancelled", "wrong_number")


async def test_the_end_of_another_cases_contact_leaves_the_survey_alone(
    web: Any, sessions: Any, police: dict[str, str], notifier: Any
) -> None:
    """One case closed as supported, its invitation sent and its reminder written (queued);
    the other case's victim is then reached by phone, which ends the plan and stops pending
    contact. The reminder is not contact: it still goes."""
    made, _ = await invited(web, sessions, police, notifier)
    await due_now(sessions, made["id"])
    assert (await sweep_surveys(sessions)).get("reminded") == 1
    reminder = (await survey_messages(sessions, made["id"]))[-1]
    assert reminder.template == "survey_reminder" and reminder.status == "queued"
    async with sessions() as db:
        await db.execute(
            text("""UPDATE contact_steps SET status = 'due'
                    WHERE referral_id = :r AND status = 'scheduled' AND kind = 'call'"""),
            {"r": made["id"]},
        )
        await db.commit()
    step = await open_step(sessions, made["id"])
    await record(sessions, step.id, "reached")
    assert (await survey_messages(sessions, made["id"]))[-1].status == "queued"
    assert (await invitation(sessions, made["id"])).status == "reminded"


async def test_a_reminder_only_follows_an_invitation_that_went(
    web: Any, sessions: Any, police: dict[str, str]
) -> None:
    made = await _closed_with_invitation(web, sessions, police)
    await due_now(sessions, made["id"])
    assert (await sweep_surveys(sessions)).get("invited") == 1
    [first] = await survey_messages(sessions, made["id"])
    assert first.status == "queued"  # not sent yet: an outage, a long wait for a safe time
    # Still waiting when the reminder falls due: the reminder waits a day.
    await due_now(sessions, made["id"])
    assert (await sweep_surveys(sessions)).get("reminder_waits") == 1
    waiting = await invitation(sessions, made["id"])
    now = await service_time(sessions)
    assert waiting.status == "invited" and waiting.due_at > now + timedelta(hours=23)
    # Never went (stopped, or every channel failed): no reminder of it; the invitation ends.
    async with sessions() as db:
        await db.execute(
            text("UPDATE messages SET status = 'cancelled', final_at = now() WHERE id = :m"),
            {"m": first.id},
        )
        await db.commit()
    await due_now(sessions, made["id"])
    await sweep_surveys(sessions)
    ended = await invitation(sessions, made["id"])
    assert (ended.status, ended.cancel_reason) == ("cancelled", "invitation_not_sent")
    assert len(await survey_messages(sessions, made["id"])) == 1


async def test_a_case_surveyed_twice_keeps_the_newest_closure_scores(
    web: Any, sessions: Any, police: dict[str, str], notifier: Any
) -> None:
    from survey_support import answer

    from triage.domain.principals import staff
    from triage.services import case_work
    from triage.services.catalogues import current_catalogue
    from triage.services.clock import service_now

    made, link = await invited(web, sessions, police, notifier)
    assert (await answer(web, link, wellbeing="2")).status_code == 303
    case_id = (await invitation(sessions, made["id"])).case_id
    lead = staff(uuid.uuid4(), frozenset({"duty_lead"}), frozenset())
    async with sessions() as db:
        await case_work.reopen(db, lead, case_id, "more support", await service_now(db))
    # The earlier invitation is 91 days old: the same victim may be asked again.
    async with sessions() as db:
        await db.execute(
            text(
                "UPDATE survey_invitations SET created_at = created_at - interval '91 days' "
                "WHERE referral_id = :r"
            ),
            {"r": made["id"]},
        )
        await db.commit()
        await case_work.close(
            db, lead, case_id, "supported", await service_now(db), catalogue=current_catalogue()
        )
    second = (await invitations_of(sessions, made["id"]))[-1]
    assert second.status == "scheduled"
    await due_now(sessions, made["id"])
    await sweep_surveys(sessions)
    from survey_support import link_of, send

    message = (await survey_messages(sessions, made["id"]))[-1]
    assert await send(sessions, notifier, message.id) == "accepted"
    again = await answer(web, await link_of(sessions, message.id), wellbeing="5")
    assert again.status_code == 303, again.text
    score = await scalar(
        sessions,
        """SELECT score FROM case_outcomes WHERE case_id = :c AND stage = 'closure'
           AND source = 'survey' AND measure = 'wellbeing'""",
        c=case_id,
    )
    assert score == 5
    assert (
        await scalar(
            sessions, "SELECT count(*) FROM survey_responses WHERE case_id = :c", c=case_id
        )
        == 2
    )


async def test_an_answer_racing_a_cancellation_is_refused_not_an_error(
    web: Any, sessions: Any, police: dict[str, str], notifier: Any
) -> None:
    """The page was read (the invitation loaded into the request's session), then a pause
    committed, then the answer arrived: the lock must read the row afresh."""
    from triage.domain.surveys import read_answers
    from triage.services import surveys
    from triage.services.catalogues import current_catalogue

    made, link = await invited(web, sessions, police, notifier)
    token = link.rsplit("/", 1)[1]
    catalogue = current_catalogue()
    async with sessions() as db:
        assert await surveys.open_survey(db, token) is not None
        async with sessions() as other:
            await other.execute(
                text("""UPDATE survey_invitations SET status = 'cancelled', due_at = NULL,
                        cancel_reason = 'paused' WHERE referral_id = :r"""),
                {"r": made["id"]},
            )
            await other.commit()
        answers = read_answers(catalogue.surveys, {"satisfaction": "5"})
        assert await surveys.submit_survey(db, token, answers, catalogue) is False
    assert (
        await scalar(
            sessions,
            """SELECT count(*) FROM survey_responses r JOIN survey_invitations i
           ON i.id = r.invitation_id WHERE i.referral_id = :r""",
            r=made["id"],
        )
        == 0
    )
