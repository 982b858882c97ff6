"""Referral intake: validate -> triage -> write everything in one transaction -> wake workers.

Idempotency is by (client, external_ref), enforced by a unique index: the same content again
is `existing`, different content is `conflict`. A batch is validated and triaged in chunks that
yield to the event loop, then written in one transaction; single referrals share statements
with those arriving at the same time (group_writes).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from db.pool import connection
from triage.domain.catalogue import Catalogue
from triage.domain.checker import clean_text
from triage.domain.decision import Decision
from triage.domain.engine import triage
from triage.domain.json_input import nesting_depth_over
from triage.domain.policy import require
from triage.domain.principals import Principal
from triage.domain.problems import InvalidInput, Problem, Unreadable
from triage.domain.referral import Referral
from triage.domain.validation import consent_given, validate_referral
from triage.services import referral_views
from triage.services.group_writes import GroupWriter, Numbering
from triage.services.references import ready_to_number, reference_stem, sequence_name
from triage.services.referral_rows import RowSet, add_referral_rows
from triage.services.referral_writes import write_referrals
from triage.services.wakeups import wake_workers

# A batch item larger than this is no referral (its free text is at most 14,000 characters,
# under 100 KB however it is escaped): refused before it is decoded, so that one item of
# millions of tiny values costs neither memory nor the event loop's time.
MAX_ITEM_BYTES = 256 * 1024
WRITE_CHUNK = 50  # referrals validated, triaged and written together in a batch
CHUNK = 10  # referrals validated and triaged between two yields to the event loop
BATCH_LOCK_TIMEOUT = "25s"  # under the pool's statement timeout (db.pool)
_singles_in_flight = 0  # single referrals being taken by this process now


@dataclass
class ItemResult:
    index: int
    status: str  # created | existing | invalid | conflict
    id: uuid.UUID | None = None
    reference: str | None = None
    errors: list[Problem] | None = None
    view: dict[str, Any] | None = None  # the API's referral object, for a single created one
    body: Any = None  # an invalid item's body (raw when it came raw): it may be a resend


@dataclass(frozen=True)
class _Client:
    """The API client a referral is taken for: its id goes on the rows (idempotency is per
    client), its source to the engine. Made once per request from the principal."""

    client_id: uuid.UUID
    source: str


def _client_of(principal: Principal) -> _Client:
    """The policy's check, then the client: only an API client (a key's, or the intake
    client a person takes a referral through) submits referrals."""
    require(principal, "referral.create")
    if principal.kind != "client" or principal.source is None:
        raise ValueError("referrals are taken through an API client")
    return _Client(principal.uuid, principal.source)


@dataclass
class _Prepared:
    index: int
    referral: Referral
    decision: Decision
    content_hash: str
    consent_given: bool


async def submit_referral(
    writer: GroupWriter, principal: Principal, body: Any, catalogue: Catalogue
) -> ItemResult:
    """One referral; raises InvalidInput with every problem when the body breaks the rules.

    Its rows are one statement, atomic on its own, shared with the other referrals arriving
    at the same time (group_writes); a resend is found by the unique index, not a read first.
    """
    global _singles_in_flight
    _singles_in_flight += 1
    try:
        return await _submit_single(writer, _client_of(principal), body, catalogue)
    finally:
        _singles_in_flight -= 1


async def _submit_single(
    writer: GroupWriter, client: _Client, body: Any, catalogue: Catalogue
) -> ItemResult:
    now = await _ready(writer.pool, catalogue)
    try:
        item = _prepare_valid(body, 0, client, now, catalogue, prefix="")
    except InvalidInput:
        async with connection(writer.pool) as db:
            resent = await _resends_of_accepted(db, client, {0: body}, catalogue)
        if 0 in resent:
            return resent[0]
        raise
    referral = item.referral
    rows, _ = _rows([item], client, now)
    won = await writer.write(rows, _numbering(catalogue, now))
    if won:
        ((referral_id, reference),) = won.items()
        wake_workers()  # after the commit only: a wake-up never points at a rolled-back row
        return ItemResult(
            0, "created", referral_id, reference, view=_view(rows, referral_id, reference)
        )
    # Another request took this external_ref first: theirs stands.
    async with connection(writer.pool) as db:
        existing = await _existing(db, client.client_id, [referral.external_ref])
    return _against_existing(item, existing[referral.external_ref])


async def submit_for_person(
    pool: asyncpg.Pool,
    person: Principal,
    channel: Principal,
    body: Any,
    catalogue: Catalogue,
    *,
    extra_flags: Sequence[str] = (),
) -> ItemResult:
    """One referral taken by a person (hub staff on the phone, later the public forms): the
    same validation, triage and rows as the API's, in one transaction that also records who
    took it. InvalidInput with every problem; `existing` for a form sent twice (the form's
    own external_ref). `channel` is the intake client the person takes it through (its
    source goes to the engine, its id on the row); the audit event names the person."""
    require(person, "referral.create")
    client = _client_of(channel)
    now = await _ready(pool, catalogue)
    item = _prepare_valid(body, 0, client, now, catalogue, prefix="")
    async with connection(pool) as db, db.transaction():
        existing, created = await _write(db, client, [item], now, catalogue)
        ref = item.referral.external_ref
        if ref not in created:
            return _against_existing(item, existing[ref])
        referral_id, reference = created[ref]
        await db.execute(
            "INSERT INTO audit_events (actor, action, record_type, record_id) "
            "VALUES ($1, 'referral.taken', 'referral', $2)",
            person.actor,
            str(referral_id),
        )
        if extra_flags:
            # What the form saw and the rules cannot (a honeypot filled in): for a person to
            # look at, written with the referral.
            await db.execute(
                "UPDATE referrals SET flags = ARRAY(SELECT DISTINCT unnest(flags || $2::text[])) "
                "WHERE id = $1",
                referral_id,
                list(extra_flags),
            )
    wake_workers()  # after the commit only
    return ItemResult(0, "created", referral_id, reference)


async def submit_batch(
    pool: asyncpg.Pool,
    principal: Principal,
    bodies: Sequence[Any],
    catalogue: Catalogue,
) -> list[ItemResult]:
    """Up to 10,000 referrals, validated and triaged in chunks that yield to the event loop,
    written in one transaction; each item `created`, `existing`, `invalid` or `conflict`.
    An item may still be undecoded JSON (msgspec.Raw): it is decoded with its chunk."""
    client = _client_of(principal)
    now = await _ready(pool, catalogue)
    results: list[ItemResult | None] = [None] * len(bodies)
    # external_ref -> (id, reference, content hash stored) once its first occurrence is
    # settled; later occurrences in the batch are compared with that.
    settled: dict[str, tuple[uuid.UUID, str, str]] = {}
    seen: set[str] = set()
    duplicates: list[_Prepared] = []

    def settle(written: _Written, fresh: list[_Prepared]) -> None:
        existing, created = written
        for item in fresh:
            ref = item.referral.external_ref
            if ref in created:
                referral_id, reference = created[ref]
                results[item.index] = ItemResult(item.index, "created", referral_id, reference)
                settled[ref] = (referral_id, reference, item.content_hash)
            else:
                results[item.index] = _against_existing(item, existing[ref])
                settled[ref] = existing[ref]

    # Validated, triaged and written a slice at a time inside the one transaction, so only a
    # few slices' objects are alive at once (a 10,000-item batch would otherwise keep
    # hundreds of thousands of objects, and the garbage collector's passes over them hold
    # the event loop). The next slice is validated while the last one is being written.
    started = time.perf_counter()
    async with connection(pool) as db, db.transaction():
        # A batch may wait for rows another batch holds (the same external_refs) longer
        # than a single referral's statement is let to.
        await db.execute(f"SET LOCAL lock_timeout = '{BATCH_LOCK_TIMEOUT}'")
        writing: asyncio.Task[_Written] | None = None
        written_items: list[_Prepared] = []
        try:
            for start in range(0, len(bodies), WRITE_CHUNK):
                fresh: list[_Prepared] = []
                for index in range(start, min(start + WRITE_CHUNK, len(bodies))):
                    if index % CHUNK == 0:
                        await _give_way(started)
                        started = time.perf_counter()
                    item = _prepare(bodies[index], index, client, now, catalogue)
                    if isinstance(item, ItemResult):
                        results[index] = item
                    elif item.referral.external_ref in seen:
                        duplicates.append(item)
                    else:
                        seen.add(item.referral.external_ref)
                        fresh.append(item)
                if writing is not None:
                    settle(await writing, written_items)
                writing = asyncio.create_task(_write(db, client, fresh, now, catalogue))
                written_items = fresh
            if writing is not None:
                settle(await writing, written_items)
        finally:
            # Never leave the transaction with a statement still running on its connection.
            if writing is not None and not writing.done():
                writing.cancel()
                with contextlib.suppress(BaseException):
                    await writing
            elif writing is not None and not writing.cancelled():
                writing.exception()  # taken here: the error that ended the batch is raised
    for item in duplicates:
        results[item.index] = _against_existing(item, settled[item.referral.external_ref])
    invalid = {
        r.index: r.body for r in results if r is not None and r.status == "invalid" and r.body
    }
    if invalid:
        async with connection(pool) as db:
            for index, resent in (
                await _resends_of_accepted(db, client, invalid, catalogue)
            ).items():
                results[index] = resent
    if any(r is not None and r.status == "created" for r in results):
        wake_workers()  # after the commit only: a wake-up never points at a rolled-back row
    return [r for r in results if r is not None]


async def _give_way(started: float) -> None:
    """Between two chunks of a batch: while single referrals are being taken, wait twice as
    long as the chunk took, so a batch uses at most a third of the process and a single
    referral is never stuck behind it; otherwise only let the loop turn."""
    if _singles_in_flight:
        await asyncio.sleep(min(2 * (time.perf_counter() - started), 0.05))
    else:
        await asyncio.sleep(0)


def _prepare(
    body: Any, index: int, client: _Client, now: datetime, catalogue: Catalogue
) -> _Prepared | ItemResult:
    """One batch item validated and triaged, or its `invalid` result."""
    if isinstance(body, Unreadable):
        return ItemResult(index, "invalid", errors=list(body.problems))
    kept = body  # what an invalid item keeps: the raw slice of the body costs nothing
    if isinstance(body, msgspec.Raw):  # left undecoded by the API until now
        if len(body) > MAX_ITEM_BYTES:
            return ItemResult(
                index,
                "invalid",
                errors=[Problem(f"referrals[{index}]", "is larger than any referral can be")],
            )
        if nesting_depth_over(body):
            return ItemResult(
                index, "invalid", errors=[Problem(f"referrals[{index}]", "is nested too deeply")]
            )
        body = msgspec.json.decode(body)
    try:
        return _prepare_valid(body, index, client, now, catalogue, prefix=f"referrals[{index}]")
    except InvalidInput as invalid:
        return ItemResult(index, "invalid", errors=invalid.problems, body=kept)


class _ExternalRef(msgspec.Struct):
    """Only an item's external_ref, read without building the rest of it."""

    external_ref: Any = None


