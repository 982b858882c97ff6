"""The public pages that ask nothing (issue 11): the two start pages, the accessibility
statement, the privacy notice and how to cover your tracks. Each is a GOV.UK page with the
strict CSP and `Cache-Control: no-store`, an "Exit this page" link to the configured neutral
site that works as a plain link (no JavaScript needed), and footer links to the others; an
error under /refer is the public GOV.UK error page, with the same headers."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from staff_support import soup

pytestmark = pytest.mark.integration

PAGES = {
    "/refer": "Get support after a crime",
    "/refer/professional": "Refer someone for support after a crime",
    "/accessibility": "Accessibility statement",
    "/privacy": "Privacy notice",
    "/cover-your-tracks": "Cover your tracks online",
}
NEUTRAL = "https://neutral.example.test/weather?x=1&y=2"
PHONE = "0306 999 0456"


@pytest.fixture(scope="module")
async def public(servers: Any) -> AsyncIterator[AsyncTestClient[Any]]:
    """The real app with the exit URL and the hub's phone number set, as in production."""
    from triage.app import create_app
    from triage.settings import get_settings

    settings = dataclasses.replace(get_settings(), exit_url=NEUTRAL, hub_phone=PHONE)
    async with AsyncTestClient(app=create_app(settings), base_url="https://x.test") as client:
        yield client


def _exit_link(html: Any) -> Any:
    [wrapper] = html.select('div.govuk-exit-this-page[data-module="govuk-exit-this-page"]')
    [link] = wrapper.find_all("a")
    assert "govuk-js-exit-this-page-button" in link["class"]
    assert link["rel"] == ["nofollow", "noreferrer"]
    return link


def _assert_public_headers(response: Any) -> None:
    assert response.headers["cache-control"] == "no-store"
    policy = response.headers["content-security-policy"]
    assert "script-src 'self' 'nonce-" in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize(("path", "heading"), PAGES.items())
async def test_every_public_page_is_a_safe_gov_uk_page(
    public: Any, path: str, heading: str
) -> None:
    response = await public.get(path)
    assert response.status_code == 200, response.text
    _assert_public_headers(response)
    html = soup(response.text)
    assert html.find("h1").get_text(strip=True) == heading
    assert html.title.get_text() == f"{heading} – Get support after a crime"
    # Exit this page: a plain link (so it works without JavaScript) through /refer/exit, which
    # ends the form and goes on to the configured neutral site; before the main content.
    link = _exit_link(html)
    assert link["href"] == "/refer/exit"
    leaving = await public.get("/refer/exit", follow_redirects=False)
    assert leaving.status_code in (302, 303) and leaving.headers["location"] == NEUTRAL
    assert "Exit this page" in link.get_text()
    assert link.find_parent("main") is None
    # Every script is one of ours with this response's nonce (GOV.UK Frontend's initAll
    # and the body class that turns its JavaScript on).
    nonce = response.headers["content-security-policy"].split("'nonce-")[1].split("'")[0]
    scripts = html.find_all("script")
    assert scripts and all(script.get("nonce") == nonce for script in scripts)
    assert any("initAll()" in script.get_text() for script in scripts)
    # The service's name goes to the start page; no staff link anywhere.
    assert html.select_one("a.govuk-service-navigation__link")["href"] == "/refer"
    assert "/staff" not in response.text
    footer = {a["href"] for a in html.select("footer a")}
    assert {"/accessibility", "/privacy", "/cover-your-tracks"} <= footer
    # Only our own origin's assets: no CDN.
    for tag in html.find_all(["link", "script", "img"]):
        source = tag.get("href") or tag.get("src") or ""
        assert not source.startswith(("http:", "https:", "//")), source


async def test_the_start_pages_lead_to_their_journeys(public: Any) -> None:
    start = soup((await public.get("/refer")).text)
    button = start.select_one("a.govuk-button--start")
    assert button["href"] == "/refer/about-you"
    assert button.get_text(strip=True).startswith("Start now")
    text = start.get_text(" ", strip=True)
    assert "call 999" in text
    assert "free" in text
    assert "Who sees your answers" in text
    assert "if that person agrees" in text  # someone else refers with the victim's agreement
    assert "You do not need to ask a parent" in text
    assert start.find("a", href="/refer/professional") is not None
    assert start.select_one("a.govuk-back-link") is None

    professional = soup((await public.get("/refer/professional")).text)
    button = professional.select_one("a.govuk-button--start")
    assert button["href"] == "/refer/professional/about-you"
    assert professional.select_one("a.govuk-back-link")["href"] == "/refer"


async def test_the_information_pages_say_what_they_must(public: Any) -> None:
    accessibility = soup((await public.get("/accessibility")).text).get_text(" ", strip=True)
    assert "WCAG" in accessibility and "2.2" in accessibility and "AA" in accessibility
    assert PHONE in accessibility  # how to report a problem
    privacy = soup((await public.get("/privacy")).text).get_text(" ", strip=True)
    for words in ("What we collect", "Why we need it", "How long we keep it", "Who can see it"):
        assert words in privacy
    assert "60 minutes" in privacy and "6 years" in privacy
    tracks = soup((await public.get("/cover-your-tracks")).text).get_text(" ", strip=True)
    assert "private" in tracks.lower() and "history" in tracks.lower()
    assert "Exit this page" in tracks and "Shift" in tracks


async def test_the_root_goes_to_the_self_referral_start(public: Any) -> None:
    response = await public.get("/", follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == "/refer"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/refer/no-such-page"),
        ("GET", "/refer/professional/no/such/page"),
        ("POST", "/refer/no-such-page"),
    ],
)
async def test_a_missing_page_under_refer_is_the_public_gov_uk_404(
    public: Any, method: str, path: str
) -> None:
    response = await public.request(method, path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    _assert_public_headers(response)
    html = soup(response.text)
    assert html.find("h1").get_text(strip=True) == "Page not found"
    assert _exit_link(html)["href"] == "/refer/exit"
    assert "999" in html.get_text() and PHONE in html.get_text()
    assert "no-such-page" not in response.text  # nothing typed is quoted back
    assert "/staff" not in response.text


async def test_the_refusal_page_gives_999_the_hub_and_how_long_to_wait() -> None:
    from litestar import Litestar, get
    from litestar.di import Provide
    from litestar.exceptions import TooManyRequestsException

    from triage.settings import get_settings
    from triage.web.public.router import public_router
    from triage.web.templating import template_config

    @get("/refer/limited")
    async def limited() -> None:
        raise TooManyRequestsException(headers={"Retry-After": "600"})

    router = public_router()
    router.register(limited)
    app = Litestar(
        route_handlers=[router],
        # The journeys' handlers ask for a session; none of them runs here.
        dependencies={"db": Provide(lambda: None, sync_to_thread=False)},
        template_config=template_config(),
        state={"settings": dataclasses.replace(get_settings(), hub_phone=PHONE)},
    )
    async with AsyncTestClient(app=app) as client:
        response = await client.get("/refer/limited")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "600"
    _assert_public_headers(response)
    text = soup(response.text).get_text(" ", strip=True)
    assert "You have tried too many times" in text
    assert "Wait 10 minutes" in text
    assert "call 999" in text and PHONE in text
    assert "Traceback" not in response.text


async def test_the_web_app_defaults(web: Any) -> None:
    """Without TRIAGE_EXIT_URL the button goes to a neutral site, never to this one."""
    from triage.settings import Settings, get_settings

    assert get_settings().exit_url == Settings.exit_url
    leaving = await web.get("/refer/exit", follow_redirects=False)
    assert leaving.headers["location"] == "https://www.bbc.co.uk/weather"
