"""The staff pages on a 320 px wide screen (WCAG 2.2 reflow: 320 CSS px): axe reports no
violation and nothing but a data table is wider than the screen, so no page needs scrolling
sideways to read a form or a heading. Screenshots `narrow-*.png`."""

from __future__ import annotations

from typing import Any

import pytest
from browser_support import assert_no_axe_violations, screenshot
from playwright.async_api import Page
from staff_support import make_staff
from test_staff_journeys import _referral, _sign_in

pytestmark = pytest.mark.integration

NARROW = {"viewport": {"width": 320, "height": 640}}

# Elements other than data tables (which may scroll inside their own box) that are wider than
# the screen.
TOO_WIDE = """() => {
  const width = document.documentElement.clientWidth;
  const found = [];
  for (const element of document.querySelectorAll("body *")) {
    if (element.closest("table")) continue;
    // Inside a box that scrolls sideways itself (MOJ's side navigation on a small screen).
    let scrolls = false;
    for (let up = element.parentElement; up; up = up.parentElement) {
      const overflow = getComputedStyle(up).overflowX;
      if (overflow === "auto" || overflow === "scroll") { scrolls = true; break; }
    }
    if (scrolls) continue;
    const box = element.getBoundingClientRect();
    if (box.width > 0 && box.right > width + 1) {
      found.push(element.tagName.toLowerCase() + "." + (element.className || "").toString());
    }
  }
  return found.slice(0, 10);
}"""


async def _check(page: Page, name: str) -> None:
    await screenshot(page, f"narrow-{name}")
    await assert_no_axe_violations(page)
    assert await page.evaluate(TOO_WIDE) == [], name
    # The page itself never scrolls sideways.
    assert await page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    ), name


async def test_staff_pages_at_320_px(new_page: Any, triage_url: str, sessions: Any) -> None:
    made = await _referral(sessions, triage_url)
    page: Page = await new_page(**NARROW)
    await page.goto(f"{triage_url}/staff/sign-in")
    await _check(page, "sign-in")
    await _sign_in(page, triage_url, await make_staff(sessions, ("duty_lead",)))
    for path, name in (
        ("/staff/queue", "queue"),
        (f"/staff/referrals/{made['id']}", "referral"),
        ("/staff/calls", "calls"),
        ("/staff/phone-referral/", "phone-referral"),
        ("/staff/search?q=Taylor", "search"),
        ("/staff/alerts", "alerts"),
        ("/staff/caseload/reassign", "reassign"),
        ("/staff/account", "account"),
    ):
        await page.goto(f"{triage_url}{path}")
        await _check(page, name)
    from helpers import rows

    [(case_id,)] = (
        await rows(sessions, "SELECT id FROM cases WHERE referral_id = :r", r=made["id"])
    )[:1]
    await page.goto(f"{triage_url}/staff/cases/{case_id}")
    await _check(page, "case")
    admin: Page = await new_page(**NARROW)
    await _sign_in(admin, triage_url, await make_staff(sessions, ("admin",)))
    for path, name in (
        ("/staff/admin/users", "admin-users"),
        ("/staff/admin/clients", "admin-clients"),
        ("/staff/admin/audit", "admin-audit"),
    ):
        await admin.goto(f"{triage_url}{path}")
        await _check(admin, name)
