"""The OpenAPI document at /schema/openapi.json: every request and answer body, every error
status of each route, security; `Allow` on OPTIONS and 405; and the real answers carry
exactly the fields the document gives them (so the document cannot drift from the code)."""

from __future__ import annotations

import copy
import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import jsonschema_rs  # comes with schemathesis
import pytest
from helpers import PROBLEM, bearer, referral
from litestar.testing import AsyncTestClient

from triage.api.csv_batch import CSV_DOC

REFERRALS = "/api/v1/referrals"
KEYED = {401, 403, 429, 503}
BODY = {400, 413, 415, 422}
# method, path -> (2xx statuses, error statuses, JSON body schema or None)
OPERATIONS: dict[tuple[str, str], tuple[set[int], set[int], str | None]] = {
    ("post", REFERRALS): ({200, 201}, KEYED | BODY | {409}, "NewReferral"),
    ("get", REFERRALS): ({200}, KEYED | {422}, None),
    ("post", f"{REFERRALS}/batch"): ({200}, KEYED | BODY, "ReferralBatch"),
    ("get", f"{REFERRALS}/{{referral_id}}"): ({200}, KEYED | {404}, None),
    ("patch", f"{REFERRALS}/{{referral_id}}"): (
        {200},
        KEYED | BODY | {404, 409},
        "ReferralChanges",
    ),
    ("post", f"{REFERRALS}/{{referral_id}}/withdraw"): (
        {200},
        KEYED | BODY | {404, 409},
        "Withdrawal",
    ),
    ("get", f"{REFERRALS}/{{referral_id}}/decisions"): ({200}, KEYED | {404}, None),
    ("post", "/api/v1/appropriate-adult-requests"): (
        {200, 201},
        KEYED | BODY | {409},
        "AppropriateAdultRequest",
    ),
    ("post", "/api/v1/notify/callback"): ({200}, {400, 401, 413, 422, 503}, "DeliveryReceipt"),
    ("get", "/api/v1/reports"): ({200}, KEYED | {422}, None),
}


@pytest.fixture(scope="module")
async def document(client: Any) -> dict[str, Any]:
    answer = await client.get("/schema/openapi.json")
    assert answer.status_code == 200
    return answer.json()  # type: ignore[no-any-return]


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


async def test_every_operation_documents_its_bodies_answers_and_errors(
    document: dict[str, Any],
) -> None:
    documented = {
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if path.startswith("/api/")
    }
    assert documented == set(OPERATIONS)
    for (method, path), (ok, errors, body) in OPERATIONS.items():
        operation = document["paths"][path][method]
        where = f"{method} {path}"
        assert operation["operationId"].islower(), where
        assert {int(s) for s in operation["responses"]} == ok | errors, where
        for status in ok:
            media = operation["responses"][str(status)]["content"]
            assert list(media) == ["application/json"], where
        assert any(
            "example" in operation["responses"][str(s)]["content"]["application/json"] for s in ok
        ), where
        for status in errors:
            response = operation["responses"][str(status)]
            assert list(response["content"]) == [PROBLEM], where
            schema = response["content"][PROBLEM]["schema"]
            assert schema == {"$ref": "#/components/schemas/ProblemDetails"}, where
            if status in (429, 503):
                assert "Retry-After" in response["headers"], where
        if body is None:
            assert "requestBody" not in operation, where
        else:
            json_body = operation["requestBody"]["content"]["application/json"]
            assert json_body["schema"] == {"$ref": f"#/components/schemas/{body}"}, where
            assert "example" in json_body, where
            assert operation["requestBody"]["required"] is True
        scheme = "notifyToken" if "notify" in path else "apiKey"
        assert operation["security"] == [{scheme: []}], where
    schemes = document["components"]["securitySchemes"]
    assert {name: (s["type"], s["scheme"]) for name, s in schemes.items()} == {
        "apiKey": ("http", "bearer"),
        "notifyToken": ("http", "bearer"),
    }


async def test_the_csv_batch_is_a_documented_alternative(document: dict[str, Any]) -> None:
    content = document["paths"][f"{REFERRALS}/batch"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "text/csv"}
    assert content["text/csv"]["schema"]["description"] == CSV_DOC
    assert content["text/csv"]["example"].startswith("external_ref,")


