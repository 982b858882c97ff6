"""Survey links and pages (surveys.md, issue 12): a wrong, malformed, tampered, expired, used or
cancelled token answers the same neutral page; a token is taken once even when two submits
race; every question may be skipped; a changed form, a NUL byte or an over-long answer is a
clear error that stores nothing; free text with a safeguarding word alerts the duty lead; a
reminder claimed and waiting for the provider is not sent once the survey is answered; and the
token never reaches a log.

Invitations are advanced and messages sent through the service functions the workers run
(surveys.sweep_surveys, messaging.claim_message and deliver) with the outbox notifier, at
chosen instants of the shared service clock."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from contact_support import move_clock_to
from helpers import scalar
from sqlalchemy import text
from survey_support import (
    LEASE,
    answer,
    due_now,
    invitation,
    invited,
    open_link,
    survey_messages,
    sweep_surveys,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("service_clock_reset")]


def _neutral(html: str) -> str:
    """The page without what differs on every answer (the CSP nonce)."""
    return re.sub(r'nonce="[^"]*"', "", html)


async def _responses(sessions: Any, referral_id: str) -> int:
    return int(
        await scalar(
            sessions,
            """SELECT count(*) FROM survey_responses r
               JOIN survey_invitations i ON i.id = r.invitation_id WHERE i.referral_id = :r""",
            r=referral_id,
        )
    )


async def test_every_link_that_does_not_open_a_survey_answers_the_same_page(
    web: Any, sessions: Any, police: dict[str, str], notifier: Any
) -> None:
    made, link = await invited(web, sessions, police, notifier)
    token = link.rsplit("/", 1)[1]
    assert (await open_link(web, link)).status_code == 200
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    tries = {
        "wrong": f"/survey/{uuid.uuid4().hex}{uuid.uuid4().hex[:8]}",
        "tampered": f"/survey/{flipped}",
        "too short": f"/survey/{token[:10]}",
        "too long": f"/survey/{token * 200}",
        "not our alphabet": f"/survey/{token[:-2]}%C3%A9%00",
        "a path": "/survey/..%2F..%2Fetc%2Fpasswd",
        "an extra segment": f"{link}/x",
    }
    pages = {}
    for name, path in tries.items():
        page = await open_link(web, path)
        pages[name] = page
        assert page.status_code == 404, (name, page.status_code)
        assert "This link does not work" in page.text, name
        assert "Get support after a crime" not in page.text, name
        assert page.headers["cache-control"] == "no-store", name
    # Cancelled (the victim said no to surveys), then another victim's used and expired ones.
    reference = _neutral(pages["wrong"].text)
    for name, page in pages.items():
        assert _neutral(page.text) == reference, name
    patched = await web.patch(
        f"/api/v1/referrals/{made['id']}", json={"consent": {"to_survey": False}}, headers=police
    )
    assert patched.status_code == 200, patched.text
    cancelled = await open_link(web, link)
    assert cancelled.status_code == 404 and _neutral(cancelled.text) == reference

    used_made, used = await invited(web, sessions, police, notifier)
    assert (await answer(web, used)).status_code == 303
    page = await open_link(web, used)
    assert page.status_code == 404 and _neutral(page.text) == reference
    again = await _post_without_page(web, used)
    assert again.status_code == 404 and _neutral(again.text) == reference
    assert await _responses(sessions, used_made["id"]) == 1

    expired_made, expiring = await invited(web, sessions, police, notifier)
    ends = (await invitation(sessions, expired_made["id"])).expires_at
    await move_clock_to(sessions, ends + timedelta(seconds=5))
    page = await open_link(web, expiring)
    assert page.status_code == 404 and _neutral(page.text) == reference
    # A POST to an expired link stores nothing either.
    assert (await _post_without_page(web, expiring)).status_code == 404
    assert await _responses(sessions, expired_made["id"]) == 0


async def _post_without_page(web: Any, link: str) -> Any:
    web.cookies.clear()
    return await web.post(link, data={"csrf_token": "x"}, follow_redirects=False)


async def test_two_submits_at_once_store_one_answer(
    web: Any, sessions: Any, police: dict[str, str], notifier: Any
) -> None:
    made, link = await invited(web, sessions, police, notifier)
    page = await open_link(web, link)
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    web.cookies.clear()
    sent = await asyncio.gather(
        *(
            web.post(
                link,
                data={"csrf_token": csrf, "satisfaction": value},
                follow_redirects=False,
            )
            for value in ("5", "1")
        )
    )
    assert sorted(r.status_code for r in sent) == [303, 404]
    assert await _responses(sessions, made["id"]) == 1
    kept = await scalar(
        sessions,
        """SELECT r.answers FROM survey_responses r JOIN survey_invitations i
           ON i.id = r.invitation_id WHERE i.referral_id = :r""",
        r=made["id"],
    )
    assert kept in ({"satisfaction": 5}, {"satisfaction": 1})


async def test_every_question_may_be_skipped(
    web: Any, sessions: Any, police: dict[str, str], notifier: Any
) -> None:
    made, link = await invited(web, sessions, police, notifier)
    page = await open_link(web, link)
    # No question is marked required, every one says it is optional.
    assert "required" not in page.text
    from triage.services.catalogues import current_catalogue

    for question in current_catalogue().surveys.questions:
        assert question.text in page.text
    answered = await answer(web, link)
    assert answered.status_code == 303
    assert (await invitation(sessions, made["id"])).status == "completed"
    thanks = await open_link(web, answered.headers["location"])
    assert thanks.status_code == 200 and "Thank you" in thanks.text


@pytest.mark.parametrize(
    ("answers", "field", "message"),
    [
        ({"satisfaction": "6"}, "satisfaction", "Select one of the answers"),
        ({"recommend": "maybe; DROP TABLE"}, "recommend", "Select one of the answers"),
        ({"comments": "x" * 2001}, "comments", "2,000 characters or fewer"),
        ({"comments": "I was \x00 scared"}, "comments", "Remove the characters"),
    ],
)
async def test_a_bad_answer_is_a_clear_error_that_stores_nothing(
    web: Any,
    sessions: Any,
    police: dict[str, str],
    notifier: Any,
    answers: dict[str, str],
    field: str,
    message: str,
) -> None:
    made, link = await invited(web, sessions, police, notifier)
    refused = await answer(web, link, wellbeing="4", **answers)
    assert refused.status_code == 400, refused.text
    assert f'href="#{field}"' in refused.text and message in refused.text
    assert 'value="4" checked' in refused.text  # the answers given come back
    assert await _responses(sessions, made["id"]) == 0
    assert (await invitation(sessions, made["id"])).status == "invited"
    # Put right, it is taken.
    assert (await answer(web, link, wellbeing="4")).status_code == 303


async def test_a_changed_csrf_value_is_refused(
    web: Any, sessions: Any, police: dict[str, str], notifier: Any
) -> None:
    made, link = await invited(web, sessions, police, notifier)
    web.cookies.clear()
    refused = await web.post(
        link, data={"csrf_token": "0" * 64, "satisfaction": "5"}, follow_redirects=False
    )
    assert refused.status_code == 403 and "Sorry, we could not take that" in refused.text
    # Headed, like every survey page, with the neutral sender's name, never the service's.
    assert "Get support after a crime" not in refused.text
    assert await _responses(sessions, made["id"]) == 0


async def test_free_text_with_a_safeguarding_word_alerts_the_duty_lead(
    web: Any, sessions: Any, police: dict[str, str], notifier: Any
) -> None:
    made, link = await invited(web, sessions, police, notifier)
    said = "Thank you. I am still scared he will find out where I live."
    assert (await answer(web, link, comments=said)).status_code == 303
    row = await scalar(
        sessions,
        """SELECT row(r.free_text, r.safeguarding)::text FROM survey_responses r
           JOIN survey_invitations i ON i.id = r.invitation_id WHERE i.referral_id = :r""",
        r=made["id"],
    )
    assert "scared" in row and row.endswith(",t)")
    alert = await scalar(
        sessions,
        """SELECT status FROM alerts WHERE referral_id = :r AND kind = 'survey_safeguarding'""",
        r=made["id"],
    )
    assert alert == "raised"
    # Words that only look alike raise nothing.
    other, second = await invited(web, sessions, police, notifier)
    assert (
        await answer(web, second, comments="Skilled, kind and helpful staff")
    ).status_code == 303
    assert (
        await scalar(
            sessions,
            "SELECT count(*) FROM alerts WHERE referral_id = :r AND kind = 'survey_safeguarding'",
            r=other["id"],
        )
        == 0
    )


async def test_a_reminder_waiting_for_the_provider_is_not_sent_once_answered(
    web: Any, sessions: Any, police: dict[str, str], notifier: Any
) -> None:
    """The worker claimed and rendered the reminder and waits for the provider's rate limit;
    the victim answers meanwhile (with the first link). Released, it must not send."""
    from triage.services.catalogues import current_catalogue
    from triage.services.messaging import claim_message, deliver
    from triage.services.units import in_session

    made, link = await invited(web, sessions, police, notifier)
    await due_now(sessions, made["id"])
    assert (await sweep_surveys(sessions)).get("reminded") == 1
    reminder = (await survey_messages(sessions, made["id"]))[-1]
    assert reminder.template == "survey_reminder"
    claim = await in_session(sessions, claim_message, reminder.id, LEASE)
    gate = _Gate(notifier)
    sending = asyncio.create_task(deliver(sessions, gate, current_catalogue(), claim))
    await asyncio.wait_for(gate.reached.wait(), 10)
    assert (await answer(web, link, satisfaction="5")).status_code == 303
    row = await scalar(sessions, "SELECT status FROM messages WHERE id = :m", m=reminder.id)
    assert row == "cancelled"  # stopped by the answer itself
    gate.release.set()
    assert await asyncio.wait_for(sending, 10) != "accepted"
    assert (
        await scalar(sessions, "SELECT count(*) FROM outbox WHERE reference = :m", m=reminder.id)
        == 0
    )


async def test_an_expiry_between_the_render_and_the_call_keeps_the_message_back(
    web: Any, sessions: Any, police: dict[str, str], notifier: Any
) -> None:
    """The re-check immediately before the provider call reads the invitation: a reminder
    rendered just before the link expired is not sent with a dead link."""
    from triage.services.catalogues import current_catalogue
    from triage.services.messaging import claim_message, deliver
    from triage.services.units import in_session

    made, _ = await invited(web, sessions, police, notifier)
    await due_now(sessions, made["id"])
    await sweep_surveys(sessions)
    reminder = (await survey_messages(sessions, made["id"]))[-1]
    claim = await in_session(sessions, claim_message, reminder.id, LEASE)
    gate = _Gate(notifier)
    sending = asyncio.create_task(deliver(sessions, gate, current_catalogue(), claim))
    await asyncio.wait_for(gate.reached.wait(), 10)
    async with sessions() as db:
        await db.execute(
            text("UPDATE survey_invitations SET expires_at = now() WHERE referral_id = :r"),
            {"r": made["id"]},
        )
        await db.commit()
    gate.release.set()
    assert await asyncio.wait_for(sending, 10) != "accepted"
    assert (
        await scalar(sessions, "SELECT count(*) FROM outbox WHERE reference = :m", m=reminder.id)
        == 0
    )


class _Gate:
    """The outbox notifier, holding every send in the rate limit's wait until released."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.timeout = inner.timeout
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def wait_for_turn(self) -> None:
        self.reached.set()
        await self.release.wait()

    async def send(self, outgoing: Any) -> str:
        return await self.inner.send(outgoing)  # type: ignore[no-any-return]

    async def lookup(self, reference: uuid.UUID) -> str | None:
        return await self.inner.lookup(reference)  # type: ignore[no-any-return]


