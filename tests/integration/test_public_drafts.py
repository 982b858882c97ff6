"""Public form drafts (issue 11): answers kept page by page in PostgreSQL, gone 60 minutes
after the last save, deleted on submit; a submit goes through intake with the draft's id as
its idempotency key, so submitting twice is one referral."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from contact_support import move_clock_to, reset_clock, service_time
from helpers import scalar

from triage.domain.problems import InvalidInput

pytestmark = pytest.mark.integration

BODY = {
    "victim": {
        "first_name": "Robin",
        "last_name": "Ellis",
        "date_of_birth": "1990-04-02",
        "phone": "07700 900321",
        "address": {"postcode": "ME14 1XX"},
    },
    "offence": {"category": "stalking_harassment"},
    "contact": {"channels": ["phone"], "voicemail_ok": False},
    "needs": ["emotional"],
    "consent": {"to_referral": True, "to_contact": True, "to_survey": False},
}


@pytest.fixture(autouse=True)
async def _clock(sessions: Any) -> AsyncIterator[None]:
    await reset_clock(sessions)
    yield
    await reset_clock(sessions)


@pytest.fixture
async def pool(sessions: Any) -> AsyncIterator[Any]:
    from db.pool import make_pool

    made = await make_pool(sessions.kw["bind"].url.render_as_string(hide_password=False), 2)
    try:
        yield made
    finally:
        await made.close()


async def test_a_draft_keeps_each_page_and_expires_an_hour_after_its_last_save(
    sessions: Any,
) -> None:
    from triage.services.public_referrals import answers_of, purge_expired, save_page, start_draft

    async with sessions() as db:
        draft = await start_draft(db, "self")
        assert await save_page(db, draft, "self", "about-you", {"victim.first_name": "Robin"})
        assert await save_page(db, draft, "self", "contact", {"contact.channels": ["phone"]})
        # A page saved again replaces that page only.
        assert await save_page(db, draft, "self", "about-you", {"victim.first_name": "Rob"})
        assert await answers_of(db, draft, "self") == {
            "about-you": {"victim.first_name": "Rob"},
            "contact": {"contact.channels": ["phone"]},
        }
        # Another journey's session never reads it.
        assert await answers_of(db, draft, "professional") is None
    await move_clock_to(sessions, await service_time(sessions) + timedelta(minutes=50))
    async with sessions() as db:
        assert await save_page(db, draft, "self", "what-happened", {"offence.category": "theft"})
    await move_clock_to(sessions, await service_time(sessions) + timedelta(minutes=50))
    async with sessions() as db:
        # 100 minutes since it began, 50 since the last save: still there.
        assert await answers_of(db, draft, "self") is not None
    await move_clock_to(sessions, await service_time(sessions) + timedelta(minutes=11))
    async with sessions() as db:
        assert await answers_of(db, draft, "self") is None
        assert not await save_page(db, draft, "self", "needs", {"needs": ["emotional"]})
        assert await purge_expired(db) >= 1
    assert await scalar(sessions, "SELECT count(*) FROM public_drafts WHERE id = :d", d=draft) == 0


async def test_submitting_twice_is_one_referral_and_the_draft_is_deleted(
    sessions: Any, pool: Any
) -> None:
    from triage.services.catalogues import current_catalogue
    from triage.services.public_referrals import external_ref_of, start_draft, submit

    async with sessions() as db:
        draft = await start_draft(db, "self")
        first = await submit(db, pool, draft, "self", BODY, current_catalogue())
        again = await submit(db, pool, draft, "self", BODY, current_catalogue())
    assert first.status == "created" and again.status == "existing"
    assert (first.id, first.reference) == (again.id, again.reference)
    assert (
        await scalar(
            sessions,
            "SELECT count(*) FROM referrals WHERE external_ref = :e",
            e=external_ref_of(draft),
        )
        == 1
    )
    assert await scalar(sessions, "SELECT count(*) FROM public_drafts WHERE id = :d", d=draft) == 0
    # Taken as the self-referral form's, by the public principal, and triaged.
    source, status = (
        await scalar(sessions, "SELECT source FROM referrals WHERE id = :r", r=first.id),
        await scalar(sessions, "SELECT status FROM referrals WHERE id = :r", r=first.id),
    )
    assert (source, status) == ("self", "triaged")
    actor = await scalar(
        sessions,
        "SELECT actor FROM audit_events WHERE action = 'referral.taken' AND record_id = :r",
        r=str(first.id),
    )
    assert actor == "public:self-referral"


async def test_a_submit_the_rules_refuse_keeps_the_draft(sessions: Any, pool: Any) -> None:
    from triage.services.catalogues import current_catalogue
    from triage.services.public_referrals import start_draft, submit

    async with sessions() as db:
        draft = await start_draft(db, "self")
        broken = {**BODY, "victim": {**BODY["victim"], "phone": "12"}}
        with pytest.raises(InvalidInput) as refused:
            await submit(db, pool, draft, "self", broken, current_catalogue())
    assert any(p.path == "victim.phone" for p in refused.value.problems)
    assert await scalar(sessions, "SELECT count(*) FROM public_drafts WHERE id = :d", d=draft) == 1


async def test_an_unknown_journey_is_refused(sessions: Any) -> None:
    from triage.services.public_referrals import answers_of, start_draft

    async with sessions() as db:
        with pytest.raises(ValueError):
            await start_draft(db, "anonymous")
        assert await answers_of(db, uuid.uuid4(), "self") is None


async def test_a_child_referring_themselves_is_flagged_for_safeguarding_review(
    sessions: Any, pool: Any
) -> None:
    """Nothing asks for a parent; the hub reviews a child's own referral."""
    from triage.services.catalogues import current_catalogue
    from triage.services.public_referrals import start_draft, submit

    today = (await service_time(sessions)).date()
    child = {**BODY, "victim": {**BODY["victim"], "date_of_birth": f"{today.year - 15}-01-01"}}
    async with sessions() as db:
        taken = await submit(
            db, pool, await start_draft(db, "self"), "self", child, current_catalogue()
        )
        adult = await submit(
            db, pool, await start_draft(db, "self"), "self", BODY, current_catalogue()
        )
    flags = await scalar(sessions, "SELECT flags FROM referrals WHERE id = :r", r=taken.id)
    assert "safeguarding_review" in flags
    flags = await scalar(sessions, "SELECT flags FROM referrals WHERE id = :r", r=adult.id)
    assert "safeguarding_review" not in flags
