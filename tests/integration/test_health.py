"""Health, readiness, and the OpenAPI 3.1 document at /schema."""

from __future__ import annotations

from typing import Any


async def test_healthz_and_readyz(client: Any) -> None:
    health = await client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}


async def test_openapi_lists_the_api(client: Any) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    for path, method in [
        ("/api/v1/referrals", "post"),
        ("/api/v1/referrals", "get"),
        ("/api/v1/referrals/batch", "post"),
        ("/api/v1/referrals/{referral_id}", "get"),
        ("/api/v1/referrals/{referral_id}", "patch"),
        ("/api/v1/referrals/{referral_id}/withdraw", "post"),
        ("/api/v1/appropriate-adult-requests", "post"),
    ]:
        assert method in paths.get(path, {}), (path, method, sorted(paths))
    batch = paths["/api/v1/referrals/batch"]["post"]
    # The CSV columns are documented in the OpenAPI description (api.md).
    assert "text/csv" in batch["description"]
    assert "contact.safe_times" in batch["description"]
    assert "/healthz" not in paths


async def test_interactive_page(client: Any) -> None:
    response = await client.get("/schema")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