async def test_the_token_never_reaches_the_access_log(
    web: Any,
    sessions: Any,
    police: dict[str, str],
    notifier: Any,
    capfd: pytest.CaptureFixture[str],
) -> None:
    _, link = await invited(web, sessions, police, notifier)
    token = link.rsplit("/", 1)[1]
    capfd.readouterr()
    await open_link(web, link)
    await answer(web, link, comments="fine")
    out, err = capfd.readouterr()
    # The app's own access lines (JSON, one per request) say /survey/… and never the token.
    lines = [line for line in out.splitlines() if '"event":"request"' in line]
    assert lines and all("/survey/\u2026" in line for line in lines if "/survey" in line)
    assert token not in "\n".join(lines)
    assert token not in err.replace(f"testserver.local{link}", "")  # the test client's own log


async def test_the_sent_body_keeps_no_token_and_the_link_reads_discreetly(
    web: Any, sessions: Any, police: dict[str, str], notifier: Any
) -> None:
    made, link = await invited(web, sessions, police, notifier)
    [message] = await survey_messages(sessions, made["id"])
    token = link.rsplit("/", 1)[1]
    assert token not in (message.body or "")
    sent = await scalar(sessions, "SELECT body FROM outbox WHERE reference = :m", m=message.id)
    assert link in sent and "police" not in sent.lower() and "victim" not in sent.lower()
