"""A phone referral taken by hub staff goes through intake (the API's rules, triage and rows),
shows its errors as a GOV.UK error summary linked to the fields with the values kept, is
recorded as taken by that person, and a form sent twice makes one referral."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import scalar
from staff_support import csrf_of, make_staff, sign_in, soup

pytestmark = pytest.mark.integration


ANSWERS = {
    "source": "self",
    "victim.first_name": "Alex",
    "victim.last_name": "Morgan",
    "victim.date_of_birth-day": "2",
    "victim.date_of_birth-month": "4",
    "victim.date_of_birth-year": "1990",
    "victim.phone": "07700 900456",
    "victim.address.postcode": "ME14 1XX",
    "offence.category": "theft",
    "contact.channels": ["phone"],
    "contact.voicemail_ok": "no",
    "consent.to_referral": "yes",
    "consent.to_contact": "yes",
}


async def test_a_phone_referral_is_taken_through_intake(web: Any, sessions: Any) -> None:
    hub_user = await make_staff(sessions, ("hub",))
    hub = await sign_in(web, hub_user)
    page = await hub.get("/staff/phone-referral/")
    assert page.status_code == 200
    token = csrf_of(page.text)
    external_ref = soup(page.text).find("input", {"name": "external_ref"})["value"]
    response = await hub.post(
        "/staff/phone-referral/", {"csrf_token": token, "external_ref": external_ref, **ANSWERS}
    )
    assert response.status_code in (302, 303), response.text
    location = response.headers["location"]
    referral_id = location.rsplit("/", 1)[1]
    assert (
        await scalar(sessions, "SELECT source FROM referrals WHERE id = :r", r=referral_id)
        == "self"
    )
    assert (
        await scalar(sessions, "SELECT count(*) FROM cases WHERE referral_id = :r", r=referral_id)
        >= 1
    )
    assert (
        await scalar(
            sessions,
            "SELECT actor FROM audit_events WHERE action = 'referral.taken' AND record_id = :r",
            r=referral_id,
        )
        == f"staff:{hub_user.user_id}"
    )
    page = await hub.get(location)
    assert "Alex Morgan" in page.text and "taken" in page.text
    # The same form sent again (a double click): still one referral.
    again = await hub.post(
        "/staff/phone-referral/", {"csrf_token": token, "external_ref": external_ref, **ANSWERS}
    )
    assert again.status_code in (302, 303)
    assert again.headers["location"] == location
    assert (
        await scalar(
            sessions,
            "SELECT count(*) FROM referrals WHERE facts->'victim'->>'last_name' = 'Morgan' "
            "AND external_ref = :e",
            e=external_ref,
        )
        == 1
    )


async def test_errors_are_a_summary_linked_to_fields_with_values_kept(
    web: Any, sessions: Any
) -> None:
    hub = await sign_in(web, await make_staff(sessions, ("hub",)))
    page = await hub.get("/staff/phone-referral/")
    bad = {
        **ANSWERS,
        "victim.phone": "not a phone",
        "victim.date_of_birth-month": "13",
        "offence.category": "",
        "contact.channels": [],
    }
    response = await hub.post("/staff/phone-referral/", {"csrf_token": csrf_of(page.text), **bad})
    assert response.status_code == 400
    html = soup(response.text)
    summary = html.select(".govuk-error-summary a")
    targets = {a["href"] for a in summary}
    assert "#victim.phone" in targets
    assert "#victim.date_of_birth-day" in targets
    assert "#offence.category" in targets
    for href in targets:
        assert html.find(id=href[1:]) is not None, href
    assert html.title.get_text().startswith("Error:")
    # The values typed are kept.
    assert html.find(id="victim.first_name")["value"] == "Alex"
    assert (
        await scalar(
            sessions,
            "SELECT count(*) FROM referrals WHERE facts->'victim'->>'phone' = 'not a phone'",
        )
        == 0
    )


async def test_no_consent_is_refused_and_a_caseworker_cannot_take_referrals(
    web: Any, sessions: Any
) -> None:
    hub = await sign_in(web, await make_staff(sessions, ("hub",)))
    page = await hub.get("/staff/phone-referral/")
    refused = await hub.post(
        "/staff/phone-referral/",
        {"csrf_token": csrf_of(page.text), **{**ANSWERS, "consent.to_referral": "no"}},
    )
    assert refused.status_code == 400 and 'href="#consent.to_referral"' in refused.text
    worker = await sign_in(web, await make_staff(sessions, ("caseworker",), ("isva",)))
    assert (await worker.get("/staff/phone-referral/")).status_code == 403


async def test_hostile_forms_are_refused_and_write_nothing(web: Any, sessions: Any) -> None:
    hub = await sign_in(web, await make_staff(sessions, ("hub",)))
    page = await hub.get("/staff/phone-referral/")
    token = csrf_of(page.text)
    # A control character in a name: an error beside the field, nothing stored.
    nul = await hub.post(
        "/staff/phone-referral/",
        {"csrf_token": token, **ANSWERS, "victim.last_name": "Mor\x00gan\x1b[2J"},
    )
    assert nul.status_code == 400 and 'href="#victim.last_name"' in nul.text
    assert "\x00" not in nul.text and "\x1b" not in nul.text
    # A body far over the limit: the GOV.UK 413 page, not a crash and not JSON.
    huge = await hub.post(
        "/staff/phone-referral/", {"csrf_token": token, **ANSWERS, "notes": "x" * 3_000_000}
    )
    assert huge.status_code == 413
    assert "text/html" in huge.headers["content-type"]
    # Thousands of fields: refused or ignored, never a 500.
    many = await hub.post(
        "/staff/phone-referral/",
        {"csrf_token": token, **ANSWERS, **{f"f{i}": "1" for i in range(20_000)}},
    )
    assert many.status_code < 500
    assert (
        await scalar(
            sessions,
            "SELECT count(*) FROM referrals WHERE facts->'victim'->>'last_name' LIKE '%[2J%'",
        )
        == 0
    )


async def test_intake_checks_who_acts_before_anything_is_written(sessions: Any) -> None:
    """Intake takes the principal, not a key's details: a person without `referral.create`
    (a commissioner), a client key without the write scope, and a staff principal passed as
    the intake client are each refused, and no referral is written."""
    import uuid

    from helpers import referral

    from db.pool import make_pool
    from triage.domain.policy import Forbidden
    from triage.domain.principals import client, staff
    from triage.services import intake
    from triage.services.catalogues import current_catalogue
    from triage.services.phone_referrals import phone_client

    body = referral()
    catalogue = current_catalogue()
    async with sessions() as db:
        channel = await phone_client(db, "self")
    hub = staff(uuid.uuid4(), frozenset({"hub"}), frozenset())
    commissioner = staff(uuid.uuid4(), frozenset({"commissioner"}), frozenset())
    reader = client(channel.uuid, frozenset({"referrals:read"}), "self")
    pool = await make_pool(sessions.kw["bind"].url.render_as_string(hide_password=False), 1)
    try:
        with pytest.raises(Forbidden):
            await intake.submit_for_person(pool, commissioner, channel, body, catalogue)
        with pytest.raises(Forbidden):
            await intake.submit_for_person(pool, hub, reader, body, catalogue)
        with pytest.raises(Forbidden):
            await intake.submit_batch(pool, reader, [body], catalogue)
        with pytest.raises(ValueError):
            await intake.submit_for_person(pool, hub, hub, body, catalogue)
        taken = await intake.submit_for_person(pool, hub, channel, body, catalogue)
        assert taken.status == "created"
    finally:
        await pool.close()
    assert (
        await scalar(
            sessions,
            "SELECT count(*) FROM referrals WHERE external_ref = :e",
            e=body["external_ref"],
        )
        == 1
    )
    assert (
        await scalar(
            sessions,
            "SELECT actor FROM audit_events WHERE action = 'referral.taken' AND record_id = :r",
            r=str(taken.id),
        )
        == f"staff:{hub.id}"
    )
