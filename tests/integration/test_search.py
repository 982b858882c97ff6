"""Staff search (issue 10): each kind of query finds its referral and no other, within the
principal's scope, through an index; one audit event without the text; hostile text refused
or harmless. Referrals arrive through the real API; every test makes its own people (random
names, dates, numbers), since the whole suite's referrals share the database."""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest
from helpers import referral
from sqlalchemy import text

from triage.domain.policy import Forbidden
from triage.domain.principals import client as client_principal
from triage.domain.principals import staff
from triage.domain.search_query import SearchQuery, SearchRefused
from triage.services.search import SearchResults, search_referrals, search_statement

pytestmark = pytest.mark.integration

HUB = staff(uuid.uuid4(), frozenset({"hub"}), frozenset())
ISVA_CASEWORKER = staff(uuid.uuid4(), frozenset({"caseworker"}), frozenset({"isva"}))
COMMISSIONER = staff(uuid.uuid4(), frozenset({"commissioner"}), frozenset())
_rng = random.Random()


def surname() -> str:
    """A surname nobody else in the suite has (letters only: names carry no digits)."""
    return "Q" + "".join(_rng.choice(string.ascii_lowercase) for _ in range(9))


def birthday() -> str:
    return (date(1935, 1, 1) + timedelta(days=_rng.randrange(25_000))).isoformat()


def phone() -> str:
    """An Ofcom drama number (never a real person's): 01632 960xxx or 07700 900xxx."""
    return _rng.choice(["01632 960", "07700 900"]) + f"{_rng.randrange(1000):03d}"


def inward() -> str:
    return str(_rng.randrange(10)) + "".join(_rng.choice("ABDEFGHJLNPQRSTUWXYZ") for _ in "xy")


