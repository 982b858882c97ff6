"""Phone numbers, postcodes and email addresses: normalised, checked, never echoed in errors."""

from __future__ import annotations

import re

import phonenumbers

# Ofcom's numbers reserved for drama and tests (national significant numbers, E.164 without +44):
# they never reach a person, so demos and tests use them; libphonenumber calls them invalid.
OFCOM_DRAMA_RANGES: tuple[tuple[int, int], ...] = (
    (7700900000, 7700900999),  # mobile 07700 900000-999
    (1134960000, 1134960999),  # Leeds
    (1144960000, 1144960999),  # Sheffield
    (1154960000, 1154960999),  # Nottingham
    (1164960000, 1164960999),  # Leicester
    (1174960000, 1174960999),  # Bristol
    (1184960000, 1184960999),  # Reading
    (1214960000, 1214960999),  # Birmingham
    (1314960000, 1314960999),  # Edinburgh
    (1414960000, 1414960999),  # Glasgow
    (1514960000, 1514960999),  # Liverpool
    (1614960000, 1614960999),  # Manchester
    (1914980000, 1914980999),  # Tyneside
    (2079460000, 2079460999),  # London
    (2891800000, 2891800999),  # Belfast
    (2920180000, 2920180999),  # Cardiff
    (1632960000, 1632960999),  # no area
    (8081570000, 8081570999),  # freephone
    (9098790000, 9098790999),  # premium rate
    (3069990000, 3069990999),  # UK-wide
)


def is_drama_number(number: phonenumbers.PhoneNumber) -> bool:
    if number.country_code != 44:
        return False
    national = number.national_number or 0
    return any(low <= national <= high for low, high in OFCOM_DRAMA_RANGES)


def normalise_phone(text: str) -> str | None:
    """E.164 for a number that can be dialled (UK default), else None."""
    try:
        number = phonenumbers.parse(text, "GB")
    except phonenumbers.NumberParseException:
        return None
    # The drama check is a few comparisons; libphonenumber's validity check is not.
    if is_drama_number(number) or phonenumbers.is_valid_number(number):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


_POSTCODE = re.compile(
    r"^(GIR0AA|[A-PR-UWYZ](?:[0-9]{1,2}|[A-HK-Y][0-9][0-9ABEHMNPRV-Y]?|[0-9][A-HJKPSTUW]|"
    r"[A-HK-Y][0-9])[0-9][ABD-HJLNP-UW-Z]{2})$"
)


def normalise_postcode(text: str) -> str | None:
    """`ct12ab` -> `CT1 2AB`; None when it is not in the UK format (no directory look-up)."""
    compact = "".join(text.split()).upper()
    if not _POSTCODE.match(compact):
        return None
    return f"{compact[:-3]} {compact[-3:]}"


def postcode_district(postcode: str) -> str:
    """The outward code of a normalised postcode: `CT1 2AB` -> `CT1`."""
    return postcode.split(" ", 1)[0]


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalise_email(text: str) -> str | None:
    """Trimmed, domain lower-cased; None when it cannot be an address."""
    candidate = text.strip()
    if len(candidate) > 254 or not _EMAIL.match(candidate):
        return None
    local, _, domain = candidate.rpartition("@")
    return f"{local}@{domain.lower()}"
