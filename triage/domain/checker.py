"""A validation pass that collects every problem in a body, with dotted paths.

msgspec stops at the first error, so bodies are decoded loosely (to plain JSON values) and
checked here field by field. Messages never repeat the value that was sent: it may be personal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from triage.domain.problems import Problem

T = TypeVar("T")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# C0 control characters: PostgreSQL refuses NUL in text and JSON, and the others have no place
# in a name, a reference or a code. Free text (notes, descriptions, reasons) may carry tabs and
# line breaks; a Windows line break (CR LF) is read as a line break.
_CONTROL = re.compile(r"[\x00-\x1f]")
_CONTROL_IN_FREE_TEXT = re.compile(r"[\x00-\x08\x0b-\x1f]")
CONTROL_MESSAGE = "must not contain control characters"
FREE_TEXT_CONTROL_MESSAGE = "must not contain control characters (other than tabs and line breaks)"
# A field name quoted back in a path: only a plain identifier, never whatever a sender put in
# a key (it could be anything, control characters and personal data included).
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def clean_text(value: str, *, free_text: bool = False) -> str | None:
    """`value` with CR LF read as LF in free text, or None when it carries a control character
    that is not allowed (C0, other than tab and line feed in free text)."""
    if free_text:
        value = value.replace("\r\n", "\n")
        return None if _CONTROL_IN_FREE_TEXT.search(value) else value
    return None if _CONTROL.search(value) else value


def field_path(path: str, key: object) -> str:
    """The dotted path of a field a sender named: the name only when it is a plain identifier."""
    if isinstance(key, str) and _FIELD_NAME.match(key):
        return _join(path, key)
    return _join(path, "(a field name that is not allowed)")


class Checker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def mapping(
        self, parent: Mapping[str, Any], key: str, path: str, allowed: Iterable[str]
    ) -> dict[str, Any] | None:
        """The object at `key` (None when absent or null), with unknown keys reported."""
        value = parent.get(key)
        if value is None:
            return None
        return self.object(value, path, allowed)

    def object(self, value: Any, path: str, allowed: Iterable[str]) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.add(path, "must be an object")
            return None
        allowed_set = set(allowed)
        for extra in sorted(set(value) - allowed_set):
            self.add(field_path(path, extra), "is not a known field")
        return value

    def text(
        self,
        parent: Mapping[str, Any],
        key: str,
        path: str,
        *,
        required: bool = False,
        max_length: int = 200,
        free_text: bool = False,
    ) -> str | None:
        """A string, stripped; `free_text` allows tabs and line breaks inside it."""
        value = parent.get(key)
        if value is None:
            if required:
                self.add(path, "is required")
            return None
        if not isinstance(value, str):
            self.add(path, "must be a string")
            return None
        cleaned = clean_text(value, free_text=free_text)
        if cleaned is None:
            self.add(path, FREE_TEXT_CONTROL_MESSAGE if free_text else CONTROL_MESSAGE)
            return None
        value = cleaned.strip()
        if not value:
            if required:
                self.add(path, "must not be empty")
            return None
        if len(value) > max_length:
            self.add(path, f"must be at most {max_length} characters")
            return None
        return value

    def choice(
        self,
        parent: Mapping[str, Any],
        key: str,
        path: str,
        allowed: Iterable[str],
        *,
        required: bool = False,
    ) -> str | None:
        value = parent.get(key)
        if value is None:
            if required:
                self.add(path, "is required")
            return None
        options = tuple(allowed)
        if not isinstance(value, str) or value not in options:
            self.add(path, f"must be one of: {', '.join(options)}")
            return None
        return value

    def choices(
        self, parent: Mapping[str, Any], key: str, path: str, allowed: Iterable[str]
    ) -> list[str]:
        """A list of distinct values from `allowed`, order kept (duplicates dropped)."""
        value = parent.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.add(path, "must be a list")
            return []
        options = tuple(allowed)
        chosen: list[str] = []
        for index, item in enumerate(value):
            if not isinstance(item, str) or item not in options:
                self.add(f"{path}[{index}]", f"must be one of: {', '.join(options)}")
            elif item not in chosen:
                chosen.append(item)
        return chosen

    def boolean(self, parent: Mapping[str, Any], key: str, path: str) -> bool | None:
        value = parent.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.add(path, "must be true or false")
            return None
        return value

    def integer(
        self, parent: Mapping[str, Any], key: str, path: str, low: int, high: int
    ) -> int | None:
        value = parent.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(path, "must be a whole number")
            return None
        if not low <= value <= high:
            self.add(path, f"must be from {low} to {high}")
            return None
        return value

    def date(self, parent: Mapping[str, Any], key: str, path: str) -> date | None:
        value = parent.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not _DATE.match(value):
            self.add(path, "must be a date as YYYY-MM-DD")
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.add(path, "must be a real date as YYYY-MM-DD")
            return None

    def instant(self, parent: Mapping[str, Any], key: str, path: str) -> datetime | None:
        """An ISO 8601 date and time that carries its offset (`Z` or `+01:00`)."""
        value = parent.get(key)
        if value is None:
            return None
        parsed = parse_instant(value)
        if isinstance(parsed, str):
            self.add(path, parsed)
            return None
        return parsed

    def normalised(
        self,
        parent: Mapping[str, Any],
        key: str,
        path: str,
        normalise: Callable[[str], T | None],
        message: str,
        max_length: int = 100,
    ) -> T | None:
        raw = self.text(parent, key, path, max_length=max_length)
        if raw is None:
            return None
        result = normalise(raw)
        if result is None:
            self.add(path, message)
        return result


INSTANT_MESSAGE = "must be a date and time in ISO 8601 with an offset, such as 2026-11-20T14:05:00Z"
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)


def parse_instant(value: Any) -> datetime | str:
    """An ISO 8601 date and time with its offset, as UTC (the same instant sent as +01:00 or
    Z is the same content), or why not. Years 1900 to 2999: beyond them the calendar's
    arithmetic (UTC, Europe/London) overflows, and no referral has such a time."""
    if not isinstance(value, str) or "T" not in value or clean_text(value) is None:
        return INSTANT_MESSAGE
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return INSTANT_MESSAGE
    if parsed.tzinfo is None:
        return "must carry a UTC offset (Z or +01:00): naive times are ambiguous"
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:
        return "must be a date and time between 1900 and 2999"
    if not EARLIEST <= utc < LATEST:
        return "must be a date and time between 1900 and 2999"
    return utc


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
