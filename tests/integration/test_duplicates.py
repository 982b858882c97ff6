"""Possible duplicates (issue 10): linked at intake by the database, single referrals and
batches alike, within 90 days and only for the same person; merged (the newer referral closed
as a duplicate, its contact stopped) or dismissed by the hub, once; never shown to the
referrer. Every test makes its own people (random surnames), since the suite's referrals share
the database."""

from __future__ import annotations

import asyncio
import csv
import io
import random
import string
import uuid
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest
from helpers import referral
from sqlalchemy import text

from triage.domain.policy import Forbidden
from triage.domain.principals import client as client_principal
from triage.domain.principals import staff
from triage.services.duplicates import (
    DuplicateNotFound,
    DuplicateRefused,
    dismiss,
    merge,
    possible_duplicates,
)

pytestmark = pytest.mark.integration

HUB = staff(uuid.uuid4(), frozenset({"hub"}), frozenset())
CASEWORKER = staff(uuid.uuid4(), frozenset({"caseworker"}), frozenset({"domestic-abuse"}))
_rng = random.Random()


def surname() -> str:
    return "D" + "".join(_rng.choice(string.ascii_lowercase) for _ in range(9))


def birthday() -> str:
    return (date(1935, 1, 1) + timedelta(days=_rng.randrange(25_000))).isoformat()


class Person:
    """One victim's details, unlike anyone else's in the suite (the phone may repeat: only
    1,000 drama numbers, so every rule here also needs the surname)."""

    def __init__(self, first: str = "Ada") -> None:
        self.first = first
        self.last = surname()
        self.born = birthday()
        self.phone = "07700 900" + f"{_rng.randrange(1000):03d}"

    def body(self, **changes: Any) -> dict[str, Any]:
        return referral(
            **{
                "victim.first_name": self.first,
                "victim.last_name": self.last,
                "victim.date_of_birth": self.born,
                "victim.phone": self.phone,
                **changes,
            }
        )


