"""Attacks and careless use on what issues 12 and 13 added: control characters and huge values
in the report queries and the outcome measures form, another service's case, another role, and
a body too large for the survey page. Each answer is a clear 4xx that writes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import bearer, scalar
from staff_support import csrf_of, make_staff, sign_in
from survey_support import invitation, invited

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("service_clock_reset")]

HOSTILE = ["%00", "2026-07%00", "x" * 20_000, "2026-07\u202e", "%ff%fe", "-1", "9999-99"]


async def test_report_queries_never_fail(web: Any, sessions: Any, make_key: Any) -> None:
    lead = await sign_in(web, await make_staff(sessions, ("duty_lead",)))
    _, key = await make_key("commissioner")
    for value in HOSTILE:
        for query in (f"from={value}", f"from=2026-07&to={value}", f"service={value}&from=2026-07"):
            page = await lead.get(f"/staff/reports?{query}")
            assert page.status_code == 400, (query[:40], page.status_code)
            assert "There is a problem" in page.text
            download = await lead.get(f"/staff/reports.csv?{query}")
            assert download.status_code in (302, 303), (query[:40], download.status_code)
            api = await web.get(f"/api/v1/reports?{query}", headers=bearer(key))
            assert api.status_code in (414, 422), (query[:40], api.status_code)
            assert value[:10] not in api.text or value.startswith(("2026", "-1", "9999"))


async def test_outcome_measures_form_refuses_bad_values_and_other_cases(
    web: Any, sessions: Any, police: dict[str, str], notifier: Any
) -> None:
    made, _ = await invited(web, sessions, police, notifier)
    found = await invitation(sessions, made["id"])
    open_case = await scalar(
        sessions,
        "SELECT id FROM cases WHERE referral_id = :r AND status <> 'closed'",
        r=made["id"],
    )
    mine = await sign_in(web, await make_staff(sessions, ("caseworker",), (found.service, "rj")))
    page = await mine.get(f"/staff/cases/{open_case}")
    csrf = csrf_of(page.text)
    for values in (
        {"wellbeing": "4\x00"},
        {"wellbeing": "9" * 20_000},
        {"stage": "closure\x00", "wellbeing": "4"},
        {"stage": "x" * 5000, "wellbeing": "4"},
    ):
        body = {"csrf_token": csrf, "stage": "assessment", **values}
        answer = await mine.post(f"/staff/cases/{open_case}/outcomes", body)
        assert answer.status_code == 400, (str(values)[:40], answer.status_code)
    assert (
        await scalar(sessions, "SELECT count(*) FROM case_outcomes WHERE case_id = :c", c=open_case)
        == 0
    )
    # Another service's caseworker, and a role that may not do case work, change nothing.
    elsewhere = "sv-counselling" if found.service != "sv-counselling" else "stalking"
    other = await sign_in(web, await make_staff(sessions, ("caseworker",), (elsewhere,)))
    page = await other.get("/staff/caseload")
    answer = await other.post(
        f"/staff/cases/{open_case}/outcomes",
        {"csrf_token": csrf_of(page.text), "stage": "assessment", "wellbeing": "4"},
    )
    assert answer.status_code == 404
    commissioner = await sign_in(web, await make_staff(sessions, ("commissioner",)))
    page = await commissioner.get("/staff/reports")
    answer = await commissioner.post(
        f"/staff/cases/{open_case}/outcomes",
        {"csrf_token": csrf_of(page.text), "stage": "assessment", "wellbeing": "4"},
    )
    assert answer.status_code in (403, 404)
    assert (
        await scalar(sessions, "SELECT count(*) FROM case_outcomes WHERE case_id = :c", c=open_case)
        == 0
    )


async def test_a_body_too_large_for_the_survey_is_refused(
    web: Any, sessions: Any, police: dict[str, str], notifier: Any
) -> None:
    made, link = await invited(web, sessions, police, notifier)
    web.cookies.clear()
    answer = await web.post(
        link,
        content=b"comments=" + b"x" * (3 * 1024 * 1024),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code in (400, 413), answer.status_code
    assert (await invitation(sessions, made["id"])).status == "invited"