def _external_ref(body: Any) -> Any:
    if isinstance(body, msgspec.Raw):
        try:
            return msgspec.json.decode(body, type=_ExternalRef).external_ref
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
    return body.get("external_ref") if isinstance(body, dict) else None


def _prepare_valid(
    body: Any, index: int, client: _Client, now: datetime, catalogue: Catalogue, prefix: str
) -> _Prepared:
    """A body validated and triaged; InvalidInput with every problem (paths under `prefix`)."""
    referral = validate_referral(body, client.source, now, catalogue, prefix=prefix)
    return _Prepared(
        index,
        referral,
        triage(referral, client.source, now, catalogue),
        referral.content_hash(),
        consent_given(body, client.source),
    )


async def _resends_of_accepted(
    db: asyncpg.Connection, client: _Client, bodies: dict[int, Any], catalogue: Catalogue
) -> dict[int, ItemResult]:
    """Of bodies that are invalid now, those that are resends of referrals already accepted:
    validated as they were when first received (an age given beside a date of birth no longer
    matches it after the victim's birthday), with the same content. A resend answers 200
    whenever it comes; anything else stays invalid."""
    refs: dict[int, str] = {}
    for index, body in bodies.items():
        ref = _external_ref(body)
        if isinstance(ref, str) and ref.strip() and clean_text(ref) is not None:
            refs[index] = ref.strip()
    if not refs:
        return {}
    rows = await db.fetch(
        "SELECT external_ref, id, reference, content_hash, received_at FROM referrals "
        "WHERE client_id = $1 AND external_ref = ANY($2::text[])",
        client.client_id,
        sorted(set(refs.values())),
    )
    accepted = {r[0]: r for r in rows}
    found: dict[int, ItemResult] = {}
    for index, ref in refs.items():
        row = accepted.get(ref)
        if row is None:
            continue
        body = bodies[index]
        try:
            if isinstance(body, msgspec.Raw):
                body = msgspec.json.decode(body)
            then = validate_referral(body, client.source, row[4], catalogue)
        except InvalidInput:
            continue
        if then.content_hash() == row[3]:
            found[index] = ItemResult(index, "existing", row[1], row[2])
    return found


