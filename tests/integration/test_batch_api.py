"""POST /referrals/batch, as JSON and as CSV (api.md "Batches")."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

from helpers import (
    DELETE,
    assert_problem,
    bearer,
    referral,
    referral_count,
    rows,
    written_for_client,
)

BATCH = "/api/v1/referrals/batch"


class _Any:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(other)


ANY_MESSAGE: Any = _Any()


def csv_body(records: list[dict[str, str]]) -> str:
    columns = list(dict.fromkeys(column for record in records for column in record))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()


def example_as_csv_row(external_ref: str) -> dict[str, str]:
    """api.md's example referral, cell by cell, as a CSV row."""
    return {
        "external_ref": external_ref,
        "referred_at": "2026-11-20T14:05:00Z",
        "victim.first_name": "Sam",
        "victim.last_name": "Taylor",
        "victim.date_of_birth": "1991-04-02",
        "victim.age": "",
        "victim.gender": "female",
        # Spelt differently from the JSON: the same facts once normalised.
        "victim.phone": "+44 7700 900123",
        "victim.email": "sam@example.org",
        "victim.address.line1": "1 High Street",
        "victim.address.town": "Canterbury",
        "victim.address.postcode": "ct1 2ab",
        "victim.language": "en",
        "victim.interpreter_needed": "false",
        "victim.vulnerabilities": "mental_health",
        "contact.channels": "phone; sms",
        "contact.safe_times": "mon-fri 09:00-12:00",
        "contact.voicemail_ok": "false",
        "contact.letter_ok": "no",
        "contact.notes": "do not call after 5pm, partner home",
        "offence.category": "stalking_harassment",
        "offence.ho_code": "",
        "offence.description": "repeated unwanted contact after separation",
        "offence.occurred_on": "2026-11-18",
        "offence.hate_motivations": "",
        "flags": "domestic_abuse;repeat_victim",
        "risk.dash_score": "9",
        "risk.level": "medium",
        "risk.marac_referred": "false",
        "needs": "emotional; safety",
        "consent.to_referral": "true",
        "consent.to_contact": "true",
        "consent.to_survey": "yes",
        "consent.recorded_by": "PC 4821",
        "consent.recorded_at": "2026-11-20T13:50:00Z",
        "referrer.organisation": "Kent Police",
        "referrer.name": "PC Jo Smith",
        "referrer.role": "Officer in case",
        "referrer.phone": "01632 960001",
        "referrer.email": "jo.smith@police.example",
        "notes": "free text for the support worker",
    }


