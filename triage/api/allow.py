"""`Allow` on OPTIONS answers: every method of the path.

Litestar 2 answers OPTIONS with the methods of the route as it stood when the path's first
handler was registered (litestar-org/litestar#4169, fixed only in 3): GET and POST on
/api/v1/referrals answered `Allow: OPTIONS, POST`. Its 405 answers are right (their `Allow`
comes from the routing trie, and problems.on_http passes it on). This `before_send` hook
rewrites `Allow` on OPTIONS answers from the app's final routes; any other answer costs it one
comparison.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from litestar import Litestar
from litestar.routes import HTTPRoute


@lru_cache(maxsize=8)  # one app in production; the tests make a few
def _allow_by_path(app: Litestar) -> dict[str, bytes]:
    return {
        route.path_format: ", ".join(sorted(route.methods)).encode()
        for route in app.routes
        if isinstance(route, HTTPRoute)
    }


async def allow_every_method(message: Any, scope: Any) -> None:
    if scope.get("method") != "OPTIONS" or message["type"] != "http.response.start":
        return
    allow = _allow_by_path(scope["litestar_app"]).get(scope.get("path_template", ""))
    if allow is None:
        return
    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
    message["headers"] = [*headers, (b"allow", allow)]
