"""Serve the built front-end assets: triage/web/static at /static (the GOV.UK and MoJ CSS and
JS) and triage/web/static/assets at /assets (fonts, images and manifest.json, where both
packages' CSS and the GOV.UK page template look for them).

`make assets` builds the folder (npm ci, then triage/web/build_assets.py); it is not in git.

The file names carry no hash, so a page links its CSS and JS with `?v={{ asset_version }}`
(`asset_version()` below): an upgrade then reaches browsers that cached the old files for the
long max-age. The fonts' names already carry a hash; the images' do not (they rarely change).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

STATIC = Path(__file__).resolve().parent / "static"

# What a page needs: if any is missing the folder was never built (or half deleted).
REQUIRED = (
    "govuk-frontend.min.css",
    "govuk-frontend.min.js",
    "moj-frontend.min.css",
    "moj-frontend.min.js",
    "app.css",
    "build.json",
    "assets/fonts",
    "assets/images",
    "assets/manifest.json",
)

ONE_YEAR = 365 * 24 * 60 * 60


class AssetsNotBuilt(RuntimeError):
    pass


def check_built(static: Path = STATIC) -> None:
    missing = [name for name in REQUIRED if not (static / name).exists()]
    if missing:
        raise AssetsNotBuilt(
            f"the front-end assets are not built ({static} lacks {', '.join(missing)}): "
            "run `make assets` (npm ci, then python -m triage.web.build_assets)"
        )


def static_routes(static: Path = STATIC, max_age: int = ONE_YEAR) -> list[Router]:
    """The two routers to add to the app's route_handlers. Raises AssetsNotBuilt at start-up
    rather than serving pages whose CSS is a 404."""
    check_built(static)
    cache_control = CacheControlHeader(public=True, max_age=max_age)
    return [
        create_static_files_router(
            path="/static",
            directories=[static],
            name="static",
            cache_control=cache_control,
            include_in_schema=False,
        ),
        create_static_files_router(
            path="/assets",
            directories=[static / "assets"],
            name="assets",
            cache_control=cache_control,
            include_in_schema=False,
        ),
    ]


@cache
def asset_version(static: Path = STATIC) -> str:
    """A short hash of the built CSS and JS, for `?v=` on their links."""
    check_built(static)
    info = json.loads((static / "build.json").read_text(encoding="utf-8"))
    return str(info["version"])
