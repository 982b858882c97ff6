"""Search and possible duplicates through the pages: results within the person's scope, the
text never in the audit trail, a GOV.UK error for text that cannot be searched; a duplicate
linked at intake shown to the hub on the referral page and decided there."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import bearer, referral, scalar
from staff_support import csrf_of, make_staff, sign_in

pytestmark = pytest.mark.integration


async def test_search_by_reference_and_surname_in_scope(
    web: Any, sessions: Any, make_key: Any
) -> None:
    _, key = await make_key("police")
    body = referral(**{"victim.last_name": "Quennell"})
    made = (await web.post("/api/v1/referrals", json=body, headers=bearer(key))).json()
    hub = await sign_in(web, await make_staff(sessions, ("hub",)))
    by_ref = await hub.get("/staff/search", params={"q": made["reference"]})
    assert by_ref.status_code == 200 and f"/staff/referrals/{made['id']}" in by_ref.text
    by_name = await hub.get("/staff/search", params={"q": "quennell"})
    assert made["reference"] in by_name.text
    text_seen = await scalar(
        sessions,
        "SELECT count(*) FROM audit_events WHERE action = 'referrals.searched' "
        "AND details::text ILIKE '%quennell%'",
    )
    assert text_seen == 0
    # A caseworker of another service finds nothing.
    other = await sign_in(web, await make_staff(sessions, ("caseworker",), ("rj",)))
    nothing = await other.get("/staff/search", params={"q": made["reference"]})
    assert f"/staff/referrals/{made['id']}" not in nothing.text
    assert "Nothing found that you may see" in nothing.text
    # Text that cannot be searched: an error summary linked to the box.
    bad = await hub.get("/staff/search", params={"q": "a\x00b"})
    assert bad.status_code == 400 and 'href="#q"' in bad.text


async def test_a_duplicate_is_shown_to_the_hub_and_merged(
    web: Any, sessions: Any, make_key: Any
) -> None:
    _, key = await make_key("police")
    person = {"victim.first_name": "Jordan", "victim.last_name": "Ashdown-Vale"}
    first = (
        await web.post("/api/v1/referrals", json=referral(**person), headers=bearer(key))
    ).json()
    second = (
        await web.post("/api/v1/referrals", json=referral(**person), headers=bearer(key))
    ).json()
    hub = await sign_in(web, await make_staff(sessions, ("hub",)))
    page = await hub.get(f"/staff/referrals/{second['id']}")
    assert "Possible duplicate of" in page.text and first["reference"] in page.text
    # The referrer's API never shows it.
    api = await web.get(f"/api/v1/referrals/{second['id']}", headers=bearer(key))
    assert "duplicate" not in api.text.lower()
    link = await scalar(
        sessions,
        "SELECT id FROM referral_duplicates WHERE referral_id = :r",
        r=second["id"],
    )
    missing = await hub.post(
        f"/staff/duplicates/{link}",
        {"csrf_token": csrf_of(page.text), "referral": second["id"], "decision": "merge"},
    )
    assert missing.status_code == 400
    merged = await hub.post(
        f"/staff/duplicates/{link}",
        {
            "csrf_token": csrf_of(page.text),
            "referral": second["id"],
            "decision": "merge",
            "duplicate_reason": "same person, same incident",
        },
    )
    assert merged.status_code in (302, 303), merged.text
    assert (
        await scalar(sessions, "SELECT status FROM referrals WHERE id = :r", r=second["id"])
        == "closed"
    )
    # A caseworker does not decide duplicates.
    worker = await sign_in(web, await make_staff(sessions, ("caseworker",), ("rj",)))
    refused = await worker.post(
        f"/staff/duplicates/{link}",
        {
            "csrf_token": csrf_of((await worker.get("/staff/caseload")).text),
            "referral": second["id"],
        },
    )
    assert refused.status_code == 403
