"""Surveys on the staff pages (issue 12, points 4 and 5): the caseworker records the outcome
measures at the needs assessment and at closure on the case page, the survey's answers and free
text show on the case whose closure wrote the invitation (to its service and the hub, nobody
else), the distance travelled per measure, free text with a safeguarding word on the duty
lead's alerts, and "Pause all contact" on a closed referral while a survey may still go."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import scalar
from sqlalchemy import text
from staff_support import csrf_of, make_staff, sign_in
from survey_support import answer, invitation, invited

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("service_clock_reset")]


async def test_outcome_measures_at_assessment_and_closure_give_the_distance_travelled(
    web: Any, sessions: Any, police: dict[str, str], notifier: Any
) -> None:
    made, link = await invited(web, sessions, police, notifier)
    found = await invitation(sessions, made["id"])
    case_id, service = str(found.case_id), found.service
    other_case = await scalar(
        sessions,
        "SELECT id FROM cases WHERE referral_id = :r AND id <> :c",
        r=made["id"],
        c=case_id,
    )
    worker = await sign_in(web, await make_staff(sessions, ("caseworker",), (service, "rj")))

    # At the needs assessment, on the open case: nothing chosen is an error; a score is kept.
    path = f"/staff/cases/{other_case}"
    page = await worker.get(path)
    assert "Record the measures at the needs assessment" in page.text
    empty = await worker.post(
        f"{path}/outcomes", {"csrf_token": csrf_of(page.text), "stage": "assessment"}
    )
    assert empty.status_code == 400 and 'href="#wellbeing"' in empty.text
    early = await worker.post(
        f"{path}/outcomes",
        {"csrf_token": csrf_of(page.text), "stage": "closure", "wellbeing": "3"},
    )
    assert early.status_code == 400 and "Close the case before" in early.text
    bad = await worker.post(
        f"{path}/outcomes",
        {"csrf_token": csrf_of(page.text), "stage": "assessment", "safety": "9"},
    )
    assert bad.status_code == 400 and 'href="#safety"' in bad.text

    # The closed case: its assessment scores recorded before closure (as a caseworker would
    # have), then the victim's survey answers at closure.
    async with sessions() as db:
        await db.execute(
            text("""INSERT INTO case_outcomes (case_id, stage, source, measure, score,
                                               recorded_at, recorded_by)
                    VALUES (:c, 'assessment', 'caseworker', 'wellbeing', 2, now(), 'staff:x'),
                           (:c, 'assessment', 'caseworker', 'safety', 4, now(), 'staff:x')"""),
            {"c": case_id},
        )
        await db.commit()
    said = "My caseworker was kind, I feel less scared now"
    sent = await answer(web, link, wellbeing="4", safety="3", satisfaction="5", comments=said)
    assert sent.status_code == 303
    page = await worker.get(f"/staff/cases/{case_id}")
    assert page.status_code == 200
    text_ = page.text
    assert "Very satisfied" in text_ and said in text_ and "Flagged to the duty lead" in text_
    # wellbeing 2 -> 4 (+2), safety 4 -> 3 (-1), from the survey
    assert "+2" in text_ and "-1" in text_ and "(survey)" in text_
    # At closure the caseworker may record too; the survey's answer stays the one shown.
    closure = await worker.post(
        f"/staff/cases/{case_id}/outcomes",
        {"csrf_token": csrf_of(page.text), "stage": "closure", "wellbeing": "1", "informed": "4"},
    )
    assert closure.status_code in (302, 303), closure.text
    kept = await scalar(
        sessions,
        """SELECT json_object_agg(source || ':' || measure, score) FROM case_outcomes
           WHERE case_id = :c AND stage = 'closure'""",
        c=case_id,
    )
    assert kept == {
        "survey:wellbeing": 4,
        "survey:safety": 3,
        "caseworker:wellbeing": 1,
        "caseworker:informed": 4,
    }


async def test_free_text_is_for_the_cases_service_and_the_hub_and_alerts_the_duty_lead(
    web: Any, sessions: Any, police: dict[str, str], notifier: Any
) -> None:
    made, link = await invited(web, sessions, police, notifier)
    found = await invitation(sessions, made["id"])
    said = "Please call me, I am frightened he knows where I live"
    assert (await answer(web, link, comments=said)).status_code == 303
    case_path = f"/staff/cases/{found.case_id}"
    elsewhere = "sv-counselling" if found.service != "sv-counselling" else "rj"
    for roles, services, sees in [
        (("hub",), (), True),
        (("caseworker",), (found.service,), True),
        (("caseworker",), (elsewhere,), False),
    ]:
        browser = await sign_in(web, await make_staff(sessions, roles, services))
        page = await browser.get(case_path)
        assert (said in page.text) is sees, (roles, services, page.status_code)
        if not sees:
            assert page.status_code == 404
    lead = await sign_in(web, await make_staff(sessions, ("duty_lead",)))
    alerts = await lead.get("/staff/alerts")
    assert "survey safeguarding" in alerts.text and made["reference"] in alerts.text
    # The alert itself carries no words of the victim's.
    assert said not in alerts.text


async def test_a_closed_referral_can_still_be_paused_while_a_survey_may_go(
    web: Any, sessions: Any, police: dict[str, str]
) -> None:
    from survey_support import close_cases, survey_body

    response = await web.post("/api/v1/referrals", json=survey_body(), headers=police)
    made = response.json()
    await close_cases(sessions, made["id"])
    assert await scalar(sessions, "SELECT status FROM referrals WHERE id = :r", r=made["id"]) == (
        "closed"
    )
    assert (await invitation(sessions, made["id"])).status == "scheduled"
    hub = await sign_in(web, await make_staff(sessions, ("hub",)))
    path = f"/staff/referrals/{made['id']}"
    page = await hub.get(path)
    assert "Pause all contact" in page.text
    paused = await hub.post(
        f"{path}/contact", {"csrf_token": csrf_of(page.text), "action": "pause"}
    )
    assert paused.status_code in (302, 303), paused.text
    after = await invitation(sessions, made["id"])
    assert (after.status, after.cancel_reason) == ("cancelled", "paused")
    assert "Pause all contact" not in (await hub.get(path)).text
