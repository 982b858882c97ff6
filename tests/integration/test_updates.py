"""PATCH, withdraw and the decision history (lifecycle.md)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from sqlalchemy import text

EXAMPLE = json.loads((Path(__file__).resolve().parents[2] / "example-referral.json").read_text())


def _body(ref: str) -> dict[str, Any]:
    body = copy.deepcopy(EXAMPLE)
    body["external_ref"] = ref
    return body


async def test_patch_retriages_beside_old_decision(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    created = (await client.post("/api/v1/referrals", json=_body("UPD/1"), headers=police)).json()
    assert created["triage"]["priority"] == "P2"
    old_due = created["triage"]["contact_due_by"]
    patched = await client.patch(
        f"/api/v1/referrals/{created['id']}",
        json={"risk": {"level": "high"}, "needs": ["restorative_justice"]},
        headers=police,
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["triage"]["priority"] == "P1"
    assert body["triage"]["contact_due_by"] <= old_due  # never later
    assert "rj" in [c["service"] for c in body["cases"]]
    assert "marac_required" in body["triage"]["flags"]
    history = (
        await client.get(f"/api/v1/referrals/{created['id']}/decisions", headers=police)
    ).json()["items"]
    assert [d["cause"] for d in history] == ["intake", "update"]
    assert history[0]["triage"]["priority"] == "P2"
    # The updated content is now "the same": re-sending it is not a conflict.
    resend = _body("UPD/1")
    resend["risk"]["level"] = "high"
    resend["needs"] = ["restorative_justice"]
    again = await client.post("/api/v1/referrals", json=resend, headers=police)
    assert again.status_code == 200


async def test_patch_service_no_longer_matching_is_flagged_not_closed(
    client: Any, police: dict[str, str]
) -> None:
    created = (await client.post("/api/v1/referrals", json=_body("UPD/2"), headers=police)).json()
    patched = (
        await client.patch(
            f"/api/v1/referrals/{created['id']}",
            json={"offence": {"category": "burglary"}},
            headers=police,
        )
    ).json()
    stalking = next(c for c in patched["cases"] if c["service"] == "stalking")
    assert stalking["status"] == "awaiting_contact"
    assert "service_review" in patched["triage"]["flags"]


async def test_patch_refuses_identity_fields_and_bad_values(
    client: Any, police: dict[str, str]
) -> None:
    created = (await client.post("/api/v1/referrals", json=_body("UPD/3"), headers=police)).json()
    bad = await client.patch(
        f"/api/v1/referrals/{created['id']}",
        json={"external_ref": "other", "risk": {"level": "extreme"}},
        headers=police,
    )
    assert bad.status_code == 422
    assert [e["path"] for e in bad.json()["errors"]] == ["external_ref"]
    bad_value = await client.patch(
        f"/api/v1/referrals/{created['id']}", json={"risk": {"level": "extreme"}}, headers=police
    )
    assert bad_value.status_code == 422
    assert bad_value.json()["errors"][0]["path"] == "risk.level"


async def test_withdraw_cancels_pending_contact(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    created = (await client.post("/api/v1/referrals", json=_body("UPD/4"), headers=police)).json()
    answer = await client.post(
        f"/api/v1/referrals/{created['id']}/withdraw",
        json={"reason": "victim asked"},
        headers=police,
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "withdrawn"
    assert {c["closure_reason"] for c in body["cases"]} == {"withdrawn"}
    async with sessions() as db:
        steps = (
            await db.execute(
                text("SELECT status, skip_reason FROM contact_steps WHERE referral_id = :r"),
                {"r": created["id"]},
            )
        ).all()
        messages = (
            await db.execute(
                text("SELECT status FROM messages WHERE referral_id = :r"), {"r": created["id"]}
            )
        ).all()
    assert steps == [("skipped", "withdrawn")]
    assert messages and {m.status for m in messages} == {"cancelled"}
    twice = await client.post(
        f"/api/v1/referrals/{created['id']}/withdraw", json={"reason": "again"}, headers=police
    )
    assert twice.status_code == 200
    patch_after = await client.patch(
        f"/api/v1/referrals/{created['id']}", json={"needs": []}, headers=police
    )
    assert patch_after.status_code == 409


async def test_contact_consent_withdrawn_by_patch(
    client: Any, police: dict[str, str], sessions: Any
) -> None:
    created = (await client.post("/api/v1/referrals", json=_body("UPD/5"), headers=police)).json()
    patched = (
        await client.patch(
            f"/api/v1/referrals/{created['id']}",
            json={"consent": {"to_contact": False}},
            headers=police,
        )
    ).json()
    assert "no_contact_consent" in patched["triage"]["flags"]
    async with sessions() as db:
        open_steps = (
            await db.execute(
                text(
                    "SELECT count(*) FROM contact_steps WHERE referral_id = :r "
                    "AND status IN ('scheduled', 'due', 'paused')"
                ),
                {"r": created["id"]},
            )
        ).scalar()
    assert open_steps == 0


async def test_other_clients_cannot_patch(
    client: Any, police: dict[str, str], make_key: Any
) -> None:
    created = (await client.post("/api/v1/referrals", json=_body("UPD/6"), headers=police)).json()
    _, other = await make_key("police")
    answer = await client.patch(
        f"/api/v1/referrals/{created['id']}",
        json={"needs": []},
        headers={"Authorization": f"Bearer {other}"},
    )
    assert answer.status_code == 404


async def test_patch_drops_flags_that_no_longer_hold(client: Any, police: dict[str, str]) -> None:
    body = _body("UPD/7")
    body["victim"]["address"]["postcode"] = "SW1A 1AA"  # outside Kent: area_check
    created = (await client.post("/api/v1/referrals", json=body, headers=police)).json()
    assert "area_check" in created["triage"]["flags"]
    patched = await client.patch(
        f"/api/v1/referrals/{created['id']}",
        json={"victim": {"address": {"line1": "1 High Street", "postcode": "CT1 2AB"}}},
        headers=police,
    )
    assert patched.status_code == 200, patched.text
    assert "area_check" not in patched.json()["triage"]["flags"]
    assert patched.json()["triage"]["area"]["code"] == "east-kent"
