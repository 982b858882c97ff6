"""Staff accounts and signed-in browsers for the page tests: an account made through the
services (create, set-up link's password and two-factor), signed in through the real pages."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import pyotp
from bs4 import BeautifulSoup

PASSWORD = "correct horse battery staple"
TOKEN_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class StaffUser:
    user_id: uuid.UUID
    email: str
    totp_secret: str
    recovery_codes: list[str]


async def make_staff(
    sessions: Any, roles: tuple[str, ...], services: tuple[str, ...] = ()
) -> StaffUser:
    from triage.domain.principals import OPERATOR
    from triage.services.catalogues import current_catalogue
    from triage.services.staff_accounts import confirm_two_factor, create_account, set_password
    from triage.settings import get_settings

    secret = get_settings().secret_key
    email = f"{roles[0]}-{uuid.uuid4().hex[:8]}@example.org"
    known = frozenset(current_catalogue().services)
    async with sessions() as db:
        account = await create_account(
            db, OPERATOR, secret, email, list(roles), list(services), known
        )
    async with sessions() as db:
        user = await set_password(db, secret, account.setup_token, PASSWORD, PASSWORD)
        totp_secret = user.totp_secret or ""
    async with sessions() as db:
        _, codes = await confirm_two_factor(
            db, secret, account.setup_token, pyotp.TOTP(totp_secret).now()
        )
    return StaffUser(account.user_id, email, totp_secret, codes)


def csrf_of(html: str) -> str:
    found = TOKEN_INPUT.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def once_of(html: str | None = None) -> str:
    """A form's one-time value: the page's when given, else a fresh well-formed one."""
    if html is not None:
        found = re.search(r'name="once" value="([^"]+)"', html)
        assert found, "no one-time value on the page"
        return found.group(1)
    import secrets

    return secrets.token_urlsafe(24)


def soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


@dataclass
class Browser:
    """One person's cookies over the shared test client (requests are sequential)."""

    client: Any
    cookies: dict[str, str] = field(default_factory=dict)

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self.client.cookies.clear()
        for name, value in self.cookies.items():
            self.client.cookies.set(name, value)
        response = await self.client.request(method, path, follow_redirects=False, **kwargs)
        for name, value in response.cookies.items():
            if value:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        # A cookie cleared with max-age=0 comes back empty or not at all.
        for header in response.headers.get_list("set-cookie"):
            if "Max-Age=0" in header or "max-age=0" in header.lower():
                self.cookies.pop(header.split("=", 1)[0], None)
        self.client.cookies.clear()
        return response

    async def get(self, path: str, **kwargs: Any) -> Any:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return await self.request("POST", path, data=data or {}, **kwargs)

    async def form_post(self, page: str, path: str, data: dict[str, Any]) -> Any:
        """GET `page` for its CSRF token, then POST the form to `path`."""
        html = (await self.get(page)).text
        return await self.post(path, {"csrf_token": csrf_of(html), **data})


_USED: dict[uuid.UUID, set[str]] = {}


def fresh_code(user: StaffUser) -> str:
    """A code this account has not used yet (each code signs in once): now's, else the
    previous or the next step's, which the check also accepts."""
    import time

    totp = pyotp.TOTP(user.totp_secret)
    used = _USED.setdefault(user.user_id, set())
    for offset in (0, -30, 30):
        code = totp.at(time.time() + offset)
        if code not in used:
            used.add(code)
            return code
    time.sleep(30)
    return fresh_code(user)


async def sign_in(client: Any, user: StaffUser, code: str | None = None) -> Browser:
    browser = Browser(client)
    page = await browser.get("/staff/sign-in")
    assert page.status_code == 200, page.text
    response = await browser.post(
        "/staff/sign-in",
        {"csrf_token": csrf_of(page.text), "email": user.email, "password": PASSWORD},
    )
    assert response.status_code in (302, 303), response.text
    assert response.headers["location"] == "/staff/two-factor"
    page = await browser.get("/staff/two-factor")
    response = await browser.post(
        "/staff/two-factor",
        {"csrf_token": csrf_of(page.text), "code": code or fresh_code(user)},
    )
    assert response.status_code in (302, 303), response.text
    return browser


async def page_showing(browser: Browser, path: str, text: str, pages: int = 200) -> Any | None:
    """The first page of a paged list (queue, calls due, caseload) that shows `text`,
    following its "next page" links; None when no page does. Other tests' rows share the
    database, so a row need not be on the first page."""
    for _ in range(pages):
        page = await browser.get(path)
        assert page.status_code == 200, page.text
        if text in page.text:
            return page
        following = soup(page.text).find("a", rel="next")
        if following is None:
            return None
        path = following["href"]
    raise AssertionError(f"{path}: more than {pages} pages")
