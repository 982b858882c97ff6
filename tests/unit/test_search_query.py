"""What a search box's text is taken for (triage/domain/search_query.py): no I/O."""

from __future__ import annotations

from datetime import date

import pytest

from triage.domain.search_query import SearchRefused, parse_query, tsquery_text


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("KVR-26-004211", "reference", "KVR-26-004211"),
        (" kvr-26-1000000 ", "reference", "KVR-26-1000000"),
        ("46/123456/26", "external_ref", "46/123456/26"),
        ("KC/ME/26/001234", "external_ref", "KC/ME/26/001234"),
        ("123456", "external_ref", "123456"),
        ("02/04/1991", "date_of_birth", "1991-04-02"),
        ("2/4/1991", "date_of_birth", "1991-04-02"),
        ("1991-04-02", "date_of_birth", "1991-04-02"),
        ("07700 900123", "phone", "447700900123"),
        ("+44 7700 900123", "phone", "447700900123"),
        ("(01632) 960001", "phone", "441632960001"),
        ("0207 946 0000", "phone", "442079460000"),
        ("CT1 2AB", "postcode", "CT12AB"),
        ("me141xq", "postcode", "ME141XQ"),
        ("SW1A 1AA", "postcode", "SW1A1AA"),
        ("ME14", "postcode_district", "ME14"),
        ("ct1", "postcode_district", "CT1"),
        ("W1", "postcode_district", "W1"),
        ("Taylor", "surname", "Taylor"),
        ("O'Brien-Smith", "surname", "O'Brien-Smith"),
        ("Ng", "surname", "Ng"),
        ("Sam Taylor", "name", "Sam Taylor"),
        ("Taylor,Sam", "name", "Taylor,Sam"),
        ("  Sam   Taylor ", "name", "Sam Taylor"),
    ],
)
def test_kinds(text: str, kind: str, value: str) -> None:
    query = parse_query(text)
    assert (query.kind, query.value) == (kind, value)


def test_a_date_of_birth_is_a_date() -> None:
    assert parse_query("29/02/2000").date_of_birth == date(2000, 2, 29)


def test_name_words_and_their_tsquery() -> None:
    query = parse_query("Zoë O'Brien_Smith %")
    assert query.words == ("zoë", "o", "brien", "smith")
    assert tsquery_text(query.words) == "'zoë':* & 'o':* & 'brien':* & 'smith':*"


@pytest.mark.parametrize(
    "text",
    ["", " ", "\x00", "Tay\x1blor", "x" * 101, "x" * 10_000, "29/02/2001", "%", "_", "a", "'"],
)
def test_refused(text: str) -> None:
    with pytest.raises(SearchRefused) as refused:
        parse_query(text)
    assert refused.value.field == "q" and refused.value.message


def test_exactly_the_longest_query_is_taken() -> None:
    assert parse_query("x" * 100).kind == "surname"
