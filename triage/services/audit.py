"""The audit trail's seal: events chained into keyed digest rows, and the chain's check.

An event's `xact` is the id of the transaction that inserted it. Each seal (beat, every
minute) covers the events whose `xact` lies in [the previous digest's `xact_to`, xmin), xmin
being the oldest transaction still running when the seal looks
(`pg_snapshot_xmin(pg_current_snapshot())`): every transaction below it has committed or rolled
back, so no event can still join that range, and every event lands in exactly one digest
however long its transaction stayed open. Sealing by the event's time could not promise that:
`at` is its transaction's start, and a transaction open across a sealed minute commits into it.

    digest_n = HMAC-SHA-256(TRIAGE_AUDIT_KEY,
                            digest_{n-1} || "xact_from:xact_to\\n" || line_1 || ... || line_k)

with digest_0 sixty-four zeros and each line an event's canonical JSON (sorted keys, no
spaces; `details` only when present) and a newline, in id order. The key is not in the
database, so whoever can write the tables cannot recompute a digest after changing an event.
Removing the newest digests leaves a shorter chain that still verifies: the seal task logs the
head digest every minute, and `triage audit verify --head HEX` with the last one the logs show
finds that truncation.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from db import models

GENESIS = "0" * 64
SEAL_LOCK = 7265839  # one sealer at a time (pg_advisory_xact_lock)
PAGE = 1000  # digests read at a time by verify
TRUNCATED = "gap: the chain ends before the digest the logs show (its newest were removed)"


class AuditKeyMissing(RuntimeError):
    pass


def audit_key(value: str) -> bytes:
    """The digests' key, or AuditKeyMissing: nothing is sealed or verified without it."""
    if not value:
        raise AuditKeyMissing(
            "TRIAGE_AUDIT_KEY is not set: the audit digests are HMAC-SHA-256 under it. Keep it "
            "in the secret store with the other secrets, never in the database "
            "(deploy/OPERATIONS.md)."
        )
    return value.encode()


async def record_event(
    db: AsyncSession,
    actor: str,
    action: str,
    record_id: object,
    record_type: str = "referral",
    details: dict[str, Any] | None = None,
) -> None:
    """One audit event, in the caller's transaction (the table is append-only)."""
    await db.execute(
        insert(models.AuditEvent).values(
            actor=actor,
            action=action,
            record_type=record_type,
            record_id=str(record_id),
            details=details,
        )
    )


def canonical_line(row: Any) -> bytes:
    event = {
        "id": row.id,
        "at": row.at.astimezone(UTC).isoformat(),
        "xact": row.xact,
        "actor": row.actor,
        "action": row.action,
        "record_type": row.record_type,
        "record_id": row.record_id,
    }
    if row.details is not None:
        event["details"] = row.details
    return json.dumps(event, sort_keys=True, separators=(",", ":")).encode() + b"\n"


EVENTS_IN = text("""
    SELECT id, at, xact, actor, action, record_type, record_id, details FROM audit_events
    WHERE xact >= :xact_from AND xact < :xact_to ORDER BY id""")


async def _events(db: AsyncSession, xact_from: int, xact_to: int) -> AsyncIterator[Any]:
    result = await db.stream(
        EVENTS_IN,
        {"xact_from": xact_from, "xact_to": xact_to},
        execution_options={"yield_per": 5000},
    )
    async for row in result:
        yield row


async def chain_link(
    db: AsyncSession, key: bytes, previous: str, xact_from: int, xact_to: int
) -> tuple[str, int]:
    """The digest over `previous` and the events in [xact_from, xact_to), and their number."""
    mac = hmac.new(key, f"{previous}{xact_from}:{xact_to}\n".encode(), hashlib.sha256)
    count = 0
    async for row in _events(db, xact_from, xact_to):
        mac.update(canonical_line(row))
        count += 1
    return mac.hexdigest(), count


@dataclass(frozen=True)
class Head:
    """The newest digest."""

    id: int
    digest: str
    xact_from: int
    xact_to: int
    events: int
    sealed_at: datetime


@dataclass(frozen=True)
class SealReport:
    sealed: int  # events this seal covered (0: nothing new, no digest written)
    head: Head | None  # None: nothing sealed yet
    # Committed events above the head's range: a transaction older than them is still open,
    # or they arrived after the seal looked.
    unsealed: int
    xmin: int  # the oldest transaction open when the seal looked: the next range ends there

    @property
    def ids_went_back(self) -> bool:
        """The server's transaction ids are below the chain's end: the database was restored
        from a logical dump into a new server (a physical backup keeps the counter), or the
        digests were forged. Nothing can be sealed until the ids pass the head again."""
        return self.head is not None and self.xmin < self.head.xact_to

    def log_fields(self) -> dict[str, Any]:
        """The `audit_head` log line: what `triage audit verify --head` takes. Ids, counts and
        transaction ids only: the audit table holds no personal data."""
        head = self.head
        return {
            "digest": head.digest if head else GENESIS,
            "digest_id": head.id if head else None,
            "xact_from": head.xact_from if head else None,
            "xact_to": head.xact_to if head else None,
            "events": head.events if head else 0,
            "sealed_now": self.sealed,
            "unsealed": self.unsealed,
            "xmin": self.xmin,
        }