async def _ready(pool: asyncpg.Pool, catalogue: Catalogue) -> datetime:
    victim = catalogue.reference_prefixes["victim"]
    return await ready_to_number(lambda: connection(pool), catalogue, victim)


def _numbering(catalogue: Catalogue, now: datetime) -> Numbering:
    prefix = catalogue.reference_prefixes["victim"]
    return Numbering(
        sequence_name(prefix, now), reference_stem(prefix, now), catalogue.reference_min_digits
    )


def _rows(
    items: Sequence[_Prepared], client: _Client, now: datetime
) -> tuple[RowSet, dict[uuid.UUID, _Prepared]]:
    rows = RowSet()
    ids: dict[uuid.UUID, _Prepared] = {}
    for item in items:
        referral_id = uuid.uuid4()
        ids[referral_id] = item
        add_referral_rows(
            rows,
            referral_id=referral_id,
            client_id=client.client_id,
            source=client.source,
            referral=item.referral,
            content_hash=item.content_hash,
            consent_given=item.consent_given,
            decision=item.decision,
            received_at=now,
        )
    return rows, ids


# (referrals met by external_ref, those created with their references), by external_ref
_Written = tuple[dict[str, tuple[uuid.UUID, str, str]], dict[str, tuple[uuid.UUID, str]]]