async def test_the_referral_body_says_what_the_checkers_enforce(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    referral_schema = schemas["NewReferral"]
    assert referral_schema["additionalProperties"] is False
    assert set(referral_schema["required"]) == {"external_ref", "victim", "offence"}
    assert referral_schema["properties"]["external_ref"] == {
        "description": "The sender's own reference",
        "type": "string",
        "minLength": 1,
        "maxLength": 100,
    }
    assert referral_schema["properties"]["referred_at"]["anyOf"][0]["format"] == "date-time"
    victim = schemas["Victim"]["properties"]
    assert victim["date_of_birth"]["anyOf"][0]["format"] == "date"
    assert victim["age"]["anyOf"][0] == {"type": "integer", "minimum": 0, "maximum": 120}
    assert {"type": "null"} in victim["email"]["anyOf"]  # null is accepted as absent
    window = schemas["SafeTimeWindow"]
    assert set(window["required"]) == {"days", "from", "to"}
    assert set(schemas["VictimChanges"]["properties"]) == {
        "phone",
        "email",
        "address",
        "language",
        "interpreter_needed",
        "vulnerabilities",
    }
    assert schemas["ReferralBatch"]["properties"]["referrals"]["maxItems"] == 10_000


async def test_every_reference_resolves(document: dict[str, Any]) -> None:
    names = set(document["components"]["schemas"])
    for ref in _refs(document):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in names, ref


async def test_options_and_405_allow_every_method_of_the_path(
    client: Any, document: dict[str, Any]
) -> None:
    some_id = str(uuid.uuid4())
    for path, item in document["paths"].items():
        if not path.startswith("/api/"):
            continue
        url = path.replace("{referral_id}", some_id)
        methods = {m.upper() for m in item} | {"OPTIONS"}
        options = await client.options(url)
        assert options.status_code == 204, path
        assert set(options.headers["allow"].split(", ")) == methods, path
        refused = await client.delete(url)
        assert refused.status_code == 405, path
        assert refused.headers["content-type"] == PROBLEM
        assert set(refused.headers["allow"].split(", ")) == methods, path


async def test_the_api_refuses_what_the_document_calls_wrong(client: Any, make_key: Any) -> None:
    """Each a 422 that was once accepted: the document and the checkers say the same."""
    _, key = await make_key("police")
    auth = bearer(key)
    batch = await client.post(
        f"{REFERRALS}/batch", json={"referrals": [], "notes": "x"}, headers=auth
    )
    assert [e["path"] for e in batch.json()["errors"]] == ["notes"], batch.text
    for query, path in [
        ({"external_ref": "x", "updated_since": "yesterday"}, "updated_since"),
        ({"external_ref": "x", "cursor": "not-a-cursor"}, "cursor"),
        ({"external_ref": "x", "limit": "+5"}, "limit"),
        ({"external_ref": "x", "limit": "1_0"}, "limit"),
    ]:
        answer = await client.get(REFERRALS, params=query, headers=auth)
        assert answer.status_code == 422, (query, answer.text)
        assert [e["path"] for e in answer.json()["errors"]] == [path]


class Documented:
    """Checks answers against the document's schemas, with every object closed: an answer
    with a field the document does not give, or without one it does, fails."""

    def __init__(self, document: dict[str, Any]):
        schemas = copy.deepcopy(document["components"]["schemas"])
        for schema in schemas.values():
            if "properties" in schema:
                schema["additionalProperties"] = False
                schema["required"] = list(schema["properties"])
        self.schemas = schemas

    def check(self, answer: Any, name: str, status: int) -> dict[str, Any]:
        assert answer.status_code == status, answer.text
        media = PROBLEM if status >= 400 else "application/json"
        assert answer.headers["content-type"].split(";")[0] == media
        root = {"$ref": f"#/components/schemas/{name}", "components": {"schemas": self.schemas}}
        validator = jsonschema_rs.Draft202012Validator(root, validate_formats=True)
        body = answer.json()
        errors = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(body)]
        assert not errors, (name, errors)
        return body  # type: ignore[no-any-return]