HEAD = text("""SELECT id, digest, xact_from, xact_to, events, sealed_at FROM audit_digests
               ORDER BY id DESC LIMIT 1""")


async def head_digest(db: AsyncSession) -> Head | None:
    row = (await db.execute(HEAD)).first()
    return Head(**row._asdict()) if row else None


async def seal(db: AsyncSession, key: bytes) -> SealReport:
    """Seal every event whose transaction has ended and that no digest covers yet, into one
    new digest (none when there are no such events). The caller's transaction is committed
    here; an advisory lock keeps two sealers from interleaving."""
    await db.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SEAL_LOCK})
    head = await head_digest(db)
    xact_from = head.xact_to if head else 0
    previous = head.digest if head else GENESIS
    # Every transaction below the snapshot's xmin has ended: that range can no longer grow.
    xmin = int(
        (await db.execute(text("SELECT pg_snapshot_xmin(pg_current_snapshot())"))).scalar_one()
    )
    sealed = 0
    if xmin > xact_from:
        digest, sealed = await chain_link(db, key, previous, xact_from, xmin)
        if sealed:
            row = (
                await db.execute(
                    text("""INSERT INTO audit_digests
                                (xact_from, xact_to, events, digest, previous)
                            VALUES (:f, :t, :n, :d, :p) RETURNING id, sealed_at"""),
                    {"f": xact_from, "t": xmin, "n": sealed, "d": digest, "p": previous},
                )
            ).one()
            head = Head(row.id, digest, xact_from, xmin, sealed, row.sealed_at)
    unsealed = (
        await db.execute(
            text("SELECT count(*) FROM audit_events WHERE xact >= :f"),
            {"f": head.xact_to if head else 0},
        )
    ).scalar_one()
    await db.commit()
    return SealReport(sealed, head, int(unsealed), xmin)


@dataclass(frozen=True)
class Verification:
    ok: bool
    digests: int  # digests that matched, in chain order, before any problem
    events: int
    problem: str | None = None


async def verify(db: AsyncSession, key: bytes, head: str | None = None) -> Verification:
    """Recompute the chain from the events: the first problem, if any. `head` is the newest
    digest the logs show: a chain without it has lost its newest digests."""
    previous, xact_from, digests, events = GENESIS, 0, 0, 0
    seen_head = head is None or head == GENESIS
    last_id = 0
    while True:
        page = (
            await db.execute(
                text("""SELECT id, sealed_at, xact_from, xact_to, events, digest, previous
                        FROM audit_digests WHERE id > :after ORDER BY id LIMIT :n"""),
                {"after": last_id, "n": PAGE},
            )
        ).all()
        if not page:
            break
        for row in page:
            where = f"digest {row.id} (sealed {row.sealed_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z)"
            if row.previous != previous or row.xact_from != xact_from:
                before = f"digest {last_id}" if digests else "the start of the chain"
                return Verification(
                    False,
                    digests,
                    events,
                    f"gap: {where} does not follow {before}: a digest between them was removed",
                )
            digest, count = await chain_link(db, key, previous, row.xact_from, row.xact_to)
            if count != row.events:
                return Verification(
                    False,
                    digests,
                    events,
                    f"{where} covers {count} events but sealed {row.events}: events in its "
                    "range were removed or added",
                )
            if not hmac.compare_digest(digest, row.digest):
                return Verification(
                    False,
                    digests,
                    events,
                    f"{where} does not match its events: an event in its range was changed, "
                    "or the digest was not made with this key",
                )
            seen_head = seen_head or row.digest == head
            previous, xact_from, last_id = row.digest, row.xact_to, row.id
            digests += 1
            events += count
    if not seen_head:
        return Verification(False, digests, events, TRUNCATED)
    return Verification(True, digests, events)


async def role_problems(db: AsyncSession) -> list[str]:
    """Why the connected role could rewrite the audit trail (it owns the audit tables, is a
    superuser or may update, delete or truncate them), if it could."""
    row = (
        await db.execute(
            text("""
            SELECT current_user AS role, bool_or(
                pg_has_role(c.relowner, 'USAGE')
                OR has_table_privilege(c.oid, 'UPDATE')
                OR has_table_privilege(c.oid, 'DELETE')
                OR has_table_privilege(c.oid, 'TRUNCATE')
                OR has_table_privilege(c.oid, 'TRIGGER')) AS can
            FROM pg_class c
            WHERE c.oid IN ('audit_events'::regclass, 'audit_digests'::regclass)""")
        )
    ).one()
    if not row.can:
        return []
    return [
        f"the role {row.role} could rewrite the audit trail (it owns the audit tables or may "
        "change them): run the application as its own role (deploy/OPERATIONS.md)"
    ]
