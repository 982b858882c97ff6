"""What a staff search box's text is: a reference, an external reference, a date of birth, a
phone number, a postcode (full or district), or a name. Pure: services/search.py turns the
answer into a query on the indexed columns of migration 0009.

The text is personal data (a name, a phone number): refusals never repeat it, and what is
recorded of a search is only its kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

from triage.domain.contact_details import normalise_phone, normalise_postcode

MAX_QUERY = 100
MIN_NAME_CHARACTERS = 2
MAX_NAME_WORDS = 6

QueryKind = Literal[
    "reference",
    "external_ref",
    "date_of_birth",
    "phone",
    "postcode",
    "postcode_district",
    "surname",
    "name",
]

# Control characters (C0, DEL, C1) and lone surrogates: nothing anyone types, and PostgreSQL
# refuses NUL in text outright. Tabs and line breaks pasted in with a name are only spaces.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# A reference as intake gives them (catalogue prefix, year, sequence): KVR-26-004211.
_REFERENCE = re.compile(r"^[A-Z]{2,5}-[0-9]{2}-[0-9]{6,}$")
_ISO_DATE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$")
_UK_DATE = re.compile(r"^([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})$")
_PHONE_LIKE = re.compile(r"^\+?\(?[0-9][0-9 ()-]{5,22}$")
# An outward code alone: CT1, ME14, SW1A, W1.
_DISTRICT = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?$")
# A name's words: letters and digits; everything else (spaces, apostrophes, hyphens, '%', '_')
# separates them, as PostgreSQL's parser does for the names' tsvector.
_WORD = re.compile(r"[^\W_]+")


class SearchRefused(ValueError):
    """The search text cannot be searched for: `message` is for a GOV.UK error summary, linked
    to the search box (`field`). It never repeats the text."""

    def __init__(self, message: str, field: str = "q") -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class SearchQuery:
    kind: QueryKind
    # What the indexed column is compared with: the reference upper-cased, the external
    # reference as typed, the phone's digits, the postcode without spaces, the district, the
    # name as typed (PostgreSQL normalises it with the same function as the column).
    value: str
    date_of_birth: date | None = None
    words: tuple[str, ...] = ()


def parse_query(text: str) -> SearchQuery:
    if len(text) > MAX_QUERY:
        raise SearchRefused(f"Search must be {MAX_QUERY} characters or fewer")
    if _UNPRINTABLE.search(text):
        raise SearchRefused("Search must only include letters, numbers, spaces and punctuation")
    query = " ".join(text.split())
    if not query:
        raise SearchRefused(
            "Enter a reference, name, date of birth, phone number or postcode to search for"
        )
    compact = query.replace(" ", "").upper()
    if _REFERENCE.match(compact):
        return SearchQuery("reference", compact)
    born = _date_of_birth(query)
    if born is not None:
        return SearchQuery("date_of_birth", born.isoformat(), date_of_birth=born)
    postcode = normalise_postcode(query)
    if postcode is not None:
        return SearchQuery("postcode", postcode.replace(" ", ""))
    if _DISTRICT.match(compact):
        return SearchQuery("postcode_district", compact)
    if _PHONE_LIKE.match(query):
        phone = normalise_phone(query)
        if phone is not None:
            return SearchQuery("phone", phone.lstrip("+"))
    if any(ch.isdigit() for ch in query):
        # Names carry no digits; police and partner references always do.
        return SearchQuery("external_ref", query)
    words = tuple(_WORD.findall(query.lower()))
    if sum(len(word) for word in words) < MIN_NAME_CHARACTERS:
        raise SearchRefused(f"Enter at least {MIN_NAME_CHARACTERS} letters of a name")
    if len(words) > MAX_NAME_WORDS:
        raise SearchRefused(f"Enter a name of {MAX_NAME_WORDS} words or fewer")
    if len(query.replace(",", " ").split()) == 1:
        return SearchQuery("surname", query, words=words)
    return SearchQuery("name", query, words=words)


def _date_of_birth(query: str) -> date | None:
    """A date written dd/mm/yyyy or yyyy-mm-dd; SearchRefused for one that is not a real date
    (31/02/1990), None for text that is not written as a date at all."""
    iso = _ISO_DATE.match(query)
    uk = _UK_DATE.match(query)
    if iso:
        year, month, day = (int(part) for part in iso.groups())
    elif uk:
        day, month, year = (int(part) for part in uk.groups())
    else:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        raise SearchRefused("Date of birth must be a real date, like 02/04/1991") from None


def tsquery_text(words: tuple[str, ...]) -> str:
    """Every word as a prefix, all required: `sam tay` finds Sam Taylor. The words hold only
    letters and digits (_WORD), so quoting them is enough to keep tsquery syntax out."""
    return " & ".join(f"'{word}':*" for word in words)
