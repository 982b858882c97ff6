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
    "offence.category and victim.first_name or victim.last_name."
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
    fails the file. UnicodeDecodeError when the body is not UTF-8; csv.Error for a cell over
    the csv module's field size limit. Yields to the event loop every few hundred rows."""
    lines = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8-sig", newline="")
    reader = csv.reader(lines)
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
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue  # blank lines are not referrals
        index += 1
        if index >= max_rows:
            raise TooManyRows(f"more than {max_rows} rows")
        if index % CSV_ROWS_PER_YIELD == 0:
            await asyncio.sleep(0)
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
