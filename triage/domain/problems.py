"""A problem with an input: where it is (dotted path) and what is wrong, never the value sent."""

from __future__ import annotations

import msgspec


class Problem(msgspec.Struct, frozen=True):
    path: str
    message: str


class InvalidInput(Exception):
    """Raised with every problem found in one input, so callers can report them all at once."""

    def __init__(self, problems: list[Problem], title: str = "Invalid referral"):
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems
        self.title = title


def problem_body(problems: list[Problem], title: str = "Invalid referral") -> dict[str, object]:
    """The RFC 9457 body the API answers (and `triage explain` prints) for invalid input."""
    count = len(problems)
    return {
        "type": "https://triage.example/problems/validation",
        "title": title,
        "status": 422,
        "detail": f"{count} problem" + ("" if count == 1 else "s"),
        "errors": [{"path": p.path, "message": p.message} for p in problems],
    }


class Unreadable(msgspec.Struct, frozen=True):
    """A batch item that could not be read as an item at all (a CSV row with more cells than
    the header): it stands in its place, to be answered `invalid` with these problems."""

    problems: list[Problem]
