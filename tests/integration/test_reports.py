"""Commissioner reports (issue 13): each figure family against a hand-built data set with known
answers (in 2019, a year no other test writes), exact for staff roles and with disclosure
control for the commissioner; the page, the CSV and the API show the same figures; a
commissioner API client reaches reports and nothing else; a commissioner user sees no personal
data on any page they can reach."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from helpers import bearer
from sqlalchemy import text
from staff_support import make_staff, sign_in

pytestmark = pytest.mark.integration

SERVICE = "isva"
MARK = f"RPT{uuid.uuid4().hex[:6].upper()}"  # this run's references


def _at(month: int, day: int = 10, hour: int = 10, year: int = 2019) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


async def _referral(
    db: Any,
    *,
    received: datetime,
    source: str = "police",
    priority: str = "P3",
    offence: str = "sexual",
    contacted_after: timedelta | None = None,
    due_after: timedelta | None = timedelta(days=3),
    closure: str | None = None,
    breach: str | None = None,
    service: str = SERVICE,
) -> uuid.UUID:
    referral_id, case_id = uuid.uuid4(), uuid.uuid4()
    first = received + contacted_after if contacted_after is not None else None
    await db.execute(
        text("""INSERT INTO referrals (id, reference, source, status, received_at, content_hash,
                    facts, referral_consent, priority, area, offence_category, age_band,
                    enhanced_rights, contact_due_by, first_contact_at,
                    first_contact_working_minutes)
                VALUES (:id, :ref, :source, 'closed', :received, 'x',
                    '{"victim": {"first_name": "Zelda", "last_name": "Quist"}}', 'given',
                    :priority, 'west-kent', :offence, '25_64', ARRAY['most_serious_crime'],
                    :due, :first, :minutes)"""),
        {
            "id": referral_id,
            "ref": f"{MARK}-{referral_id.hex[:8]}",
            "source": source,
            "received": received,
            "priority": priority,
            "offence": offence,
            "due": received + due_after if due_after is not None else None,
            "first": first,
            "minutes": int(contacted_after.total_seconds() // 60) if contacted_after else None,
        },
    )
    await db.execute(
        text("""INSERT INTO cases (id, referral_id, service, role, status, opened_at,
                                   first_contact_at, closed_at, closure_reason)
                VALUES (:id, :r, :service, 'primary', :status, :opened, :first, :closed,
                        :reason)"""),
        {
            "id": case_id,
            "r": referral_id,
            "service": service,
            "status": "closed" if closure else "in_support",
            "opened": received,
            "first": first,
            "closed": received + timedelta(days=20) if closure else None,
            "reason": closure,
        },
    )
    if breach:
        await db.execute(
            text("""INSERT INTO alerts (id, referral_id, kind, status, due_at, raised_at, reason)
                    VALUES (gen_random_uuid(), :r, 'deadline_breach', 'raised', :due, :due,
                            :reason)"""),
            {"r": referral_id, "due": received + timedelta(days=3), "reason": breach},
        )
    return referral_id


@pytest.fixture(scope="module")
async def data(servers: Any, sessions: Any) -> dict[str, Any]:
    """April to June 2019 for isva: 12 police, 3 professional and 2 self referrals; 14 with a
    deadline contacted, 11 of them in time (waits 1 h to 10 h, then three late ones); one
    missed breach and one while paused; 8 closed as supported, 2 declined. January to March:
    3 referrals (a count under 5). April to June 2018: 6."""
    async with sessions() as db:
        waits = [timedelta(hours=h) for h in range(1, 12)]  # 11 in time
        late = [timedelta(days=4)] * 3
        for index in range(17):
            source = "police" if index < 12 else ("professional" if index < 15 else "self")
            if index < 11:
                contacted: timedelta | None = waits[index]
            elif index < 14:
                contacted = late[index - 11]
            else:
                contacted = None
            await _referral(
                db,
                received=_at(4 + index % 3, 1 + index),
                source=source,
                priority="P1" if index < 2 else "P3",
                contacted_after=contacted,
                closure="supported" if index < 8 else ("declined" if index < 10 else None),
                breach="missed" if index == 14 else ("paused" if index == 15 else None),
            )
        for index in range(3):
            await _referral(db, received=_at(2, 5 + index), contacted_after=timedelta(hours=2))
        for index in range(6):
            await _referral(
                db, received=_at(5, 3 + index, year=2018), contacted_after=timedelta(hours=5)
            )
        await db.commit()
    return {"query": f"service={SERVICE}&from=2019-04&to=2019-06"}


def _figures(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for s in answer["sections"] for f in s["figures"]}


async def _report(sessions: Any, roles: tuple[str, ...]) -> Any:
    from triage.domain.periods import Period
    from triage.domain.principals import staff
    from triage.services import reports
    from triage.services.catalogues import current_catalogue

    principal = staff(uuid.uuid4(), frozenset(roles), frozenset())
    async with sessions() as db:
        report = await reports.build_report(
            db, principal, current_catalogue(), SERVICE, Period.of_months("2019-04", "2019-06")
        )
    return reports.as_json(report)


async def test_exact_figures_for_staff(data: dict[str, Any], sessions: Any) -> None:
    figures = _figures(await _report(sessions, ("duty_lead",)))

    def values(name: str) -> tuple[Any, Any, Any]:
        f = figures[name]
        return f["current"]["value"], f["previous"]["value"], f["year_earlier"]["value"]

    assert values("received") == (17, 3, 6)
    assert values("source:police")[0] == 12 and values("source:self")[0] == 2
    assert values("priority:P1")[0] == 2
    assert values("enhanced:most_serious_crime")[0] == 17
    assert values("contacted")[0] == 14
    assert values("with_deadline")[0] == 17 and values("in_time")[0] == 11
    assert values("in_time_percent")[0] == pytest.approx(100 * 11 / 17, abs=0.1)
    # Waits of 1..11 h and three of 96 h: median of 14 values is 7.5 h.
    assert values("median_hours")[0] == pytest.approx(7.5, abs=0.01)
    # Three contacted late and three never (one of them while paused): from the referrals'
    # own times, the paused one counted apart.
    assert values("breaches")[0] == 5 and values("breaches_paused")[0] == 1
    assert values("closed:supported")[0] == 8 and values("closed:declined")[0] == 2


async def test_disclosure_control_for_the_commissioner(data: dict[str, Any], sessions: Any) -> None:
    answer = await _report(sessions, ("commissioner",))
    assert answer["disclosure_control"] is True
    figures = _figures(answer)
    received = figures["received"]
    assert (received["current"]["text"], received["previous"]["text"]) == ("15", "<5")
    assert received["year_earlier"]["text"] == "5"
    # A breakdown with a count under 5 is suppressed whole (secondary suppression).
    assert figures["source:self"]["current"]["text"] == "suppressed"
    assert figures["source:police"]["current"]["text"] == "suppressed"
    assert figures["in_time"]["current"]["text"] == "10"
    # 10 (rounded 11) of 15 (rounded 17): from the rounded counts.
    assert figures["in_time_percent"]["current"]["text"] == "67%"
    # Three referrals in the period before: no median.
    assert figures["median_hours"]["previous"]["text"] == "suppressed"
    assert figures["median_hours"]["current"]["text"] == "7.5 h"


async def test_page_csv_and_api_show_the_same_figures(
    data: dict[str, Any], web: Any, sessions: Any, make_key: Any
) -> None:
    commissioner = await sign_in(web, await make_staff(sessions, ("commissioner",)))
    page = await commissioner.get(f"/staff/reports?{data['query']}")
    assert page.status_code == 200, page.text
    assert "Counts under 5 show as &lt;5" in page.text and "<svg" in page.text
    assert MARK not in page.text  # no breach list by reference for the commissioner
    download = await commissioner.get(f"/staff/reports.csv?{data['query']}")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    rows = {r[2]: r for r in csv.reader(io.StringIO(download.text))}
    assert rows["received"][3:] == ["15", "<5", "5"]
    _, key = await make_key("commissioner")
    api = await web.get(f"/api/v1/reports?{data['query']}", headers=bearer(key))
    assert api.status_code == 200, api.text
    figures = _figures(api.json())
    for row_name, row in rows.items():
        if row_name == "name":
            continue
        assert [figures[row_name][c]["text"] for c in ("current", "previous", "year_earlier")] == (
            row[3:]
        ), row_name
    # Staff see the breaches by reference on the page.
    lead = await sign_in(web, await make_staff(sessions, ("duty_lead",)))
    staff_page = await lead.get(f"/staff/reports?{data['query']}")
    assert MARK in staff_page.text and "Deadlines missed, by referral" in staff_page.text


async def test_a_commissioner_client_reaches_reports_and_nothing_else(
    web: Any, sessions: Any, make_key: Any
) -> None:
    from triage.services.api_keys import KeyError_, create_key
    from triage.settings import get_settings

    name, key = await make_key("commissioner")
    headers = bearer(key)
    quarter = "/api/v1/reports?from=2019-04&to=2019-06"
    assert (await web.get(quarter, headers=headers)).status_code == 200
    for method, path in [
        ("GET", "/api/v1/referrals?external_ref=x"),
        ("POST", "/api/v1/referrals"),
        ("POST", "/api/v1/appropriate-adult-requests"),
    ]:
        answer = await web.request(method, path, headers=headers, json={})
        assert answer.status_code == 403, (method, path, answer.status_code)
    async with sessions() as db:
        with pytest.raises(KeyError_):
            await create_key(db, get_settings().secret_key, name, ("referrals:write",))
    # Bad queries are problem+json 422s naming the parameter.
    for query, field in [
        ("from=2019-13", "from"),
        ("from=2019-04&to=2019-01", "to"),
        ("service=nope&from=2019-04&to=2019-06", "service"),
        ("", "from"),
        # A month, or months that are not a quarter: never for the commissioner.
        ("from=2019-04", "from"),
        ("from=2019-05&to=2019-07", "from"),
    ]:
        answer = await web.get(f"/api/v1/reports?{query}", headers=headers)
        assert answer.status_code == 422, (query, answer.text)
        assert field in answer.text


async def test_a_commissioner_sees_no_personal_data_anywhere_they_can_reach(
    data: dict[str, Any], web: Any, sessions: Any
) -> None:
    commissioner = await sign_in(web, await make_staff(sessions, ("commissioner",)))
    home = await commissioner.get("/staff")
    assert home.status_code in (302, 303) and home.headers["location"] == "/staff/reports"
    reached = []
    for path in ("/staff/reports", f"/staff/reports?{data['query']}", "/staff/account"):
        page = await commissioner.get(path)
        assert page.status_code == 200, path
        reached.append(page.text)
    for text_ in reached:
        for secret in ("Zelda", "Quist", MARK):
            assert secret not in text_
    for path in ("/staff/queue", "/staff/search?q=Quist", "/staff/alerts", "/staff/calls"):
        page = await commissioner.get(path)
        assert page.status_code in (403, 404), path
        assert "Quist" not in page.text
