from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EXAMPLE = json.loads((Path(__file__).resolve().parents[2] / "example-referral.json").read_text())


async def test_create_again_and_conflict(client: Any, police: dict[str, str]) -> None:
    first = await client.post("/api/v1/referrals", json=EXAMPLE, headers=police)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["reference"].startswith("KVR-26-")
    assert body["triage"]["services"][0]["code"] == "domestic-abuse"
    again = await client.post("/api/v1/referrals", json=EXAMPLE, headers=police)
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]
    changed = dict(EXAMPLE, notes="something else")
    conflict = await client.post("/api/v1/referrals", json=changed, headers=police)
    assert conflict.status_code == 409
    assert f"PATCH /api/v1/referrals/{body['id']}" in conflict.json()["detail"]
