"""Shared helpers for the unit tests: the Kent catalogue, a valid referral body, triage.

No I/O besides reading the catalogue file, no database.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from triage.catalogue.loader import load_catalogue
from triage.domain.catalogue import Catalogue
from triage.domain.decision import Decision
from triage.domain.engine import triage
from triage.domain.referral import Referral
from triage.domain.validation import validate_referral

# Wednesday 18 November 2026, 10:00 in London (GMT): an ordinary working day.
RECEIVED = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)

BASE_BODY: dict[str, Any] = {
    "external_ref": "46/000001/26",
    "victim": {"first_name": "Sam", "phone": "07700 900123"},
    "contact": {"channels": ["phone"]},
    "offence": {"category": "burglary"},
    "consent": {"to_referral": True},
}


def make_body(
    overrides: Mapping[str, Any] | None = None, *, drop: Iterable[str] = ()
) -> dict[str, Any]:
    """A minimal valid police referral body, with overrides and removals by dotted path.

    `make_body({"victim.age": 30, "offence.category": "sexual"}, drop=["consent"])`:
    intermediate objects are created as needed.
    """
    body = copy.deepcopy(BASE_BODY)
    for path, value in (overrides or {}).items():
        *parents, last = path.split(".")
        _node(body, parents)[last] = copy.deepcopy(value)
    for path in drop:
        *parents, last = path.split(".")
        _node(body, parents).pop(last, None)
    return body


def _node(body: dict[str, Any], parents: list[str]) -> dict[str, Any]:
    node = body
    for key in parents:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    return node


def validate(
    catalogue: Catalogue,
    body: Any,
    *,
    source: str = "police",
    received_at: datetime = RECEIVED,
) -> Referral:
    return validate_referral(body, source, received_at, catalogue)


def run_triage(
    catalogue: Catalogue,
    body: Any,
    *,
    source: str = "police",
    received_at: datetime = RECEIVED,
) -> Decision:
    """Validate a body as intake does, then triage it: the decision the API would record."""
    referral = validate_referral(body, source, received_at, catalogue)
    return triage(referral, source, received_at, catalogue)


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture(name="make_body")
def make_body_fixture() -> Callable[..., dict[str, Any]]:
    """The body builder, as a fixture (test modules do not import conftest)."""
    return make_body


@pytest.fixture
def decide(catalogue: Catalogue) -> Callable[..., Decision]:
    """`decide({"offence.category": "sexual"}, drop=[...], source=..., received_at=...)`:
    the decision for the minimal valid body with those changes."""

    def _decide(
        overrides: Mapping[str, Any] | None = None,
        *,
        drop: Iterable[str] = (),
        source: str = "police",
        received_at: datetime = RECEIVED,
    ) -> Decision:
        body = make_body(overrides, drop=drop)
        return run_triage(catalogue, body, source=source, received_at=received_at)

    return _decide


@pytest.fixture
def check(catalogue: Catalogue) -> Callable[..., Referral]:
    """`check(body, source=..., received_at=...)`: validate a body (raises InvalidInput)."""

    def _check(body: Any, *, source: str = "police", received_at: datetime = RECEIVED) -> Referral:
        return validate(catalogue, body, source=source, received_at=received_at)

    return _check
