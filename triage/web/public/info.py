"""The public pages that ask nothing: the two start pages, the accessibility statement, the
privacy notice and how to cover your tracks. No sign-in, no session, no personal data.

Every public page extends `public/layout.html`, which reads the exit URL and the hub's phone
number from the settings itself (through `request`): a handler only renders with
`triage.web.pages.render`, which sends the CSP nonce and `Cache-Control: no-store`."""

from __future__ import annotations

from litestar import Controller, HttpMethod, get, route
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template

from triage.web.pages import render


class InfoController(Controller):
    path = ""
    include_in_schema = False

    @get("/refer")
    async def start(self) -> Template:
        return render("public/start.html", title="Get support after a crime")

    @get("/refer/professional")
    async def start_professional(self) -> Template:
        return render(
            "public/start_professional.html",
            title="Refer someone for support after a crime",
            back_href="/refer",
        )

    @get("/accessibility")
    async def accessibility(self) -> Template:
        return render("public/accessibility.html", title="Accessibility statement")

    @get("/privacy")
    async def privacy(self) -> Template:
        return render("public/privacy.html", title="Privacy notice")

    @get("/cover-your-tracks")
    async def cover_your_tracks(self) -> Template:
        return render("public/cover_your_tracks.html", title="Cover your tracks online")


class PublicNotFoundController(Controller):
    """Any other address under /refer is the public 404 page, not the API's problem+json:
    routing's own 404 only sees the app's handlers, this route's error sees the router's.
    Routes with a fixed path (the journeys' pages) always win over this one."""

    path = "/refer"
    include_in_schema = False

    @route(
        "/{rest:path}",
        http_method=[
            HttpMethod.GET,
            HttpMethod.POST,
            HttpMethod.PUT,
            HttpMethod.PATCH,
            HttpMethod.DELETE,
        ],
        status_code=404,
    )
    async def not_found(self, rest: FromPath[str]) -> None:
        raise NotFoundException()
