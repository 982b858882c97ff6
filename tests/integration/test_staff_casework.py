"""Overrides and case work through the pages: an override needs a reason, is kept beside the
engine's decision, is in force in the machine API (never its reason) and is never undone by a
re-triage; cases move awaiting_contact -> in_support -> closed and re-open with a reason."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import bearer, referral, rows, scalar
from staff_support import csrf_of, make_staff, sign_in

pytestmark = pytest.mark.integration


async def _referral(web: Any, make_key: Any, **changes: Any) -> tuple[dict[str, Any], str]:
    _, key = await make_key("police")
    response = await web.post("/api/v1/referrals", json=referral(**changes), headers=bearer(key))
    assert response.status_code == 201, response.text
    return response.json(), key


async def _services(sessions: Any, referral_id: str) -> dict[str, tuple[str, str | None]]:
    found = await rows(
        sessions,
        "SELECT service, status, closure_reason FROM cases WHERE referral_id = :r",
        r=referral_id,
    )
    return {service: (status, reason) for service, status, reason in found}


async def test_an_override_needs_a_reason_and_removal_survives_a_retriage(
    web: Any, sessions: Any, make_key: Any
) -> None:
    made, key = await _referral(web, make_key)
    before = await _services(sessions, made["id"])
    assert len(before) >= 1
    hub = await sign_in(web, await make_staff(sessions, ("hub",)))
    path = f"/staff/referrals/{made['id']}"
    page = await hub.get(path)
    # Add another service first, so the one removed is not the only one.
    added = await hub.post(
        f"{path}/override",
        {
            "csrf_token": csrf_of(page.text),
            "kind": "add_service",
            "service": "rj",
            "reason": "victim asked for restorative justice",
        },
    )
    assert added.status_code in (302, 303), added.text
    removed_code = next(iter(before))
    no_reason = await hub.post(
        f"{path}/override",
        {"csrf_token": csrf_of(page.text), "kind": "remove_service", "service": removed_code},
    )
    assert no_reason.status_code == 400
    assert 'href="#reason"' in no_reason.text and "Enter the reason" in no_reason.text
    assert (await _services(sessions, made["id"]))[removed_code][0] != "closed"
    secret_reason = "perpetrator works at that provider"
    done = await hub.post(
        f"{path}/override",
        {
            "csrf_token": csrf_of(page.text),
            "kind": "remove_service",
            "service": removed_code,
            "reason": secret_reason,
        },
    )
    assert done.status_code in (302, 303), done.text
    assert (await _services(sessions, made["id"]))[removed_code] == ("closed", "not_eligible")
    # The machine API shows the services in force, never the reason.
    api = await web.get(f"/api/v1/referrals/{made['id']}", headers=bearer(key))
    codes = {s["code"] for s in api.json()["triage"]["services"]}
    assert removed_code not in codes and "rj" in codes
    decisions = await web.get(f"/api/v1/referrals/{made['id']}/decisions", headers=bearer(key))
    assert secret_reason not in decisions.text and secret_reason not in api.text
    answer = decisions.json()
    items = answer["items"] if isinstance(answer, dict) else answer
    assert items[-1]["cause"] == "override"
    # The staff page shows the override beside the engine's decision, with its reason.
    page = await hub.get(path)
    assert secret_reason in page.text
    # A re-triage from the referrer never undoes it, and flags the disagreement.
    patched = await web.patch(
        f"/api/v1/referrals/{made['id']}",
        json={"notes": "victim moved in with a friend"},
        headers=bearer(key),
    )
    assert patched.status_code == 200, patched.text
    after = await _services(sessions, made["id"])
    assert after[removed_code] == ("closed", "not_eligible")
    codes = {s["code"] for s in patched.json()["triage"]["services"]}
    assert removed_code not in codes
    flags = await scalar(sessions, "SELECT flags FROM referrals WHERE id = :r", r=made["id"])
    assert "service_review" in flags
    assert "Review" in (await hub.get(path)).text or "disagree" in (await hub.get(path)).text


async def test_a_priority_override_replans_and_is_not_undone(
    web: Any, sessions: Any, make_key: Any
) -> None:
    made, key = await _referral(web, make_key)
    hub = await sign_in(web, await make_staff(sessions, ("hub",)))
    path = f"/staff/referrals/{made['id']}"
    page = await hub.get(path)
    current = made["triage"]["priority"]
    target = "P1" if current != "P1" else "P2"
    response = await hub.post(
        f"{path}/override",
        {
            "csrf_token": csrf_of(page.text),
            "kind": "priority",
            "priority": target,
            "reason": "police intelligence: risk has risen",
        },
    )
    assert response.status_code in (302, 303), response.text
    assert (
        await scalar(sessions, "SELECT priority FROM referrals WHERE id = :r", r=made["id"])
        == target
    )
    # Every step of the referral carries the priority in force (the calls-due list's order).
    assert await scalar(
        sessions,
        "SELECT array_agg(DISTINCT priority) FROM contact_steps WHERE referral_id = :r",
        r=made["id"],
    ) == [target]
    if target == "P1":
        assert (
            await scalar(
                sessions,
                "SELECT count(*) FROM alerts WHERE referral_id = :r AND kind = 'p1_not_reached' "
                "AND status IN ('pending', 'raised')",
                r=made["id"],
            )
            >= 1
        )
        assert (
            await scalar(
                sessions,
                "SELECT count(*) FROM contact_steps WHERE referral_id = :r "
                "AND status = 'scheduled' AND due_at > now() + interval '1 minute'",
                r=made["id"],
            )
            == 0
        )
    await web.patch(
        f"/api/v1/referrals/{made['id']}", json={"notes": "update"}, headers=bearer(key)
    )
    assert (
        await scalar(sessions, "SELECT priority FROM referrals WHERE id = :r", r=made["id"])
        == target
    )


async def test_adding_a_consent_service_to_a_defaulted_referral_asks_who_when_how(
    web: Any, sessions: Any, make_key: Any
) -> None:
    from helpers import DELETE

    made, _ = await _referral(
        web,
        make_key,
        **{"consent.to_referral": DELETE, "flags": [], "offence.category": "theft"},
    )
    consent = await scalar(
        sessions, "SELECT referral_consent FROM referrals WHERE id = :r", r=made["id"]
    )
    hub = await sign_in(web, await make_staff(sessions, ("hub",)))
    path = f"/staff/referrals/{made['id']}"
    page = await hub.get(path)
    base = {
        "csrf_token": csrf_of(page.text),
        "kind": "add_service",
        "service": "domestic-abuse",
        "reason": "disclosed on the call",
    }
    assert consent == "defaulted"
    refused = await hub.post(f"{path}/override", base)
    assert refused.status_code == 400
    assert 'href="#consent_given_by"' in refused.text
    assert "domestic-abuse" not in await _services(sessions, made["id"])
    done = await hub.post(
        f"{path}/override",
        {
            **base,
            "consent_given_by": "the victim",
            "consent_given_on": "2026-01-02",
            "consent_how": "phone",
        },
    )
    assert done.status_code in (302, 303), done.text
    assert (await _services(sessions, made["id"]))["domestic-abuse"][0] == "awaiting_contact"


async def test_case_work_from_assignment_to_closure_and_reopening(
    web: Any, sessions: Any, make_key: Any
) -> None:
    made, _key = await _referral(web, make_key)
    cases = await rows(
        sessions, "SELECT id, service FROM cases WHERE referral_id = :r", r=made["id"]
    )
    worker = await make_staff(sessions, ("caseworker",), tuple(s for _, s in cases))
    browser = await sign_in(web, worker)
    for case_id, _service in cases:
        path = f"/staff/cases/{case_id}"
        page = await browser.get(path)
        assert page.status_code == 200, page.text
        mine = await browser.post(
            f"{path}/assign", {"csrf_token": csrf_of(page.text), "assignee": "me"}
        )
        assert mine.status_code in (302, 303), mine.text
        empty = await browser.post(f"{path}/support", {"csrf_token": csrf_of(page.text)})
        assert empty.status_code == 400 and 'href="#needs"' in empty.text
        started = await browser.post(
            f"{path}/support",
            {
                "csrf_token": csrf_of(page.text),
                "needs": ["emotional", "safety"],
                "plan": "weekly calls",
            },
        )
        assert started.status_code in (302, 303), started.text
        closed = await browser.post(
            f"{path}/close", {"csrf_token": csrf_of(page.text), "reason": "supported"}
        )
        assert closed.status_code in (302, 303), closed.text
    assert (
        await scalar(sessions, "SELECT status FROM referrals WHERE id = :r", r=made["id"])
        == "closed"
    )
    caseload = await browser.get("/staff/caseload")
    assert made["reference"] not in caseload.text
    # Re-open one: back to in_support, the referral back in contact, no plan restarted.
    case_id = cases[0][0]
    page = await browser.get(f"/staff/cases/{case_id}")
    steps_before = await scalar(
        sessions, "SELECT count(*) FROM contact_steps WHERE referral_id = :r", r=made["id"]
    )
    no_reason = await browser.post(
        f"/staff/cases/{case_id}/reopen", {"csrf_token": csrf_of(page.text)}
    )
    assert no_reason.status_code == 400
    reopened = await browser.post(
        f"/staff/cases/{case_id}/reopen",
        {"csrf_token": csrf_of(page.text), "reopen_reason": "victim called back"},
    )
    assert reopened.status_code in (302, 303), reopened.text
    assert (
        await scalar(sessions, "SELECT status FROM cases WHERE id = :c", c=case_id) == "in_support"
    )
    assert (
        await scalar(sessions, "SELECT status FROM referrals WHERE id = :r", r=made["id"])
        == "in_contact"
    )
    assert (
        await scalar(
            sessions, "SELECT count(*) FROM contact_steps WHERE referral_id = :r", r=made["id"]
        )
        == steps_before
    )


async def test_a_withdrawn_referrals_case_never_reopens(
    web: Any, sessions: Any, make_key: Any
) -> None:
    made, key = await _referral(web, make_key)
    withdrawn = await web.post(
        f"/api/v1/referrals/{made['id']}/withdraw",
        json={"reason": "victim asked"},
        headers=bearer(key),
    )
    assert withdrawn.status_code == 200
    [(case_id, service)] = (
        await rows(sessions, "SELECT id, service FROM cases WHERE referral_id = :r", r=made["id"])
    )[:1]
    browser = await sign_in(web, await make_staff(sessions, ("caseworker",), (service,)))
    page = await browser.get(f"/staff/cases/{case_id}")
    assert "Re-open the case" not in page.text
    refused = await browser.post(
        f"/staff/cases/{case_id}/reopen",
        {"csrf_token": csrf_of(page.text), "reopen_reason": "try anyway"},
    )
    assert refused.status_code == 400 and "new referral is needed" in refused.text
    assert await scalar(sessions, "SELECT status FROM cases WHERE id = :c", c=case_id) == "closed"


async def test_the_duty_lead_reassigns_a_caseload(web: Any, sessions: Any, make_key: Any) -> None:
    made, _ = await _referral(web, make_key)
    [(case_id, service)] = (
        await rows(sessions, "SELECT id, service FROM cases WHERE referral_id = :r", r=made["id"])
    )[:1]
    leaving = await make_staff(sessions, ("caseworker",), (service,))
    staying = await make_staff(sessions, ("caseworker",), (service,))
    browser = await sign_in(web, leaving)
    page = await browser.get(f"/staff/cases/{case_id}")
    await browser.post(
        f"/staff/cases/{case_id}/assign", {"csrf_token": csrf_of(page.text), "assignee": "me"}
    )
    lead = await sign_in(web, await make_staff(sessions, ("duty_lead",)))
    page = await lead.get("/staff/caseload/reassign")
    assert page.status_code == 200
    moved = await lead.post(
        "/staff/caseload/reassign",
        {
            "csrf_token": csrf_of(page.text),
            "from_user": str(leaving.user_id),
            "to_user": str(staying.user_id),
        },
    )
    assert moved.status_code in (302, 303), moved.text
    assert (
        await scalar(sessions, "SELECT assigned_to FROM cases WHERE id = :c", c=case_id)
        == staying.user_id
    )
    # A hub user may not reassign a caseload.
    hub = await sign_in(web, await make_staff(sessions, ("hub",)))
    assert (await hub.get("/staff/caseload/reassign")).status_code == 403


async def test_a_bad_deadline_is_an_error_linked_to_its_field(
    web: Any, sessions: Any, make_key: Any
) -> None:
    made, _ = await _referral(web, make_key)
    hub = await sign_in(web, await make_staff(sessions, ("hub",)))
    path = f"/staff/referrals/{made['id']}"
    page = await hub.get(path)
    before = await scalar(
        sessions, "SELECT contact_due_by FROM referrals WHERE id = :r", r=made["id"]
    )
    for day, clock in (
        ("2026-13-45", "17:00"),
        ("yesterday", ""),
        ("2000-01-01", "09:00"),
        ("", ""),
    ):
        refused = await hub.post(
            f"{path}/override",
            {
                "csrf_token": csrf_of(page.text),
                "kind": "deadline",
                "deadline_date": day,
                "deadline_time": clock,
                "reason": "police asked",
            },
        )
        assert refused.status_code == 400, (day, refused.text)
        assert 'href="#deadline_date"' in refused.text
        assert 'id="deadline_date"' in refused.text
    assert (
        await scalar(sessions, "SELECT contact_due_by FROM referrals WHERE id = :r", r=made["id"])
        == before
    )
