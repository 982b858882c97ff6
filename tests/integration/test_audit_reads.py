"""Audit of reads and of access control (issue 9, point 7): reading a referral (by id, by
external_ref, its decisions) writes `referral.viewed`; a feed page writes one event listing the
referrals it returned; keys and client limits are audited. Who and which record, never what it
holds."""

from __future__ import annotations

import json
import uuid
from typing import Any

from helpers import bearer, referral, rows

URL = "/api/v1/referrals"


async def events(sessions: Any, since: int, **where: str) -> list[Any]:
    clauses = " AND ".join(f"{column} = :{column}" for column in where)
    return await rows(
        sessions,
        f"SELECT * FROM audit_events WHERE id > :since AND {clauses} ORDER BY id",
        since=since,
        **where,
    )


async def newest_event(sessions: Any) -> int:
    found = await rows(sessions, "SELECT coalesce(max(id), 0) AS id FROM audit_events")
    return int(found[0].id)


async def client_id(sessions: Any, name: str) -> str:
    found = await rows(sessions, "SELECT id FROM api_clients WHERE name = :n", n=name)
    return str(found[0].id)


async def test_reading_a_referral_is_audited(client: Any, make_key: Any, sessions: Any) -> None:
    name, key = await make_key("police")
    actor = f"client:{await client_id(sessions, name)}"
    body = referral()
    created = (await client.post(URL, json=body, headers=bearer(key))).json()
    start = await newest_event(sessions)

    assert (await client.get(f"{URL}/{created['id']}", headers=bearer(key))).status_code == 200
    found = await client.get(
        URL, params={"external_ref": body["external_ref"]}, headers=bearer(key)
    )
    assert len(found.json()["items"]) == 1
    decisions = await client.get(f"{URL}/{created['id']}/decisions", headers=bearer(key))
    assert decisions.status_code == 200

    viewed = await events(sessions, start, action="referral.viewed", actor=actor)
    assert [(e.record_type, e.record_id) for e in viewed] == [("referral", created["id"])] * 3
    assert [e.details for e in viewed] == [None, None, {"what": "decisions"}]
    # Nothing of the referral itself.
    text = json.dumps([dict(e._mapping) for e in viewed], default=str)
    for secret in (body["victim"]["last_name"], body["external_ref"], body["victim"]["phone"]):
        assert secret not in text

    # Another client's request for it is a 404 and reads nothing.
    _, other = await make_key("police")
    before = await newest_event(sessions)
    assert (await client.get(f"{URL}/{created['id']}", headers=bearer(other))).status_code == 404
    assert await events(sessions, before, action="referral.viewed") == []


async def test_a_feed_page_is_one_event_listing_its_referrals(
    client: Any, make_key: Any, sessions: Any
) -> None:
    name, key = await make_key("police")
    ids = [
        (await client.post(URL, json=referral(), headers=bearer(key))).json()["id"]
        for _ in range(3)
    ]
    start = await newest_event(sessions)
    page = await client.get(
        URL, params={"updated_since": "2000-01-01T00:00:00Z", "limit": "2"}, headers=bearer(key)
    )
    rest = await client.get(
        URL, params={"cursor": page.json()["next_cursor"], "limit": "2"}, headers=bearer(key)
    )
    returned = [i["id"] for i in page.json()["items"]] + [i["id"] for i in rest.json()["items"]]
    assert sorted(returned) == sorted(ids)
    feed = await events(sessions, start, action="referrals.feed_read")
    assert [e.record_id for e in feed] == [await client_id(sessions, name)] * 2
    assert [e.details["referrals"] for e in feed] == [
        [i["id"] for i in page.json()["items"]],
        [i["id"] for i in rest.json()["items"]],
    ]


async def test_keys_and_limits_are_audited(sessions: Any) -> None:
    from triage.services.api_keys import (
        create_client,
        create_key,
        revoke_key,
        rotate_key,
        set_limit,
    )
    from triage.services.units import in_session
    from triage.settings import get_settings

    secret = get_settings().secret_key
    name = f"audited-{uuid.uuid4().hex[:8]}"
    start = await newest_event(sessions)
    made = await in_session(sessions, create_client, name, "professional")
    await in_session(sessions, set_limit, name, 30, 2)
    first = await in_session(sessions, create_key, secret, name, ("referrals:read",))
    second = await in_session(sessions, rotate_key, secret, name)
    assert await in_session(sessions, revoke_key, first.split("_")[1])
    audited = await rows(
        sessions,
        "SELECT * FROM audit_events WHERE id > :s AND actor = 'operator:cli' "
        "AND (record_id = :c OR details->>'client' = :c OR details->>'prefix' = ANY(:p)) "
        "ORDER BY id",
        s=start,
        c=str(made.id),
        p=[first.split("_")[1], second.split("_")[1]],
    )
    assert [e.action for e in audited] == [
        "client.created",
        "client.limits_changed",
        "key.created",
        "key.rotated",
        "key.revoked",
    ]
    assert audited[1].details == {"per_minute": 30, "batches_per_minute": 2}
    assert audited[2].details["scopes"] == ["referrals:read"]
    assert audited[3].details["scopes"] == ["referrals:read"]  # the newest key's, kept
    everything = json.dumps([dict(e._mapping) for e in audited], default=str)
    for key in (first, second):
        assert key not in everything and key.split("_")[2] not in everything
