"""Retention and erasure (retention.md, issue 13 point 7): a referral past its years loses its
personal data and keeps what reports read, so a past period's report gives the same figures
before and after erasure; a legal hold stops erasure until it is lifted; an open referral is
never erased by itself; the preview counts what each rule would erase; a subject access export
holds everything with third-party data marked for review; every erasure and export is
audited."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from helpers import scalar
from sqlalchemy import text
from survey_support import close_cases, survey_body

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("service_clock_reset")]


async def _closed_long_ago(
    web: Any, sessions: Any, police: dict[str, str], years: int = 7, **changes: Any
) -> dict[str, Any]:
    """A referral with a note and a closed case, whose final state is `years` in the past,
    received in 2019 (a year no other test writes), so its report is its own."""
    response = await web.post("/api/v1/referrals", json=survey_body(**changes), headers=police)
    assert response.status_code == 201, response.text
    made = response.json()
    async with sessions() as db:
        await db.execute(
            text("""INSERT INTO notes (referral_id, author, body)
                    VALUES (:r, 'staff:someone', 'Spoke to her sister Jane Doe')"""),
            {"r": made["id"]},
        )
        await db.commit()
    await close_cases(sessions, made["id"], reason="supported")
    async with sessions() as db:
        await db.execute(
            text("""UPDATE referrals SET received_at = timestamptz '2019-03-05 10:00+00',
                        final_at = now() - make_interval(years => :years)
                    WHERE id = :r"""),
            {"r": made["id"], "years": years},
        )
        await db.execute(
            text("""UPDATE cases SET opened_at = timestamptz '2019-03-05 10:00+00',
                        closed_at = timestamptz '2019-03-20 10:00+00' WHERE referral_id = :r"""),
            {"r": made["id"]},
        )
        await db.commit()
    return made


async def _erase_due(sessions: Any) -> int:
    from triage.services.catalogues import current_catalogue
    from triage.services.retention import erase_due

    return await erase_due(sessions, current_catalogue())


async def _march_2019(sessions: Any) -> dict[str, Any]:
    from triage.domain.periods import Period
    from triage.domain.principals import staff
    from triage.services import reports
    from triage.services.catalogues import current_catalogue

    lead = staff(uuid.uuid4(), frozenset({"duty_lead"}), frozenset())
    async with sessions() as db:
        report = await reports.build_report(
            db, lead, current_catalogue(), None, Period.of_months("2019-03")
        )
    answer = reports.as_json(report)
    return {f["name"]: f["current"]["text"] for s in answer["sections"] for f in s["figures"]}


async def test_erasure_keeps_what_reports_read_and_nothing_personal(
    web: Any, sessions: Any, police: dict[str, str]
) -> None:
    made = await _closed_long_ago(web, sessions, police)
    before = await _march_2019(sessions)
    assert before["received"] != "0"
    facts_before = await scalar(sessions, "SELECT facts FROM referrals WHERE id = :r", r=made["id"])
    phone = facts_before["victim"]["phone"]
    assert await _erase_due(sessions) >= 1
    row = await scalar(
        sessions,
        """SELECT row_to_json(r) FROM (SELECT facts, erased_at, victim_surname_key,
               victim_phone_digits, victim_dob, offence_category, age_band, priority, area,
               source FROM referrals WHERE id = :r) r""",
        r=made["id"],
    )
    assert row["erased_at"] is not None
    assert row["victim_surname_key"] is None and row["victim_phone_digits"] is None
    assert row["victim_dob"] is None and row["facts"]["victim"] == {}
    assert row["offence_category"] == facts_before["offence"]["category"]
    everything = json.dumps(
        await scalar(
            sessions,
            """SELECT json_build_object(
                   'referral', (SELECT row_to_json(r) FROM referrals r WHERE r.id = :r),
                   'notes', (SELECT json_agg(n) FROM notes n WHERE n.referral_id = :r),
                   'messages', (SELECT json_agg(m) FROM messages m WHERE m.referral_id = :r))""",
            r=made["id"],
        )
    )
    for secret in (
        phone,
        facts_before["victim"]["last_name"],
        "Jane Doe",
        facts_before["victim"]["email"],
    ):
        assert secret not in everything, secret
    # The report for its period is the same, figure for figure.
    assert await _march_2019(sessions) == before
    # Audited, without personal data; and never erased twice.
    events = await scalar(
        sessions,
        """SELECT count(*) FROM audit_events WHERE action = 'referral.erased'
           AND record_id = :r""",
        r=made["id"],
    )
    assert events == 1
    await _erase_due(sessions)
    assert (
        await scalar(
            sessions,
            """SELECT count(*) FROM audit_events WHERE action = 'referral.erased'
               AND record_id = :r""",
            r=made["id"],
        )
        == 1
    )
    # The staff page of an erased referral still opens.
    from staff_support import make_staff, sign_in

    hub = await sign_in(web, await make_staff(sessions, ("hub",)))
    assert (await hub.get(f"/staff/referrals/{made['id']}")).status_code == 200


async def test_a_legal_hold_stops_erasure_until_lifted(
    web: Any, sessions: Any, police: dict[str, str]
) -> None:
    from triage.services.retention import lift_hold, set_hold

    made = await _closed_long_ago(web, sessions, police)
    async with sessions() as db:
        await set_hold(db, made["reference"], "complaint under review", "staff:admin")
    await _erase_due(sessions)
    assert (
        await scalar(sessions, "SELECT erased_at FROM referrals WHERE id = :r", r=made["id"])
        is None
    )
    async with sessions() as db:
        await lift_hold(db, made["reference"], "staff:admin")
    await _erase_due(sessions)
    assert (
        await scalar(sessions, "SELECT erased_at FROM referrals WHERE id = :r", r=made["id"])
        is not None
    )


async def test_not_yet_due_and_open_referrals_are_kept(
    web: Any, sessions: Any, police: dict[str, str]
) -> None:
    recent = await _closed_long_ago(web, sessions, police, years=5)
    response = await web.post("/api/v1/referrals", json=survey_body(), headers=police)
    still_open = response.json()
    async with sessions() as db:
        await db.execute(
            text("UPDATE referrals SET updated_at = now() - interval '9 years' WHERE id = :r"),
            {"r": still_open["id"]},
        )
        await db.commit()
    await _erase_due(sessions)
    for made in (recent, still_open):
        assert (
            await scalar(sessions, "SELECT erased_at FROM referrals WHERE id = :r", r=made["id"])
            is None
        )


async def test_preview_counts_each_rule(web: Any, sessions: Any, police: dict[str, str]) -> None:
    from triage.services.catalogues import current_catalogue
    from triage.services.retention import preview

    async with sessions() as db:
        before = {p.rule: p for p in await preview(db, current_catalogue())}
    await _closed_long_ago(web, sessions, police, years=7)
    # Six years less 10 days ago: due within the next 30 days, not today.
    soon = await _closed_long_ago(web, sessions, police, years=6)
    async with sessions() as db:
        await db.execute(
            text("UPDATE referrals SET final_at = final_at + interval '10 days' WHERE id = :r"),
            {"r": soon["id"]},
        )
        await db.commit()
        after = {p.rule: p for p in await preview(db, current_catalogue())}
    rule = "closed referrals"
    assert after[rule].today == before[rule].today + 1
    assert after[rule].next_30_days == before[rule].next_30_days + 1


async def test_subject_access_export_marks_third_parties_and_is_audited(
    web: Any, sessions: Any, police: dict[str, str]
) -> None:
    from triage.services.retention import export_referral

    body = survey_body(**{"referrer.name": "PC Alex Smith"})
    response = await web.post("/api/v1/referrals", json=body, headers=police)
    made = response.json()
    async with sessions() as db:
        await db.execute(
            text("""INSERT INTO notes (referral_id, author, body)
                    VALUES (:r, 'staff:abc', 'Her neighbour Sam called')"""),
            {"r": made["id"]},
        )
        await db.commit()
        exported = await export_referral(db, made["reference"], "operator:cli")
    text_ = json.dumps(exported, default=str)
    stored = await scalar(sessions, "SELECT facts FROM referrals WHERE id = :r", r=made["id"])
    assert body["victim"]["last_name"] in text_ and stored["victim"]["phone"] in text_
    assert exported["third_party_for_review"]["referrer"]["name"] == "PC Alex Smith"
    assert "referrer" not in exported["referral"]["facts"]
    assert exported["notes_for_review"][0]["body"] == "Her neighbour Sam called"
    assert (
        await scalar(
            sessions,
            """SELECT count(*) FROM audit_events WHERE action = 'referral.exported'
               AND record_id = :r""",
            r=made["id"],
        )
        == 1
    )


async def test_erasure_cuts_decisions_down_and_goes_on_until_none_is_due(
    web: Any, sessions: Any, police: dict[str, str]
) -> None:
    from triage.services.catalogues import current_catalogue
    from triage.services.retention import erase_due

    made = [await _closed_long_ago(web, sessions, police) for _ in range(3)]
    # One at a time: the job goes on claiming until none is due.
    await erase_due(sessions, current_catalogue(), limit=1)
    for referral in made:
        row = await scalar(
            sessions,
            """SELECT json_build_object('erased', r.erased_at IS NOT NULL,
                   'decisions', (SELECT json_agg(json_build_object('d', d.decision,
                                                                   'e', d.explanation))
                                 FROM triage_decisions d WHERE d.referral_id = r.id))
               FROM referrals r WHERE r.id = :r""",
            r=referral["id"],
        )
        assert row["erased"] is True
        for decision in row["decisions"]:
            assert decision["e"] == {}
            assert decision["d"]["area"]["district"] is None
            assert all("reasons" not in s for s in decision["d"]["services"])
            assert decision["d"]["services"]  # the services themselves are kept


async def test_an_erased_referral_takes_nothing_new(
    web: Any, sessions: Any, police: dict[str, str]
) -> None:
    from triage.domain.principals import staff
    from triage.services import case_work, staff_actions
    from triage.services.clock import service_now
    from triage.services.staff_actions import ActionRefused

    made = await _closed_long_ago(web, sessions, police)
    await _erase_due(sessions)
    withdrawn = await web.post(
        f"/api/v1/referrals/{made['id']}/withdraw", json={"reason": "x"}, headers=police
    )
    assert withdrawn.status_code == 409
    patched = await web.patch(
        f"/api/v1/referrals/{made['id']}", json={"consent": {"to_survey": False}}, headers=police
    )
    assert patched.status_code == 409
    lead = staff(uuid.uuid4(), frozenset({"duty_lead"}), frozenset())
    case_id = await scalar(sessions, "SELECT id FROM cases WHERE referral_id = :r", r=made["id"])
    async with sessions() as db:
        with pytest.raises(ActionRefused):
            await case_work.reopen(db, lead, case_id, "more", await service_now(db))
    async with sessions() as db:
        with pytest.raises(ActionRefused):
            await staff_actions.add_note(db, lead, uuid.UUID(made["id"]), "she said ...")


async def test_appropriate_adult_requests_are_erased_whole_a_year_on(
    web: Any, sessions: Any, police: dict[str, str]
) -> None:
    ids = []
    async with sessions() as db:
        client_id = await db.scalar(text("SELECT id FROM api_clients LIMIT 1"))
        version = await db.scalar(text("SELECT version FROM catalogue_versions LIMIT 1"))
        for status, attend_by in (
            ("allocated", "now() - interval '2 years'"),
            ("signposted", "NULL"),
        ):
            request_id = uuid.uuid4()
            ids.append(request_id)
            await db.execute(
                text(f"""INSERT INTO aa_requests (id, reference, client_id, external_ref,
                            custody_suite, person, request, content_hash, received_at,
                            status, attend_by, reasons, flags, catalogue_version)
                        VALUES (:id, :ref, :c, :ext, 'Medway',
                            '{{"first_name": "Kit"}}',
                            '{{"person": {{"first_name": "Kit"}},
                               "requester": {{"name": "Sgt Rowe"}}}}',
                            'x', now() - interval '2 years', :status, {attend_by},
                            ARRAY['aged 15'], '{{}}', :v)"""),
                {
                    "id": request_id,
                    "ref": f"AAT-{request_id.hex[:10]}",
                    "c": client_id,
                    "ext": request_id.hex,
                    "status": status,
                    "v": version,
                },
            )
        await db.commit()
    await _erase_due(sessions)
    for request_id in ids:
        row = await scalar(
            sessions,
            """SELECT row_to_json(a) FROM (SELECT person, request, reasons, erased_at, status
               FROM aa_requests WHERE id = :i) a""",
            i=request_id,
        )
        assert row["erased_at"] is not None and row["person"] == {} and row["request"] == {}
        assert row["reasons"] == [] and "Kit" not in json.dumps(row)
