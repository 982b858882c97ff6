"""Bad input, each with a test (issue 4, section 5): every error is problem+json with
`errors[{path, message}]`, repeats none of the personal data sent, and writes nothing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from helpers import (
    DELETE,
    NOTHING_WRITTEN,
    assert_no_echo,
    assert_problem,
    bearer,
    paths,
    referral,
    referral_count,
    written_for_client,
)

URL = "/api/v1/referrals"
# Recognisable personal data, so that an echo anywhere in an answer is caught.
NAME, SURNAME = "Philomena", "Quarterbridge"
PHONE, EMAIL = "07700 900456", "philomena.q@example.org"
LINE1, POSTCODE = "7 Quillet Lane", "ME14 1XQ"
NOTES = "sister answers the landline"


def personal(**changes: Any) -> dict[str, Any]:
    return referral(
        **{
            "victim.first_name": NAME,
            "victim.last_name": SURNAME,
            "victim.phone": PHONE,
            "victim.email": EMAIL,
            "victim.address.line1": LINE1,
            "victim.address.postcode": POSTCODE,
            "contact.notes": NOTES,
            **changes,
        }
    )


SECRETS = (NAME, SURNAME, "900456", EMAIL, "Quillet", POSTCODE, NOTES)


async def refused(
    client: Any,
    make_key: Any,
    sessions: Any,
    body: Any,
    status: int,
    *,
    source: str = "police",
    secrets: tuple[str, ...] = SECRETS,
    raw: bytes | None = None,
    content_type: str | None = "application/json",
) -> dict[str, Any]:
    """Send as a fresh client; assert the problem answer, no echo, and nothing written."""
    name, key = await make_key(source)
    headers = bearer(key)
    if content_type is not None:
        headers["Content-Type"] = content_type
    content = raw if raw is not None else json.dumps(body).encode()
    response = await client.post(URL, content=content, headers=headers)
    problem = assert_problem(response, status)
    assert_no_echo(response.text, *secrets)
    for value in response.headers.values():
        assert_no_echo(value, *secrets)
    assert await written_for_client(sessions, name) == NOTHING_WRITTEN
    return problem


@pytest.mark.parametrize(
    "raw",
    [
        b'{"external_ref": "A1", "victim": {"first_name": "Philomena"',
        b"not json at all, Philomena Quarterbridge",
        b"",
        b'{"external_ref": "A1"} trailing Quarterbridge',
        b"{'external_ref': 'A1'}",
        b'{"victim": {"first_name": "Philomena\xff"}}',
    ],
)
async def test_malformed_json_is_400(client: Any, make_key: Any, sessions: Any, raw: bytes) -> None:
    problem = await refused(client, make_key, sessions, None, 400, raw=raw)
    assert problem["type"].endswith("/malformed-json")
    assert problem["title"] == "Malformed JSON"


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "text/csv"]
)
async def test_wrong_content_type_is_415(
    client: Any, make_key: Any, sessions: Any, content_type: str | None
) -> None:
    await refused(client, make_key, sessions, personal(), 415, content_type=content_type)


async def test_json_with_charset_is_fine(client: Any, make_key: Any, sessions: Any) -> None:
    _, key = await make_key("police")
    response = await client.post(
        URL,
        content=json.dumps(personal()).encode(),
        headers={**bearer(key), "Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201, response.text


async def test_body_over_1_mib_is_413(client: Any, make_key: Any, sessions: Any) -> None:
    body = personal(notes="n" * (1024 * 1024))
    problem = await refused(client, make_key, sessions, body, 413)
    assert problem["title"] == "Request body too large"
    # Just under the limit is read (and refused for its content, not its size).
    small = personal(notes="n" * (1024 * 1024 - 4000))
    problem = await refused(client, make_key, sessions, small, 422)
    assert paths(problem) == ["notes"]


async def test_body_over_1_mib_without_content_length_is_413(client: Any, make_key: Any) -> None:
    """Sent in chunks with no Content-Length (the test client cannot stream): the limit holds
    while the body is read."""
    _, key = await make_key("police")
    chunks = [b" " * 32768] * 40 + [json.dumps(personal()).encode()]
    # Run on the app's own event loop (its pools are bound to it), not the test's.
    status, headers, body = await asyncio.to_thread(
        client.blocking_portal.call,
        asgi_post,
        client.app,
        URL,
        [
            (b"authorization", f"Bearer {key}".encode()),
            (b"content-type", b"application/json"),
            (b"transfer-encoding", b"chunked"),
        ],
        chunks,
    )
    assert status == 413
    assert headers[b"content-type"].split(b";")[0] == b"application/problem+json"
    assert json.loads(body)["status"] == 413


async def asgi_post(
    app: Any, path: str, headers: list[tuple[bytes, bytes]], chunks: list[bytes]
) -> tuple[int, dict[bytes, bytes], bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver.local"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver.local", 80),
        "state": {},
    }
    pending = list(chunks)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pending:
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body


async def test_naive_times_are_422(client: Any, make_key: Any, sessions: Any) -> None:
    body = personal(
        **{"referred_at": "2026-11-20T14:05:00", "consent.recorded_at": "2026-11-20T13:50:00"}
    )
    problem = await refused(client, make_key, sessions, body, 422)
    assert sorted(paths(problem)) == ["consent.recorded_at", "referred_at"]
    for error in problem["errors"]:
        assert "offset" in error["message"]


async def test_unknown_enumeration_values_are_422(
    client: Any, make_key: Any, sessions: Any
) -> None:
    body = personal(
        **{
            "victim.gender": "robot",
            "victim.vulnerabilities": ["mental_health", "grumpy"],
            "offence.category": "jaywalking",
            "offence.hate_motivations": ["football"],
            "flags": ["domestic_abuse", "famous"],
            "needs": ["emotional", "a pony"],
            "risk.level": "extreme",
            "contact.channels": ["pigeon", "phone"],
            "contact.safe_times": [{"days": ["caturday"], "from": "09:00", "to": "12:00"}],
        }
    )
    problem = await refused(client, make_key, sessions, body, 422)
    assert set(paths(problem)) == {
        "victim.gender",
        "victim.vulnerabilities[1]",
        "offence.category",
        "offence.hate_motivations[0]",
        "flags[1]",
        "needs[1]",
        "risk.level",
        "contact.channels[0]",
        "contact.safe_times[0].days[0]",
    }
    for error in problem["errors"]:
        assert error["message"].startswith("must be one of: ")
    by_path = {e["path"]: e["message"] for e in problem["errors"]}
    assert "female, male, non_binary, other, not_known" in by_path["victim.gender"]
    for wrong in ("robot", "grumpy", "jaywalking", "football", "famous", "a pony", "pigeon"):
        assert wrong not in json.dumps(problem)


async def test_date_of_birth_in_the_future(client: Any, make_key: Any, sessions: Any) -> None:
    problem = await refused(
        client, make_key, sessions, personal(**{"victim.date_of_birth": "2999-01-01"}), 422
    )
    assert problem["errors"] == [
        {"path": "victim.date_of_birth", "message": "must not be in the future"}
    ]
    assert "2999" not in json.dumps(problem)


@pytest.mark.parametrize(
    "bad_date", ["1991-02-30", "02/04/1991", "1991-4-2", "yesterday", "1850-01-01"]
)
async def test_impossible_dates_of_birth(
    client: Any, make_key: Any, sessions: Any, bad_date: str
) -> None:
    problem = await refused(
        client, make_key, sessions, personal(**{"victim.date_of_birth": bad_date}), 422
    )
    assert paths(problem) == ["victim.date_of_birth"]


@pytest.mark.parametrize(
    "phone",
    [
        "12345",
        "07700 9001",  # too short
        "0770090012345678",  # too long
        "+1 555",  # not a possible number for its country
        "telephone",
        "+44 20 7946 09",
    ],
)
async def test_impossible_phone_numbers(
    client: Any, make_key: Any, sessions: Any, phone: str
) -> None:
    body = personal(**{"victim.phone": phone, "contact.channels": ["phone", "email"]})
    problem = await refused(client, make_key, sessions, body, 422, secrets=(*SECRETS, phone))
    assert problem["errors"] == [
        {
            "path": "victim.phone",
            "message": "must be a possible phone number (UK numbers may start 0, others need +)",
        }
    ]


async def test_referrer_phone_is_checked_too(client: Any, make_key: Any, sessions: Any) -> None:
    problem = await refused(client, make_key, sessions, personal(**{"referrer.phone": "999"}), 422)
    assert paths(problem) == ["referrer.phone"]


@pytest.mark.parametrize(
    "postcode", ["TN9", "12345", "ME14 1XQQ", "ABC DEF", "QQ1 1QQ", "CT12 A", "ME14-1XQ"]
)
async def test_malformed_postcodes(
    client: Any, make_key: Any, sessions: Any, postcode: str
) -> None:
    body = personal(**{"victim.address.postcode": postcode})
    problem = await refused(client, make_key, sessions, body, 422, secrets=(*SECRETS, postcode))
    assert problem["errors"] == [
        {"path": "victim.address.postcode", "message": "must be a UK postcode, such as CT1 2AB"}
    ]


async def test_malformed_email(client: Any, make_key: Any, sessions: Any) -> None:
    body = personal(**{"victim.email": "philomena at example", "contact.channels": ["email"]})
    problem = await refused(client, make_key, sessions, body, 422, secrets=(*SECRETS, "philomena"))
    assert "victim.email" in paths(problem)


async def test_several_problems_reported_at_once(client: Any, make_key: Any, sessions: Any) -> None:
    body = personal(
        **{
            "external_ref": DELETE,
            "victim.date_of_birth": "2999-01-01",
            "victim.phone": "12345",
            "victim.address.postcode": "CT1",
            "victim.shoe_size": 9,
            "referred_at": "2026-11-20T14:05:00",
            "offence.category": "jaywalking",
            "risk.dash_score": 28,
            "victim.language": "english",
            "consent.to_referral": DELETE,
        }
    )
    problem = await refused(client, make_key, sessions, body, 422)
    found = set(paths(problem))
    assert found >= {
        "external_ref",
        "victim.date_of_birth",
        "victim.phone",
        "victim.address.postcode",
        "victim.shoe_size",
        "referred_at",
        "offence.category",
        "risk.dash_score",
        "victim.language",
    }, found
    assert problem["detail"] == f"{len(problem['errors'])} problems"
    assert problem["title"] == "Invalid referral"
    assert problem["type"] == "https://triage.example/problems/validation"


@pytest.mark.parametrize("body", [[], 42, "a referral", None])
async def test_body_not_an_object(client: Any, make_key: Any, sessions: Any, body: Any) -> None:
    problem = await refused(client, make_key, sessions, body, 422)
    assert len(problem["errors"]) == 1


async def test_required_fields(client: Any, make_key: Any, sessions: Any) -> None:
    problem = await refused(client, make_key, sessions, {}, 422)
    assert set(paths(problem)) >= {"external_ref", "victim", "offence.category"}
    body = personal(**{"victim.first_name": DELETE, "victim.last_name": DELETE})
    problem = await refused(client, make_key, sessions, body, 422)
    assert paths(problem) == ["victim.first_name"]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"offence.category": "sexual", "flags": [], "consent": DELETE}, "sexual"),
        ({"offence.category": "sexual", "flags": [], "consent.to_referral": DELETE}, "sexual"),
        ({"offence.category": "sexual", "flags": [], "consent.to_referral": None}, "sexual"),
        ({"offence.category": "sexual", "flags": [], "consent.to_referral": False}, ""),
        ({"offence.category": "domestic_abuse", "consent": DELETE}, "domestic abuse"),
        ({"flags": ["domestic_abuse"], "consent": DELETE}, "domestic abuse"),
        (
            {"offence.category": "homicide", "flags": ["bereaved_by_homicide"], "consent": DELETE},
            "",
        ),
    ],
)
async def test_police_consent_required(
    client: Any, make_key: Any, sessions: Any, changes: dict[str, Any], reason: str
) -> None:
    body = personal(**changes)
    problem = await refused(client, make_key, sessions, body, 422)
    assert paths(problem) == ["consent.to_referral"]
    message = problem["errors"][0]["message"]
    assert message and reason in message


async def test_police_sexual_offence_message_is_the_reason(
    client: Any, make_key: Any, sessions: Any
) -> None:
    body = personal(**{"offence.category": "sexual", "flags": [], "consent": DELETE})
    problem = await refused(client, make_key, sessions, body, 422)
    assert problem["errors"] == [
        {
            "path": "consent.to_referral",
            "message": "explicit consent is required for sexual offences",
        }
    ]


async def test_police_opt_out_refused(client: Any, make_key: Any, sessions: Any) -> None:
    body = personal(**{"offence.category": "burglary", "flags": [], "consent.to_referral": False})
    problem = await refused(client, make_key, sessions, body, 422)
    assert problem["errors"] == [
        {"path": "consent.to_referral", "message": "the victim asked not to be referred"}
    ]


async def test_police_other_offence_without_consent_is_automatic(
    client: Any, make_key: Any, sessions: Any
) -> None:
    name, key = await make_key("police")
    body = personal(**{"offence.category": "burglary", "flags": [], "consent": DELETE})
    response = await client.post(URL, json=body, headers=bearer(key))
    assert response.status_code == 201, response.text
    assert response.json()["triage"]["services"][0]["code"] == "core"
    assert await referral_count(sessions, name) == 1


@pytest.mark.parametrize("to_referral", [DELETE, None, False])
async def test_professional_without_consent(
    client: Any, make_key: Any, sessions: Any, to_referral: Any
) -> None:
    body = personal(**{"offence.category": "burglary", "consent.to_referral": to_referral})
    problem = await refused(client, make_key, sessions, body, 422, source="professional")
    assert problem["errors"] == [
        {
            "path": "consent.to_referral",
            "message": "a professional must confirm the victim's consent "
            "(consent.to_referral: true)",
        }
    ]


async def test_professional_with_consent(client: Any, make_key: Any) -> None:
    _, key = await make_key("professional")
    response = await client.post(URL, json=personal(), headers=bearer(key))
    assert response.status_code == 201, response.text


async def test_no_usable_contact_route(client: Any, make_key: Any, sessions: Any) -> None:
    body = personal(**{"victim.phone": DELETE, "contact.channels": ["phone", "sms"]})
    problem = await refused(client, make_key, sessions, body, 422)
    assert paths(problem) == ["contact.channels"]
    letter = personal(**{"contact.channels": ["letter"], "contact.letter_ok": False})
    problem = await refused(client, make_key, sessions, letter, 422)
    assert paths(problem) == ["contact.channels"]
    # No route is fine when the victim does not want contact.
    _, key = await make_key("police")
    no_contact = personal(
        **{"victim.phone": DELETE, "contact.channels": [], "consent.to_contact": False}
    )
    response = await client.post(URL, json=no_contact, headers=bearer(key))
    assert response.status_code == 201, response.text


async def test_wrong_types(client: Any, make_key: Any, sessions: Any) -> None:
    body = personal(
        **{
            "victim.age": "thirty",
            "victim.interpreter_needed": "yes",
            "flags": "domestic_abuse",
            "risk.dash_score": 9.5,
            "contact": ["phone"],
            "external_ref": 12345,
        }
    )
    problem = await refused(client, make_key, sessions, body, 422)
    assert set(paths(problem)) >= {
        "victim.age",
        "victim.interpreter_needed",
        "flags",
        "risk.dash_score",
        "contact",
        "external_ref",
    }


async def test_errors_on_other_routes_are_problem_json(client: Any, make_key: Any) -> None:
    _, key = await make_key("police")
    not_found = await client.get("/api/v1/nothing-here", headers=bearer(key))
    assert_problem(not_found, 404)
    wrong_method = await client.delete("/api/v1/referrals", headers=bearer(key))
    assert_problem(wrong_method, 405)
