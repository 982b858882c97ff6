"""The self-referral journey through the real app (issue 11): one question a page, answers kept
in the draft, pages in order, check your answers, one referral however often it is sent, the
confirmation shown once, CSRF, expiry, no-store, no personal data in any URL, and the referral
in the hub's queue."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from contact_support import move_clock_to, reset_clock, service_time
from helpers import scalar
from staff_support import make_staff, page_showing, sign_in, soup

pytestmark = pytest.mark.integration

ANSWERS = {
    "about-you": {
        "victim.first_name": "Robin",
        "victim.last_name": "Quillfeather",
        "victim.date_of_birth-day": "2",
        "victim.date_of_birth-month": "4",
        "victim.date_of_birth-year": "1990",
        "victim.address.postcode": "ME14 1XX",
    },
    "what-happened": {"offence.category": "stalking_harassment"},
    "support": {"needs": ["emotional", "safety"]},
    "contact": {
        "contact.channels": ["phone", "sms"],
        "contact.safe_windows": ["weekday_mornings"],
        "victim.phone": "07700 900654",
        "contact.voicemail_ok": "no",
        "contact.letter_ok": "no",
        "contact.notes": "not after 5pm",
    },
    "follow-up": {"consent.to_survey": "yes"},
}
PERSONAL = ("Robin", "Quillfeather", "07700", "900654", "ME14", "1990")


@pytest.fixture(autouse=True)
async def _clock(sessions: Any) -> AsyncIterator[None]:
    await reset_clock(sessions)
    yield
    await reset_clock(sessions)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


class Visitor:
    """A person's browser: its own cookies; every answer checked for no-store and for
    personal data in the address it went to."""

    def __init__(self, web: Any) -> None:
        self.web = web
        self.cookies: dict[str, str] = {}
        self.seen: list[Any] = []

    async def go(self, method: str, path: str, data: Any = None) -> Any:
        # The test client keeps a cookie jar of its own: only this visitor's cookies go.
        self.web.cookies.clear()
        for key, value in self.cookies.items():
            self.web.cookies.set(key, value)
        answer = await self.web.request(method, path, data=data, follow_redirects=False)
        self.web.cookies.clear()
        for key, value in answer.cookies.items():
            if value:
                self.cookies[key] = value
            else:
                self.cookies.pop(key, None)
        self.seen.append(answer)
        return answer

    async def answer(self, slug: str, answers: dict[str, Any]) -> Any:
        page = await self.go("GET", f"/refer/{slug}")
        assert page.status_code == 200, (slug, page.status_code)
        return await self.go("POST", f"/refer/{slug}", {**answers, "csrf_token": _csrf(page.text)})


async def _through_to_check(visitor: Visitor, last_name: str = "Quillfeather") -> Any:
    for slug, answers in ANSWERS.items():
        if slug == "about-you":
            answers = {**answers, "victim.last_name": last_name}
        sent = await visitor.answer(slug, answers)
        assert sent.status_code in (302, 303), (slug, sent.status_code, sent.text[:500])
    check = await visitor.go("GET", "/refer/check")
    assert check.status_code == 200
    return check


async def test_a_victim_refers_themselves_and_the_hub_sees_it(web: Any, sessions: Any) -> None:
    visitor = Visitor(web)
    check = await _through_to_check(visitor)
    html = soup(check.text)
    assert html.find("h1").get_text() == "Check your answers"
    assert "Quillfeather" in check.text and "Stalking or harassment" in check.text
    changes = [a["href"] for a in html.select(".govuk-summary-list__actions a")]
    assert "/refer/contact#victim.phone" in changes
    sent = await visitor.go("POST", "/refer/check", {"csrf_token": _csrf(check.text)})
    assert sent.status_code in (302, 303) and sent.headers["location"] == "/refer/done"
    done = await visitor.go("GET", "/refer/done")
    assert done.status_code == 200
    reference = soup(done.text).select_one(".govuk-panel__body strong").get_text()
    assert reference.startswith("KVR-")
    # Only the reference: nothing the person typed is shown again.
    assert not any(word in done.text for word in PERSONAL)
    # Shown once: the session ended with it.
    again = await visitor.go("GET", "/refer/done")
    assert again.status_code in (302, 303) and again.headers["location"] == "/refer"
    row = await scalar(
        sessions,
        "SELECT jsonb_build_object('source', source, 'status', status, 'facts', facts) "
        "FROM referrals WHERE reference = :r",
        r=reference,
    )
    assert (row["source"], row["status"]) == ("self", "triaged")
    assert row["facts"]["victim"]["last_name"] == "Quillfeather"
    assert row["facts"]["contact"]["channels"] == ["phone", "sms"]
    assert row["facts"]["contact"]["safe_times"] == [
        {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "12:00"}
    ]
    assert row["facts"]["consent"]["to_survey"] is True
    assert (
        await scalar(
            sessions, "SELECT count(*) FROM public_drafts WHERE answers::text LIKE '%Quillfeather%'"
        )
        == 0
    )
    hub = await sign_in(web, await make_staff(sessions, ("hub",)))
    assert await page_showing(hub, "/staff/queue", reference) is not None
    # Every answer of the journey: no-store, and no personal data in any address.
    for answer in visitor.seen:
        assert answer.headers.get("cache-control") == "no-store", answer.url
        assert not any(word in str(answer.url) for word in PERSONAL), answer.url
        assert not any(word in answer.headers.get("location", "") for word in PERSONAL)


async def test_each_page_says_what_is_missing_and_keeps_what_was_typed(web: Any) -> None:
    visitor = Visitor(web)
    page = await visitor.go("GET", "/refer/about-you")
    empty = await visitor.go(
        "POST",
        "/refer/about-you",
        {"csrf_token": _csrf(page.text), "victim.first_name": "Robin"},
    )
    assert empty.status_code == 400
    summary = soup(empty.text).select(".govuk-error-summary a")
    assert {a["href"] for a in summary} == {"#victim.last_name", "#victim.date_of_birth-day"}
    assert 'value="Robin"' in empty.text
    assert soup(empty.text).title.get_text().startswith("Error:")
    await visitor.answer("about-you", ANSWERS["about-you"])
    await visitor.answer("what-happened", ANSWERS["what-happened"])
    await visitor.answer("support", ANSWERS["support"])
    contact = await visitor.go("GET", "/refer/contact")
    no_phone = await visitor.go(
        "POST",
        "/refer/contact",
        {
            "csrf_token": _csrf(contact.text),
            "contact.channels": ["sms"],
            "contact.voicemail_ok": "no",
            "contact.letter_ok": "maybe",
        },
    )
    assert no_phone.status_code == 400
    links = {a["href"] for a in soup(no_phone.text).select(".govuk-error-summary a")}
    assert links == {"#victim.phone", "#contact.letter_ok"}
    # A later page asked for first sends the person to the first one not answered.
    visitor2 = Visitor(web)
    await visitor2.answer("about-you", ANSWERS["about-you"])
    jump = await visitor2.go("GET", "/refer/contact")
    assert jump.status_code in (302, 303) and jump.headers["location"] == "/refer/what-happened"


async def test_sent_twice_at_once_is_one_referral(web: Any, sessions: Any) -> None:
    import random
    import string

    surname = "Q" + "".join(random.choice(string.ascii_lowercase) for _ in range(10))
    visitor = Visitor(web)
    check = await _through_to_check(visitor, surname)
    token = _csrf(check.text)
    first, second = await asyncio.gather(
        visitor.go("POST", "/refer/check", {"csrf_token": token}),
        visitor.go("POST", "/refer/check", {"csrf_token": token}),
    )
    assert {first.status_code, second.status_code} <= {302, 303}
    count = await scalar(
        sessions,
        "SELECT count(*) FROM referrals WHERE facts -> 'victim' ->> 'last_name' = :s",
        s=surname,
    )
    assert count == 1


async def test_no_csrf_token_is_refused_and_nothing_is_kept(web: Any) -> None:
    visitor = Visitor(web)
    await visitor.go("GET", "/refer/about-you")
    refused = await visitor.go("POST", "/refer/about-you", dict(ANSWERS["about-you"]))
    assert refused.status_code == 403
    assert "Quillfeather" not in refused.text


async def test_answers_are_gone_after_an_hour_without_a_change(web: Any, sessions: Any) -> None:
    visitor = Visitor(web)
    await visitor.answer("about-you", ANSWERS["about-you"])
    await move_clock_to(sessions, await service_time(sessions) + timedelta(minutes=61))
    later = await visitor.go("GET", "/refer/what-happened")
    assert later.status_code in (302, 303) and later.headers["location"] == "/refer/expired"
    expired = await visitor.go("GET", "/refer/expired")
    assert expired.status_code == 200 and "deleted" in expired.text


async def test_a_professional_refers_with_the_victims_agreement(web: Any, sessions: Any) -> None:
    import random
    import string

    surname = "P" + "".join(random.choice(string.ascii_lowercase) for _ in range(10))
    visitor = Visitor(web)
    base = "/refer/professional"
    pages = {
        "about-you": {
            "referrer.name": "Dr Ada Jones",
            "referrer.organisation": "High Street Surgery",
            "referrer.role": "GP",
            "referrer.phone": "01632 960001",
            "referrer.email": "ada.jones@example.org",
        },
        "victim": {**ANSWERS["about-you"], "victim.last_name": surname},
        "consent": {"consent.to_referral": "yes"},
        **{slug: answers for slug, answers in ANSWERS.items() if slug != "about-you"},
    }
    # Without the victim's agreement the referral is not taken: the page says so.
    for slug, answers in pages.items():
        page = await visitor.go("GET", f"{base}/{slug}")
        assert page.status_code == 200, (slug, page.status_code)
        if slug == "consent":
            refused = await visitor.go(
                "POST",
                f"{base}/consent",
                {"csrf_token": _csrf(page.text), **{"consent.to_referral": "no"}},
            )
            assert refused.status_code == 400 and "agreed" in refused.text
        sent = await visitor.go(
            "POST", f"{base}/{slug}", {**answers, "csrf_token": _csrf(page.text)}
        )
        assert sent.status_code in (302, 303), (slug, sent.status_code, sent.text[:300])
    check = await visitor.go("GET", f"{base}/check")
    assert "Dr Ada Jones" in check.text and "Has the victim agreed" in check.text
    sent = await visitor.go("POST", f"{base}/check", {"csrf_token": _csrf(check.text)})
    assert sent.headers["location"] == f"{base}/done"
    done = await visitor.go("GET", f"{base}/done")
    reference = soup(done.text).select_one(".govuk-panel__body strong").get_text()
    row = await scalar(
        sessions,
        "SELECT jsonb_build_object('source', source, 'consent', referral_consent, 'facts', facts) "
        "FROM referrals WHERE reference = :r",
        r=reference,
    )
    assert (row["source"], row["consent"]) == ("professional", "given")
    assert row["facts"]["referrer"]["organisation"] == "High Street Surgery"
    assert row["facts"]["victim"]["last_name"] == surname
    # A self-referral's session never reads the professional's pages, nor the other way.
    other = await visitor.go("GET", "/refer/consent")
    assert other.status_code == 404


async def test_too_many_answers_from_one_address_get_the_refusal_page(web: Any) -> None:
    """Past the per-address limit an answer is refused with the public 429 page (999, the
    hub's number, how long to wait), never a stack trace; the count is per address only."""
    from triage.api.rate_limits import FailedKeyChecks

    state = web.app.state
    settings = state.settings
    # Four a minute: starting the form counts, as each answer does.
    state.form_posts = FailedKeyChecks(
        state.redis, settings.secret_key, 4, prefix=f"refer-test-{uuid.uuid4().hex[:8]}"
    )
    try:
        visitor = Visitor(web)
        page = await visitor.go("GET", "/refer/about-you")
        token = _csrf(page.text)
        answers = [
            await visitor.go("POST", "/refer/about-you", {"csrf_token": token}) for _ in range(4)
        ]
        assert [a.status_code for a in answers[:3]] == [400, 400, 400]
        refused = answers[3]
        assert refused.status_code == 429
        assert refused.headers["cache-control"] == "no-store"
        assert int(refused.headers["retry-after"]) <= 60
        text = soup(refused.text).get_text(" ", strip=True)
        assert "999" in text and settings.hub_phone in text
        assert "Traceback" not in refused.text
    finally:
        state.form_posts = None


async def test_a_filled_hidden_field_is_taken_and_flagged_never_dropped(
    web: Any, sessions: Any
) -> None:
    import random
    import string

    surname = "H" + "".join(random.choice(string.ascii_lowercase) for _ in range(10))
    visitor = Visitor(web)
    for slug, answers in ANSWERS.items():
        if slug == "about-you":
            answers = {**answers, "victim.last_name": surname, "website": "http://spam.example"}
        sent = await visitor.answer(slug, answers)
        assert sent.status_code in (302, 303), (slug, sent.status_code)
    check = await visitor.go("GET", "/refer/check")
    assert "spam.example" not in check.text
    await visitor.go("POST", "/refer/check", {"csrf_token": _csrf(check.text)})
    flags = await scalar(
        sessions,
        "SELECT flags FROM referrals WHERE facts -> 'victim' ->> 'last_name' = :s",
        s=surname,
    )
    assert "possibly_automated" in flags
    # Without the hidden field filled, no such flag.
    plain = "N" + surname[1:]
    visitor = Visitor(web)
    check = await _through_to_check(visitor, plain)
    await visitor.go("POST", "/refer/check", {"csrf_token": _csrf(check.text)})
    flags = await scalar(
        sessions,
        "SELECT flags FROM referrals WHERE facts -> 'victim' ->> 'last_name' = :s",
        s=plain,
    )
    assert flags is not None and "possibly_automated" not in flags


async def test_errors_outside_the_public_router_are_public_pages_too(web: Any) -> None:
    """A wrong method on a public page, or an address under it no route knows, is the public
    GOV.UK page (no-store, 999), never the API's JSON."""
    for method, path in (("POST", "/refer"), ("POST", "/privacy"), ("PUT", "/refer/check")):
        answer = await web.request(method, path, follow_redirects=False)
        assert answer.status_code in (403, 404, 405), (method, path, answer.status_code)
        assert answer.headers["content-type"].startswith("text/html"), (method, path)
        assert answer.headers["cache-control"] == "no-store"
        assert "999" in answer.text


async def test_exit_this_page_deletes_the_answers_on_the_way_out(web: Any, sessions: Any) -> None:
    """Back after Exit, or Start now again, shows nothing the person typed: the session ended
    and the draft was deleted on the way to the neutral site."""
    visitor = Visitor(web)
    await visitor.answer("about-you", ANSWERS["about-you"])
    draft_count = "SELECT count(*) FROM public_drafts WHERE answers::text LIKE '%Quillfeather%'"
    assert await scalar(sessions, draft_count) >= 1
    before = await scalar(sessions, draft_count)
    leaving = await visitor.go("GET", "/refer/exit")
    assert leaving.status_code in (302, 303)
    assert leaving.headers["location"] == web.app.state.settings.exit_url
    assert await scalar(sessions, draft_count) == before - 1
    again = await visitor.go("GET", "/refer/about-you")
    assert again.status_code == 200 and "Quillfeather" not in again.text


async def test_a_second_click_on_send_shows_the_reference(web: Any) -> None:
    """Without JavaScript a double click sends twice: the browser shows the second answer,
    which must be the confirmation, not "your answers were deleted"."""
    visitor = Visitor(web)
    check = await _through_to_check(visitor)
    token = _csrf(check.text)
    first = await visitor.go("POST", "/refer/check", {"csrf_token": token})
    second = await visitor.go("POST", "/refer/check", {"csrf_token": token})
    assert first.headers["location"] == second.headers["location"] == "/refer/done"
    done = await visitor.go("GET", "/refer/done")
    assert "Referral sent" in done.text


async def test_opening_the_form_makes_no_draft_until_the_first_answer(
    web: Any, sessions: Any
) -> None:
    count = "SELECT count(*) FROM public_drafts"
    before = await scalar(sessions, count)
    for _ in range(5):
        assert (await Visitor(web).go("GET", "/refer/about-you")).status_code == 200
    assert await scalar(sessions, count) == before


async def test_a_form_body_that_is_not_text_is_a_400_page(web: Any) -> None:
    visitor = Visitor(web)
    page = await visitor.go("GET", "/refer/about-you")
    token = _csrf(page.text).encode()
    body = (
        b'--x\r\nContent-Disposition: form-data; name="victim.first_name"\r\n\r\n\xff\xfe\r\n'
        b'--x\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
        + token
        + b"\r\n--x--\r\n"
    )
    web.cookies.clear()
    for key, value in visitor.cookies.items():
        web.cookies.set(key, value)
    answer = await web.post(
        "/refer/about-you",
        content=body,
        headers={"content-type": "multipart/form-data; boundary=x"},
        follow_redirects=False,
    )
    web.cookies.clear()
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/html")
    assert "999" in answer.text


async def test_the_hub_sees_a_form_referrals_flags_and_safety_answers(
    web: Any, sessions: Any
) -> None:
    import random
    import string

    surname = "F" + "".join(random.choice(string.ascii_lowercase) for _ in range(10))
    visitor = Visitor(web)
    for slug, answers in ANSWERS.items():
        if slug == "about-you":
            answers = {
                **answers,
                "victim.last_name": surname,
                "victim.date_of_birth-year": str((await service_time(sessions)).year - 15),
                "website": "x",
            }
        await visitor.answer(slug, answers)
    check = await visitor.go("GET", "/refer/check")
    await visitor.go("POST", "/refer/check", {"csrf_token": _csrf(check.text)})
    referral_id = await scalar(
        sessions,
        "SELECT id FROM referrals WHERE facts -> 'victim' ->> 'last_name' = :s",
        s=surname,
    )
    hub = await sign_in(web, await make_staff(sessions, ("hub",)))
    page = await hub.get(f"/staff/referrals/{referral_id}")
    assert page.status_code == 200
    assert "A child referred themselves" in page.text
    assert "may not be a person" in page.text
    assert "not after 5pm" in page.text and "no letters" in page.text


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        (
            {"victim.date_of_birth-day": "31", "victim.date_of_birth-month": "2"},
            "victim.date_of_birth-day",
            "real date",
        ),
        ({"victim.date_of_birth-year": "2999"}, "victim.date_of_birth-day", "in the past"),
        ({"victim.date_of_birth-day": "²"}, "victim.date_of_birth-day", "real date"),
        ({"victim.first_name": "A" * 150}, "victim.first_name", "100 characters or fewer"),
        ({"victim.address.postcode": "NOT A POSTCODE"}, "victim.address.postcode", "real postcode"),
    ],
)
async def test_what_intake_would_refuse_is_said_on_its_own_page(
    web: Any, changes: dict[str, str], field: str, words: str
) -> None:
    visitor = Visitor(web)
    refused = await visitor.answer("about-you", {**ANSWERS["about-you"], **changes})
    assert refused.status_code == 400
    links = {a["href"]: a.get_text() for a in soup(refused.text).select(".govuk-error-summary a")}
    assert f"#{field}" in links and words in links[f"#{field}"], links


