"""Consent kept as given or defaulted, so a PATCH cannot bypass explicit consent (issue 9,
point 1); resends compared on what was sent, never on values derived from the clock (point 5);
an empty PATCH is refused (point 12)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest
from contact_support import LONDON, move_clock_to, reset_clock, service_time
from helpers import DELETE, assert_problem, bearer, paths, referral, rows, scalar

URL = "/api/v1/referrals"


@pytest.fixture(autouse=True)
async def clock(sessions: Any) -> AsyncIterator[None]:
    await reset_clock(sessions)
    yield
    await reset_clock(sessions)


def theft(**changes: Any) -> dict[str, Any]:
    """A police theft referral sent without any consent: policy lets it through, defaulted."""
    return referral(**{"offence.category": "theft", "flags": [], "consent": DELETE, **changes})


async def decisions(sessions: Any, referral_id: str) -> int:
    return int(
        await scalar(
            sessions,
            "SELECT count(*) FROM triage_decisions WHERE referral_id = :r",
            r=uuid.UUID(referral_id),
        )
    )


async def facts_of(sessions: Any, referral_id: str) -> tuple[Any, str, str]:
    [row] = await rows(
        sessions,
        "SELECT facts, content_hash, referral_consent FROM referrals WHERE id = :r",
        r=uuid.UUID(referral_id),
    )
    return row.facts, row.content_hash, row.referral_consent


# -- 1. consent given or defaulted ---------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"offence": {"category": "sexual"}}, "sexual"),
        ({"flags": ["domestic_abuse"]}, "domestic abuse"),
        ({"offence": {"category": "domestic_abuse"}}, "domestic abuse"),
        ({"flags": ["bereaved_by_homicide"]}, "bereaved"),
    ],
)
async def test_patch_needing_explicit_consent_it_lacks_is_422(
    client: Any, make_key: Any, sessions: Any, change: dict[str, Any], reason: str
) -> None:
    _, key = await make_key("police")
    created = await client.post(URL, json=theft(), headers=bearer(key))
    assert created.status_code == 201, created.text
    referral_id = created.json()["id"]
    before = await facts_of(sessions, referral_id)
    assert before[2] == "defaulted"
    answer = await client.patch(f"{URL}/{referral_id}", json=change, headers=bearer(key))
    problem = assert_problem(answer, 422)
    assert paths(problem) == ["consent.to_referral"]
    assert reason in problem["errors"][0]["message"]
    assert await facts_of(sessions, referral_id) == before  # nothing changed
    assert await decisions(sessions, referral_id) == 1
    # With the consent given in the same change, it goes through.
    given = {**change, "consent": {"to_referral": True}}
    answer = await client.patch(f"{URL}/{referral_id}", json=given, headers=bearer(key))
    assert answer.status_code == 200, answer.text
    assert (await facts_of(sessions, referral_id))[2] == "given"
    assert await decisions(sessions, referral_id) == 2


async def test_consent_given_at_intake_carries_a_later_change(
    client: Any, make_key: Any, sessions: Any
) -> None:
    _, key = await make_key("police")
    body = theft(**{"consent": {"to_referral": True}})
    created = (await client.post(URL, json=body, headers=bearer(key))).json()
    assert (await facts_of(sessions, created["id"]))[2] == "given"
    answer = await client.patch(
        f"{URL}/{created['id']}", json={"offence": {"category": "sexual"}}, headers=bearer(key)
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["triage"]["services"][0]["code"] == "isva"


async def test_a_change_without_consent_needs_still_works(
    client: Any, make_key: Any, sessions: Any
) -> None:
    _, key = await make_key("police")
    created = (await client.post(URL, json=theft(), headers=bearer(key))).json()
    answer = await client.patch(
        f"{URL}/{created['id']}", json={"offence": {"category": "burglary"}}, headers=bearer(key)
    )
    assert answer.status_code == 200, answer.text
    assert (await facts_of(sessions, created["id"]))[2] == "defaulted"


async def test_professional_consent_is_given(client: Any, make_key: Any, sessions: Any) -> None:
    _, key = await make_key("professional")
    created = (await client.post(URL, json=referral(), headers=bearer(key))).json()
    assert (await facts_of(sessions, created["id"]))[2] == "given"


# -- 12. an empty PATCH, and one that changes nothing -----------------------------------------


async def test_empty_patch_is_422_and_makes_no_decision(
    client: Any, make_key: Any, sessions: Any
) -> None:
    _, key = await make_key("police")
    created = (await client.post(URL, json=referral(), headers=bearer(key))).json()
    answer = await client.patch(f"{URL}/{created['id']}", json={}, headers=bearer(key))
    problem = assert_problem(answer, 422)
    assert "nothing to change" in problem["errors"][0]["message"]
    assert await decisions(sessions, created["id"]) == 1


async def test_patch_that_changes_nothing_makes_no_decision(
    client: Any, make_key: Any, sessions: Any
) -> None:
    _, key = await make_key("police")
    body = referral()
    created = (await client.post(URL, json=body, headers=bearer(key))).json()
    answer = await client.patch(
        f"{URL}/{created['id']}", json={"needs": body["needs"]}, headers=bearer(key)
    )
    assert answer.status_code == 200, answer.text
    assert await decisions(sessions, created["id"]) == 1


# -- 5. resends compared on what was sent -----------------------------------------------------


def _birthday_tomorrow(today: date, years: int = 30) -> date:
    day = today + timedelta(days=1)
    if (day.month, day.day) == (2, 29):
        day += timedelta(days=1)
    return day.replace(year=day.year - years)


@pytest.mark.parametrize("with_age", [False, True])
async def test_resend_after_the_victims_birthday_is_200(
    client: Any, make_key: Any, sessions: Any, with_age: bool
) -> None:
    _, key = await make_key("police")
    today = (await service_time(sessions)).astimezone(LONDON).date()
    born = _birthday_tomorrow(today)
    body = referral(**{"victim.date_of_birth": born.isoformat(), "victim.age": None})
    if with_age:
        body["victim"]["age"] = 29
    created = await client.post(URL, json=body, headers=bearer(key))
    assert created.status_code == 201, created.text
    await move_clock_to(sessions, await service_time(sessions) + timedelta(days=3))
    again = await client.post(URL, json=body, headers=bearer(key))
    assert again.status_code == 200, again.text
    assert again.json()["id"] == created.json()["id"]
    batch = await client.post(f"{URL}/batch", json={"referrals": [body]}, headers=bearer(key))
    assert batch.json()["items"][0]["status"] == "existing", batch.text
    # A changed body is still a conflict, and a new body with the stale age is still invalid.
    changed = {**body, "notes": "something else"}
    assert (await client.post(URL, json=changed, headers=bearer(key))).status_code in (409, 422)
    if with_age:
        fresh = {**body, "external_ref": "NEW/" + uuid.uuid4().hex[:8]}
        stale = await client.post(URL, json=fresh, headers=bearer(key))
        assert paths(assert_problem(stale, 422)) == ["victim.age"]


async def test_migration_backfills_consent_and_hashes(servers: Any) -> None:
    """Rows written before revision 0003: consent given where the referral needed it, else
    defaulted; hashes recomputed, so the same body resent matches."""
    from db.engine import plain_url
    from db.migrate import upgrade
    from triage.catalogue.loader import load_catalogue
    from triage.devstack import with_database
    from triage.domain.validation import validate_referral
    from triage.services.referral_rows import facts_json

    catalogue = load_catalogue()
    name = f"triage_mig_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(plain_url(servers.owner_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = with_database(plain_url(servers.owner_url), name)
        await asyncio.to_thread(upgrade, url, "0002")
        db = await asyncpg.connect(url)
        try:
            client_id = uuid.uuid4()
            await db.execute(
                "INSERT INTO api_clients (id, name, source, per_minute, batches_per_minute) "
                "VALUES ($1, 'old', 'police', 600, 20)",
                client_id,
            )
            await db.execute(
                "INSERT INTO catalogue_versions (version, catalogue_id, content) "
                "VALUES ($1, 'kent', '{}')",
                catalogue.version,
            )
            received = await db.fetchval("SELECT now()")
            bodies = {
                "theft": theft(**{"victim.date_of_birth": "1990-01-02", "victim.age": None}),
                "sexual": referral(**{"offence.category": "sexual"}),
            }
            for label, body in bodies.items():
                facts = validate_referral(body, "police", received, catalogue)
                stored = facts_json(facts)  # as 0002 stored them: the derived age included
                assert label != "theft" or stored["victim"]["age"] > 0
                await db.execute(
                    "INSERT INTO referrals (id, reference, client_id, external_ref, source, "
                    "status, received_at, content_hash, facts, priority) VALUES "
                    "($1, $2, $3, $4, 'police', 'triaged', $5, 'old-hash', $6::jsonb, 'P3')",
                    uuid.uuid4(),
                    f"KVR-26-{label}",
                    client_id,
                    label,
                    received,
                    __import__("json").dumps(stored),
                )
        finally:
            await db.close()
        await asyncio.to_thread(upgrade, url)
        db = await asyncpg.connect(url)
        try:
            found = {
                r["external_ref"]: (r["referral_consent"], r["content_hash"])
                for r in await db.fetch(
                    "SELECT external_ref, referral_consent, content_hash FROM referrals"
                )
            }
        finally:
            await db.close()
        assert found["theft"][0] == "defaulted"
        assert found["sexual"][0] == "given"
        for label, body in bodies.items():
            later = validate_referral(body, "police", received + timedelta(days=400), catalogue)
            assert found[label][1] == later.content_hash(), label
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


# -- a PATCH's null never undoes what was said for the victim's safety (review) -------------


async def test_a_null_in_a_patch_never_gives_contact_back(
    client: Any, make_key: Any, sessions: Any
) -> None:
    _, key = await make_key("police")
    created = (
        await client.post(URL, json=referral(**{"consent.to_contact": False}), headers=bearer(key))
    ).json()
    assert "no_contact_consent" in created["triage"]["flags"]
    target = f"{URL}/{created['id']}"
    empty = await client.patch(target, json={"consent": {"to_contact": None}}, headers=bearer(key))
    assert "nothing to change" in assert_problem(empty, 422)["errors"][0]["message"]
    sent_everything = {
        "consent": {"to_contact": None, "to_survey": False, "recorded_by": "PC 1"},
        "notes": "spoke to the officer again",
    }
    answer = await client.patch(target, json=sent_everything, headers=bearer(key))
    assert answer.status_code == 200, answer.text
    assert "no_contact_consent" in answer.json()["triage"]["flags"]
    facts, _, _ = await facts_of(sessions, created["id"])
    assert facts["consent"]["to_contact"] is False
    planned = await rows(
        sessions,
        "SELECT (SELECT count(*) FROM contact_steps WHERE referral_id = :r) AS steps, "
        "(SELECT count(*) FROM messages WHERE referral_id = :r) AS messages",
        r=uuid.UUID(created["id"]),
    )
    assert (planned[0].steps, planned[0].messages) == (0, 0)
    # Only a value gives it back.
    given = await client.patch(target, json={"consent": {"to_contact": True}}, headers=bearer(key))
    assert "no_contact_consent" not in given.json()["triage"]["flags"]


async def test_a_null_in_a_patch_keeps_the_safe_times(
    client: Any, make_key: Any, sessions: Any
) -> None:
    _, key = await make_key("police")
    created = (await client.post(URL, json=referral(), headers=bearer(key))).json()
    before, _, _ = await facts_of(sessions, created["id"])
    assert before["contact"]["safe_times"]
    answer = await client.patch(
        f"{URL}/{created['id']}",
        json={"contact": {"notes": "new note", "safe_times": None, "channels": None}},
        headers=bearer(key),
    )
    assert answer.status_code == 200, answer.text
    after, _, _ = await facts_of(sessions, created["id"])
    assert after["contact"]["safe_times"] == before["contact"]["safe_times"]
    assert after["contact"]["channels"] == before["contact"]["channels"]
    assert after["contact"]["notes"] == "new note"


async def test_a_null_to_referral_is_no_consent(client: Any, make_key: Any, sessions: Any) -> None:
    _, key = await make_key("police")
    created = (await client.post(URL, json=theft(), headers=bearer(key))).json()
    answer = await client.patch(
        f"{URL}/{created['id']}",
        json={"offence": {"category": "sexual"}, "consent": {"to_referral": None}},
        headers=bearer(key),
    )
    assert paths(assert_problem(answer, 422)) == ["consent.to_referral"]
