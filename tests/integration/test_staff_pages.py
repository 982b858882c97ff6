"""The staff pages through the real app: the queue, a referral's page and its actions, row
scoping (a caseworker sees only referrals with a case of their services; another's is a 404
that is audited), and the authorization matrix: every role x every page and action."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import bearer, referral, rows, scalar
from staff_support import Browser, csrf_of, make_staff, once_of, page_showing, sign_in, soup

pytestmark = pytest.mark.integration


async def _post_referral(web: Any, make_key: Any, **changes: Any) -> dict[str, Any]:
    _, key = await make_key("police")
    response = await web.post("/api/v1/referrals", json=referral(**changes), headers=bearer(key))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_queue_lists_referrals_most_urgent_first_with_time_left_in_words(
    web: Any, sessions: Any, make_key: Any
) -> None:
    made = await _post_referral(web, make_key)
    hub = await sign_in(web, await make_staff(sessions, ("hub",)))
    # Other tests' referrals share the database: follow the queue's pages until it shows.
    path = f"/staff/queue?priority={made['triage']['priority']}"
    for _ in range(200):
        page = await hub.get(path)
        assert page.status_code == 200, page.text
        if made["reference"] in page.text:
            break
        following = soup(page.text).find("a", rel="next")
        assert following is not None, "the referral is on no page of the queue"
        path = following["href"]
    html = soup(page.text)
    assert html.find("h1").get_text() == "Queue"
    assert html.title.get_text().startswith("Queue")
    assert "left" in page.text or "overdue by" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "nonce-" in page.headers["content-security-policy"]
    # The list shown is audited: who saw which referrals (ids only, no names).
    details = await scalar(
        sessions,
        "SELECT details FROM audit_events WHERE action = 'queue.viewed' "
        "AND actor LIKE 'staff:%' ORDER BY id DESC LIMIT 1",
    )
    assert made["id"] in details["referrals"]
    assert "Taylor" not in str(details)


async def test_queue_keyset_pages_never_repeat_or_skip(
    web: Any, sessions: Any, make_key: Any
) -> None:
    for _ in range(3):
        await _post_referral(web, make_key)
    from triage.services.staff_views import QueueFilters, queue

    hub = await make_staff(sessions, ("hub",))
    from triage.domain.principals import staff

    principal = staff(hub.user_id, frozenset({"hub"}), frozenset())
    seen: list[str] = []
    cursor = None
    async with sessions() as db:
        whole = await queue(db, principal, QueueFilters(), None, limit=10_000)
        while True:
            page = await queue(db, principal, QueueFilters(), cursor, limit=2)
            seen += [str(row["id"]) for row in page.rows]
            cursor = page.next_cursor
            if cursor is None:
                break
    assert seen == [str(row["id"]) for row in whole.rows]
    assert len(seen) == len(set(seen))


async def test_referral_page_note_call_and_pause(web: Any, sessions: Any, make_key: Any) -> None:
    made = await _post_referral(web, make_key)
    hub = await sign_in(web, await make_staff(sessions, ("hub",)))
    path = f"/staff/referrals/{made['id']}"
    page = await hub.get(path)
    assert page.status_code == 200, page.text
    assert "Decision" in page.text and made["reference"] in page.text
    viewed = await scalar(
        sessions,
        "SELECT count(*) FROM audit_events WHERE action = 'referral.viewed' AND record_id = :r "
        "AND actor LIKE 'staff:%'",
        r=made["id"],
    )
    assert viewed == 1
    # A note: empty is an error summary linked to the field, kept on the page.
    empty = await hub.post(
        f"{path}/notes", {"csrf_token": csrf_of(page.text), "once": once_of(), "note": "  "}
    )
    assert empty.status_code == 400
    assert 'href="#note"' in empty.text and "Enter the note" in empty.text
    added = await hub.post(
        f"{path}/notes",
        {"csrf_token": csrf_of(page.text), "once": once_of(), "note": "Police say: call after 6pm"},
    )
    assert added.status_code in (302, 303)
    page = await hub.get(path)
    assert "Police say: call after 6pm" in page.text and "Note added" in page.text
    # A NUL byte is refused, never stored.
    nul = await hub.post(
        f"{path}/notes", {"csrf_token": csrf_of(page.text), "once": once_of(), "note": "a\x00b"}
    )
    assert nul.status_code == 400
    assert (
        await scalar(sessions, "SELECT count(*) FROM notes WHERE referral_id = :r", r=made["id"])
        == 1
    )
    # Notes are append-only even to the database's application role.
    with pytest.raises(Exception, match="append-only"):
        async with sessions() as db:
            from sqlalchemy import text

            await db.execute(
                text("UPDATE notes SET body = 'x' WHERE referral_id = :r"), {"r": made["id"]}
            )
    # Pause and resume all contact.
    paused = await hub.post(
        f"{path}/contact", {"csrf_token": csrf_of(page.text), "action": "pause"}
    )
    assert paused.status_code in (302, 303)
    assert await scalar(
        sessions, "SELECT contact_paused FROM referrals WHERE id = :r", r=made["id"]
    )
    page = await hub.get(path)
    assert "Contact paused" in page.text
    await hub.post(f"{path}/contact", {"csrf_token": csrf_of(page.text), "action": "resume"})
    assert not await scalar(
        sessions, "SELECT contact_paused FROM referrals WHERE id = :r", r=made["id"]
    )


async def test_recording_a_due_call_plans_the_next_step(
    web: Any, sessions: Any, make_key: Any
) -> None:
    made = await _post_referral(web, make_key)
    # Make the first call due now (the sweep would do this at its time).
    async with sessions() as db:
        from sqlalchemy import text

        step = (
            await db.execute(
                text(
                    "UPDATE contact_steps SET status = 'due', kind = 'call', due_at = now() "
                    "- interval '1 minute' WHERE referral_id = :r AND status = 'scheduled' "
                    "RETURNING id"
                ),
                {"r": made["id"]},
            )
        ).scalar()
        await db.commit()
    assert step is not None
    hub = await sign_in(web, await make_staff(sessions, ("hub",)))
    assert await page_showing(hub, "/staff/calls", made["reference"]) is not None
    path = f"/staff/referrals/{made['id']}"
    page = await hub.get(path)
    assert 'id="call"' in page.text
    missing = await hub.post(f"{path}/calls", {"csrf_token": csrf_of(page.text), "step": str(step)})
    assert missing.status_code == 400 and 'href="#outcome"' in missing.text
    done = await hub.post(
        f"{path}/calls",
        {"csrf_token": csrf_of(page.text), "step": str(step), "outcome": "no_answer"},
    )
    assert done.status_code in (302, 303), done.text
    [(status, outcome)] = await rows(
        sessions, "SELECT status, outcome FROM contact_steps WHERE id = :s", s=step
    )
    assert (status, outcome) == ("done", "no_answer")
    assert (
        await scalar(
            sessions,
            "SELECT count(*) FROM contact_steps WHERE referral_id = :r AND status IN "
            "('scheduled', 'due')",
            r=made["id"],
        )
        == 1
    )
    # The same call again: refused with words, nothing changes.
    again = await hub.post(
        f"{path}/calls",
        {"csrf_token": csrf_of(page.text), "step": str(step), "outcome": "reached"},
    )
    assert again.status_code == 400 and "no longer due" in again.text


async def test_a_caseworker_sees_only_their_services_referrals(
    web: Any, sessions: Any, make_key: Any
) -> None:
    made = await _post_referral(web, make_key)
    services = await rows(
        sessions, "SELECT service FROM cases WHERE referral_id = :r", r=made["id"]
    )
    theirs = services[0][0]
    own = await sign_in(web, await make_staff(sessions, ("caseworker",), (theirs,)))
    other_service = "rj" if theirs != "rj" else "apvc"
    other = await sign_in(web, await make_staff(sessions, ("caseworker",), (other_service,)))
    path = f"/staff/referrals/{made['id']}"
    assert (await own.get(path)).status_code == 200
    refused = await other.get(path)
    assert refused.status_code == 404
    assert "text/html" in refused.headers["content-type"]
    assert made["reference"] not in refused.text
    assert (
        await scalar(
            sessions,
            "SELECT count(*) FROM audit_events WHERE action = 'referral.view_refused' "
            "AND record_id = :r",
            r=made["id"],
        )
        == 1
    )
    # Nor can they act on it.
    page = await other.get("/staff/caseload")
    note = await other.post(
        f"{path}/notes",
        {"csrf_token": csrf_of(page.text), "once": once_of(), "note": "should not land"},
    )
    assert note.status_code == 404
    assert await scalar(sessions, "SELECT count(*) FROM notes WHERE body = 'should not land'") == 0


# The authorization matrix: every role x every page and action.
PAGES = {
    "queue": ("GET", "/staff/queue"),
    "calls": ("GET", "/staff/calls"),
    "caseload": ("GET", "/staff/caseload"),
    "alerts": ("GET", "/staff/alerts"),
    "referral": ("GET", "/staff/referrals/{id}"),
    "note": ("POST", "/staff/referrals/{id}/notes"),
    "pause": ("POST", "/staff/referrals/{id}/contact"),
}
ALLOWED = {
    "hub": {"queue", "calls", "referral", "note", "pause"},
    "duty_lead": {"queue", "calls", "caseload", "alerts", "referral", "note", "pause"},
    "caseworker": {"calls", "caseload", "referral", "note", "pause"},
    "commissioner": set(),
    "admin": set(),
}


@pytest.mark.parametrize("role", sorted(ALLOWED))
async def test_authorization_matrix(web: Any, sessions: Any, make_key: Any, role: str) -> None:
    made = await _post_referral(web, make_key)
    [(service,)] = (
        await rows(sessions, "SELECT service FROM cases WHERE referral_id = :r", r=made["id"])
    )[:1]
    services = (service,) if role == "caseworker" else ()
    browser = await sign_in(web, await make_staff(sessions, (role,), services))
    csrf = browser_csrf = None
    for name, (method, template) in PAGES.items():
        path = template.format(id=made["id"])
        if method == "GET":
            response = await browser.get(path)
        else:
            if browser_csrf is None:
                browser_csrf = await _csrf(browser)
            csrf = browser_csrf
            data = {"csrf_token": csrf, "once": once_of(), "note": "matrix", "action": "pause"}
            response = await browser.post(path, data)
        expected_ok = name in ALLOWED[role]
        if expected_ok:
            assert response.status_code in (200, 302, 303), (role, name, response.status_code)
        else:
            assert response.status_code == 403, (role, name, response.status_code)
            assert "text/html" in response.headers["content-type"]
    # And the other side of scoping: a caseworker of another service gets 404, not 403.


async def _csrf(browser: Browser) -> str:
    """The signed-in session's CSRF token: every signed-in page carries it in its sign-out
    form, error pages included."""
    for path in ("/staff/queue", "/staff/caseload", "/staff/calls", "/staff/nowhere"):
        response = await browser.get(path)
        if 'name="csrf_token"' in response.text:
            return csrf_of(response.text)
    raise AssertionError("no page with a CSRF token")


async def test_a_note_sent_twice_is_added_once(web: Any, sessions: Any, make_key: Any) -> None:
    """Found by review: a double click (no JavaScript to stop it) added the note twice."""
    made = await _post_referral(web, make_key)
    hub = await sign_in(web, await make_staff(sessions, ("hub",)))
    path = f"/staff/referrals/{made['id']}"
    page = await hub.get(path)
    once = soup(page.text).find("input", {"name": "once"})["value"]
    form = {"csrf_token": csrf_of(page.text), "once": once, "note": "called the OIC"}
    for _ in range(2):
        answer = await hub.post(f"{path}/notes", form)
        assert answer.status_code in (302, 303), answer.text
    assert (
        await scalar(sessions, "SELECT count(*) FROM notes WHERE referral_id = :r", r=made["id"])
        == 1
    )


async def test_queue_filters_by_the_area_the_engine_found_and_a_patch_moves_it(
    web: Any, sessions: Any, make_key: Any
) -> None:
    """The area is the decision's, kept on the referral: the queue's area filter shows a
    Medway referral under Medway and never under East Kent; a PATCH to a Canterbury postcode
    moves it (the re-triage writes the new area beside the new decision)."""
    _, key = await make_key("police")
    body = referral(**{"victim.address.postcode": "ME4 4AA", "victim.address.town": "Chatham"})
    created = await web.post("/api/v1/referrals", json=body, headers=bearer(key))
    assert created.status_code == 201, created.text
    made = created.json()
    assert made["triage"]["area"]["code"] == "medway"
    hub = await sign_in(web, await make_staff(sessions, ("hub",)))

    async def shown(area: str) -> bool:
        path = f"/staff/queue?area={area}&priority={made['triage']['priority']}"
        return await page_showing(hub, path, made["reference"]) is not None

    assert await shown("medway")
    assert not await shown("east-kent")
    page = await hub.get("/staff/queue?area=medway")
    assert soup(page.text).find("option", value="medway", selected=True) is not None
    # A PATCH by the referrer re-triages: the area follows the new postcode.
    moved = await web.patch(
        f"/api/v1/referrals/{made['id']}",
        json={"victim": {"address": {"postcode": "CT1 2AA", "town": "Canterbury"}}},
        headers=bearer(key),
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["triage"]["area"]["code"] == "east-kent"
    area = await scalar(sessions, "SELECT area FROM referrals WHERE id = :r", r=made["id"])
    assert area == "east-kent"
    assert await shown("east-kent")
    assert not await shown("medway")


async def test_calls_due_and_the_caseload_page_by_keyset_never_repeating_or_skipping(
    web: Any, sessions: Any, make_key: Any
) -> None:
    """Calls due and a caseload, 50 a page: walked two at a time they give exactly the rows
    of one long page, in the same order (calls: priority, due time; caseload: the person's
    own cases first, then the oldest); a cursor that is not one of ours shows the first page."""
    from sqlalchemy import text

    from triage.domain.principals import staff
    from triage.services.clock import service_now
    from triage.services.staff_views import calls_due, caseload

    made = [await _post_referral(web, make_key) for _ in range(4)]
    made.append(await _post_referral(web, make_key, **{"risk.level": "high"}))
    services = ("domestic-abuse", "stalking")
    worker = await make_staff(sessions, ("caseworker",), services=services)
    async with sessions() as db:
        await db.execute(
            text(
                "UPDATE contact_steps SET status = 'due', kind = 'call', "
                "due_at = now() - interval '1 minute' * (random() * 100) "
                "WHERE referral_id = ANY(:r) AND status = 'scheduled'"
            ),
            {"r": [m["id"] for m in made]},
        )
        # Two of the cases are the caseworker's own: they come first.
        await db.execute(
            text(
                "UPDATE cases SET assigned_to = :w WHERE id IN (SELECT id FROM cases "
                "WHERE referral_id = ANY(:r) ORDER BY opened_at DESC LIMIT 2)"
            ),
            {"w": worker.user_id, "r": [m["id"] for m in made[:3]]},
        )
        await db.commit()
    hub = staff((await make_staff(sessions, ("hub",))).user_id, frozenset({"hub"}), frozenset())
    mine = staff(worker.user_id, frozenset({"caseworker"}), frozenset(services))
    async with sessions() as db:
        now = await service_now(db)
        for who in (hub, mine):
            whole = await calls_due(db, who, now, limit=10_000)
            assert whole.next_cursor is None
            # Other tests' rows share the database: about 25 pages, however many there are.
            size = max(2, len(whole.rows) // 25)
            seen, cursor = [], None
            while True:
                page = await calls_due(db, who, now, cursor, limit=size)
                seen += [row["step_id"] for row in page.rows]
                if (cursor := page.next_cursor) is None:
                    break
            assert seen == [row["step_id"] for row in whole.rows]
            assert len(seen) == len(set(seen))
            order = [(row["priority"], row["due_at"]) for row in whole.rows]
            assert order == sorted(order)
        assert {m["id"] for m in made} <= {str(r["referral_id"]) for r in whole.rows}

        whole_load = await caseload(db, mine, limit=10_000)
        size = max(2, len(whole_load.rows) // 25)
        seen, cursor = [], None
        while True:
            page = await caseload(db, mine, cursor, limit=size)
            seen += [row["id"] for row in page.rows]
            if (cursor := page.next_cursor) is None:
                break
        assert seen == [row["id"] for row in whole_load.rows]
        assert len(seen) == len(set(seen)) >= 5
        owners = [row["assigned_to"] == worker.user_id for row in whole_load.rows]
        assert owners[:2] == [True, True] and not any(owners[2:])
        for garbage in ("", "x", "WzEsMiwzXQ", "bnVsbA", "W251bGwsbnVsbCxudWxsXQ"):
            assert (await caseload(db, mine, garbage, limit=2)).rows == whole_load.rows[:2]
            assert (await calls_due(db, mine, now, garbage, limit=2)).rows == [
                row for row in (await calls_due(db, mine, now, limit=2)).rows
            ]


async def test_hostile_list_links_are_clear_errors_or_the_first_page(
    web: Any, sessions: Any
) -> None:
    """A filter value not on its list (a NUL byte, a made-up area, 5,000 characters) is a 400
    with an error summary linked to its field, the query never run; a cursor that is not one
    of ours (deeply nested JSON, NUL, junk) shows the first page. Both answered 500 before."""
    import base64

    def b64(raw: str) -> str:
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    hub = await sign_in(web, await make_staff(sessions, ("hub",)))
    worker = await sign_in(
        web, await make_staff(sessions, ("caseworker",), services=("domestic-abuse",))
    )
    for query, field in (
        ("area=%00", "area"),
        ("area=atlantis", "area"),
        ("area=" + "x" * 5000, "area"),
        ("service=%00", "service"),
        ("source=carrier-pigeon", "source"),
        ("priority=P0", "priority"),
        ("status=closed", "status"),
    ):
        page = await hub.get(f"/staff/queue?{query}")
        assert page.status_code == 400, (query, page.status_code)
        summary = soup(page.text).find(class_="govuk-error-summary")
        assert summary is not None and summary.find("a", href=f"#{field}") is not None, query
        assert "Error:" in soup(page.text).title.get_text()
    first = await hub.get("/staff/queue")
    for cursor in (b64("[" * 990 + "]" * 990), "%00", b64('["P1", NaN, "x"]'), "x" * 300):
        page = await hub.get(f"/staff/queue?cursor={cursor}")
        assert page.status_code == 200, cursor[:20]
        rows = [a.get_text() for a in soup(page.text).select("tbody a")]
        assert rows == [a.get_text() for a in soup(first.text).select("tbody a")]
        assert (await hub.get(f"/staff/calls?cursor={cursor}")).status_code == 200
        assert (await worker.get(f"/staff/caseload?cursor={cursor}")).status_code == 200
