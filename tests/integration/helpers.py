"""Shared helpers for the integration tests: bodies built from api.md's example, row counts."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

EXAMPLE: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "example-referral.json").read_text()
)
PROBLEM = "application/problem+json"


def referral(**changes: Any) -> dict[str, Any]:
    """api.md's example body with a fresh external_ref; `changes` are dotted paths -> values
    (a value of DELETE removes the field)."""
    body = copy.deepcopy(EXAMPLE)
    body["external_ref"] = f"46/{uuid.uuid4().hex[:10]}/26"
    for dotted, value in changes.items():
        set_path(body, dotted, value)
    return body


DELETE = object()


def set_path(body: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    target = body
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    if value is DELETE:
        target.pop(parts[-1], None)
    else:
        target[parts[-1]] = value


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def whole(instant: datetime) -> datetime:
    """Answers give times to the second: compare stored times at that precision."""
    return instant.replace(microsecond=0)


def parse_z(value: str) -> datetime:
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def scalar(sessions: Any, sql: str, **params: Any) -> Any:
    async with sessions() as db:
        return (await db.execute(text(sql), params)).scalar()


async def rows(sessions: Any, sql: str, **params: Any) -> list[Any]:
    async with sessions() as db:
        return list(await db.execute(text(sql), params))


async def referral_count(sessions: Any, client_name: str) -> int:
    """How many referrals the client has (the proof that a refused request wrote nothing)."""
    return int(
        await scalar(
            sessions,
            "SELECT count(*) FROM referrals r JOIN api_clients c ON c.id = r.client_id "
            "WHERE c.name = :name",
            name=client_name,
        )
    )


# What written_for_client finds for a client whose referrals were all refused.
NOTHING_WRITTEN = {
    "referrals": 0,
    "triage_decisions": 0,
    "cases": 0,
    "contact_steps": 0,
    "messages": 0,
    "alerts": 0,
}


async def written_for_client(sessions: Any, client_name: str) -> dict[str, int]:
    """Rows of every table a referral writes, for the client's referrals."""
    counts = {}
    for table in ("triage_decisions", "cases", "contact_steps", "messages", "alerts"):
        counts[table] = int(
            await scalar(
                sessions,
                f"SELECT count(*) FROM {table} t JOIN referrals r ON r.id = t.referral_id "
                "JOIN api_clients c ON c.id = r.client_id WHERE c.name = :name",
                name=client_name,
            )
        )
    counts["referrals"] = await referral_count(sessions, client_name)
    return counts


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """An RFC 9457 answer with `errors[{path, message}]`; returns the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == PROBLEM, response.headers
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://triage.example/problems/")
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["errors"], list)
    for error in body["errors"]:
        assert set(error) == {"path", "message"}, error
    return body  # type: ignore[no-any-return]


def paths(body: dict[str, Any]) -> list[str]:
    return [e["path"] for e in body["errors"]]


def assert_no_echo(text_sent: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret.lower() not in text_sent.lower(), f"{secret!r} was repeated"
