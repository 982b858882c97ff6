"""One statement writes a whole intake: the referrals (with their references from the year's
sequence), their decisions, cases, first contact steps, messages, alerts and audit events.

Rows travel as JSON arrays and are expanded by json_populate_recordset, so one referral and a
batch of a thousand take the same single round trip; children are inserted only for the
referrals that the unique index let in (ON CONFLICT DO NOTHING), in the same statement, so
nothing is ever half-written. Foreign keys are checked at the end of the statement.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import msgspec

from triage.services.referral_rows import RowSet

_REFERRAL_COLUMNS = (
    "id",
    "client_id",
    "external_ref",
    "source",
    "status",
    "received_at",
    "referred_at",
    "content_hash",
    "facts",
    "referral_consent",
    "priority",
    "contact_due_by",
    "area",
    "flags",
    "offence_category",
    "age_band",
    "enhanced_rights",
    "signposts",
    "created_at",
    "updated_at",
)
_CHILDREN = (
    (
        "triage_decisions",
        ("referral_id", "decided_at", "cause", "catalogue_version", "decision", "explanation"),
    ),
    ("cases", ("id", "referral_id", "service", "role", "status", "opened_at", "updated_at")),
    (
        "contact_steps",
        (
            "id",
            "referral_id",
            "priority",
            "number",
            "kind",
            "channel",
            "status",
            "due_at",
            "message_template",
            "message_channel",
            "closure_reason",
        ),
    ),
    (
        "messages",
        (
            "id",
            "referral_id",
            "contact_step_id",
            "purpose",
            "channel",
            "template",
            "status",
            "due_at",
        ),
    ),
    ("alerts", ("id", "referral_id", "kind", "status", "due_at")),
)


# Positional parameters, in this order (asyncpg).
_PARAMS = ("sequence", "prefix", "digits", "referrals", *(t for t, _ in _CHILDREN))


def _p(name: str) -> str:
    return f"${_PARAMS.index(name) + 1}::text"


def _statement() -> str:
    columns = ", ".join(_REFERRAL_COLUMNS)
    parts = [
        f"""
incoming AS (
    SELECT s.*, nextval(CAST({_p("sequence")} AS regclass)) AS number
    FROM json_populate_recordset(NULL::referrals, CAST({_p("referrals")} AS json)) AS s
), inserted AS (
    INSERT INTO referrals ({columns}, reference)
    SELECT {columns},
           {_p("prefix")} || lpad(number::text,
                greatest(CAST({_p("digits")} AS int), length(number::text)), '0')
    FROM incoming
    ON CONFLICT ON CONSTRAINT uq_referrals_client_external_ref DO NOTHING
    RETURNING id, reference, client_id
)"""
    ]
    for table, cols in _CHILDREN:
        listed = ", ".join(cols)
        picked = ", ".join(f"x.{c}" for c in cols)
        parts.append(f"""
{table}_written AS (
    INSERT INTO {table} ({listed})
    SELECT {picked}
    FROM json_populate_recordset(NULL::{table}, CAST({_p(table)} AS json)) AS x
    JOIN inserted ON inserted.id = x.referral_id
)""")
    parts.append("""
audit_written AS (
    INSERT INTO audit_events (actor, action, record_type, record_id)
    SELECT COALESCE('client:' || inserted.client_id::text, 'intake'),
           'referral.created', 'referral', inserted.id::text
    FROM inserted
)""")
    return "WITH " + ",".join(parts) + "\nSELECT id, reference FROM inserted"


WRITE_REFERRALS = _statement()


def _json(rows: list[dict[str, Any]]) -> str:
    return msgspec.json.encode(rows).decode()


async def write_referrals(
    connection: asyncpg.Connection,
    rows: RowSet,
    *,
    sequence: str,
    prefix: str,
    digits: int,
) -> dict[uuid.UUID, str]:
    """Insert everything in `rows`; the ids the unique index let in, with their references.
    The audit actor is the referral's API client."""
    if not rows.referrals:
        return {}
    values = {
        "sequence": sequence,
        "prefix": prefix,
        "digits": str(digits),
        "referrals": _json(rows.referrals),
        "triage_decisions": _json(rows.decisions),
        "cases": _json(rows.cases),
        "contact_steps": _json(rows.steps),
        "messages": _json(rows.messages),
        "alerts": _json(rows.alerts),
    }
    records = await connection.fetch(WRITE_REFERRALS, *(values[name] for name in _PARAMS))
    return {record[0]: record[1] for record in records}