async def post(client: Any, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/v1/referrals", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def links(sessions: Any, *referral_ids: str) -> list[Any]:
    """Every link touching these referrals, oldest first."""
    async with sessions() as db:
        return list(
            await db.execute(
                text("""SELECT id, referral_id::text AS newer, duplicate_of::text AS older,
                               matched_on, status, decided_by, decided_at, reason
                        FROM referral_duplicates
                        WHERE referral_id::text = ANY(:ids) OR duplicate_of::text = ANY(:ids)
                        ORDER BY id"""),
                {"ids": list(referral_ids)},
            )
        )


async def one_link(sessions: Any, newer: dict[str, Any], older: dict[str, Any]) -> Any:
    found = await links(sessions, newer["id"], older["id"])
    assert [(row.newer, row.older) for row in found] == [(newer["id"], older["id"])]
    return found[0]


async def state(sessions: Any, referral_id: str) -> dict[str, Any]:
    """A referral's status and its work: cases, open steps, pending messages and alerts."""
    async with sessions() as db:

        async def many(sql: str) -> list[Any]:
            return list(await db.execute(text(sql), {"r": referral_id}))

        (status,) = await many("SELECT status FROM referrals WHERE id = :r")
        return {
            "status": status[0],
            "cases": sorted(
                (row.status, row.closure_reason)
                for row in await many(
                    "SELECT status, closure_reason FROM cases WHERE referral_id = :r"
                )
            ),
            "steps": sorted(
                (row.status, row.skip_reason)
                for row in await many(
                    "SELECT status, skip_reason FROM contact_steps WHERE referral_id = :r"
                )
            ),
            "messages": sorted(
                row.status
                for row in await many("SELECT status FROM messages WHERE referral_id = :r")
            ),
            "alerts": sorted(
                (row.kind, row.status)
                for row in await many("SELECT kind, status FROM alerts WHERE referral_id = :r")
            ),
        }


async def events(sessions: Any, actor: str) -> list[Any]:
    async with sessions() as db:
        return list(
            await db.execute(
                text(
                    "SELECT action, record_type, record_id, details FROM audit_events "
                    "WHERE actor = :a ORDER BY id"
                ),
                {"a": actor},
            )
        )


# Linking at intake ---------------------------------------------------------------------------


async def test_same_name_and_date_of_birth_are_linked(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    person = Person()
    older = await post(client, police, person.body())
    # Written differently, another phone: still the same name and date of birth.
    newer = await post(
        client,
        police,
        person.body(
            **{
                "victim.first_name": "ADA",
                "victim.last_name": f"{person.last[:4]}-{person.last[4:]}".upper(),
                "victim.phone": "01632 960555",
            }
        ),
    )
    link = await one_link(sessions, newer, older)
    assert (link.matched_on, link.status, link.decided_by) == ("name_and_dob", "open", None)
    async with sessions() as db:
        event = (
            await db.execute(
                text(
                    "SELECT actor, details FROM audit_events WHERE action = 'duplicate.linked' "
                    "AND record_id = :id"
                ),
                {"id": str(link.id)},
            )
        ).one()
    assert event.actor == "system:duplicate-check"
    assert event.details == {
        "referral": newer["id"],
        "duplicate_of": older["id"],
        "matched_on": "name_and_dob",
    }


async def test_same_phone_and_surname_are_linked(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    person = Person()
    older = await post(client, police, person.body())
    relative = await post(
        client,
        police,
        person.body(**{"victim.first_name": "Bea", "victim.date_of_birth": birthday()}),
    )
    link = await one_link(sessions, relative, older)
    assert link.matched_on == "phone_and_surname"
    # Each rule finds its own newest match: the same name and date of birth is the first
    # referral, the same phone and surname the relative's.
    again = await post(client, police, person.body())
    found = await links(sessions, again["id"])
    assert {(row.older, row.matched_on) for row in found} == {
        (older["id"], "name_and_dob"),
        (relative["id"], "phone_and_surname"),
    }
    # When both rules find the same referral: one link, by the stronger rule.
    twin = await post(client, police, person.body())
    assert {(row.older, row.matched_on) for row in await links(sessions, twin["id"])} == {
        (again["id"], "name_and_dob")
    }


async def test_each_new_referral_is_linked_to_the_newest_older_one(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    person = Person()
    first = await post(client, police, person.body())
    second = await post(client, police, person.body())
    third = await post(client, police, person.body())
    found = await links(sessions, first["id"], second["id"], third["id"])
    assert [(row.newer, row.older, row.matched_on) for row in found] == [
        (second["id"], first["id"], "name_and_dob"),
        (third["id"], second["id"], "name_and_dob"),
    ]


async def test_different_people_are_not_linked(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    person = Person()
    first = await post(client, police, person.body())
    others = [
        # Same name, another date of birth and phone.
        person.body(**{"victim.date_of_birth": birthday(), "victim.phone": "01632 960111"}),
        # Same phone, another surname (and date of birth).
        person.body(**{"victim.last_name": surname(), "victim.date_of_birth": birthday()}),
        # Same surname and date of birth, another first name and phone.
        person.body(**{"victim.first_name": "Cy", "victim.phone": "01632 960112"}),
    ]
    made = [await post(client, police, body) for body in others]
    assert await links(sessions, first["id"], *(m["id"] for m in made)) == []


async def test_not_linked_after_90_days(client: Any, police: dict[str, str], sessions: Any) -> None:
    async def backdated(days: int) -> dict[str, Any]:
        person = Person()
        older = await post(client, police, person.body())
        async with sessions() as db:
            await db.execute(
                text(
                    "UPDATE referrals SET received_at = received_at - make_interval(days => :d) "
                    "WHERE id = :id"
                ),
                {"d": days, "id": older["id"]},
            )
            await db.commit()
        newer = await post(client, police, person.body())
        return {"older": older, "newer": newer}

    long_ago = await backdated(91)
    assert await links(sessions, long_ago["older"]["id"], long_ago["newer"]["id"]) == []
    recent = await backdated(89)
    await one_link(sessions, recent["newer"], recent["older"])


async def test_linked_within_a_json_batch_and_a_csv_batch(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    person, stranger = Person(), Person("Bo")
    response = await client.post(
        "/api/v1/referrals/batch",
        json={"referrals": [person.body(), stranger.body(), person.body()]},
        headers=police,
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [item["status"] for item in items] == ["created"] * 3
    await one_link(sessions, items[2], items[0])
    assert await links(sessions, items[1]["id"]) == []

    csv_person = Person("Cy")
    rows = [_csv_row(csv_person, f"46/{uuid.uuid4().hex[:10]}/26") for _ in range(2)]
    response = await client.post(
        "/api/v1/referrals/batch",
        content=_csv(rows).encode(),
        headers={**police, "Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [item["status"] for item in items] == ["created"] * 2
    await one_link(sessions, items[1], items[0])


def _csv_row(person: Person, external_ref: str) -> dict[str, str]:
    return {
        "external_ref": external_ref,
        "victim.first_name": person.first,
        "victim.last_name": person.last,
        "victim.date_of_birth": person.born,
        "victim.phone": person.phone,
        "contact.channels": "phone; sms",
        "offence.category": "theft",
    }


def _csv(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


async def test_a_batch_of_one_person_is_a_chain_not_every_pair(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    person = Person()
    size = 400
    response = await client.post(
        "/api/v1/referrals/batch",
        json={"referrals": [person.body() for _ in range(size)]},
        headers=police,
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    ids = [item["id"] for item in items]
    found = await links(sessions, *ids)
    # Each item linked to the one before it, in the batch's order (its references' order).
    assert len(found) == size - 1
    assert {(row.newer, row.older) for row in found} == set(zip(ids[1:], ids[:-1], strict=True))


# Deciding ------------------------------------------------------------------------------------


async def _pair(client: Any, police: dict[str, str], sessions: Any) -> tuple[Any, Any, Any]:
    older, newer, link, _ = await _pair_of(client, police, sessions)
    return older, newer, link


async def _pair_of(
    client: Any, police: dict[str, str], sessions: Any
) -> tuple[Any, Any, Any, Person]:
    """Two referrals of one person and the link intake made between them."""
    person = Person()
    older = await post(client, police, person.body())
    newer = await post(client, police, person.body())
    return older, newer, await one_link(sessions, newer, older), person


async def test_merge_closes_the_newer_referral_as_a_duplicate(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    older, newer, link = await _pair(client, police, sessions)
    older_before = await state(sessions, older["id"])
    before = await state(sessions, newer["id"])
    assert before["status"] == "triaged" and len(before["cases"]) >= 1
    assert before["steps"] == [("scheduled", None)]
    assert before["messages"] and set(before["messages"]) == {"queued"}
    assert ("deadline_breach", "pending") in before["alerts"]

    me = staff(uuid.uuid4(), frozenset({"hub"}), frozenset())
    async with sessions() as db:
        await merge(db, me, link.id, "Same victim and incident, sent twice")

    after = await state(sessions, newer["id"])
    assert after["status"] == "closed"
    assert after["cases"] == [("closed", "duplicate")] * len(before["cases"])
    assert after["steps"] == [("skipped", "duplicate")]
    assert after["messages"] == ["cancelled"] * len(before["messages"])
    assert ("deadline_breach", "cancelled") in after["alerts"]
    assert all(status != "pending" for _, status in after["alerts"])
    assert await state(sessions, older["id"]) == older_before  # the older one carries on
    (decided,) = await links(sessions, newer["id"])
    assert (decided.status, decided.decided_by) == ("merged", me.actor)
    assert decided.decided_at is not None
    assert decided.reason == "Same victim and incident, sent twice"

    audit = await events(sessions, me.actor)
    actions = [(e.action, e.record_type) for e in audit]
    assert actions[0] == ("contact.stopped", "referral")
    assert actions[1:-2] == [("case.closed", "case")] * len(before["cases"])
    assert actions[-2:] == [("referral.closed", "referral"), ("duplicate.merged", "duplicate")]
    assert audit[-1].record_id == str(link.id)
    assert audit[-1].details == {"referral": newer["id"], "duplicate_of": older["id"]}
    assert audit[-2].details == {"reason": "duplicate", "duplicate_of": older["id"]}
    assert "sent twice" not in str([tuple(e) for e in audit])  # the reason is not audit text


async def test_dismiss_leaves_both_referrals_as_they_were(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    older, newer, link = await _pair(client, police, sessions)
    before = [await state(sessions, r["id"]) for r in (older, newer)]
    me = staff(uuid.uuid4(), frozenset({"duty_lead"}), frozenset())
    async with sessions() as db:
        await dismiss(db, me, link.id, "Twins: another person")
    assert [await state(sessions, r["id"]) for r in (older, newer)] == before
    (decided,) = await links(sessions, newer["id"])
    assert (decided.status, decided.decided_by, decided.reason) == (
        "dismissed",
        me.actor,
        "Twins: another person",
    )
    assert [(e.action, e.record_id) for e in await events(sessions, me.actor)] == [
        ("duplicate.dismissed", str(link.id))
    ]


async def test_a_decided_link_is_not_decided_again(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    older, newer, merged = await _pair(client, police, sessions)
    async with sessions() as db:
        await merge(db, HUB, merged.id, "same person")
    after = await state(sessions, newer["id"])
    for decide in (merge, dismiss):
        async with sessions() as db:
            with pytest.raises(DuplicateRefused) as refused:
                await decide(db, HUB, merged.id, "again")
        assert refused.value.field == "decision"
        assert refused.value.message == (
            f"{newer['reference']} was already merged into {older['reference']}"
        )
    assert await state(sessions, newer["id"]) == after
    assert (await links(sessions, newer["id"]))[0].reason == "same person"

    older, newer, dismissed = await _pair(client, police, sessions)
    async with sessions() as db:
        await dismiss(db, HUB, dismissed.id, "not the same")
    async with sessions() as db:
        with pytest.raises(DuplicateRefused, match="was already dismissed"):
            await merge(db, HUB, dismissed.id, "on second thoughts")
    assert (await state(sessions, newer["id"]))["status"] == "triaged"


async def test_two_decisions_at_once_one_wins(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    _, newer, link = await _pair(client, police, sessions)

    async def decide(command: Any) -> str:
        async with sessions() as db:
            try:
                await command(db, HUB, link.id, "at once")
            except DuplicateRefused:
                return "refused"
            return "done"

    outcomes = await asyncio.gather(decide(merge), decide(dismiss))
    assert sorted(outcomes) == ["done", "refused"]
    (decided,) = await links(sessions, newer["id"])
    assert decided.status == ("merged" if outcomes[0] == "done" else "dismissed")
    assert (await state(sessions, newer["id"]))["status"] == (
        "closed" if decided.status == "merged" else "triaged"
    )


async def test_nothing_is_merged_into_a_referral_that_has_ended(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    older, newer, link = await _pair(client, police, sessions)
    response = await client.post(
        f"/api/v1/referrals/{older['id']}/withdraw", json={"reason": "victim asked"}, headers=police
    )
    assert response.status_code == 200, response.text
    async with sessions() as db:
        with pytest.raises(DuplicateRefused) as refused:
            await merge(db, HUB, link.id, "same person")
    assert refused.value.message == (
        f"{newer['reference']} cannot be merged into {older['reference']}: it is withdrawn. "
        f"Dismiss this link: {newer['reference']} carries on as it is"
    )
    assert (await links(sessions, newer["id"]))[0].status == "open"
    assert (await state(sessions, newer["id"]))["status"] == "triaged"
    async with sessions() as db:
        await dismiss(db, HUB, link.id, "older one withdrawn; this one carries on")
    assert (await links(sessions, newer["id"]))[0].status == "dismissed"


async def test_a_newer_referral_already_withdrawn_keeps_its_ending(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    older, newer, link = await _pair(client, police, sessions)
    response = await client.post(
        f"/api/v1/referrals/{newer['id']}/withdraw", json={"reason": "sent twice"}, headers=police
    )
    assert response.status_code == 200, response.text
    withdrawn = await state(sessions, newer["id"])
    me = staff(uuid.uuid4(), frozenset({"hub"}), frozenset())
    async with sessions() as db:
        await merge(db, me, link.id, "same person")
    assert await state(sessions, newer["id"]) == withdrawn
    assert {case[1] for case in withdrawn["cases"]} == {"withdrawn"}
    assert (await links(sessions, newer["id"]))[0].status == "merged"
    assert [(e.action, e.details) for e in await events(sessions, me.actor)] == [
        (
            "duplicate.merged",
            {"referral": newer["id"], "duplicate_of": older["id"], "referral_status": "withdrawn"},
        )
    ]


async def test_a_merged_referral_is_passed_over_by_later_links(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    older, _, link, person = await _pair_of(client, police, sessions)
    async with sessions() as db:
        await merge(db, HUB, link.id, "same person")
    latest = await post(client, police, person.body())
    found = await links(sessions, latest["id"])
    assert [(row.newer, row.older) for row in found] == [(latest["id"], older["id"])]


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("", "Enter the reason for the decision"),
        ("   ", "Enter the reason for the decision"),
        ("bad\x00reason", "Reason must only include letters, numbers, spaces and punctuation"),
        ("x" * 2001, "Reason must be 2,000 characters or fewer"),
    ],
)
async def test_a_decision_needs_a_reason(
    client: Any, police: dict[str, str], sessions: Any, reason: str, message: str
) -> None:
    _, newer, link = await _pair(client, police, sessions)
    for decide in (merge, dismiss):
        async with sessions() as db:
            with pytest.raises(DuplicateRefused) as refused:
                await decide(db, HUB, link.id, reason)
        assert (refused.value.field, refused.value.message) == ("reason", message)
    assert (await links(sessions, newer["id"]))[0].status == "open"


# Who sees and decides ------------------------------------------------------------------------


async def test_the_hub_lists_both_directions(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    older, newer, link = await _pair(client, police, sessions)
    me = staff(uuid.uuid4(), frozenset({"hub"}), frozenset())
    async with sessions() as db:
        from_newer = await possible_duplicates(db, me, uuid.UUID(newer["id"]))
    async with sessions() as db:
        from_older = await possible_duplicates(db, me, uuid.UUID(older["id"]))
    assert [(d.id, d.this_is, str(d.other_id), d.other_reference) for d in from_newer] == [
        (link.id, "newer", older["id"], older["reference"])
    ]
    assert [(d.id, d.this_is, str(d.other_id), d.other_reference) for d in from_older] == [
        (link.id, "older", newer["id"], newer["reference"])
    ]
    assert (from_newer[0].matched_on, from_newer[0].status) == ("name_and_dob", "open")
    assert from_newer[0].other_status == "triaged"
    assert [(e.action, e.record_id, e.details) for e in await events(sessions, me.actor)] == [
        ("duplicates.viewed", newer["id"], {"links": [link.id]}),
        ("duplicates.viewed", older["id"], {"links": [link.id]}),
    ]


@pytest.mark.parametrize(
    "principal",
    [
        CASEWORKER,
        staff(uuid.uuid4(), frozenset({"commissioner"}), frozenset()),
        staff(uuid.uuid4(), frozenset({"admin"}), frozenset()),
        client_principal(uuid.uuid4(), frozenset({"referrals:read", "referrals:write"}), "police"),
    ],
    ids=["caseworker", "commissioner", "admin", "api-client"],
)
async def test_only_the_hub_and_duty_lead_see_and_decide(
    client: Any, police: dict[str, str], sessions: Any, principal: Any
) -> None:
    _, newer, link = await _pair(client, police, sessions)
    async with sessions() as db:
        with pytest.raises(Forbidden):
            await possible_duplicates(db, principal, uuid.UUID(newer["id"]))
        with pytest.raises(Forbidden):
            await merge(db, principal, link.id, "same")
        with pytest.raises(Forbidden):
            await dismiss(db, principal, link.id, "not the same")
    assert (await links(sessions, newer["id"]))[0].status == "open"


async def test_an_unknown_link_or_referral_is_not_found_and_audited(sessions: Any) -> None:
    me = staff(uuid.uuid4(), frozenset({"hub"}), frozenset())
    missing = uuid.uuid4()
    async with sessions() as db:
        with pytest.raises(DuplicateNotFound):
            await merge(db, me, 2**62, "same")
    async with sessions() as db:
        with pytest.raises(DuplicateNotFound):
            await possible_duplicates(db, me, missing)
    assert [(e.action, e.record_type, e.record_id) for e in await events(sessions, me.actor)] == [
        ("duplicate.change_refused", "duplicate", str(2**62)),
        ("duplicates.view_refused", "referral", str(missing)),
    ]


# api.md's referral object: nothing else, ever.
API_FIELDS = {
    "id",
    "reference",
    "external_ref",
    "status",
    "received_at",
    "updated_at",
    "triage",
    "cases",
}


async def test_the_machine_api_never_shows_duplicates(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    older, newer, link = await _pair(client, police, sessions)

    async def seen() -> str:
        parts = []
        for item in (older, newer):
            response = await client.get(f"/api/v1/referrals/{item['id']}", headers=police)
            assert response.status_code == 200
            assert set(response.json()) <= API_FIELDS
            parts.append(response.text)
        for query in (
            f"external_ref={newer['external_ref']}",
            "updated_since=2000-01-01T00:00:00Z",
        ):
            response = await client.get(f"/api/v1/referrals?{query}", headers=police)
            assert response.status_code == 200
            parts.append(response.text)
        return "\n".join(parts)

    before = await seen()
    async with sessions() as db:
        await merge(db, HUB, link.id, "same person")
    after = await seen()
    for body in (before, after):
        assert "possible" not in body and "duplicate_of" not in body and "matched" not in body
    newer_view = (await client.get(f"/api/v1/referrals/{newer['id']}", headers=police)).text
    assert older["id"] not in newer_view and older["reference"] not in newer_view
    # Not even the closure reason says it: `duplicate` would tell the referrer the victim is
    # known by another referral.
    assert "duplicate" not in newer_view
    assert (
        newer["id"]
        not in (await client.get(f"/api/v1/referrals/{older['id']}", headers=police)).text
    )


# The migration -------------------------------------------------------------------------------


async def test_migration_upgrade_and_downgrade(servers: Any) -> None:
    """Referrals already there get their search columns; nothing is linked retroactively; down
    to 0008 removes all of it, and up again works."""
    from db.engine import plain_url
    from db.migrate import downgrade, upgrade
    from triage.devstack import create_database, drop_database

    url = await asyncio.to_thread(create_database, servers.owner_url, "triage_dup_mig")
    try:
        await asyncio.to_thread(upgrade, url, "0008")
        db = await asyncpg.connect(plain_url(url))
        try:
            facts = (
                '{"victim": {"first_name": "Ada", "last_name": "O\'Brien", '
                '"date_of_birth": "1990-02-03", "phone": "+447700900123", '
                '"address": {"postcode": "CT1 2AB"}}}'
            )
            for n in (1, 2):
                await db.execute(
                    "INSERT INTO referrals (id, reference, source, status, received_at, "
                    "content_hash, facts, referral_consent, priority) VALUES "
                    "($1, $2, 'police', 'triaged', now(), 'x', $3::jsonb, 'given', 'P3')",
                    uuid.uuid4(),
                    f"MIG-{n}",
                    facts,
                )
            await db.close()
            await asyncio.to_thread(upgrade, url)
            db = await asyncpg.connect(plain_url(url))
            rows = await db.fetch(
                "SELECT victim_surname_key, victim_name_key, victim_dob, victim_phone_digits, "
                "victim_postcode_key, victim_names::text FROM referrals"
            )
            assert [tuple(row) for row in rows] == [
                (
                    "obrien",
                    "adaobrien",
                    date(1990, 2, 3),
                    "447700900123",
                    "CT12AB",
                    "'ada':1 'brien':3 'o':2",
                )
            ] * 2
            assert await db.fetchval("SELECT count(*) FROM referral_duplicates") == 0
            # Migration 0011 gave referrals without a decision the area `unknown`.
            assert await db.fetchval("SELECT array_agg(DISTINCT area) FROM referrals") == [
                "unknown"
            ]
            await db.execute(
                "INSERT INTO referrals (id, reference, source, status, received_at, "
                "content_hash, facts, referral_consent, priority, area) VALUES "
                "($1, 'MIG-3', 'police', 'triaged', now(), 'x', $2::jsonb, 'given', 'P3', "
                "'unknown')",
                uuid.uuid4(),
                facts,
            )
            assert await db.fetchval("SELECT count(*) FROM referral_duplicates") == 1
            await db.close()
            await asyncio.to_thread(downgrade, url, "0008")
            db = await asyncpg.connect(plain_url(url))
            columns = await db.fetch(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'referrals' AND column_name LIKE 'victim_%'"
            )
            assert columns == []
            assert await db.fetchval("SELECT to_regclass('referral_duplicates')") is None
            assert (
                await db.fetchval(
                    "SELECT count(*) FROM pg_proc WHERE proname IN "
                    "('triage_name_key', 'triage_iso_date', 'link_possible_duplicates')"
                )
                == 0
            )
            assert (
                await db.fetchval(
                    "SELECT count(*) FROM status_transitions WHERE record = 'referral_duplicates'"
                )
                == 0
            )
            await db.execute(
                "INSERT INTO referrals (id, reference, source, status, received_at, "
                "content_hash, facts, referral_consent, priority) VALUES "
                "($1, 'MIG-4', 'police', 'triaged', now(), 'x', $2::jsonb, 'given', 'P3')",
                uuid.uuid4(),
                facts,
            )
        finally:
            await db.close()
        await asyncio.to_thread(upgrade, url)
    finally:
        await asyncio.to_thread(drop_database, url)
