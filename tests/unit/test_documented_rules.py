"""Rules the OpenAPI document states that the checkers must hold too (schemathesis refuses a
server that accepts what its document calls wrong)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from triage.domain.catalogue import Catalogue
from triage.domain.problems import InvalidInput
from triage.domain.validation import validate_referral

RECEIVED = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("days", [None, "mon"])
def test_a_safe_time_window_needs_its_days(
    catalogue: Catalogue, make_body: Callable[..., dict[str, Any]], days: Any
) -> None:
    window = {"days": days, "from": "09:00", "to": "12:00"}
    body = make_body({"contact.safe_times": [window]})
    with pytest.raises(InvalidInput) as refused:
        validate_referral(body, "police", RECEIVED, catalogue)
    assert [p.path for p in refused.value.problems] == ["contact.safe_times[0].days"]
