"""How the wire Structs (wire_requests, wire_answers) write the checkers' constraints, so that
msgspec puts them into the OpenAPI document's schemas."""

from __future__ import annotations

from collections.abc import Iterable

from msgspec import Meta


def one_of(title: str, values: Iterable[str], description: str | None = None) -> Meta:
    """A closed vocabulary as a JSON Schema `enum`. Its title is a short noun: generated
    clients name the enum class by it after its model (Case + Status: CaseStatus). The field
    stays a `str` for typing: the values come from the domain's tuples, which a `Literal`
    cannot name."""
    return Meta(title=title, extra_json_schema={"enum": list(values)}, description=description)


def text(max_length: int, description: str | None = None, *, required: bool = False) -> Meta:
    """A string of at most `max_length` characters (the checkers count them after trimming
    surrounding whitespace); a required one must not be empty."""
    return Meta(min_length=1 if required else None, max_length=max_length, description=description)