async def test_mixed_batch_in_request_order(client: Any, make_key: Any, sessions: Any) -> None:
    name, key = await make_key("police")
    existing = referral()
    changed_later = referral()
    for body in (existing, changed_later):
        response = await client.post("/api/v1/referrals", json=body, headers=bearer(key))
        assert response.status_code == 201, response.text
    before = await written_for_client(sessions, name)
    assert before["referrals"] == 2

    fresh = [referral() for _ in range(3)]
    bad_phone = referral(**{"victim.phone": "12345"})
    bad_two = referral(**{"victim.gender": "robot", "offence.category": DELETE})
    conflict = dict(changed_later, notes="changed since")
    items = [fresh[0], bad_phone, existing, conflict, fresh[1], bad_two, fresh[2]]
    response = await client.post(BATCH, json={"referrals": items}, headers=bearer(key))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"counts", "items"}
    assert body["counts"] == {"created": 3, "existing": 1, "invalid": 2, "conflict": 1}
    assert [i["index"] for i in body["items"]] == list(range(7))
    assert [i["status"] for i in body["items"]] == [
        "created",
        "invalid",
        "existing",
        "conflict",
        "created",
        "invalid",
        "created",
    ]
    for item in body["items"]:
        assert set(item) == {"index", "status", "id", "reference", "errors"}
        if item["status"] == "invalid":
            assert item["id"] is None and item["reference"] is None and item["errors"]
        else:
            assert item["errors"] == []
            uuid.UUID(item["id"])
            assert item["reference"].startswith("KVR-")
    # The phone is refused, and with it the only contact route.
    assert body["items"][1]["errors"] == [
        {
            "path": "referrals[1].victim.phone",
            "message": "must be a possible phone number (UK numbers may start 0, others need +)",
        },
        {"path": "referrals[1].contact.channels", "message": ANY_MESSAGE},
    ]
    assert {e["path"] for e in body["items"][5]["errors"]} == {
        "referrals[5].victim.gender",
        "referrals[5].offence.category",
    }
    # existing and conflict name the referral that already holds the external_ref.
    originals = {
        r.external_ref: str(r.id)
        for r in await rows(
            sessions,
            "SELECT external_ref, id FROM referrals WHERE external_ref IN (:a, :b)",
            a=existing["external_ref"],
            b=changed_later["external_ref"],
        )
    }
    assert body["items"][2]["id"] == originals[existing["external_ref"]]
    assert body["items"][3]["id"] == originals[changed_later["external_ref"]]
    # Good items written once each, with everything they write; the rest wrote nothing.
    after = await written_for_client(sessions, name)
    assert after == {table: before[table] * 5 // 2 for table in before}
    references = {i["reference"] for i in body["items"] if i["status"] == "created"}
    assert len(references) == 3


async def test_batch_resent_is_all_existing(client: Any, make_key: Any, sessions: Any) -> None:
    name, key = await make_key("police")
    items = [referral() for _ in range(4)]
    first = await client.post(BATCH, json={"referrals": items}, headers=bearer(key))
    assert first.json()["counts"] == {"created": 4, "existing": 0, "invalid": 0, "conflict": 0}
    again = await client.post(BATCH, json={"referrals": items}, headers=bearer(key))
    assert again.json()["counts"] == {"created": 0, "existing": 4, "invalid": 0, "conflict": 0}
    assert [i["id"] for i in again.json()["items"]] == [i["id"] for i in first.json()["items"]]
    assert await referral_count(sessions, name) == 4
    assert (await written_for_client(sessions, name))["cases"] == 8


async def test_same_external_ref_twice_in_one_batch(
    client: Any, make_key: Any, sessions: Any
) -> None:
    name, key = await make_key("police")
    a, b = referral(), referral()
    a_again = dict(a)
    b_changed = dict(b, notes="not the same")
    response = await client.post(
        BATCH, json={"referrals": [a, b, a_again, b_changed]}, headers=bearer(key)
    )
    body = response.json()
    assert [i["status"] for i in body["items"]] == ["created", "created", "existing", "conflict"]
    assert body["items"][2]["id"] == body["items"][0]["id"]
    assert body["items"][3]["id"] == body["items"][1]["id"]
    assert body["counts"] == {"created": 2, "existing": 1, "invalid": 0, "conflict": 1}
    assert await referral_count(sessions, name) == 2
    # The first counts even when it already existed before the batch.
    again = await client.post(BATCH, json={"referrals": [b_changed, b]}, headers=bearer(key))
    assert [i["status"] for i in again.json()["items"]] == ["conflict", "existing"]


async def test_duplicates_and_existing_across_write_slices(
    client: Any, make_key: Any, sessions: Any
) -> None:
    """A batch is written a slice at a time: a repeat far from its first occurrence (another
    slice), and one already stored before the batch, are still found."""
    from triage.services.intake import WRITE_CHUNK

    name, key = await make_key("police")
    stored = referral()
    assert (await client.post(BATCH, json={"referrals": [stored]}, headers=bearer(key))).json()[
        "counts"
    ]["created"] == 1
    items = [referral() for _ in range(WRITE_CHUNK * 2 + 5)]
    first, second = items[3], items[WRITE_CHUNK - 1]
    items[WRITE_CHUNK + 7] = dict(first)  # same content, next slice
    items[WRITE_CHUNK * 2 + 2] = dict(second, notes="changed later")  # third slice
    items[WRITE_CHUNK * 2 + 4] = dict(stored)  # stored before the batch
    body = (await client.post(BATCH, json={"referrals": items}, headers=bearer(key))).json()
    statuses = [i["status"] for i in body["items"]]
    assert statuses[WRITE_CHUNK + 7] == "existing"
    assert body["items"][WRITE_CHUNK + 7]["id"] == body["items"][3]["id"]
    assert statuses[WRITE_CHUNK * 2 + 2] == "conflict"
    assert body["items"][WRITE_CHUNK * 2 + 2]["id"] == body["items"][WRITE_CHUNK - 1]["id"]
    assert statuses[WRITE_CHUNK * 2 + 4] == "existing"
    created = len(items) - 3
    assert body["counts"] == {"created": created, "existing": 2, "invalid": 0, "conflict": 1}
    assert [i["index"] for i in body["items"]] == list(range(len(items)))
    assert await referral_count(sessions, name) == created + 1
    references = [i["reference"] for i in body["items"]]
    assert len(set(references)) == created + 1


async def test_first_of_a_duplicate_pair_invalid(client: Any, make_key: Any, sessions: Any) -> None:
    name, key = await make_key("police")
    good = referral()
    bad = dict(good, victim=dict(good["victim"], phone="000"))
    body = (await client.post(BATCH, json={"referrals": [bad, good]}, headers=bearer(key))).json()
    assert [i["status"] for i in body["items"]] == ["invalid", "created"]
    assert await referral_count(sessions, name) == 1


async def test_batch_items_that_are_not_objects(client: Any, make_key: Any, sessions: Any) -> None:
    name, key = await make_key("police")
    good = referral()
    response = await client.post(
        BATCH, json={"referrals": [42, good, None, "x", []]}, headers=bearer(key)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [i["status"] for i in body["items"]] == [
        "invalid",
        "created",
        "invalid",
        "invalid",
        "invalid",
    ]
    assert body["items"][0]["errors"][0]["path"] == "referrals[0]"
    assert await referral_count(sessions, name) == 1


async def test_batch_shape_errors(client: Any, make_key: Any, sessions: Any) -> None:
    name, key = await make_key("police")
    for payload in ({}, {"referrals": {}}, [], {"referrals": "x"}):
        body = assert_problem(await client.post(BATCH, json=payload, headers=bearer(key)), 422)
        assert [e["path"] for e in body["errors"]] == ["referrals"]
    empty = await client.post(BATCH, json={"referrals": []}, headers=bearer(key))
    assert empty.status_code == 200
    assert empty.json() == {
        "counts": {"created": 0, "existing": 0, "invalid": 0, "conflict": 0},
        "items": [],
    }
    assert await referral_count(sessions, name) == 0


async def test_csv_and_json_are_the_same_referral(
    client: Any, make_key: Any, sessions: Any
) -> None:
    name, key = await make_key("police")
    json_body = referral()
    created = await client.post("/api/v1/referrals", json=json_body, headers=bearer(key))
    assert created.status_code == 201
    text = csv_body([example_as_csv_row(json_body["external_ref"])])
    response = await client.post(
        BATCH, content=text.encode(), headers={**bearer(key), "Content-Type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["counts"] == {"created": 0, "existing": 1, "invalid": 0, "conflict": 0}, body
    assert body["items"][0]["id"] == created.json()["id"]
    assert await referral_count(sessions, name) == 1

    # The other way round: created from CSV, then the JSON is "existing".
    ref = f"46/{uuid.uuid4().hex[:10]}/26"
    response = await client.post(
        BATCH,
        content=csv_body([example_as_csv_row(ref)]).encode(),
        headers={**bearer(key), "Content-Type": "text/csv; charset=utf-8"},
    )
    assert response.json()["items"][0]["status"] == "created", response.text
    json_again = await client.post(
        "/api/v1/referrals", json=dict(json_body, external_ref=ref), headers=bearer(key)
    )
    assert json_again.status_code == 200, json_again.text


async def test_csv_lists_and_safe_times(client: Any, make_key: Any, sessions: Any) -> None:
    _name, key = await make_key("police")
    row = example_as_csv_row(f"46/{uuid.uuid4().hex[:10]}/26")
    row["contact.safe_times"] = "mon-fri 09:00-12:00; sat,sun 10:00-14:00"
    row["needs"] = "emotional;practical; safety"
    row["offence.hate_motivations"] = "race; religion"
    row["victim.vulnerabilities"] = "autism;mental_health"
    response = await client.post(
        BATCH, content=csv_body([row]).encode(), headers={**bearer(key), "Content-Type": "text/csv"}
    )
    item = response.json()["items"][0]
    assert item["status"] == "created", response.text
    (stored,) = await rows(sessions, "SELECT facts FROM referrals WHERE id = :id", id=item["id"])
    facts = stored.facts
    assert facts["contact"]["safe_times"] == [
        {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "12:00"},
        {"days": ["sat", "sun"], "from": "10:00", "to": "14:00"},
    ]
    assert facts["needs"] == ["emotional", "practical", "safety"]
    assert facts["offence"]["hate_motivations"] == ["race", "religion"]
    assert facts["victim"]["vulnerabilities"] == ["autism", "mental_health"]
    assert facts["contact"]["channels"] == ["phone", "sms"]
    assert facts["victim"]["phone"] == "+447700900123"
    assert facts["victim"]["address"]["postcode"] == "CT1 2AB"
    # Any hate motivation allocates hate-crime.
    got = await client.get(
        "/api/v1/referrals", params={"external_ref": row["external_ref"]}, headers=bearer(key)
    )
    services = [s["code"] for s in got.json()["items"][0]["triage"]["services"]]
    assert "hate-crime" in services


async def test_csv_mixed_rows_with_row_paths(client: Any, make_key: Any, sessions: Any) -> None:
    name, key = await make_key("police")
    good = example_as_csv_row(f"46/{uuid.uuid4().hex[:10]}/26")
    bad = example_as_csv_row(f"46/{uuid.uuid4().hex[:10]}/26")
    bad["victim.address.postcode"] = "QQ1 9QQX"
    bad["contact.safe_times"] = "someday 25:00-26:00"
    bad["consent.to_referral"] = "perhaps"
    response = await client.post(
        BATCH,
        content=csv_body([good, bad]).encode(),
        headers={**bearer(key), "Content-Type": "text/csv"},
    )
    body = response.json()
    assert [i["status"] for i in body["items"]] == ["created", "invalid"], body
    paths = {e["path"] for e in body["items"][1]["errors"]}
    assert "referrals[1].victim.address.postcode" in paths
    assert "referrals[1].consent.to_referral" in paths
    assert any(p.startswith("referrals[1].contact.safe_times[0]") for p in paths), paths
    assert "QQ1 9QQX" not in response.text
    assert await referral_count(sessions, name) == 1


async def test_csv_unknown_and_missing_columns(client: Any, make_key: Any, sessions: Any) -> None:
    name, key = await make_key("police")
    headers = {**bearer(key), "Content-Type": "text/csv"}
    text = (
        "external_ref,victim.first_name,offence.category,victim.shoe_size,colour\n"
        "A1,Sam,theft,9,red\n"
    )
    body = assert_problem(await client.post(BATCH, content=text.encode(), headers=headers), 422)
    # Named when it looks like a field path; by position otherwise (see the next test).
    assert {e["path"] for e in body["errors"]} == {"columns.victim.shoe_size", "columns[4]"}
    assert {e["message"] for e in body["errors"]} == {"is not a known column"}

    text = "victim.phone,contact.channels\n07700 900123,phone\n"
    body = assert_problem(await client.post(BATCH, content=text.encode(), headers=headers), 422)
    messages = " ".join(f"{e['path']} {e['message']}" for e in body["errors"])
    for column in ("external_ref", "offence.category", "victim.first_name"):
        assert column in messages
    assert "900123" not in str(body)
    assert await referral_count(sessions, name) == 0


async def test_csv_without_its_header_row_repeats_nothing(
    client: Any, make_key: Any, sessions: Any
) -> None:
    """The first row is taken as the header: it is data, so errors name cells by position."""
    name, key = await make_key("police")
    text = (
        "46/555123/26,Sam,Taylor,07700 900123,sam_taylor@example.org,CT1 2AB,theft\n"
        "46/555124/26,Jo,Bloggs,07700 900124,jo@example.org,ME14 1XQ,theft\n"
    )
    response = await client.post(
        BATCH, content=text.encode(), headers={**bearer(key), "Content-Type": "text/csv"}
    )
    body = assert_problem(response, 422)
    assert "columns[0]" in {e["path"] for e in body["errors"]}
    for secret in ("555123", "Sam", "Taylor", "900123", "sam_taylor", "CT1 2AB"):
        assert secret not in response.text
    assert await referral_count(sessions, name) == 0


async def test_csv_duplicate_columns_and_extra_cells(
    client: Any, make_key: Any, sessions: Any
) -> None:
    name, key = await make_key("police")
    headers = {**bearer(key), "Content-Type": "text/csv"}
    twice = "external_ref,victim.first_name,offence.category,victim.first_name\nA,B,theft,C\n"
    body = assert_problem(await client.post(BATCH, content=twice.encode(), headers=headers), 422)
    assert body["errors"] == [{"path": "columns.victim.first_name", "message": "is given twice"}]
    # A row with more cells than the header is an invalid item of its own (api.md: a bad item
    # never stops the good ones), and its cells are never repeated.
    extra = "external_ref,victim.first_name,offence.category\nA,B,theft\n\nC,D,theft,07700 900999\n"
    response = await client.post(BATCH, content=extra.encode(), headers=headers)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    # The blank row between them keeps its place, so each index is the row's own.
    assert [item["status"] for item in items] == ["invalid", "invalid", "invalid"]
    assert items[1]["errors"] == [{"path": "referrals[1]", "message": "is a blank row"}]
    assert items[2]["errors"] == [
        {"path": "referrals[2]", "message": "has more cells than the header row"}
    ]
    assert "900999" not in response.text
    assert await referral_count(sessions, name) == 0  # row 0 has no contact route either


async def test_csv_not_utf8_and_header_only(client: Any, make_key: Any) -> None:
    _, key = await make_key("police")
    headers = {**bearer(key), "Content-Type": "text/csv"}
    latin = "external_ref,victim.first_name,offence.category\nA1,Zoë,theft\n".encode("latin-1")
    assert_problem(await client.post(BATCH, content=latin, headers=headers), 400)
    header_only = b"external_ref,victim.first_name,offence.category\n"
    response = await client.post(BATCH, content=header_only, headers=headers)
    assert response.status_code == 200
    assert response.json()["items"] == []


async def test_batch_over_10000_items_is_413(client: Any, make_key: Any, sessions: Any) -> None:
    name, key = await make_key("police")
    item = {"external_ref": "x"}
    body = assert_problem(
        await client.post(BATCH, json={"referrals": [item] * 10_001}, headers=bearer(key)), 413
    )
    assert "10000" in body["detail"].replace(",", "")
    rows_csv = "external_ref,victim.first_name,offence.category\n" + "A,B,theft\n" * 10_001
    assert_problem(
        await client.post(
            BATCH, content=rows_csv.encode(), headers={**bearer(key), "Content-Type": "text/csv"}
        ),
        413,
    )
    assert await referral_count(sessions, name) == 0


async def test_batch_body_over_32_mib_is_413(client: Any, make_key: Any) -> None:
    _, key = await make_key("police")
    big = b'{"referrals": ["' + b"x" * (32 * 1024 * 1024) + b'"]}'
    assert_problem(
        await client.post(
            BATCH, content=big, headers={**bearer(key), "Content-Type": "application/json"}
        ),
        413,
    )


async def test_batch_malformed_json_is_400(client: Any, make_key: Any, sessions: Any) -> None:
    name, key = await make_key("police")
    response = await client.post(
        BATCH,
        content=b'{"referrals": [{"external_ref": "A1", "victim": {"first_name": "Sam"',
        headers={**bearer(key), "Content-Type": "application/json"},
    )
    assert_problem(response, 400)
    assert "Sam" not in response.text
    assert await referral_count(sessions, name) == 0


async def test_batch_wrong_content_type_is_415(client: Any, make_key: Any) -> None:
    _, key = await make_key("police")
    for media in ("text/plain", "application/xml", "multipart/form-data; boundary=x"):
        response = await client.post(
            BATCH, content=b"external_ref\nA\n", headers={**bearer(key), "Content-Type": media}
        )
        assert "application/json or text/csv" in assert_problem(response, 415)["detail"]
