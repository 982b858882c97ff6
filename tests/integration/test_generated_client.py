"""A client generated from the served OpenAPI document by openapi-python-client sends api.md's
example referral and reads the typed answer.

The generator is a dev dependency (it caps httpx below 0.29: the dev venv has 0.28.1) and runs
offline from a local file. It is given the document without the batch's text/csv alternative:
it cannot express a second media type for a body and warns (a warning fails
--fail-on-warning). The generated package is written under the test's temporary folder,
imported from there, and talks to the in-process app through the session's test client.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import importlib
import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import EXAMPLE
from litestar.testing import transport

PACKAGE = "triage_client"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")


def client_document(document: dict[str, Any]) -> dict[str, Any]:
    """The document less the request media types other than JSON (the CSV batch)."""
    document = copy.deepcopy(document)
    for item in document["paths"].values():
        for operation in item.values():
            content = operation.get("requestBody", {}).get("content", {})
            for media in [m for m in content if m != "application/json"]:
                del content[media]
    return document


@pytest.fixture(scope="module")
async def generated(client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    served = await client.get("/schema/openapi.json")
    work = tmp_path_factory.mktemp("generated-client")
    (work / "openapi.json").write_text(json.dumps(client_document(served.json())))
    # The generator formats what it writes with ruff, found on PATH: the venv's.
    path = f"{GENERATOR.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    process = await asyncio.create_subprocess_exec(
        str(GENERATOR),
        "generate",
        "--path",
        "openapi.json",
        "--meta",
        "none",
        "--output-path",
        PACKAGE,
        "--overwrite",
        "--fail-on-warning",
        cwd=work,
        env={**os.environ, "PATH": path},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, output.decode()
    sys.path.insert(0, str(work))
    try:
        yield work
    finally:
        sys.path.remove(str(work))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _api(test_client: Any, key: str) -> Any:
    """A generated AuthenticatedClient that reaches the in-process app through the session's
    test client (whose thread runs the app and its pools). A client given its own httpx client
    sends that client's headers, not its token: the key goes in both."""
    client = importlib.import_module(PACKAGE).AuthenticatedClient
    http = httpx.AsyncClient(
        transport=transport.TestClientTransport(client=test_client),
        base_url=str(test_client.base_url),
        headers={"Authorization": f"Bearer {key}"},
    )
    api = client(base_url=str(test_client.base_url), token=key)
    api.set_async_httpx_client(http)
    return api


async def test_a_generated_client_sends_the_example_referral(
    generated: Path, client: Any, make_key: Any
) -> None:
    referrals = importlib.import_module(f"{PACKAGE}.api.referrals")
    models = importlib.import_module(f"{PACKAGE}.models")
    create_referral = importlib.import_module(f"{referrals.__name__}.create_referral")
    get_referral = importlib.import_module(f"{referrals.__name__}.get_referral")

    _, key = await make_key("police")
    api = _api(client, key)
    sent = copy.deepcopy(EXAMPLE)
    sent["external_ref"] = f"46/{uuid.uuid4().hex[:10]}/26"
    body = models.NewReferral.from_dict(sent)
    # The typed model carries the example exactly (nulls, `from`, dates) onto the wire; its
    # times as +00:00 rather than Z (the same instants).
    wire = body.to_dict()
    assert (wire["referred_at"], wire["consent"]["recorded_at"]) == (
        "2026-11-20T14:05:00+00:00",
        "2026-11-20T13:50:00+00:00",
    )
    wire["referred_at"], wire["consent"]["recorded_at"] = (
        "2026-11-20T14:05:00Z",
        "2026-11-20T13:50:00Z",
    )
    assert wire == sent
    assert body.contact.safe_times[0].from_ == "09:00"
    assert body.offence.occurred_on == datetime.date(2026, 11, 18)

    answer = await create_referral.asyncio_detailed(client=api, body=body)
    assert answer.status_code == 201, answer.content
    view = answer.parsed
    assert isinstance(view, models.Referral)
    assert view.external_ref == sent["external_ref"]
    assert isinstance(view.id, uuid.UUID)
    assert view.status == models.ReferralStatus.TRIAGED
    assert view.received_at.tzinfo is not None
    assert isinstance(view.triage, models.Triage)
    assert view.triage.priority == models.TriagePriority.P2
    assert [c.service for c in view.cases] == ["domestic-abuse", "stalking"]
    assert all(c.status == models.CaseStatus.AWAITING_CONTACT for c in view.cases)

    again = await create_referral.asyncio_detailed(client=api, body=body)
    assert again.status_code == 200 and again.parsed.id == view.id
    read = await get_referral.asyncio(client=api, referral_id=view.id)
    assert isinstance(read, models.Referral) and read.reference == view.reference

    sent["external_ref"] = f"46/{uuid.uuid4().hex[:10]}/26"
    sent["victim"]["date_of_birth"] = "2090-01-01"
    refused = await create_referral.asyncio_detailed(
        client=api, body=models.NewReferral.from_dict(sent)
    )
    assert refused.status_code == 422
    assert isinstance(refused.parsed, models.ProblemDetails)
    assert [e.path for e in refused.parsed.errors] == ["victim.date_of_birth"]