async def _write(
    db: asyncpg.Connection,
    client: _Client,
    prepared: list[_Prepared],
    now: datetime,
    catalogue: Catalogue,
) -> _Written:
    """One slice of a batch: (referrals met by external_ref, those created with their
    references)."""
    if not prepared:
        return {}, {}
    existing = await _existing(db, client.client_id, [i.referral.external_ref for i in prepared])
    fresh = [item for item in prepared if item.referral.external_ref not in existing]
    numbering = _numbering(catalogue, now)
    rows, ids = RowSet(), {}
    for start in range(0, len(fresh), CHUNK):
        started = time.perf_counter()
        chunk_rows, chunk_ids = _rows(fresh[start : start + CHUNK], client, now)
        rows.extend(chunk_rows)
        ids.update(chunk_ids)
        await _give_way(started)
    started = time.perf_counter()
    won = await write_referrals(
        db,
        rows,
        sequence=numbering.sequence,
        prefix=numbering.prefix,
        digits=numbering.digits,
    )
    await _give_way(started)  # the database's share too: its statement took this long
    lost = [item.referral.external_ref for i, item in ids.items() if i not in won]
    if lost:
        # A concurrent request took these external_refs first: theirs stand.
        existing.update(await _existing(db, client.client_id, lost))
    created = {ids[i].referral.external_ref: (i, ref) for i, ref in won.items()}
    return existing, created


def _view(rows: RowSet, referral_id: uuid.UUID, reference: str) -> dict[str, Any]:
    """The created referral's API object from the rows just written (no read back)."""
    referral = next(r for r in rows.referrals if r["id"] == referral_id)
    decision = next(d for d in rows.decisions if d["referral_id"] == referral_id)
    cases = [
        referral_views.case_view(c["service"], c["role"], c["status"], None, None, None)
        for c in rows.cases
        if c["referral_id"] == referral_id
    ]
    return referral_views.referral_view(
        referral_id,
        reference,
        referral["external_ref"],
        referral["status"],
        referral["received_at"],
        referral["updated_at"],
        decision["decision"],
        cases,
    )


def _against_existing(item: _Prepared, record: tuple[uuid.UUID, str, str]) -> ItemResult:
    referral_id, reference, content_hash = record
    status = "existing" if content_hash == item.content_hash else "conflict"
    return ItemResult(item.index, status, referral_id, reference)


async def _existing(
    db: asyncpg.Connection, client_id: uuid.UUID, external_refs: list[str]
) -> dict[str, tuple[uuid.UUID, str, str]]:
    if not external_refs:
        return {}
    rows = await db.fetch(
        "SELECT external_ref, id, reference, content_hash FROM referrals "
        "WHERE client_id = $1 AND external_ref = ANY($2::text[])",
        client_id,
        external_refs,
    )
    return {r[0]: (r[1], r[2], r[3]) for r in rows}
