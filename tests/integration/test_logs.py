"""Structured access logs: one JSON line per request, with the request id the answer carries,
the path without its query string, the status and the time taken."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from helpers import bearer, referral


async def test_access_lines_carry_the_request_id(
    client: Any, make_key: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    _, key = await make_key("police")
    capfd.readouterr()
    created = await client.post("/api/v1/referrals", json=referral(), headers=bearer(key))
    searched = await client.get(
        "/api/v1/referrals", params={"external_ref": "46/999111/26"}, headers=bearer(key)
    )
    out, _ = capfd.readouterr()
    ids = [created.headers["x-request-id"], searched.headers["x-request-id"]]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert ids[0] != ids[1]
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    by_id = {line.get("request_id"): line for line in lines if line.get("event") == "request"}
    first, second = by_id[ids[0]], by_id[ids[1]]
    assert (first["method"], first["path"], first["status"]) == ("POST", "/api/v1/referrals", 201)
    assert (second["method"], second["path"], second["status"]) == ("GET", "/api/v1/referrals", 200)
    assert "999111" not in out
    for line in (first, second):
        assert line["level"] == "info"
        assert line["timestamp"].endswith("Z")
        assert isinstance(line["ms"], int | float)