async def test_the_answers_are_what_the_document_says(
    client: Any, make_key: Any, document: dict[str, Any], servers: Any
) -> None:
    documented = Documented(document)
    _, key = await make_key("police")
    auth = bearer(key)
    body = referral()
    created = documented.check(
        await client.post(REFERRALS, json=body, headers=auth), "Referral", 201
    )
    again = await client.post(REFERRALS, json=body, headers=auth)
    documented.check(again, "Referral", 200)
    url = f"{REFERRALS}/{created['id']}"
    documented.check(await client.get(url, headers=auth), "Referral", 200)
    by_ref = await client.get(
        REFERRALS, params={"external_ref": body["external_ref"]}, headers=auth
    )
    assert documented.check(by_ref, "ReferralPage", 200)["items"]
    since = await client.get(
        REFERRALS, params={"updated_since": "2000-01-01T00:00:00Z", "limit": 1}, headers=auth
    )
    assert documented.check(since, "ReferralPage", 200)["next_cursor"] is None
    change = {"risk": {"dash_score": 15, "level": "high", "marac_referred": True}}
    documented.check(await client.patch(url, json=change, headers=auth), "Referral", 200)
    decisions = documented.check(
        await client.get(f"{url}/decisions", headers=auth), "DecisionList", 200
    )
    assert [d["cause"] for d in decisions["items"]] == ["intake", "update"]
    withdrawn = await client.post(f"{url}/withdraw", json={"reason": "moved away"}, headers=auth)
    assert documented.check(withdrawn, "Referral", 200)["status"] == "withdrawn"
    batch = {"referrals": [referral(), referral(**{"victim.phone": "12"}), 5]}
    answer = documented.check(
        await client.post(f"{REFERRALS}/batch", json=batch, headers=auth), "BatchAnswer", 200
    )
    assert answer["counts"] == {"created": 1, "existing": 0, "invalid": 2, "conflict": 0}
    aa = {
        "external_ref": f"KC/{uuid.uuid4().hex[:8]}",
        "custody_suite": "Medway",
        "person": {"first_name": "Alex"},
    }
    documented.check(
        await client.post("/api/v1/appropriate-adult-requests", json=aa, headers=auth),
        "AppropriateAdultAnswer",
        201,
    )
    # Problems, whoever raises them.
    documented.check(await client.post(REFERRALS, json={}, headers=auth), "ProblemDetails", 422)
    documented.check(
        await client.get(f"{REFERRALS}/{uuid.uuid4()}", headers=auth), "ProblemDetails", 404
    )
    documented.check(await client.get(url), "ProblemDetails", 401)
    documented.check(
        await client.post(
            REFERRALS, content=b"{", headers={**auth, "content-type": "application/json"}
        ),
        "ProblemDetails",
        400,
    )
    documented.check(
        await client.post(REFERRALS, content=b"x", headers={**auth, "content-type": "text/plain"}),
        "ProblemDetails",
        415,
    )
    documented.check(await client.delete(url, headers=auth), "ProblemDetails", 405)
    documented.check(await client.patch(url, json=change, headers=auth), "ProblemDetails", 409)


async def test_the_receipt_answer_is_what_the_document_says(
    document: dict[str, Any], servers: Any
) -> None:
    from triage.app import create_app
    from triage.settings import get_settings

    token = "receipt-token-" + uuid.uuid4().hex
    app = create_app(dataclasses.replace(get_settings(), notify_callback_token=token))
    documented = Documented(document)
    async with AsyncTestClient(app=app) as receipts:
        url = "/api/v1/notify/callback"
        auth = bearer(token)
        sent = {"reference": str(uuid.uuid4()), "status": "delivered", "to": "+447700900123"}
        answer = documented.check(
            await receipts.post(url, json=sent, headers=auth), "ReceiptAnswer", 200
        )
        assert answer == {"result": "unknown"}
        bad = {"reference": 5, "status": "Delivered"}
        problem = documented.check(
            await receipts.post(url, json=bad, headers=auth), "ProblemDetails", 422
        )
        assert [e["path"] for e in problem["errors"]] == ["status", "reference"]
        refused = await receipts.post(url, json=sent)
        documented.check(refused, "ProblemDetails", 401)
        assert refused.headers["www-authenticate"] == "Bearer"
