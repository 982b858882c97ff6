"""POST /referrals (201, 200 again, 409 changed), what it writes, and the GET routes (api.md)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from datetime import timedelta
from typing import Any

from helpers import (
    EXAMPLE,
    assert_problem,
    bearer,
    parse_z,
    referral,
    referral_count,
    rows,
    scalar,
    whole,
    written_for_client,
)

from triage.domain.checker import INSTANT_MESSAGE

REFERRAL_KEYS = {"id", "reference", "external_ref", "status", "received_at", "triage", "cases"}
# `updated_at` is beside api.md's keys: the time a status feed reader resumes from.
EXTRA_KEYS = {"updated_at"}
TRIAGE_KEYS = {
    "area",
    "priority",
    "enhanced_rights",
    "contact_due_by",
    "services",
    "signposts",
    "first_contact_step",
    "flags",
    "catalogue_version",
}
CASE_KEYS = {"service", "status", "first_contact_at", "closed_at", "closure_reason"}
Z_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def assert_referral_shape(body: dict[str, Any]) -> None:
    assert REFERRAL_KEYS <= set(body) <= REFERRAL_KEYS | EXTRA_KEYS, set(body)
    uuid.UUID(body["id"])
    assert re.fullmatch(r"KVR-\d{2}-\d{6,}", body["reference"]), body["reference"]
    assert Z_TIME.match(body["received_at"]), body["received_at"]
    triage = body["triage"]
    assert set(triage) == TRIAGE_KEYS, set(triage)
    assert set(triage["area"]) == {"code", "local_authority", "district"}
    assert triage["priority"] in ("P1", "P2", "P3")
    for service in triage["services"]:
        assert set(service) == {"code", "role", "reasons"}
        assert service["reasons"] and all(isinstance(r, str) for r in service["reasons"])
    assert [s["role"] for s in triage["services"]].count("primary") == 1
    assert triage["services"][0]["role"] == "primary"
    for signpost in triage["signposts"]:
        assert set(signpost) == {"code", "reasons"}
    assert triage["catalogue_version"].startswith("sha256:")
    if triage["contact_due_by"] is not None:
        assert Z_TIME.match(triage["contact_due_by"])
    step = triage["first_contact_step"]
    if step is not None:
        assert set(step) == {"kind", "channel", "due_at"}
        assert Z_TIME.match(step["due_at"])
    for case in body["cases"]:
        assert set(case) == CASE_KEYS, set(case)


async def test_created_shape_as_api_md(client: Any, make_key: Any, sessions: Any) -> None:
    _name, key = await make_key("police")
    body = referral()
    response = await client.post("/api/v1/referrals", json=body, headers=bearer(key))
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/json")
    created = response.json()
    assert_referral_shape(created)
    received = parse_z(created["received_at"])
    assert created["reference"].startswith(f"KVR-{received:%y}-")
    assert created["external_ref"] == body["external_ref"]
    assert created["status"] == "triaged"
    triage = created["triage"]
    assert triage["area"] == {
        "code": "east-kent",
        "local_authority": "Canterbury",
        "district": "CT1",
    }
    assert triage["priority"] == "P2"
    assert set(triage["enhanced_rights"]) == {
        "most_serious_crime",
        "persistently_targeted",
        "vulnerable",
    }
    assert [(s["code"], s["role"]) for s in triage["services"]] == [
        ("domestic-abuse", "primary"),
        ("stalking", "additional"),
    ]
    assert triage["first_contact_step"]["kind"] == "call"
    assert triage["first_contact_step"]["channel"] == "phone"
    # P2: the end of the first working day after the day of receipt (17:00 London), so after it.
    assert parse_z(triage["contact_due_by"]) > received
    assert created["cases"] == [
        {
            "service": "domestic-abuse",
            "status": "awaiting_contact",
            "first_contact_at": None,
            "closed_at": None,
            "closure_reason": None,
        },
        {
            "service": "stalking",
            "status": "awaiting_contact",
            "first_contact_at": None,
            "closed_at": None,
            "closure_reason": None,
        },
    ]
    # No more personal data than was sent: none at all, in fact.
    for secret in ("Sam", "Taylor", "900123", "sam@example.org", "High Street", "partner home"):
        assert secret not in response.text


async def test_rows_written_in_one_go(client: Any, make_key: Any, sessions: Any) -> None:
    name, key = await make_key("police")
    response = await client.post("/api/v1/referrals", json=referral(), headers=bearer(key))
    assert response.status_code == 201, response.text
    created = response.json()
    referral_id = uuid.UUID(created["id"])
    assert await written_for_client(sessions, name) == {
        "referrals": 1,
        "triage_decisions": 1,
        "cases": 2,
        "contact_steps": 1,
        "messages": 1,
        "alerts": 1,
    }
    (stored,) = await rows(
        sessions,
        "SELECT reference, status, source, priority, contact_due_by, received_at "
        "FROM referrals WHERE id = :id",
        id=referral_id,
    )
    assert stored.reference == created["reference"]
    assert (stored.status, stored.source, stored.priority) == ("triaged", "police", "P2")
    assert whole(stored.received_at) == parse_z(created["received_at"])
    (decision,) = await rows(
        sessions,
        "SELECT cause, catalogue_version, decision FROM triage_decisions WHERE referral_id = :id",
        id=referral_id,
    )
    assert decision.cause == "intake"
    assert decision.catalogue_version == created["triage"]["catalogue_version"]
    assert decision.decision["priority"] == "P2"
    cases = await rows(
        sessions,
        "SELECT service, role, status FROM cases WHERE referral_id = :id ORDER BY service",
        id=referral_id,
    )
    assert [tuple(c) for c in cases] == [
        ("domestic-abuse", "primary", "awaiting_contact"),
        ("stalking", "additional", "awaiting_contact"),
    ]
    (step,) = await rows(
        sessions,
        "SELECT id, number, kind, channel, status, due_at FROM contact_steps "
        "WHERE referral_id = :id",
        id=referral_id,
    )
    assert (step.number, step.kind, step.channel, step.status) == (1, "call", "phone", "scheduled")
    assert whole(step.due_at) == parse_z(created["triage"]["first_contact_step"]["due_at"])
    (message,) = await rows(
        sessions,
        "SELECT contact_step_id, purpose, channel, template, status, due_at FROM messages "
        "WHERE referral_id = :id",
        id=referral_id,
    )
    assert message.contact_step_id == step.id
    assert (message.purpose, message.channel, message.template, message.status) == (
        "contact",
        "sms",
        "introduction",
        "queued",
    )
    assert message.due_at == step.due_at
    alerts = await rows(
        sessions, "SELECT kind, status, due_at FROM alerts WHERE referral_id = :id", id=referral_id
    )
    assert [(a.kind, a.status) for a in alerts] == [("deadline_breach", "pending")]
    assert whole(alerts[0].due_at) == parse_z(created["triage"]["contact_due_by"])
    audit = await scalar(
        sessions,
        "SELECT count(*) FROM audit_events WHERE record_type = 'referral' AND record_id = :id "
        "AND action = 'referral.created'",
        id=str(referral_id),
    )
    assert audit == 1


async def test_p1_gets_the_p1_alert_and_phone_only_no_message(
    client: Any, make_key: Any, sessions: Any
) -> None:
    name, key = await make_key("police")
    body = referral(**{"risk.level": "high", "contact.channels": ["phone"]})
    response = await client.post("/api/v1/referrals", json=body, headers=bearer(key))
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["triage"]["priority"] == "P1"
    received = await scalar(
        sessions, "SELECT received_at FROM referrals WHERE id = :id", id=uuid.UUID(created["id"])
    )
    # P1: 24 hours elapsed after receipt.
    assert parse_z(created["triage"]["contact_due_by"]) == whole(received + timedelta(hours=24))
    alerts = {
        a.kind: a.due_at
        for a in await rows(
            sessions,
            "SELECT kind, due_at FROM alerts WHERE referral_id = :id",
            id=uuid.UUID(created["id"]),
        )
    }
    assert alerts == {
        "p1_not_reached": received + timedelta(hours=4),
        "deadline_breach": received + timedelta(hours=24),
    }
    counts = await written_for_client(sessions, name)
    assert counts["contact_steps"] == 1
    assert counts["messages"] == 0  # neither sms nor email allowed: no introduction message


async def test_email_allowed_queues_email_introduction(
    client: Any, make_key: Any, sessions: Any
) -> None:
    _name, key = await make_key("police")
    body = referral(**{"contact.channels": ["phone", "email"]})
    response = await client.post("/api/v1/referrals", json=body, headers=bearer(key))
    assert response.status_code == 201, response.text
    (message,) = await rows(
        sessions,
        "SELECT channel, template, status FROM messages WHERE referral_id = :id",
        id=uuid.UUID(response.json()["id"]),
    )
    assert tuple(message) == ("email", "introduction", "queued")


async def test_no_contact_consent_opens_cases_without_a_plan(
    client: Any, make_key: Any, sessions: Any
) -> None:
    name, key = await make_key("police")
    body = referral(**{"consent.to_contact": False})
    response = await client.post("/api/v1/referrals", json=body, headers=bearer(key))
    assert response.status_code == 201, response.text
    triage = response.json()["triage"]
    assert triage["contact_due_by"] is None
    assert triage["first_contact_step"] is None
    assert "no_contact_consent" in triage["flags"]
    counts = await written_for_client(sessions, name)
    assert counts == {
        "referrals": 1,
        "triage_decisions": 1,
        "cases": 2,
        "contact_steps": 0,
        "messages": 0,
        "alerts": 0,
    }


async def test_again_is_200_and_changed_is_409_writing_nothing(
    client: Any, make_key: Any, sessions: Any
) -> None:
    name, key = await make_key("police")
    body = referral()
    first = await client.post("/api/v1/referrals", json=body, headers=bearer(key))
    assert first.status_code == 201
    again = await client.post("/api/v1/referrals", json=body, headers=bearer(key))
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    # The same facts written differently (normalised phone and postcode) are the same content.
    respelled = referral(
        **{
            "external_ref": body["external_ref"],
            "victim.phone": "+447700900123",
            "victim.address.postcode": "ct12ab",
        }
    )
    same = await client.post("/api/v1/referrals", json=respelled, headers=bearer(key))
    assert same.status_code == 200, same.text
    changed = dict(body, notes="a different note")
    conflict = await client.post("/api/v1/referrals", json=changed, headers=bearer(key))
    problem = assert_problem(conflict, 409)
    assert f"PATCH /api/v1/referrals/{first.json()['id']}" in problem["detail"]
    assert "a different note" not in conflict.text
    assert await written_for_client(sessions, name) == {
        "referrals": 1,
        "triage_decisions": 1,
        "cases": 2,
        "contact_steps": 1,
        "messages": 1,
        "alerts": 1,
    }


async def test_same_external_ref_from_two_clients_is_two_referrals(
    client: Any, make_key: Any
) -> None:
    _, key_a = await make_key("police")
    _, key_b = await make_key("police")
    body = referral()
    a = await client.post("/api/v1/referrals", json=body, headers=bearer(key_a))
    b = await client.post("/api/v1/referrals", json=body, headers=bearer(key_b))
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["id"] != b.json()["id"]
    assert a.json()["reference"] != b.json()["reference"]


async def test_professional_referral_is_sourced_professional(
    client: Any, make_key: Any, sessions: Any
) -> None:
    _name, key = await make_key("professional")
    response = await client.post("/api/v1/referrals", json=referral(), headers=bearer(key))
    assert response.status_code == 201, response.text
    source = await scalar(
        sessions, "SELECT source FROM referrals WHERE id = :id", id=uuid.UUID(response.json()["id"])
    )
    assert source == "professional"


async def test_get_by_id_owner_only(client: Any, make_key: Any) -> None:
    _, owner = await make_key("police")
    _, other = await make_key("police")
    created = (
        await client.post("/api/v1/referrals", json=referral(), headers=bearer(owner))
    ).json()
    mine = await client.get(f"/api/v1/referrals/{created['id']}", headers=bearer(owner))
    assert mine.status_code == 200
    assert mine.json() == created
    assert_referral_shape(mine.json())

    theirs = await client.get(f"/api/v1/referrals/{created['id']}", headers=bearer(other))
    missing = await client.get(f"/api/v1/referrals/{uuid.uuid4()}", headers=bearer(other))
    body = assert_problem(theirs, 404)
    # Another client's referral and one that does not exist answer alike.
    assert body == assert_problem(missing, 404)
    assert created["reference"] not in theirs.text

    for bad in ("not-a-uuid", "12345", "KVR-26-000001"):
        assert_problem(await client.get(f"/api/v1/referrals/{bad}", headers=bearer(owner)), 404)


async def test_get_by_external_ref(client: Any, make_key: Any) -> None:
    _, key = await make_key("police")
    _, other = await make_key("police")
    body = referral()
    created = (await client.post("/api/v1/referrals", json=body, headers=bearer(key))).json()
    found = await client.get(
        "/api/v1/referrals", params={"external_ref": body["external_ref"]}, headers=bearer(key)
    )
    assert found.status_code == 200, found.text
    assert found.json() == {"items": [created], "next_cursor": None}
    none = await client.get(
        "/api/v1/referrals", params={"external_ref": body["external_ref"]}, headers=bearer(other)
    )
    assert none.json() == {"items": [], "next_cursor": None}
    nothing = await client.get(
        "/api/v1/referrals", params={"external_ref": "no/such/ref"}, headers=bearer(key)
    )
    assert nothing.json() == {"items": [], "next_cursor": None}


async def test_updated_since_walks_every_item_once(client: Any, make_key: Any) -> None:
    _, key = await make_key("police")
    _, other = await make_key("police")
    await client.post("/api/v1/referrals", json=referral(), headers=bearer(other))
    # Five in one batch share one received_at (the keyset's id breaks the tie), two alone.
    batch = await client.post(
        "/api/v1/referrals/batch",
        json={"referrals": [referral() for _ in range(5)]},
        headers=bearer(key),
    )
    assert batch.json()["counts"]["created"] == 5, batch.text
    ids = {item["id"] for item in batch.json()["items"]}
    for _ in range(2):
        single = await client.post("/api/v1/referrals", json=referral(), headers=bearer(key))
        ids.add(single.json()["id"])
    assert len(ids) == 7

    seen: list[str] = []
    params: dict[str, Any] = {"updated_since": "2000-01-01T00:00:00Z", "limit": 2}
    pages = 0
    while True:
        page = await client.get("/api/v1/referrals", params=params, headers=bearer(key))
        assert page.status_code == 200, page.text
        body = page.json()
        assert set(body) == {"items", "next_cursor"}
        assert len(body["items"]) <= 2
        seen += [item["id"] for item in body["items"]]
        pages += 1
        if body["next_cursor"] is None:
            break
        params = {"cursor": body["next_cursor"], "limit": 2}
        assert pages < 10
    assert len(seen) == len(set(seen)) == 7
    assert set(seen) == ids
    assert pages == 4

    # updated_since in the future: nothing; with an offset other than Z, the same instant.
    later = await client.get(
        "/api/v1/referrals",
        params={"updated_since": "2999-01-01T00:00:00+01:00"},
        headers=bearer(key),
    )
    assert later.json() == {"items": [], "next_cursor": None}


async def test_bad_query_is_422(client: Any, make_key: Any) -> None:
    _, key = await make_key("police")
    forged = base64.urlsafe_b64encode(json.dumps(["yesterday", "x"]).encode()).decode()
    naive = base64.urlsafe_b64encode(
        json.dumps(["2026-01-01T00:00:00", str(uuid.uuid4())]).encode()
    ).decode()
    for cursor in ("not a cursor", "!!!", forged, naive, "W10"):
        response = await client.get(
            "/api/v1/referrals", params={"cursor": cursor}, headers=bearer(key)
        )
        body = assert_problem(response, 422)
        assert body["errors"][0]["path"] in ("cursor", "external_ref"), body
    for since in ("yesterday", "2026-01-01T00:00:00", "2026-13-01T00:00:00Z"):
        response = await client.get(
            "/api/v1/referrals", params={"updated_since": since}, headers=bearer(key)
        )
        body = assert_problem(response, 422)
        [error] = body["errors"]
        assert error["path"] == "updated_since"
        # A naive time is named as such; anything else is shown the form wanted.
        assert "offset" in error["message"]
        if since != "2026-01-01T00:00:00":
            assert error["message"] == INSTANT_MESSAGE
    # Neither external_ref nor updated_since nor cursor.
    assert_problem(await client.get("/api/v1/referrals", headers=bearer(key)), 422)
    # A limit out of range, or not a number: 422 at limit, like any rule broken.
    for limit in ("0", "501", "ten"):
        response = await client.get(
            "/api/v1/referrals",
            params={"updated_since": "2026-01-01T00:00:00Z", "limit": limit},
            headers=bearer(key),
        )
        assert [e["path"] for e in assert_problem(response, 422)["errors"]] == ["limit"]


async def test_example_body_is_api_md(client: Any, make_key: Any, sessions: Any) -> None:
    """The very body of api.md (example-referral.json) is accepted as it stands."""
    name, key = await make_key("police")
    response = await client.post("/api/v1/referrals", json=EXAMPLE, headers=bearer(key))
    assert response.status_code == 201, response.text
    assert response.json()["external_ref"] == EXAMPLE["external_ref"]
    assert await referral_count(sessions, name) == 1


async def test_same_instant_in_another_offset_is_the_same_content(
    client: Any, make_key: Any
) -> None:
    _, key = await make_key("police")
    body = referral()
    assert (
        await client.post("/api/v1/referrals", json=body, headers=bearer(key))
    ).status_code == 201
    moved = dict(body, referred_at="2026-11-20T15:05:00+01:00")  # 14:05Z, as sent first
    again = await client.post("/api/v1/referrals", json=moved, headers=bearer(key))
    assert again.status_code == 200, again.text


async def test_a_change_brings_a_referral_back_into_the_feed(client: Any, make_key: Any) -> None:
    """A status system resumes from the newest `updated_at` it saw; a later change (here a
    withdrawal) shows the referral again, with its new status."""
    _, key = await make_key("police")
    first = (await client.post("/api/v1/referrals", json=referral(), headers=bearer(key))).json()
    second = (await client.post("/api/v1/referrals", json=referral(), headers=bearer(key))).json()
    feed = await client.get(
        "/api/v1/referrals", params={"updated_since": "2000-01-01T00:00:00Z"}, headers=bearer(key)
    )
    items = feed.json()["items"]
    assert [i["id"] for i in items] == [first["id"], second["id"]]
    resume_from = max(i["updated_at"] for i in items)
    await asyncio.sleep(1.05)  # answers give times to the second
    withdrawn = await client.post(
        f"/api/v1/referrals/{first['id']}/withdraw",
        json={"reason": "victim moved away"},
        headers=bearer(key),
    )
    assert withdrawn.status_code == 200, withdrawn.text
    later = await client.get(
        "/api/v1/referrals",
        params={"updated_since": withdrawn.json()["updated_at"]},
        headers=bearer(key),
    )
    assert [(i["id"], i["status"]) for i in later.json()["items"]] == [(first["id"], "withdrawn")]
    since_resume = await client.get(
        "/api/v1/referrals", params={"updated_since": resume_from}, headers=bearer(key)
    )
    ids = [i["id"] for i in since_resume.json()["items"]]
    assert ids[-1] == first["id"]  # changed last, so last in the feed
