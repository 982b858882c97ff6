"""/dev/outbox: what the outbox notifier "sent", for `triage dev` only (registered only in dev
mode, and answering only to the machine itself)."""

from __future__ import annotations

import html
from typing import Any

from litestar import Request, Response, get
from sqlalchemy import select

from db import models
from triage.api.dependencies import Db
from triage.domain.decision import iso_z

LOCAL = {"127.0.0.1", "::1", "localhost", "testclient"}


@get("/dev/outbox", include_in_schema=False)
async def dev_outbox(request: Request[Any, Any, Any], db: Db) -> Response[str]:
    client = request.client.host if request.client else ""
    if request.app.state.settings.is_production or client not in LOCAL:
        return Response("Not found", status_code=404, media_type="text/plain")
    rows = (
        (
            await db.execute(
                select(models.OutboxEntry).order_by(models.OutboxEntry.id.desc()).limit(200)
            )
        )
        .scalars()
        .all()
    )
    cells = "".join(
        "<tr class='govuk-table__row'>"
        + "".join(
            f"<td class='govuk-table__cell'>{html.escape(str(v))}</td>"
            for v in (iso_z(r.sent_at), r.channel, r.template, r.recipient, r.body, r.reference)
        )
        + "</tr>"
        for r in rows
    )
    page = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta name="robots" content="noindex"><title>Outbox (dev) - triage</title></head>
<body><main><h1>Outbox (dev only)</h1>
<p>Messages the outbox notifier recorded, newest first. Nothing here reached anyone.</p>
<table class="govuk-table"><thead><tr><th scope="col">Sent (UTC)</th><th scope="col">Channel</th>
<th scope="col">Template</th><th scope="col">To</th><th scope="col">Text</th>
<th scope="col">Reference</th></tr></thead><tbody>{cells}</tbody></table></main></body></html>"""
    return Response(page, media_type="text/html")
