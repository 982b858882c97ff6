"""CSV batches: one row per referral, columns named by dotted field paths (api.md).

Lists are separated by `;`; `contact.safe_times` is windows separated by `;`, each days then
hours: `mon-fri 09:00-12:00; sat,sun 10:00-14:00`. Booleans are true/false (or yes/no),
blank cells are absent fields. Each row becomes the same body a JSON batch would carry.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import Iterator
from typing import Any

from triage.domain import validation as v
from triage.domain.problems import Problem, Unreadable
from triage.domain.vocabulary import DAYS

LIST_COLUMNS = {
    "victim.vulnerabilities",
    "contact.channels",
    "offence.hate_motivations",
    "flags",
    "needs",
}
BOOL_COLUMNS = {
    "victim.interpreter_needed",
    "contact.voicemail_ok",
    "contact.letter_ok",
    "risk.marac_referred",
    "consent.to_referral",
    "consent.to_contact",
    "consent.to_survey",
}
INT_COLUMNS = {"victim.age", "risk.dash_score"}
CSV_ROWS_PER_YIELD = 500


def known_columns() -> list[str]:
    columns = ["external_ref", "referred_at", "flags", "needs", "notes"]
    columns += [f"victim.{f}" for f in v.VICTIM_FIELDS if f != "address"]
    columns += [f"victim.address.{f}" for f in v.ADDRESS_FIELDS]
    columns += [f"contact.{f}" for f in v.CONTACT_FIELDS]
    columns += [f"offence.{f}" for f in v.OFFENCE_FIELDS]
    columns += [f"risk.{f}" for f in v.RISK_FIELDS]
    columns += [f"consent.{f}" for f in v.CONSENT_FIELDS]
    columns += [f"referrer.{f}" for f in v.REFERRER_FIELDS]
    return columns


KNOWN = set(known_columns())
CSV_DOC = (
    "CSV batches: `Content-Type: text/csv`, a header row of dotted field paths ("
    + ", ".join(known_columns())
    + "), one row per referral. Lists are separated by `;`. `contact.safe_times` is windows "
    "separated by `;`, each days then hours, such as `mon-fri 09:00-12:00; sat,sun 10:00-14:00`. "
    "Booleans are true or false; blank cells are absent fields. Required columns: external_ref, "
    "offence.category and victim.first_name or victim.last_name. An answer item's index is "
    "its row's position after the header: a blank row between referrals keeps its place (an "
    "invalid item, 'is a blank row'); blank rows at the end are ignored. A quoted cell that "
    "runs on into the rows after it (a closing quote missing) fails the file, naming the row."
)


class CsvProblem(ValueError):
    def __init__(self, problems: list[Problem]):
        super().__init__("bad CSV")
        self.problems = problems


# A header cell is quoted back in an error only when it looks like a field path (lower case,
# with a dot or an underscore): a CSV sent without its header row has personal data in the
# first row, and an error must never repeat it. Other cells are named by position.
_COLUMN_LIKE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


def _column_path(index: int, name: str) -> str:
    if len(name) <= 60 and _COLUMN_LIKE.match(name) and ("." in name or "_" in name):
        return f"columns.{name}"
    return f"columns[{index}]"


class TooManyRows(ValueError):
    """More rows than a batch may hold: reading stopped at the first one over."""


async def parse_csv(raw: bytes, max_rows: int) -> list[dict[str, Any] | Unreadable]:
    """The referrals in a CSV batch, read a line at a time from the body (never the whole of it
    as text at once), stopping at row `max_rows + 1` (TooManyRows). A row that cannot be read
    as the columns say is an `Unreadable` item in its place; only a wrong header (CsvProblem)
    fails the file, and so does a quoted cell that runs on into the rows after it (they could
    not be read). UnicodeDecodeError when the body is not UTF-8; csv.Error for a cell over the
    csv module's field size limit; LineTooLong for a line over MAX_LINE. Yields to the event
    loop every few hundred rows."""
    lines = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8-sig", newline="")
    reader = csv.reader(_limited(lines))
    header = [h.strip() for h in next(reader, [])]
    problems = []
    seen: set[str] = set()
    for index, name in enumerate(header):
        if name not in KNOWN:
            problems.append(Problem(_column_path(index, name), "is not a known column"))
        elif name in seen:
            problems.append(Problem(f"columns.{name}", "is given twice"))
        seen.add(name)
    for required in ("external_ref", "offence.category"):
        if required not in header:
            problems.append(Problem(f"columns.{required}", "is a required column"))
    if "victim.first_name" not in header and "victim.last_name" not in header:
        problems.append(
            Problem(
                "columns.victim.first_name",
                "a victim.first_name or victim.last_name column is required",
            )
        )
    if problems:
        raise CsvProblem(problems)
    bodies: list[dict[str, Any] | Unreadable] = []
    index = -1
    blank: list[int] = []  # blank rows since the last row with something in it
    line = reader.line_num
    for row in reader:
        first_line, line = line + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            blank.append(index + 1 + len(blank))
            continue
        # A blank row between two referrals keeps its place, so that an answer's index is the
        # row's position after the header; blank rows at the end are no rows at all.
        for position in blank:
            bodies.append(Unreadable([Problem(f"referrals[{position}]", "is a blank row")]))
        index += 1 + len(blank)
        blank = []
        if index >= max_rows:
            raise TooManyRows(f"more than {max_rows} rows")
        if index % CSV_ROWS_PER_YIELD == 0:
            await asyncio.sleep(0)
        if line > first_line and _swallows_rows(row, len(header)):
            # A quote left open takes the rows after it into one cell: they must never be
            # read as that victim's notes, nor be silently lost.
            raise CsvProblem(
                [
                    Problem(
                        f"referrals[{index}]",
                        "has a quoted cell that runs on into the rows after it "
                        "(a closing quote is missing)",
                    )
                ]
            )
        if len(row) > len(header):
            bodies.append(
                Unreadable([Problem(f"referrals[{index}]", "has more cells than the header row")])
            )
            continue
        body: dict[str, Any] = {}
        for key, cell in zip(header, row, strict=False):
            value = cell.strip()
            if value == "":
                continue
            _set(body, key, _convert(key, value))
        bodies.append(body)
    return bodies


# Longer than any row of a referral can be (its free text is at most 14,000 characters): a
# longer line is refused before the csv module splits it into cells.
MAX_LINE = 1024 * 1024


class LineTooLong(ValueError):
    """A line of the body longer than MAX_LINE characters."""


def _limited(lines: Iterator[str]) -> Iterator[str]:
    for text in lines:
        if len(text) > MAX_LINE:
            raise LineTooLong(f"a line is longer than {MAX_LINE:,} characters")
        yield text


def _swallows_rows(row: list[str], columns: int) -> bool:
    """Whether a row read across several lines holds, inside a cell, a line shaped like a
    row of its own (as many separators as the header): the sign of a quote left open."""
    if columns < 2:
        return False
    for cell in row:
        if "\n" in cell or "\r" in cell:
            for text in cell.splitlines()[1:]:
                if text.count(",") >= columns - 1:
                    return True
    return False


def _convert(key: str, value: str) -> Any:
    if key in LIST_COLUMNS:
        return [item.strip() for item in value.split(";") if item.strip()]
    if key in BOOL_COLUMNS:
        lowered = value.lower()
        if lowered in ("true", "yes", "1"):
            return True
        if lowered in ("false", "no", "0"):
            return False
        return value  # left as text: validation reports "must be true or false"
    if key in INT_COLUMNS:
        try:
            return int(value)
        except ValueError:
            return value
    if key == "contact.safe_times":
        return [_window(part.strip()) for part in value.split(";") if part.strip()]
    return value


def _window(text: str) -> Any:
    """`mon-fri 09:00-12:00` -> {"days": [...], "from": "09:00", "to": "12:00"}."""
    days_part, _, hours = text.rpartition(" ")
    start, _, end = hours.partition("-")
    days: list[str] = []
    for chunk in days_part.replace(" ", "").split(","):
        if "-" in chunk:
            first, _, last = chunk.partition("-")
            if first in DAYS and last in DAYS:
                i, j = DAYS.index(first), DAYS.index(last)
                days += DAYS[i : j + 1] if i <= j else DAYS[i:] + DAYS[: j + 1]
                continue
        days.append(chunk)
    return {"days": days, "from": start, "to": end}


def _set(body: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    target = body
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value