async def test_the_same_person_again_is_a_new_referral_linked_for_staff_and_never_said(
    web: Any, sessions: Any
) -> None:
    """A form matching an earlier referral (same name and date of birth) is taken as a new
    one and linked as a possible duplicate for staff; the person sees only a new reference."""
    import random
    import string

    surname = "D" + "".join(random.choice(string.ascii_lowercase) for _ in range(10))
    references = []
    for _ in range(2):
        visitor = Visitor(web)
        check = await _through_to_check(visitor, surname)
        await visitor.go("POST", "/refer/check", {"csrf_token": _csrf(check.text)})
        done = await visitor.go("GET", "/refer/done")
        assert "duplicate" not in done.text.lower() and "already" not in done.text.lower()
        references.append(soup(done.text).select_one(".govuk-panel__body strong").get_text())
    assert references[0] != references[1]
    linked = await scalar(
        sessions,
        "SELECT count(*) FROM referral_duplicates d JOIN referrals r ON r.id = d.referral_id "
        "JOIN referrals o ON o.id = d.duplicate_of WHERE r.reference = :new AND "
        "o.reference = :old",
        new=references[1],
        old=references[0],
    )
    assert linked == 1


async def test_a_bad_first_answer_makes_no_draft_and_a_new_form_ends_the_old(
    web: Any, sessions: Any
) -> None:
    """An empty first answer is refused without a draft; starting the other journey (or this
    one again) deletes the earlier form's answers, so Exit this page reaches everything."""
    count = "SELECT count(*) FROM public_drafts"
    visitor = Visitor(web)
    page = await visitor.go("GET", "/refer/about-you")
    before = await scalar(sessions, count)
    empty = await visitor.go("POST", "/refer/about-you", {"csrf_token": _csrf(page.text)})
    assert empty.status_code == 400
    assert await scalar(sessions, count) == before
    await visitor.answer("about-you", ANSWERS["about-you"])
    assert await scalar(sessions, count) == before + 1
    professional = await visitor.go("GET", "/refer/professional/about-you")
    assert professional.status_code == 200
    assert await scalar(sessions, count) == before
    await visitor.go("GET", "/refer/exit")
    assert await scalar(sessions, count) == before


