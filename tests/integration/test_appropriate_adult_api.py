"""POST /appropriate-adult-requests (api.md; triage-policy.md "Appropriate Adult requests").

The service clock is real time, so office hours are controlled with an explicit `needed_at`:
Wednesday 13 January 2027 (not a bank holiday; Europe/London is on GMT, so Z is local)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

from helpers import assert_problem, bearer, parse_z, referral_count, rows, scalar

URL = "/api/v1/appropriate-adult-requests"
IN_HOURS = "2027-01-13T10:00:00Z"
OUT_OF_HOURS = "2027-01-13T22:30:00Z"
SATURDAY_IN_HOURS = "2027-01-16T10:00:00Z"
PERSON_FIRST, PERSON_LAST = "Barnaby", "Wetherell-Okafor"
REQUESTER_PHONE = "01632 960777"
KEYS = {"id", "reference", "external_ref", "status", "attend_by", "signpost_to", "reasons", "flags"}


def aa_request(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_ref": f"KC/ME/27/{uuid.uuid4().hex[:8]}",
        "custody_suite": "Maidstone",
        "person": {
            "first_name": PERSON_FIRST,
            "last_name": PERSON_LAST,
            "date_of_birth": "1990-02-01",
            "vulnerabilities": ["learning_disability"],
            "vulnerable": True,
        },
        "juvenile": False,
        "needed_at": OUT_OF_HOURS,
        "reason": "voluntary interview",
        "requester": {"name": "Sgt Pat Ellis", "phone": REQUESTER_PHONE},
    }
    for key, value in changes.items():
        if key.startswith("person."):
            body["person"][key.split(".", 1)[1]] = value
        elif value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def assert_no_person(text: str) -> None:
    for secret in (PERSON_FIRST, PERSON_LAST, "960777", "Pat Ellis"):
        assert secret not in text


async def post(client: Any, key: str, body: dict[str, Any]) -> Any:
    return await client.post(URL, json=body, headers=bearer(key))


async def test_vulnerable_adult_kcc_is_allocated(client: Any, make_key: Any, sessions: Any) -> None:
    name, key = await make_key("police")
    body = aa_request(needed_at=IN_HOURS)  # KCC area: allocated at any time
    response = await post(client, key, body)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert set(answer) == KEYS
    assert re.fullmatch(r"KAA-\d{2}-\d{6,}", answer["reference"]), answer["reference"]
    assert answer["external_ref"] == body["external_ref"]
    assert answer["status"] == "allocated"
    assert answer["attend_by"] == IN_HOURS
    assert answer["signpost_to"] is None
    assert answer["flags"] == []
    assert any("vulnerable adult" in reason for reason in answer["reasons"])
    assert_no_person(response.text)
    (row,) = await rows(
        sessions,
        "SELECT status, custody_suite, attend_by, reference FROM aa_requests WHERE id = :id",
        id=uuid.UUID(answer["id"]),
    )
    assert (row.status, row.custody_suite, row.reference) == (
        "allocated",
        "Maidstone",
        answer["reference"],
    )
    assert row.attend_by == parse_z(IN_HOURS)
    # Apart from victims: no referral written.
    assert await referral_count(sessions, name) == 0


async def test_without_needed_at_attend_within_two_hours(
    client: Any, make_key: Any, sessions: Any
) -> None:
    _, key = await make_key("police")
    response = await post(client, key, aa_request(needed_at=None))
    assert response.status_code == 201, response.text
    received_at = await scalar(
        sessions,
        "SELECT received_at FROM aa_requests WHERE id = :id",
        id=uuid.UUID(response.json()["id"]),
    )
    # Two hours after receipt by the service clock (the catalogue's attend_within_hours).
    expected = (received_at + timedelta(hours=2)).replace(microsecond=0)
    assert parse_z(response.json()["attend_by"]) == expected


async def test_juvenile_in_office_hours_is_signposted(client: Any, make_key: Any) -> None:
    _, key = await make_key("police")
    for suite, council in (("Medway", "medway-youth-justice"), ("Canterbury", "kcc-youth-justice")):
        body = aa_request(
            custody_suite=suite,
            juvenile=True,
            needed_at=IN_HOURS,
            **{"person.date_of_birth": "2010-05-01", "person.vulnerabilities": []},
        )
        response = await post(client, key, body)
        assert response.status_code == 201, response.text
        answer = response.json()
        assert answer["status"] == "signposted"
        assert answer["signpost_to"] == council
        assert answer["attend_by"] is None
        assert any("in office hours" in reason for reason in answer["reasons"])
        assert answer["reference"].startswith("KAA-")


async def test_juvenile_out_of_hours_is_allocated(client: Any, make_key: Any) -> None:
    _, key = await make_key("police")
    for needed_at in (OUT_OF_HOURS, SATURDAY_IN_HOURS):
        body = aa_request(
            custody_suite="Medway", juvenile=True, needed_at=needed_at, person={"last_name": "X"}
        )
        answer = (await post(client, key, body)).json()
        assert answer["status"] == "allocated", answer
        assert answer["attend_by"] == needed_at


async def test_juvenile_by_date_of_birth(client: Any, make_key: Any) -> None:
    _, key = await make_key("police")
    body = aa_request(
        custody_suite="Folkestone",
        juvenile=None,
        needed_at=IN_HOURS,
        **{"person.date_of_birth": "2011-03-03"},
    )
    answer = (await post(client, key, body)).json()
    assert (answer["status"], answer["signpost_to"]) == ("signposted", "kcc-youth-justice")


async def test_vulnerable_adult_medway_in_hours_is_signposted(client: Any, make_key: Any) -> None:
    _, key = await make_key("police")
    answer = (
        await post(client, key, aa_request(custody_suite="Medway", needed_at=IN_HOURS))
    ).json()
    assert (answer["status"], answer["signpost_to"]) == ("signposted", "medway-adult-aa")
    answer = (
        await post(client, key, aa_request(custody_suite="Medway", needed_at=OUT_OF_HOURS))
    ).json()
    assert (answer["status"], answer["signpost_to"]) == ("allocated", None)


async def test_flags_age_check_and_eligibility_check(client: Any, make_key: Any) -> None:
    _, key = await make_key("police")
    older = aa_request(juvenile=True, **{"person.date_of_birth": "1990-01-01"})
    answer = (await post(client, key, older)).json()
    assert "age_check" in answer["flags"]
    plain_adult = aa_request(**{"person.vulnerabilities": [], "person.vulnerable": False})
    answer = (await post(client, key, plain_adult)).json()
    assert answer["status"] == "allocated"  # never refused
    assert "eligibility_check" in answer["flags"]


async def test_resend_is_200_and_changed_is_409(client: Any, make_key: Any, sessions: Any) -> None:
    name, key = await make_key("police")
    body = aa_request()
    first = await post(client, key, body)
    assert first.status_code == 201
    again = await post(client, key, body)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    changed = dict(body, reason="charged and detained")
    conflict = await post(client, key, changed)
    assert_problem(conflict, 409)
    assert_no_person(conflict.text)
    client_id = await scalar(sessions, "SELECT id FROM api_clients WHERE name = :n", n=name)
    count = await scalar(
        sessions, "SELECT count(*) FROM aa_requests WHERE client_id = :c", c=client_id
    )
    assert count == 1


async def test_unknown_custody_suite_is_422(client: Any, make_key: Any, sessions: Any) -> None:
    name, key = await make_key("police")
    response = await post(client, key, aa_request(custody_suite="Gotham Central"))
    problem = assert_problem(response, 422)
    assert [e["path"] for e in problem["errors"]] == ["custody_suite"]
    message = problem["errors"][0]["message"]
    for suite in (
        "Canterbury",
        "Folkestone",
        "Maidstone",
        "Margate",
        "Medway",
        "North Kent",
        "Tonbridge",
    ):
        assert suite in message
    assert_no_person(response.text)
    client_id = await scalar(sessions, "SELECT id FROM api_clients WHERE name = :n", n=name)
    assert (
        await scalar(sessions, "SELECT count(*) FROM aa_requests WHERE client_id = :c", c=client_id)
        == 0
    )


async def test_bad_aa_requests_report_every_problem(client: Any, make_key: Any) -> None:
    _, key = await make_key("police")
    body = aa_request(
        external_ref=None,
        needed_at="2027-01-13T10:00:00",
        person={"date_of_birth": "2022-01-01", "vulnerabilities": ["grumpy"]},
        juvenile="yes",
        requester={"phone": "12345"},
    )
    problem = assert_problem(await post(client, key, body), 422)
    assert {e["path"] for e in problem["errors"]} >= {
        "external_ref",
        "needed_at",
        "person.first_name",
        "person.date_of_birth",
        "person.vulnerabilities[0]",
        "juvenile",
        "requester.phone",
    }
    under_ten = [e for e in problem["errors"] if e["path"] == "person.date_of_birth"]
    assert "age of criminal responsibility" in under_ten[0]["message"]


async def test_aa_malformed_json_and_media_type(client: Any, make_key: Any) -> None:
    _, key = await make_key("police")
    response = await client.post(
        URL,
        content=b'{"person": {"first_name": "Barnaby"',
        headers={
            **bearer(key),
            "Content-Type": "application/json",
        },
    )
    assert_problem(response, 400)
    assert_no_person(response.text)
    response = await client.post(
        URL, content=b"person=Barnaby", headers={**bearer(key), "Content-Type": "text/plain"}
    )
    assert_problem(response, 415)


async def test_aa_body_over_1_mib_is_413(client: Any, make_key: Any) -> None:
    _, key = await make_key("police")
    response = await post(client, key, aa_request(reason="r" * (1024 * 1024)))
    assert_problem(response, 413)
