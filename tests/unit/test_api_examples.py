"""The OpenAPI document's examples are real: each request example passes the real checkers
(and each error example is what they answer), and every example decodes into its Struct and
validates against the schema the document gives it."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema_rs  # comes with schemathesis
import msgspec
import pytest

from triage.api import examples, operation_docs, referrals
from triage.api.csv_batch import parse_csv
from triage.api.notify_callback import PROVIDER_STATUS
from triage.api.openapi_docs import REF
from triage.api.wire_requests import Withdrawal
from triage.domain import vocabulary as v
from triage.domain.appropriate_adult import validate_aa_request
from triage.domain.catalogue import Catalogue
from triage.domain.problems import InvalidInput
from triage.domain.validation import validate_referral
from triage.services.updates import merge_patch

# When the example referral was received (the example answer's received_at).
RECEIVED = datetime(2026, 11, 20, 14, 6, 12, tzinfo=UTC)
EXAMPLE_FILE = Path(__file__).resolve().parents[2] / "example-referral.json"
OPERATIONS = {
    name: value
    for name, value in vars(operation_docs).items()
    if isinstance(value, type) and name.isupper()
}


def test_the_referral_example_is_api_mds(catalogue: Catalogue) -> None:
    assert json.loads(EXAMPLE_FILE.read_text()) == examples.NEW_REFERRAL
    validate_referral(examples.NEW_REFERRAL, "police", RECEIVED, catalogue)


def test_the_error_example_is_what_the_checkers_answer(catalogue: Catalogue) -> None:
    body = {
        **examples.NEW_REFERRAL,
        "victim": {**examples.NEW_REFERRAL["victim"], "date_of_birth": "2027-01-01"},
        "offence": {"category": "sexual"},
        "consent": None,
    }
    with pytest.raises(InvalidInput) as refused:
        validate_referral(body, "police", RECEIVED, catalogue)
    errors = [{"path": p.path, "message": p.message} for p in refused.value.problems]
    assert errors == examples.INVALID_REFERRAL["errors"]


def test_the_batch_example_answers_as_documented(catalogue: Catalogue) -> None:
    good, bad = examples.BATCH["referrals"]
    validate_referral(good, "police", RECEIVED, catalogue, prefix="referrals[0]")
    with pytest.raises(InvalidInput) as refused:
        validate_referral(bad, "police", RECEIVED, catalogue, prefix="referrals[1]")
    errors = [{"path": p.path, "message": p.message} for p in refused.value.problems]
    documented = examples.BATCH_ANSWER["items"]
    assert [item["status"] for item in documented] == ["created", "invalid"]
    assert errors == documented[1]["errors"]


def test_the_csv_example_is_a_valid_referral(catalogue: Catalogue) -> None:
    (body,) = asyncio.run(parse_csv(examples.CSV_BATCH.encode(), 10))
    validate_referral(body, "police", RECEIVED, catalogue)


def test_the_patch_example_makes_a_valid_referral(catalogue: Catalogue) -> None:
    merged = merge_patch(examples.NEW_REFERRAL, examples.REFERRAL_CHANGES)
    validate_referral(merged, "police", RECEIVED, catalogue)


def test_the_appropriate_adult_example_is_valid(catalogue: Catalogue) -> None:
    validate_aa_request(examples.AA_REQUEST, RECEIVED, catalogue)


def test_the_receipt_and_withdrawal_examples_pass_their_checks() -> None:
    assert PROVIDER_STATUS.fullmatch(examples.DELIVERY_RECEIPT["status"])
    assert isinstance(examples.DELIVERY_RECEIPT["reference"], str)
    msgspec.convert(examples.WITHDRAWAL, Withdrawal)


def _documented_examples() -> list[tuple[str, str, Any]]:
    """(operation, schema name, example) for every example the operations show."""
    found = []
    for name, operation in OPERATIONS.items():
        doc = operation().to_schema()
        media = [*doc.get("requestBody", {}).get("content", {}).values()]
        for response in doc["responses"].values():
            media += response.get("content", {}).values()
        for item in media:
            ref = item["schema"].get("$ref")
            if "example" in item and ref is not None:
                found.append((name, ref.rsplit("/", 1)[-1], item["example"]))
    return found


def test_every_operation_shows_an_example_of_its_body_and_answer() -> None:
    shown = {name for name, _, _ in _documented_examples()}
    assert shown == set(OPERATIONS)
    for name, operation in OPERATIONS.items():
        doc = operation().to_schema()
        body = doc.get("requestBody", {}).get("content", {})
        assert all("example" in media for media in body.values()), name
        assert any(
            "example" in media
            for status, answer in doc["responses"].items()
            if status.startswith("2")
            for media in answer.get("content", {}).values()
        ), name


@pytest.mark.parametrize(("operation", "schema", "example"), _documented_examples())
def test_examples_validate_against_their_schema(operation: str, schema: str, example: Any) -> None:
    document = {
        "$ref": REF.format(name=schema),
        "components": {"schemas": operation_docs.DOCS.component_schemas()},
    }
    validator = jsonschema_rs.Draft202012Validator(document, validate_formats=True)
    errors = [error.message for error in validator.iter_errors(example)]
    assert not errors, (operation, schema, errors)


def test_enumerations_are_the_domains_vocabularies() -> None:
    schemas = operation_docs.DOCS.component_schemas()

    def enum(struct: str, field: str) -> list[str]:
        schema = schemas[struct]["properties"][field]
        schema = schema.get("items", schema)
        for option in schema.get("anyOf", [schema]):
            if "enum" in option:
                return list(option["enum"])
            if "items" in option:
                return list(option["items"]["enum"])
        raise AssertionError((struct, field, schema))

    assert enum("Victim", "gender") == list(v.GENDERS)
    assert enum("Offence", "category") == list(v.OFFENCE_CATEGORIES)
    assert enum("NewReferral", "flags") == list(v.REFERRAL_FLAGS)
    assert enum("NewReferral", "needs") == list(v.NEEDS)
    assert enum("Contact", "channels") == list(v.CHANNELS)
    assert enum("Triage", "flags") == list(v.DECISION_FLAGS)


def test_the_documented_page_limits_are_the_handlers() -> None:
    assert operation_docs.SEARCH_MAX == referrals.MAX_PAGE
    assert operation_docs.SEARCH_DEFAULT == referrals.DEFAULT_PAGE