async def test_a_re_triage_keeps_the_forms_flags(web: Any, sessions: Any) -> None:
    """A later re-triage never drops what the form asked a person to look at."""
    from sqlalchemy import text

    from triage.services.updates import KEPT_FLAGS

    assert {"safeguarding_review", "possibly_automated"} <= KEPT_FLAGS
    visitor = Visitor(web)
    check = await _through_to_check(visitor)
    await visitor.go("POST", "/refer/check", {"csrf_token": _csrf(check.text)})
    done = await visitor.go("GET", "/refer/done")
    reference = soup(done.text).select_one(".govuk-panel__body strong").get_text()
    async with sessions() as db:
        await db.execute(
            text(
                "UPDATE referrals SET flags = flags || ARRAY['safeguarding_review'] "
                "WHERE reference = :r"
            ),
            {"r": reference},
        )
        await db.commit()
    from triage.domain.principals import client
    from triage.services.catalogues import current_catalogue
    from triage.services.updates import apply_update

    referral_id = await scalar(
        sessions, "SELECT id FROM referrals WHERE reference = :r", r=reference
    )
    client_id = await scalar(
        sessions, "SELECT client_id FROM referrals WHERE reference = :r", r=reference
    )
    # The form's own intake client, as the only principal that may update its referral.
    form = client(client_id, frozenset({"referrals:write"}), "self")
    async with sessions() as db:
        await apply_update(db, form, referral_id, {"needs": ["emotional"]}, current_catalogue())
    flags = await scalar(sessions, "SELECT flags FROM referrals WHERE reference = :r", r=reference)
    assert "safeguarding_review" in flags
