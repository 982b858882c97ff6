"""Rendering a page: every page goes through `render`, which gives it a fresh CSP nonce and the
headers every page carries (a strict Content-Security-Policy, no caching of personal data,
no framing, no referrer)."""

from __future__ import annotations

import secrets
from typing import Any

from litestar import MediaType
from litestar.response import Template


def security_headers(nonce: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": (
            "default-src 'self'; "
            f"script-src 'self' 'nonce-{nonce}'; "
            "style-src 'self'; img-src 'self' data:; font-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        ),
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def render(
    template: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    cookies: list[Any] | None = None,
    **context: Any,
) -> Template:
    nonce = secrets.token_urlsafe(16)
    return Template(
        template_name=template,
        context={"csp_nonce": nonce, **context},
        status_code=status,
        headers={**security_headers(nonce), **(headers or {})},
        cookies=cookies or [],
        media_type=MediaType.HTML,
    )
