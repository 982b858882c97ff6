"""The catalogue's `retention` section (retention.md): how long personal data is kept after a
referral's final state, and after an Appropriate Adult request's deadline. Drafts (60 minutes)
and rendered messages (7 days) have their own purges, fixed by the specification."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class RetentionPolicy:
    closed_after_years: int
    withdrawn_after_years: int
    open_review_after_years: int
    appropriate_adult_after_years: int


class _Parsing(Protocol):
    def fail(self, path: str, message: str) -> None: ...

    def integer(
        self, value: Any, path: str, default: int | None = None, minimum: int = 0
    ) -> int: ...


def parse_retention(p: _Parsing, raw: Any) -> RetentionPolicy:
    if not isinstance(raw, dict):
        p.fail("retention", "missing or not a mapping")
        raw = {}

    def years(key: str) -> int:
        # Stated by the catalogue: no default stands in for how long personal data is kept.
        return p.integer(raw.get(key), f"retention.{key}", None, 1)

    return RetentionPolicy(
        closed_after_years=years("closed_after_years"),
        withdrawn_after_years=years("withdrawn_after_years"),
        open_review_after_years=years("open_review_after_years"),
        appropriate_adult_after_years=years("appropriate_adult_after_years"),
    )
