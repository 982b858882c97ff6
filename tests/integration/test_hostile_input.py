"""Hostile input (issue 9, points 3, 4 and 6): control characters anywhere, bodies built to
cost more than their size, and CSV rows that cannot be read. Each answer is a clear 4xx, never
a 500, and a bad batch item never stops the good ones."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from helpers import (
    NOTHING_WRITTEN,
    assert_problem,
    bearer,
    paths,
    referral,
    referral_count,
    scalar,
    written_for_client,
)

URL = "/api/v1/referrals"
BATCH = "/api/v1/referrals/batch"
JSON = {"Content-Type": "application/json"}
CSV = {"Content-Type": "text/csv"}


async def post(client: Any, key: str, body: Any, url: str = URL) -> Any:
    return await client.post(
        url, content=json.dumps(body).encode(), headers={**bearer(key), **JSON}
    )


# -- 3. control characters ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("victim.first_name", "Sam\u0000", "victim.first_name"),
        ("external_ref", "46/\u0000/26", "external_ref"),
        ("victim.address.line1", "1 High\u0001Street", "victim.address.line1"),
        ("victim.phone", "07700\u0000900123", "victim.phone"),
        ("notes", "call \u0000 later", "notes"),
        ("contact.notes", "bell\u0007", "contact.notes"),
        ("offence.description", "line\rbreak", "offence.description"),
        ("referrer.name", "PC\ttab", "referrer.name"),
        ("consent.recorded_by", "PC\n4821", "consent.recorded_by"),
    ],
)
async def test_control_characters_are_422_at_their_path(
    client: Any, make_key: Any, sessions: Any, field: str, value: str, path: str
) -> None:
    name, key = await make_key("police")
    response = await post(client, key, referral(**{field: value}))
    problem = assert_problem(response, 422)
    messages = {e["path"]: e["message"] for e in problem["errors"]}
    assert "control characters" in messages[path]
    # Nothing else is wrong with the body, except what losing that field costs.
    assert set(messages) - {path} <= {"contact.channels"}
    assert await written_for_client(sessions, name) == NOTHING_WRITTEN


async def test_free_text_keeps_tabs_and_line_breaks(
    client: Any, make_key: Any, sessions: Any
) -> None:
    _, key = await make_key("police")
    body = referral(**{"notes": "first line\r\nsecond\tline\nthird", "contact.notes": "a\nb"})
    response = await post(client, key, body)
    assert response.status_code == 201, response.text
    stored = await scalar(
        sessions,
        "SELECT facts->>'notes' FROM referrals WHERE id = :i",
        i=uuid.UUID(response.json()["id"]),
    )
    assert stored == "first line\nsecond\tline\nthird"  # CR LF is read as a line break


async def test_control_character_in_a_field_name(client: Any, make_key: Any, sessions: Any) -> None:
    name, key = await make_key("police")
    body = referral()
    body["victim"]["nick\u0000name"] = "x"
    problem = assert_problem(await post(client, key, body), 422)
    assert paths(problem) == ["victim.(a field name that is not allowed)"]
    assert "\u0000" not in json.dumps(problem)
    assert await written_for_client(sessions, name) == NOTHING_WRITTEN


async def test_control_character_in_a_batch_item_spares_the_others(
    client: Any, make_key: Any, sessions: Any
) -> None:
    name, key = await make_key("police")
    items = [referral(), referral(**{"victim.last_name": "Tay\u0000lor"}), referral()]
    response = await post(client, key, {"referrals": items}, BATCH)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["counts"] == {"created": 2, "existing": 0, "invalid": 1, "conflict": 0}
    assert [e["path"] for e in answer["items"][1]["errors"]] == ["referrals[1].victim.last_name"]
    assert await referral_count(sessions, name) == 2


async def test_control_character_in_a_csv_cell_spares_the_other_rows(
    client: Any, make_key: Any, sessions: Any
) -> None:
    name, key = await make_key("police")
    rows = [
        "external_ref,victim.first_name,offence.category,victim.phone,contact.channels",
        "C-1,Ann,theft,07700 900111,phone",
        "C-2,B\x00b,theft,07700 900112,phone",
        "C-3,Cat,theft,07700 900113,phone",
    ]
    response = await client.post(
        BATCH, content="\n".join(rows).encode(), headers={**bearer(key), **CSV}
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["counts"]["created"] == 2 and answer["counts"]["invalid"] == 1
    errors = answer["items"][1]["errors"]
    assert {e["path"] for e in errors} == {"referrals[1].victim.first_name"}
    assert any("control characters" in e["message"] for e in errors)
    assert await referral_count(sessions, name) == 2


async def test_control_characters_in_patch_withdraw_and_aa(
    client: Any, make_key: Any, sessions: Any
) -> None:
    _, key = await make_key("police")
    created = (await post(client, key, referral())).json()
    target = f"{URL}/{created['id']}"
    before = await scalar(
        sessions, "SELECT content_hash FROM referrals WHERE id = :i", i=uuid.UUID(created["id"])
    )
    patched = await client.patch(
        target,
        content=json.dumps({"contact": {"notes": "x\u0000"}}).encode(),
        headers={**bearer(key), **JSON},
    )
    assert paths(assert_problem(patched, 422)) == ["contact.notes"]
    after = await scalar(
        sessions, "SELECT content_hash FROM referrals WHERE id = :i", i=uuid.UUID(created["id"])
    )
    assert after == before
    withdrawn = await client.post(
        f"{target}/withdraw",
        content=json.dumps({"reason": "asked\u0000"}).encode(),
        headers={**bearer(key), **JSON},
    )
    assert paths(assert_problem(withdrawn, 422)) == ["reason"]
    assert (await client.get(target, headers=bearer(key))).json()["status"] == "triaged"
    aa = {
        "external_ref": "KC/" + uuid.uuid4().hex[:8],
        "custody_suite": "Medway",
        "person": {"first_name": "Al\u0000", "vulnerable": True},
        "reason": "interview\u0007",
    }
    answer = await post(client, key, aa, "/api/v1/appropriate-adult-requests")
    assert set(paths(assert_problem(answer, 422))) == {"person.first_name", "reason"}


async def test_control_character_in_a_query(client: Any, make_key: Any) -> None:
    _, key = await make_key("police")
    response = await client.get(URL, params={"external_ref": "46/\u0000"}, headers=bearer(key))
    assert paths(assert_problem(response, 422)) == ["external_ref"]


async def test_cursor_nested_deeply_is_422(client: Any, make_key: Any) -> None:
    import base64

    _, key = await make_key("police")
    cursor = base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).decode()
    response = await client.get(URL, params={"cursor": cursor}, headers=bearer(key))
    assert paths(assert_problem(response, 422)) == ["cursor"]


# -- 4. limits before allocation ----------------------------------------------------------


async def test_json_batch_of_10001_items_is_413(client: Any, make_key: Any, sessions: Any) -> None:
    name, key = await make_key("police")
    raw = b'{"referrals": [' + b"1," * 10_000 + b"1]}"
    response = await client.post(BATCH, content=raw, headers={**bearer(key), **JSON})
    assert_problem(response, 413)
    assert await referral_count(sessions, name) == 0


async def test_json_batch_of_two_million_tiny_items_is_413(client: Any, make_key: Any) -> None:
    # Past the cheap bound: counted by the scan that stops at item 10,001.
    _, key = await make_key("police")
    raw = b'{"referrals": [' + b"1," * 2_000_000 + b"1]}"
    response = await client.post(BATCH, content=raw, headers={**bearer(key), **JSON})
    assert_problem(response, 413)


async def test_json_batch_with_many_commas_inside_items_is_taken(
    client: Any, make_key: Any, sessions: Any
) -> None:
    # Long notes full of commas push a small batch past the cheap bound: the exact count (two
    # items) lets it through.
    name, key = await make_key("police")
    notes = ", " * 3999
    items = [referral(notes=notes) for _ in range(2)]
    raw = json.dumps({"referrals": items}).encode()
    import triage.api.bodies as bodies

    bound = bodies.CHEAP_COUNT_BOUND
    bodies.CHEAP_COUNT_BOUND = 1000
    try:
        response = await client.post(BATCH, content=raw, headers={**bearer(key), **JSON})
    finally:
        bodies.CHEAP_COUNT_BOUND = bound
    assert response.status_code == 200, response.text
    assert response.json()["counts"]["created"] == 2
    assert await referral_count(sessions, name) == 2


async def test_csv_of_10001_rows_is_413(client: Any, make_key: Any, sessions: Any) -> None:
    name, key = await make_key("police")
    header = "external_ref,victim.first_name,offence.category\n"
    raw = (header + "".join(f"R{i},A,theft\n" for i in range(10_001))).encode()
    response = await client.post(BATCH, content=raw, headers={**bearer(key), **CSV})
    assert_problem(response, 413)
    assert await referral_count(sessions, name) == 0


async def test_csv_field_over_the_size_limit_is_422(client: Any, make_key: Any) -> None:
    _, key = await make_key("police")
    raw = 'external_ref,victim.first_name,offence.category\nR1,"' + "x" * 200_000 + '",theft\n'
    response = await client.post(BATCH, content=raw.encode(), headers={**bearer(key), **CSV})
    assert_problem(response, 422)


@pytest.mark.parametrize("depth", [40, 5000, 200_000])
async def test_deep_nesting_is_400(client: Any, make_key: Any, sessions: Any, depth: int) -> None:
    name, key = await make_key("police")
    body = json.dumps(referral())[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
    response = await client.post(URL, content=body.encode(), headers={**bearer(key), **JSON})
    assert_problem(response, 400)
    assert await written_for_client(sessions, name) == NOTHING_WRITTEN


async def test_deeply_nested_batch_item_is_invalid_alone(
    client: Any, make_key: Any, sessions: Any
) -> None:
    name, key = await make_key("police")
    good = json.dumps(referral())
    deep = json.dumps(referral())[:-1] + ', "deep": ' + "[" * 40 + "]" * 40 + "}"
    raw = ('{"referrals": [' + good + "," + deep + "]}").encode()
    response = await client.post(BATCH, content=raw, headers={**bearer(key), **JSON})
    assert response.status_code == 200, response.text
    statuses = [item["status"] for item in response.json()["items"]]
    assert statuses == ["created", "invalid"]
    assert await referral_count(sessions, name) == 1


async def test_a_batch_nested_past_the_decoder_is_400(
    client: Any, make_key: Any, sessions: Any
) -> None:
    """Nesting too deep for the decoder itself (it was a 500, losing the whole batch): the
    batch is refused as malformed, nothing written."""
    name, key = await make_key("police")
    deep = "[" * 5000 + "]" * 5000
    raw = ('{"referrals": [' + json.dumps(referral()) + "," + deep + "]}").encode()
    response = await client.post(BATCH, content=raw, headers={**bearer(key), **JSON})
    assert_problem(response, 400)
    assert await referral_count(sessions, name) == 0


@pytest.mark.parametrize(
    "status", ["x" * 41, "delivered\u0000", "delivered\n", "Delivered", "", "deep"]
)
async def test_receipt_with_a_bad_status_is_refused(servers: Any, status: str) -> None:
    import dataclasses

    from litestar.testing import AsyncTestClient

    from triage.app import create_app
    from triage.settings import get_settings

    token = "receipt-" + uuid.uuid4().hex
    settings = dataclasses.replace(get_settings(), notify_callback_token=token)
    body: Any = {"reference": str(uuid.uuid4()), "status": status}
    if status == "deep":
        body = {
            "reference": str(uuid.uuid4()),
            "status": [[[[[[[[[[[[[[[[[[[[["x"]]]]]]]]]]]]]]]]]]]]],
        }
    async with AsyncTestClient(app=create_app(settings)) as provider:
        response = await provider.post(
            "/api/v1/notify/callback",
            content=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", **JSON},
        )
    assert 400 <= response.status_code < 500, response.text


# -- 6. CSV rows that cannot be read -----------------------------------------------------


async def test_csv_row_with_extra_cells_is_an_invalid_item(
    client: Any, make_key: Any, sessions: Any
) -> None:
    name, key = await make_key("police")
    rows = [
        "external_ref,victim.first_name,offence.category,victim.phone,contact.channels",
        "X-1,Ann,theft,07700 900111,phone",
        "X-2,Bob,theft,07700 900112,phone,surplus,cells",
        "X-3,Cat,theft,07700 900113,phone",
    ]
    response = await client.post(
        BATCH, content="\n".join(rows).encode(), headers={**bearer(key), **CSV}
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [(i["index"], i["status"]) for i in items] == [
        (0, "created"),
        (1, "invalid"),
        (2, "created"),
    ]
    assert [e["path"] for e in items[1]["errors"]] == ["referrals[1]"]
    assert await referral_count(sessions, name) == 2


# -- review: times out of the calendar's range, CSV quotes left open, blank rows -----------


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-01-01T00:00\u0000Z"]
)
async def test_times_out_of_range_are_422_not_500(
    client: Any, make_key: Any, sessions: Any, value: str
) -> None:
    name, key = await make_key("police")
    single = await post(client, key, referral(referred_at=value))
    assert paths(assert_problem(single, 422)) == ["referred_at"]
    batch = await post(
        client, key, {"referrals": [referral(), referral(**{"consent.recorded_at": value})]}, BATCH
    )
    assert [i["status"] for i in batch.json()["items"]] == ["created", "invalid"]
    assert await referral_count(sessions, name) == 1
    query = await client.get(URL, params={"updated_since": value}, headers=bearer(key))
    assert paths(assert_problem(query, 422)) == ["updated_since"]
    aa = {
        "external_ref": "KC/" + uuid.uuid4().hex[:8],
        "custody_suite": "Medway",
        "person": {"first_name": "Al", "vulnerable": True},
        "needed_at": value,
    }
    answer = await post(client, key, aa, "/api/v1/appropriate-adult-requests")
    assert paths(assert_problem(answer, 422)) == ["needed_at"]


async def test_a_csv_quote_left_open_fails_the_file_naming_the_row(
    client: Any, make_key: Any, sessions: Any
) -> None:
    name, key = await make_key("police")
    rows = [
        "external_ref,victim.first_name,victim.phone,contact.channels,offence.category,notes",
        "Q-1,Ann,07700 900111,phone,theft,fine",
        'Q-2,Bob,07700 900112,phone,theft,"Called at 5pm, no answer',
        "Q-3,Cat,07700 900113,phone,theft,note 3",
        "Q-4,Dan,07700 900114,phone,theft,note 4",
    ]
    response = await client.post(
        BATCH, content="\n".join(rows).encode(), headers={**bearer(key), **CSV}
    )
    problem = assert_problem(response, 422)
    assert paths(problem) == ["referrals[1]"]
    assert "closing quote" in problem["errors"][0]["message"]
    assert "Cat" not in response.text
    assert await referral_count(sessions, name) == 0


async def test_csv_blank_rows_keep_their_place(client: Any, make_key: Any) -> None:
    _, key = await make_key("police")
    rows = [
        "external_ref,victim.first_name,victim.phone,contact.channels,offence.category",
        "B-1,Ann,07700 900111,phone,theft",
        ",,,,",
        "B-2,Bob,07700 900112,phone,theft",
        "",
        "",
    ]
    response = await client.post(
        BATCH, content="\n".join(rows).encode(), headers={**bearer(key), **CSV}
    )
    items = response.json()["items"]
    assert [(i["index"], i["status"]) for i in items] == [
        (0, "created"),
        (1, "invalid"),
        (2, "created"),
    ]
    assert items[1]["errors"] == [{"path": "referrals[1]", "message": "is a blank row"}]


async def test_a_batch_item_larger_than_any_referral_is_invalid(
    client: Any, make_key: Any, sessions: Any
) -> None:
    name, key = await make_key("police")
    big = "[" + ",".join(["{}"] * 200_000) + "]"
    raw = ('{"referrals": [' + json.dumps(referral()) + "," + big + "]}").encode()
    response = await client.post(BATCH, content=raw, headers={**bearer(key), **JSON})
    items = response.json()["items"]
    assert [i["status"] for i in items] == ["created", "invalid"]
    assert "larger than any referral" in items[1]["errors"][0]["message"]
    assert await referral_count(sessions, name) == 1
