"""Reading a submitted form: the CSRF check every form goes through, text cleaned of control
characters, and the errors a page shows as a GOV.UK error summary linked to its fields."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from litestar import Request
from litestar.exceptions import ClientException, PermissionDeniedException

from triage.domain.checker import clean_text

MAX_FIELD = 20_000  # no staff field is longer (a note is 8,000)


@dataclass
class Form:
    values: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)

    def many(self, name: str) -> list[str]:
        return self.lists.get(name, [])

    def error(self, name: str, message: str) -> None:
        self.errors.append((name, message))

    def error_for(self, name: str) -> str | None:
        for field_name, message in self.errors:
            if field_name == name:
                return message
        return None

    @property
    def summary(self) -> list[dict[str, str]]:
        """For govukErrorSummary: the first message per field, linked to it."""
        seen: set[str] = set()
        items = []
        for name, message in self.errors:
            if name in seen:
                continue
            seen.add(name)
            items.append({"text": message, "href": f"#{name}"})
        return items


async def read_form(request: Request[Any, Any, Any], csrf: str) -> Form:
    """The submitted form after its CSRF token checked against the session's (403 if not).
    Each value is text cleaned of control characters (a NUL byte is never stored), and one
    field given twice keeps every value in `lists`."""
    try:
        data = await request.form()
    except (UnicodeDecodeError, ValueError):
        # A body that is not text (bytes that are not UTF-8 in a multipart part): the
        # person's error, said as a 400 page, never a 500.
        raise ClientException("The form could not be read") from None
    sent = data.get("csrf_token", "")
    if not isinstance(sent, str) or not csrf or not hmac.compare_digest(sent, csrf):
        raise PermissionDeniedException("CSRF token missing or wrong")
    form = Form()
    for key, value in data.multi_items():
        if not isinstance(value, str) or key == "csrf_token":
            continue
        value = value[:MAX_FIELD]
        cleaned = clean_text(value, free_text=True)
        if cleaned is None:
            # Shown again without the characters, with an error: never stored.
            form.error(key, "Remove the characters that are not letters, numbers or punctuation")
            cleaned = "".join(c for c in value if c.isprintable() or c in "\n\t")
        cleaned = cleaned.strip()
        form.lists.setdefault(key, []).append(cleaned)
        form.values.setdefault(key, cleaned)
    return form
