"""The browser harness itself: a page in the GOV.UK template (govuk-frontend-jinja), served
with triage.web.assets.static_routes() under a strict Content-Security-Policy, loads its CSS,
fonts, images and JavaScript, passes axe, works without JavaScript, and the axe helper really
reports violations."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from browser_support import (
    AXE_TAGS,
    ServeApp,
    assert_no_axe_violations,
    axe_violations,
    screenshot,
    watch,
)
from jinja2 import ChoiceLoader, DictLoader, Environment, PackageLoader, PrefixLoader
from litestar import Litestar, MediaType, Response, get
from playwright.async_api import Page

from triage.web.assets import AssetsNotBuilt, asset_version, static_routes

PAGE = """\
{% extends "govuk_frontend_jinja/template.html" %}
{% from "govuk_frontend_jinja/components/header/macro.html" import govukHeader %}
{% from "govuk_frontend_jinja/components/footer/macro.html" import govukFooter %}
{% block pageTitle %}{{ title }} – triage harness{% endblock %}
{% block head %}
  <link rel="stylesheet" href="/static/govuk-frontend.min.css?v={{ version }}">
  <link rel="stylesheet" href="/static/moj-frontend.min.css?v={{ version }}">
{% endblock %}
{% block govukHeader %}{{ govukHeader({}) }}{% endblock %}
{% block govukFooter %}{{ govukFooter({}) }}{% endblock %}
{% block content %}
  <h1 class="govuk-heading-l">{{ title }}</h1>
  <p class="govuk-body">A page that proves the assets and the browser harness.</p>
  {{ extra | safe }}
{% endblock %}
{% block bodyEnd %}
  <script type="module" nonce="{{ cspNonce }}">
    import { initAll as initGovuk } from "/static/govuk-frontend.min.js?v={{ version }}";
    import { initAll as initMoj } from "/static/moj-frontend.min.js?v={{ version }}";
    initGovuk();
    initMoj();
    document.body.dataset.frontendReady = "yes";
  </script>
{% endblock %}
"""

# As strict as the app's should be: nothing inline without the nonce, nothing from elsewhere.
CSP = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; "
    "img-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

environment = Environment(
    loader=ChoiceLoader(
        [
            DictLoader({"page.html": PAGE}),
            PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")}),
        ]
    ),
    autoescape=True,
)


def render(title: str, extra: str = "") -> Response[str]:
    nonce = secrets.token_urlsafe(16)
    html = environment.get_template("page.html").render(
        title=title, extra=extra, cspNonce=nonce, version=asset_version()
    )
    return Response(
        html,
        media_type=MediaType.HTML,
        headers={"Content-Security-Policy": CSP.format(nonce=nonce), "Cache-Control": "no-store"},
    )


@get("/")
async def home() -> Response[str]:
    return render("Harness page")


@get("/missing-alt")
async def missing_alt() -> Response[str]:
    return render("A page with a fault", '<img src="/assets/images/govuk-crest.svg">')


@pytest.fixture(scope="session")
def harness_url(serve_app: ServeApp) -> str:
    return serve_app(Litestar(route_handlers=[home, missing_alt, *static_routes()]))


async def test_the_page_loads_its_css_fonts_images_and_javascript(
    page: Page, harness_url: str
) -> None:
    problems = watch(page)
    await page.goto(harness_url + "/", wait_until="networkidle")
    await page.evaluate("document.fonts.ready")

    problems.assert_none()
    loaded = {r.url.removeprefix(harness_url).split("?")[0]: r for r in problems.responses}
    for path in (
        "/static/govuk-frontend.min.css",
        "/static/moj-frontend.min.css",
        "/static/govuk-frontend.min.js",
        "/static/moj-frontend.min.js",
        "/assets/images/govuk-crest.svg",  # the footer's crest, from the CSS
        "/assets/images/favicon.svg",
    ):
        assert path in loaded, f"{path} was not requested: {sorted(loaded)}"
        assert loaded[path].status == 200, path
    # What the browser did not fetch itself: every <link> of the template, the manifest's icons.
    links = await page.eval_on_selector_all("head link[href]", "ls => ls.map(l => l.href)")
    manifest = await page.request.get(harness_url + "/assets/manifest.json")
    icons = [harness_url + "/assets/" + icon["src"] for icon in (await manifest.json())["icons"]]
    for url in links + icons:
        assert (await page.request.get(url)).status == 200, url
    fonts = [path for path in loaded if path.startswith("/assets/fonts/")]
    assert fonts and all(path.endswith(".woff2") for path in fonts), fonts
    assert await page.evaluate("document.fonts.check('19px \"GDS Transport\"')")
    css = loaded["/static/govuk-frontend.min.css"]
    assert css.headers["cache-control"] == "max-age=31536000, public"
    assert css.headers["content-type"].startswith("text/css")

    # The CSS applies (not just arrives) and the ES modules ran initAll().
    font = await page.eval_on_selector("h1", "h => getComputedStyle(h).fontFamily")
    assert font.startswith('"GDS Transport"'), font
    body_classes = await page.get_attribute("body", "class") or ""
    assert "govuk-frontend-supported" in body_classes.split()
    assert await page.get_attribute("body", "data-frontend-ready") == "yes"
    assert (await screenshot(page, "harness")).stat().st_size > 0


async def test_the_page_passes_axe_under_a_strict_csp(page: Page, harness_url: str) -> None:
    response = await page.goto(harness_url + "/")
    assert response is not None
    assert "script-src 'self' 'nonce-" in response.headers["content-security-policy"]
    await assert_no_axe_violations(page)
    # axe went in although the page's CSP allows no script without the nonce.
    assert await page.evaluate("typeof window.axe.run") == "function"


async def test_the_page_works_without_javascript(page_without_js: Page, harness_url: str) -> None:
    problems = watch(page_without_js)
    response = await page_without_js.goto(harness_url + "/", wait_until="networkidle")
    assert response is not None and response.status == 200

    problems.assert_none()
    assert await page_without_js.text_content("h1") == "Harness page"
    assert await page_without_js.is_visible("footer.govuk-template__footer")
    body_classes = await page_without_js.get_attribute("body", "class") or ""
    assert "js-enabled" not in body_classes.split()
    font = await page_without_js.eval_on_selector("h1", "h => getComputedStyle(h).fontFamily")
    assert font.startswith('"GDS Transport"'), font
    # The skip link is a plain link to the main content.
    assert await page_without_js.get_attribute("a.govuk-skip-link", "href") == "#main-content"
    await page_without_js.keyboard.press("Tab")
    assert await page_without_js.evaluate("document.activeElement.textContent.trim()") == (
        "Skip to main content"
    )
    # axe runs in the page's JavaScript: Playwright's evaluate still works with it disabled.
    await assert_no_axe_violations(page_without_js)
    await screenshot(page_without_js, "harness-without-javascript")


async def test_axe_reports_violations_readably(page: Page, harness_url: str) -> None:
    await page.goto(harness_url + "/missing-alt")
    violations = await axe_violations(page)
    assert [v["id"] for v in violations] == ["image-alt"]
    assert violations[0]["nodes"][0]["target"] == ["img"]

    with pytest.raises(AssertionError) as failure:
        await assert_no_axe_violations(page)
    message = str(failure.value)
    assert "axe found 1 accessibility violation(s) on " + harness_url + "/missing-alt" in message
    assert "image-alt (critical): Images must have alternative text" in message
    assert "\n    img  <img src=" in message


async def test_axe_reports_violations_with_javascript_disabled(
    page_without_js: Page, harness_url: str
) -> None:
    """axe.run() waits on timers, which a page without JavaScript never fires: the helper
    turns them into promise jobs there, and the results are the same as with JavaScript."""
    await page_without_js.goto(harness_url + "/missing-alt")
    violations = await axe_violations(page_without_js)
    assert [(v["id"], v["nodes"][0]["target"]) for v in violations] == [("image-alt", ["img"])]


def test_axe_runs_the_wcag_2_2_aa_tags() -> None:
    assert AXE_TAGS == ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def test_static_routes_refuse_to_start_before_make_assets(tmp_path: Path) -> None:
    (tmp_path / "govuk-frontend.min.css").write_text("")
    with pytest.raises(AssetsNotBuilt) as failure:
        static_routes(tmp_path)
    assert "run `make assets`" in str(failure.value)
    assert "govuk-frontend.min.js" in str(failure.value)


async def test_the_real_app_serves_under_uvicorn(page: Page, triage_url: str) -> None:
    """triage_url: create_app() against the test PostgreSQL and Redis, lifespan and all."""
    response = await page.goto(triage_url + "/readyz")
    assert response is not None and response.status == 200
    assert await response.json() == {"status": "ready"}
