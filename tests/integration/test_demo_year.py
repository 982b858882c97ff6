"""The seed's headline figures reproduce (issue 13 point 6): `triage demo load --year-like
kent-2022` writes a past year of referrals, as history, through intake's row builders; the
annual core service report then shows the seed's percentages (within a point) from the data:
about 78% contacted, 91% satisfied, 90% would recommend, 89% helped to cope and recover."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

pytestmark = pytest.mark.integration


async def test_the_annual_core_service_report_shows_the_seeds_shape(
    servers: Any, sessions: Any, make_key: Any
) -> None:
    from db.pool import make_pool
    from triage.demo_history import load_year
    from triage.domain.periods import Period
    from triage.domain.principals import staff
    from triage.services import reports
    from triage.services.catalogues import current_catalogue

    name, _ = await make_key("police")
    catalogue = current_catalogue()
    pool = await make_pool(servers.database_url, 1)
    try:
        client_id = await pool.fetchval("SELECT id FROM api_clients WHERE name = $1", name)
        counts = await load_year(pool, catalogue, client_id, "police", "kent-2022", 0.006)
    finally:
        await pool.close()
    assert counts["referrals"] == round(103_650 * 0.006)
    lead = staff(uuid.uuid4(), frozenset({"duty_lead"}), frozenset())
    async with sessions() as db:
        report = await reports.build_report(
            db, lead, catalogue, "core", Period.financial_year(2022)
        )
    figures = {
        f["name"]: f["current"]["value"]
        for s in reports.as_json(report)["sections"]
        for f in s["figures"]
    }
    assert figures["contacted_percent"] == pytest.approx(78, abs=1)
    assert figures["positive:satisfaction"] == pytest.approx(91, abs=1)
    assert figures["positive:recommend"] == pytest.approx(90, abs=1)
    assert figures["positive:cope_recover"] == pytest.approx(89, abs=1)
    assert figures["received"] > 0 and figures["responses"] >= 30
    # History, not a live plan: nothing is left for the workers to send.
    async with sessions() as db:
        from sqlalchemy import text

        pending = await db.scalar(
            text("""SELECT count(*) FROM referrals r WHERE r.client_id = :c
                    AND (r.status <> 'closed' OR EXISTS (
                        SELECT 1 FROM contact_steps s WHERE s.referral_id = r.id)
                    OR EXISTS (SELECT 1 FROM messages m WHERE m.referral_id = r.id))"""),
            {"c": client_id},
        )
    assert pending == 0