async def post(client: Any, headers: dict[str, str], **changes: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/referrals", json=referral(**changes), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def search(sessions: Any, query: str, principal: Any = HUB) -> SearchResults:
    async with sessions() as db:
        return await search_referrals(db, principal, query)


def references(results: SearchResults) -> set[str]:
    return {row.reference for row in results.rows}


async def test_reference_and_external_reference(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    mine = await post(client, police)
    other = await post(client, police)
    for query in (mine["reference"], mine["reference"].lower(), f"  {mine['reference']} "):
        results = await search(sessions, query)
        assert results.kind == "reference"
        assert references(results) == {mine["reference"]}
    results = await search(sessions, mine["external_ref"])
    assert results.kind == "external_ref"
    assert references(results) == {mine["reference"]}
    assert other["reference"] not in references(results)


async def test_date_of_birth_either_way_round(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    born = birthday()
    mine = await post(client, police, **{"victim.date_of_birth": born})
    other = await post(client, police, **{"victim.date_of_birth": birthday()})
    year, month, day = born.split("-")
    for query in (born, f"{day}/{month}/{year}", f"{int(day)}/{int(month)}/{year}"):
        results = await search(sessions, query)
        assert results.kind == "date_of_birth"
        assert mine["reference"] in references(results)
        assert other["reference"] not in references(results)
        assert {row.date_of_birth for row in results.rows} == {date.fromisoformat(born)}


async def test_phone_however_it_is_written(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    number, different = phone(), phone()
    while different == number:
        different = phone()
    mine = await post(client, police, **{"victim.phone": number})
    other = await post(client, police, **{"victim.phone": different})
    national = number.replace(" ", "")
    for query in (number, national, "+44 " + national[1:], f"({national[:5]}) {national[5:]}"):
        results = await search(sessions, query)
        assert results.kind == "phone", query
        assert mine["reference"] in references(results)
        assert other["reference"] not in references(results)


async def test_full_postcode_and_district(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    code = inward()
    # ZE2 and ZE29: a district must not find the longer district it is a prefix of.
    mine = await post(client, police, **{"victim.address.postcode": f"ZE2 {code}"})
    longer = await post(client, police, **{"victim.address.postcode": f"ZE29 {code}"})
    for query in (f"ZE2 {code}", f"ze2{code.lower()}"):
        results = await search(sessions, query)
        assert results.kind == "postcode"
        assert mine["reference"] in references(results)
        assert longer["reference"] not in references(results)
    district = await search(sessions, "ze2")
    assert district.kind == "postcode_district"
    assert mine["reference"] in references(district)
    assert longer["reference"] not in references(district)
    assert longer["reference"] in references(await search(sessions, "ZE29"))


async def test_surname_prefix_and_full_name(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    last = surname()
    mine = await post(client, police, **{"victim.first_name": "Ada", "victim.last_name": last})
    sibling = await post(
        client, police, **{"victim.first_name": "Bea", "victim.last_name": last + "-Smith"}
    )
    other = await post(client, police, **{"victim.last_name": surname()})
    prefix = await search(sessions, last[:6])
    assert prefix.kind == "surname"
    assert references(prefix) == {mine["reference"], sibling["reference"]}
    assert other["reference"] not in references(prefix)
    # Newest first, with what the page shows.
    assert [row.reference for row in prefix.rows] == [sibling["reference"], mine["reference"]]
    assert prefix.rows[0].victim_name == f"Bea {last}-Smith"
    assert prefix.rows[1].status == "triaged" and prefix.rows[1].priority in {"P1", "P2", "P3"}
    # The whole surname normalised: punctuation and case do not matter.
    assert references(await search(sessions, f"{last}smith".upper())) == {sibling["reference"]}
    assert references(await search(sessions, f"{last}’Smith")) == {sibling["reference"]}
    # Two words: every word a prefix of a first or last name, in either order.
    for query in (f"Ada {last}", f"{last}, Ada", f"ad {last[:4]}", f"A {last}"):
        results = await search(sessions, query)
        assert results.kind == "name", query
        assert references(results) == {mine["reference"]}, query
    assert references(await search(sessions, f"Bea {last}")) == {sibling["reference"]}
    assert references(await search(sessions, f"Cy {last}")) == set()


async def test_results_are_limited_and_say_so(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    last = surname()
    for _ in range(3):
        await post(client, police, **{"victim.last_name": last})
    async with sessions() as db:
        results = await search_referrals(db, HUB, last, limit=2)
    assert len(results.rows) == 2 and results.more
    assert not (await search(sessions, last)).more


async def test_a_caseworker_finds_only_their_services_referrals(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    last = surname()
    sexual = await post(client, police, **{"victim.last_name": last, "offence.category": "sexual"})
    theft = await post(
        client, police, **{"victim.last_name": last, "offence.category": "theft", "flags": []}
    )
    services = await _services(sessions, theft["id"])
    assert "isva" not in services and "isva" in await _services(sessions, sexual["id"])
    assert references(await search(sessions, last)) == {sexual["reference"], theft["reference"]}
    mine = await search(sessions, last, ISVA_CASEWORKER)
    assert references(mine) == {sexual["reference"]}
    assert references(await search(sessions, theft["reference"], ISVA_CASEWORKER)) == set()
    other_services = staff(uuid.uuid4(), frozenset({"caseworker"}), frozenset({"apvc"}))
    assert references(await search(sessions, last, other_services)) == set()


async def _services(sessions: Any, referral_id: str) -> set[str]:
    async with sessions() as db:
        rows = await db.execute(
            text("SELECT service FROM cases WHERE referral_id = :r"), {"r": referral_id}
        )
        return {row.service for row in rows}


@pytest.mark.parametrize(
    "principal",
    [
        COMMISSIONER,
        staff(uuid.uuid4(), frozenset({"admin"}), frozenset()),
        client_principal(uuid.uuid4(), frozenset({"referrals:read"}), "police"),
    ],
    ids=["commissioner", "admin", "api-client"],
)
async def test_who_may_not_search_is_forbidden(sessions: Any, principal: Any) -> None:
    before = await _events(sessions, principal.actor)
    with pytest.raises(Forbidden):
        await search(sessions, "Taylor", principal)
    assert await _events(sessions, principal.actor) == before


async def _events(sessions: Any, actor: str) -> list[Any]:
    async with sessions() as db:
        return list(
            await db.execute(
                text(
                    "SELECT action, record_type, record_id, details FROM audit_events "
                    "WHERE actor = :a ORDER BY id"
                ),
                {"a": actor},
            )
        )


async def test_one_audit_event_without_the_text(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    last = surname()
    born = birthday()
    number = phone()
    await post(
        client,
        police,
        **{"victim.last_name": last, "victim.date_of_birth": born, "victim.phone": number},
    )
    me = staff(uuid.uuid4(), frozenset({"hub"}), frozenset())
    queries = {last: "surname", f"Sam {last}": "name", born: "date_of_birth", number: "phone"}
    for query in queries:
        await search(sessions, query, me)
    with pytest.raises(SearchRefused):
        await search(sessions, "", me)  # refused before anything is read: not audited
    events = await _events(sessions, me.actor)
    assert [(e.action, e.record_type, e.record_id) for e in events] == [
        ("referrals.searched", "search", "referrals")
    ] * len(queries)
    assert [e.details for e in events] == [
        {"kind": kind, "results": 1} for kind in queries.values()
    ]
    everything = " ".join(str(tuple(e)) for e in events).lower()
    for query in queries:
        assert query.lower() not in everything
    assert last.lower() not in everything and number.replace(" ", "")[1:] not in everything


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "Enter a reference, name, date of birth, phone number or postcode to search for"),
        ("   \t \r\n", "Enter a reference, name, date of birth, phone number or postcode"),
        ("Tay\x00lor", "Search must only include letters, numbers, spaces and punctuation"),
        ("Taylor\x7f", "Search must only include letters, numbers, spaces and punctuation"),
        ("Tay\u0085lor", "Search must only include letters, numbers, spaces and punctuation"),
        ("Tay\ud800lor", "Search must only include letters, numbers, spaces and punctuation"),
        ("T" * 10_000, "Search must be 100 characters or fewer"),
        ("x" * 101, "Search must be 100 characters or fewer"),
        ("31/02/1990", "Date of birth must be a real date, like 02/04/1991"),
        ("1990-13-01", "Date of birth must be a real date"),
        ("%", "Enter at least 2 letters of a name"),
        ("%_", "Enter at least 2 letters of a name"),
        ("a", "Enter at least 2 letters of a name"),
        ("a b c d e f g", "Enter a name of 6 words or fewer"),
    ],
)
async def test_text_that_cannot_be_searched_is_refused_clearly(
    sessions: Any, query: str, message: str
) -> None:
    me = staff(uuid.uuid4(), frozenset({"hub"}), frozenset())
    with pytest.raises(SearchRefused) as refused:
        await search(sessions, query, me)
    assert refused.value.message.startswith(message)
    assert refused.value.field == "q"
    assert len(query.strip()) < 3 or query not in refused.value.message  # never repeated
    assert await _events(sessions, me.actor) == []


async def test_sql_and_like_characters_are_only_text(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    last = surname()
    mine = await post(client, police, **{"victim.last_name": last})
    # Were '%' or '_' wildcards, each of these would find it.
    for query in (
        f"%{last[2:]}",
        f"_{last[1:]}",
        f"{last[:3]}_{last[4:]}",
        f"{last[:2]}%{last[5:]}",
    ):
        results = await search(sessions, query)
        assert results.kind == "surname"
        assert mine["reference"] not in references(results), query
    # Typed into the prefix they are dropped with the other punctuation, never matched.
    assert references(await search(sessions, f"{last[:5]}%")) == {mine["reference"]}
    assert references(await search(sessions, f"{last[:5]}_")) == {mine["reference"]}
    for query in (
        "Robert'); DROP TABLE referrals;--",
        "' OR 1=1 --",
        "x' OR 'a'='a",
        "a\\' || pg_sleep(5) --",
        f"{last}):* | !'zz",
        f"{last} & !Jones | (x:*)",
        f"{last} <-> !zz",
    ):
        results = await search(sessions, query)
        assert results.rows == [], query
    async with sessions() as db:
        assert (await db.execute(text("SELECT count(*) FROM referrals"))).scalar_one() > 0


# Indexes ---------------------------------------------------------------------------------

BULK = 4000


@pytest.fixture(scope="module")
async def many_referrals(sessions: Any, owner_sessions: Any) -> AsyncIterator[None]:
    """A few thousand referrals of different people, then statistics, so the planner chooses
    as it would on a real table. Gone when the module is done."""
    async with sessions() as db:
        await db.execute(
            text(f"""
            INSERT INTO referrals (id, reference, source, status, received_at, content_hash,
                                   facts, referral_consent, priority, area)
            SELECT gen_random_uuid(), 'SRCH-' || lpad(g::text, 8, '0'), 'police', 'triaged',
                   now() - g * interval '1 hour', 'x',
                   jsonb_build_object('victim', jsonb_build_object(
                       'first_name', 'F' || substr(md5('f' || g), 1, 8),
                       'last_name', 'L' || substr(md5('l' || g), 1, 10),
                       'date_of_birth', (date '1940-01-01' + g * 7)::text,
                       'phone', '+4477009' || lpad(g::text, 5, '0'),
                       'address', jsonb_build_object(
                           'postcode', 'YY' || (g % 97) || ' ' || (g % 10) || 'AB'))),
                   'given', 'P3', 'unknown'
            FROM generate_series(1, {BULK}) g""")
        )
        await db.commit()
    async with owner_sessions() as db:
        await db.execute(text("ANALYZE referrals"))
        await db.commit()
    yield
    async with sessions() as db:
        await db.execute(text("DELETE FROM referrals WHERE reference LIKE 'SRCH-%'"))
        await db.commit()


async def _plan(sessions: Any, query: SearchQuery) -> str:
    """EXPLAIN of the statement the search runs, its parameters bound as the search binds
    them (a prepared statement on asyncpg: the planner sees the values)."""
    async with sessions() as db:
        connection = await db.connection()
        compiled = search_statement(HUB, query, 50).compile(dialect=connection.dialect)
        params = compiled.construct_params()
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        args = [params[name] for name in compiled.positiontup or ()]
        rows = await raw.fetch("EXPLAIN " + str(compiled), *args)
        return "\n".join(row[0] for row in rows)


@pytest.mark.parametrize(
    ("query", "index"),
    [
        (SearchQuery("surname", "Lc4c"), "ix_referrals_surname_received"),
        (SearchQuery("surname", "L'C4-c"), "ix_referrals_surname_received"),
        (
            SearchQuery("date_of_birth", "1950-01-05", date_of_birth=date(1950, 1, 5)),
            "ix_referrals_victim_dob",
        ),
        (SearchQuery("phone", "447700900123"), "ix_referrals_victim_phone_digits"),
        (SearchQuery("postcode", "YY55AB"), "ix_referrals_postcode_received"),
        (SearchQuery("postcode_district", "YY5"), "ix_referrals_postcode_received"),
        (SearchQuery("name", "fa lc", words=("fa", "lc")), "ix_referrals_victim_names"),
        (SearchQuery("external_ref", "46/123456/26"), "ix_referrals_external_ref"),
        (SearchQuery("reference", "KVR-26-000001"), "uq_referrals_reference"),
    ],
    ids=lambda value: value.kind if isinstance(value, SearchQuery) else "",
)
async def test_each_kind_of_search_uses_its_index(
    sessions: Any, many_referrals: None, query: SearchQuery, index: str
) -> None:
    plan = await _plan(sessions, query)
    assert index in plan, plan
    assert "Seq Scan on referrals" not in plan, plan


async def test_a_common_surname_prefix_is_newest_first_as_a_full_sort_would_give(
    sessions: Any,
) -> None:
    """The surname search reads each surname of the prefix newest first and merges: the
    same referrals in the same order as sorting every match, for several surnames sharing a
    prefix at interleaved times; a prefix with more surnames than a search reads says so."""
    stem = "Qx" + "".join(_rng.choice(string.ascii_lowercase) for _ in range(6))
    names = [stem, stem + "son", stem + "ers", stem[:-1]]
    async with sessions() as db:
        await db.execute(
            text("""
            INSERT INTO referrals (id, reference, source, status, received_at, content_hash,
                                   facts, referral_consent, priority, area)
            SELECT gen_random_uuid(), 'SURN-' || :stem || '-' || g, 'police', 'triaged',
                   now() - (g * 7 % 130) * interval '1 hour' - g * interval '1 second', 'x',
                   jsonb_build_object('victim', jsonb_build_object(
                       'first_name', 'A', 'last_name', (CAST(:names AS text[]))[1 + g % 4])),
                   'given', 'P3', 'unknown'
            FROM generate_series(1, 130) g"""),
            {"stem": stem, "names": names},
        )
        # 201 different surnames under one prefix: more than a search reads.
        wide = "Qw" + "".join(_rng.choice(string.ascii_lowercase) for _ in range(5))
        await db.execute(
            text("""
            INSERT INTO referrals (id, reference, source, status, received_at, content_hash,
                                   facts, referral_consent, priority, area)
            SELECT gen_random_uuid(), 'SURW-' || :wide || '-' || g, 'police', 'triaged',
                   now() - g * interval '1 minute', 'x',
                   jsonb_build_object('victim', jsonb_build_object(
                       'first_name', 'A',
                       'last_name', :wide || chr(97 + g / 26) || chr(97 + g % 26))),
                   'given', 'P3', 'unknown'
            FROM generate_series(1, 201) g"""),
            {"wide": wide},
        )
        await db.commit()
    try:
        for prefix in (stem, stem[:-1], stem + "s", stem.upper()):
            expected = [
                row[0]
                for row in (
                    await _rows(
                        sessions,
                        "SELECT reference FROM referrals WHERE victim_surname_key "
                        "LIKE lower(:p) || '%' ORDER BY received_at DESC, id DESC LIMIT 51",
                        p=prefix,
                    )
                )
            ]
            results = await search(sessions, prefix)
            assert results.kind == "surname"
            assert [row.reference for row in results.rows] == expected[:50], prefix
            assert results.more == (len(expected) > 50), prefix
            assert not results.partial
        assert len((await search(sessions, stem[:-1])).rows) == 50
        # The wide prefix: 201 surnames, more than the 200 a search reads. The hub sees 50 and
        # more; a caseworker who sees none of them is still told there may be more.
        wide_hub = await search(sessions, wide)
        assert len(wide_hub.rows) == 50 and wide_hub.more and wide_hub.partial
        wide_isva = await search(sessions, wide, ISVA_CASEWORKER)
        assert wide_isva.rows == [] and wide_isva.more and wide_isva.partial
        one = await search(sessions, wide + "ab")
        assert len(one.rows) == 1 and not one.more and not one.partial
    finally:
        async with sessions() as db:
            await db.execute(
                text(
                    "DELETE FROM referrals WHERE reference LIKE 'SURN-%' OR reference LIKE 'SURW-%'"
                )
            )
            await db.commit()


async def _rows(sessions: Any, sql: str, **params: Any) -> list[Any]:
    async with sessions() as db:
        return list((await db.execute(text(sql), params)).all())
