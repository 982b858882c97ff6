"""The admin's pages through the real app: staff accounts (created with a set-up link shown
once that works, disabled, enabled, unlocked, reset, signed out everywhere), API clients and
keys (a key shown once that works against the API until revoked; rotation; limits), the
catalogue in force, the audit trail (filters, keyset pages, no personal data, its own view
audited) and the chain's check; every other role refused on every page and action."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import pyotp
import pytest
from helpers import bearer, referral, rows, scalar
from staff_support import PASSWORD, Browser, StaffUser, csrf_of, make_staff, sign_in, soup

pytestmark = pytest.mark.integration

ONCE_INPUT = re.compile(r'name="once" value="([^"]+)"')


@pytest.fixture
async def admin(web: Any, sessions: Any) -> tuple[StaffUser, Browser]:
    user = await make_staff(sessions, ("admin",))
    return user, await sign_in(web, user)


def once_of(html: str) -> str:
    found = ONCE_INPUT.search(html)
    assert found, "no one-time value on the page"
    return found.group(1)


def summary_links(html: str) -> list[str]:
    """The error summary's links, in order."""
    box = soup(html).select_one(".govuk-error-summary")
    assert box is not None, "no error summary"
    return [a["href"] for a in box.select("a")]


def new_email() -> str:
    return f"new-{uuid.uuid4().hex[:10]}@example.org"


async def create_user_form(
    browser: Browser, email: str, roles: list[str], services: list[str] | None = None
) -> tuple[dict[str, Any], Any]:
    """The create-user form as the page gives it, sent: (what was sent, the answer)."""
    page = await browser.get("/staff/admin/users/new")
    assert page.status_code == 200, page.text
    data = {
        "csrf_token": csrf_of(page.text),
        "once": once_of(page.text),
        "email": email,
        "roles": roles,
        "services": services or [],
    }
    return data, await browser.post("/staff/admin/users", data)


async def events(sessions: Any, record_id: Any, action: str) -> list[Any]:
    return await rows(
        sessions,
        "SELECT actor, details FROM audit_events WHERE record_id = :r AND action = :a",
        r=str(record_id),
        a=action,
    )


# The pages ---------------------------------------------------------------------------------------

PAGES = {
    "/staff/admin/users": "Users",
    "/staff/admin/users/new": "Create a user",
    "/staff/admin/clients": "API clients",
    "/staff/admin/clients/new": "Create an API client",
    "/staff/admin/catalogue": "Catalogue in force",
    "/staff/admin/audit": "Audit trail",
}


async def test_every_admin_page_renders_with_its_navigation(admin: Any) -> None:
    _, browser = admin
    for path, heading in PAGES.items():
        page = await browser.get(path)
        assert page.status_code == 200, (path, page.text)
        html = soup(page.text)
        assert html.find("h1").get_text(strip=True) == heading
        assert html.title.get_text().startswith(heading)
        nav = [a.get_text() for a in html.select(".moj-side-navigation a")]
        assert nav == [
            "Users",
            "API clients",
            "Catalogue",
            "Audit trail",
            "Reports",
            "Your account",
        ]
        assert page.headers["cache-control"] == "no-store"
        # Every form posts somewhere and carries the session's CSRF token.
        for form in html.select("form[method=post]"):
            assert form.get("action", "").startswith("/staff/")
            assert form.select_one("input[name=csrf_token]") is not None


async def test_an_admin_lands_on_users_after_signing_in(web: Any, sessions: Any) -> None:
    user = await make_staff(sessions, ("admin",))
    browser = await sign_in(web, user)
    home = await browser.get("/staff/")
    assert home.headers["location"] == "/staff/admin/users"


async def test_catalogue_page_shows_the_version_in_force(admin: Any) -> None:
    from triage.services.catalogues import current_catalogue

    catalogue = current_catalogue()
    _, browser = admin
    page = await browser.get("/staff/admin/catalogue")
    html = soup(page.text)
    assert html.find(id="catalogue-version").get_text() == catalogue.version
    codes = [c.get_text() for c in html.select("table tbody code")]
    assert codes == list(catalogue.services)
    assert "Restorative Solutions" in page.text


# Users -------------------------------------------------------------------------------------------


async def test_a_new_users_link_is_shown_once_and_sets_the_account_up(
    web: Any, sessions: Any, admin: Any
) -> None:
    from triage.settings import get_settings

    admin_user, browser = admin
    email = new_email()
    sent, created = await create_user_form(browser, email, ["caseworker"], ["isva", "cisva"])
    assert created.status_code == 200, created.text
    link = soup(created.text).find(id="setup-link").get_text()
    base = get_settings().base_url
    assert link.startswith(f"{base}/staff/set-up/")
    assert "Give it to the person" in created.text
    [(user_id, roles, services)] = await rows(
        sessions, "SELECT id, roles, services FROM staff_users WHERE email = :e", e=email
    )
    assert (roles, services) == (["caseworker"], ["cisva", "isva"])
    assert await events(sessions, user_id, "user.created") == [
        (f"staff:{admin_user.user_id}", {"roles": ["caseworker"]})
    ]
    token = link.rsplit("/", 1)[1]
    # Sent again (a reload of the answer): done already, the link not shown, no second account.
    again = await browser.post("/staff/admin/users", sent)
    assert again.status_code == 409
    assert token not in again.text and "done already" in again.text
    assert await scalar(sessions, "SELECT count(*) FROM staff_users WHERE email = :e", e=email) == 1
    # The account's page and the list never show it.
    for path in (f"/staff/admin/users/{user_id}", "/staff/admin/users"):
        page = await browser.get(path)
        assert page.status_code == 200 and email in page.text and token not in page.text
    assert "Not set up" in (await browser.get("/staff/admin/users")).text
    # The link sets the account up; the person signs in with it and sees their caseload.
    person = Browser(web)
    path = link.removeprefix(base)
    page = await person.get(path)
    assert page.status_code == 200, page.text
    done = await person.post(
        path, {"csrf_token": csrf_of(page.text), "password": PASSWORD, "confirm": PASSWORD}
    )
    assert done.status_code in (302, 303), done.text
    page = await person.get(path + "/two-factor")
    secret = await scalar(sessions, "SELECT totp_secret FROM staff_users WHERE id = :i", i=user_id)
    codes = await person.post(
        path + "/two-factor",
        {"csrf_token": csrf_of(page.text), "code": pyotp.TOTP(secret).now()},
    )
    assert codes.status_code == 200 and "recovery codes" in codes.text
    signed = await sign_in(web, StaffUser(user_id, email, secret, []))
    assert (await signed.get("/staff/caseload")).status_code == 200
    listing = await browser.get("/staff/admin/users")
    row = next(tr for tr in soup(listing.text).select("tbody tr") if email in tr.get_text())
    assert "Active" in row.get_text() and "Never" not in row.get_text()


BAD_ACCOUNTS = {
    "bad email": ({"email": "not an email", "roles": ["hub"]}, "#email", "Enter an email"),
    "no roles": ({"email": "ok@example.org"}, "#roles", "Select at least one role"),
    "caseworker without services": (
        {"email": "ok@example.org", "roles": ["caseworker"]},
        "#services",
        "Select the services a caseworker works on",
    ),
    "unknown role": (
        {"email": "ok@example.org", "roles": ["hub", "<b>root</b>"]},
        "#roles",
        "Select roles from the list",
    ),
    "unknown service": (
        {"email": "ok@example.org", "roles": ["caseworker"], "services": ["isva", "nope"]},
        "#services",
        "Select services from the list",
    ),
    "NUL byte": ({"email": "a\x00b@example.org", "roles": ["hub"]}, "#email", "Remove the"),
    "10k characters": ({"email": "a" * 10_000 + "@example.org", "roles": ["hub"]}, "#email", ""),
}


@pytest.mark.parametrize("case", sorted(BAD_ACCOUNTS))
async def test_create_user_errors_are_a_summary_linked_to_fields_with_values_kept(
    sessions: Any, admin: Any, case: str
) -> None:
    fields, href, message = BAD_ACCOUNTS[case]
    _, browser = admin
    before = await scalar(sessions, "SELECT count(*) FROM staff_users")
    page = await browser.get("/staff/admin/users/new")
    data = {"csrf_token": csrf_of(page.text), "once": once_of(page.text), **fields}
    response = await browser.post("/staff/admin/users", data)
    assert response.status_code == 400, response.text
    assert "There is a problem" in response.text
    assert soup(response.text).title.get_text().startswith("Error: ")
    assert href in summary_links(response.text)
    assert message in response.text
    html = soup(response.text)
    # What was entered is kept (the email less any control character; checked boxes stay).
    kept = html.find("input", {"name": "email"})["value"]
    assert kept == fields["email"].replace("\x00", "")[:20_000]
    for role in fields.get("roles", []):
        box = html.find("input", {"name": "roles", "value": role})
        assert box is None or box.has_attr("checked")
    assert "<b>root</b>" not in response.text  # never echoed as markup
    assert await scalar(sessions, "SELECT count(*) FROM staff_users") == before
    # The form can be sent again with its one-time value: nothing was spent.
    assert once_of(response.text)


async def test_a_duplicate_email_is_refused_on_its_field(sessions: Any, admin: Any) -> None:
    _, browser = admin
    email = new_email()
    first = (await create_user_form(browser, email, ["hub"]))[1]
    assert first.status_code == 200
    # Same address in another case: normalised, found.
    data, again = await create_user_form(browser, email.upper(), ["hub"])
    assert again.status_code == 400
    assert summary_links(again.text) == ["#email"]
    assert "An account with this email address exists" in again.text
    assert soup(again.text).find("input", {"name": "email"})["value"] == email.upper()
    # Its one-time value was given back: the corrected form goes through.
    data["email"] = new_email()
    data["csrf_token"] = csrf_of(again.text)
    assert (await browser.post("/staff/admin/users", data)).status_code == 200


async def test_user_actions_each_change_the_account_and_are_audited(
    web: Any, sessions: Any, admin: Any
) -> None:
    from triage.services.staff_accounts import check_password

    admin_user, browser = admin
    actor = f"staff:{admin_user.user_id}"
    target = await make_staff(sessions, ("hub",))
    theirs = await sign_in(web, target)
    path = f"/staff/admin/users/{target.user_id}"
    for _ in range(5):
        async with sessions() as db:
            await check_password(db, target.email, "not the password", device_user=None)
    page = await browser.get(path)
    assert "Throttled until" in page.text

    async def act(action: str) -> Any:
        page = await browser.get(path)
        return await browser.post(
            f"{path}/actions", {"csrf_token": csrf_of(page.text), "action": action}
        )

    unlocked = await act("unlock")
    assert unlocked.headers["location"] == path
    assert not await scalar(
        sessions,
        "SELECT throttled_until IS NOT NULL FROM staff_users WHERE id = :i",
        i=target.user_id,
    )
    assert "Sign-in throttling lifted" in (await browser.get(path)).text

    assert (await theirs.get("/staff/queue")).status_code == 200
    await act("sign_out_everywhere")
    assert (await theirs.get("/staff/queue")).status_code in (302, 303)
    theirs = await sign_in(web, target)  # signing in again works

    await act("disable")
    assert await scalar(
        sessions,
        "SELECT disabled_at IS NOT NULL FROM staff_users WHERE id = :i",
        i=target.user_id,
    )
    assert (await theirs.get("/staff/queue")).status_code in (302, 303)
    assert "Disabled since" in (await browser.get(path)).text
    await act("enable")
    assert await scalar(
        sessions, "SELECT disabled_at IS NULL FROM staff_users WHERE id = :i", i=target.user_id
    )
    theirs = await sign_in(web, target)

    # Reset: a new set-up link, once; the old password stops working; the link works.
    page = await browser.get(path)
    sent = {"csrf_token": csrf_of(page.text), "once": once_of(page.text)}
    reset = await browser.post(f"{path}/actions", {**sent, "action": "reset_two_factor"})
    assert reset.status_code == 200, reset.text
    link = soup(reset.text).find(id="setup-link").get_text()
    again = await browser.post(f"{path}/actions", {**sent, "action": "reset_two_factor"})
    assert again.status_code == 409 and link not in again.text
    assert (await theirs.get("/staff/queue")).status_code in (302, 303)
    with pytest.raises(AssertionError):
        await sign_in(web, target)
    from triage.settings import get_settings

    assert (await Browser(web).get(link.removeprefix(get_settings().base_url))).status_code == 200

    for action in ("unlock", "signed_out_everywhere", "disable", "enable", "reset_two_factor"):
        found = await events(sessions, target.user_id, f"user.{action}")
        assert [a for a, _ in found] == [actor], action


async def test_an_admin_cannot_disable_themselves(sessions: Any, admin: Any) -> None:
    admin_user, browser = admin
    path = f"/staff/admin/users/{admin_user.user_id}"
    page = await browser.get(path)
    refused = await browser.post(
        f"{path}/actions", {"csrf_token": csrf_of(page.text), "action": "disable"}
    )
    assert refused.status_code == 400
    assert summary_links(refused.text) == ["#actions"]
    assert "You cannot disable your own account" in refused.text
    assert soup(refused.text).find(id="actions") is not None
    assert await scalar(
        sessions, "SELECT disabled_at IS NULL FROM staff_users WHERE id = :i", i=admin_user.user_id
    )
    assert (await browser.get(path)).status_code == 200


async def test_hostile_user_requests(sessions: Any, admin: Any) -> None:
    _, browser = admin
    target = await make_staff(sessions, ("hub",))
    page = await browser.get("/staff/admin/users")
    csrf = csrf_of(page.text)
    for path in (f"/staff/admin/users/{uuid.uuid4()}", "/staff/admin/users/not-a-uuid"):
        missing = await browser.get(path)
        assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
        assert "Page not found" in missing.text
        acted = await browser.post(f"{path}/actions", {"csrf_token": csrf, "action": "disable"})
        assert acted.status_code == 404
    path = f"/staff/admin/users/{target.user_id}/actions"
    for action in ("explode", "", "disable\x00", "x" * 10_000):
        answer = await browser.post(path, {"csrf_token": csrf, "action": action})
        assert answer.status_code == 400, action[:20]
    # A reset without its one-time value is refused, and nothing is reset.
    answer = await browser.post(path, {"csrf_token": csrf, "action": "reset_two_factor"})
    assert answer.status_code == 400
    assert await scalar(
        sessions,
        "SELECT password_hash IS NOT NULL AND disabled_at IS NULL FROM staff_users WHERE id = :i",
        i=target.user_id,
    )
    # A form with no roles at all, or sent with no one-time value, is refused.
    no_once = await browser.post(
        "/staff/admin/users", {"csrf_token": csrf, "email": new_email(), "roles": ["hub"]}
    )
    assert no_once.status_code == 400


# API clients and keys -------------------------------------------------------------------------


async def _new_client(browser: Browser, name: str, source: str = "police") -> str:
    page = await browser.get("/staff/admin/clients/new")
    made = await browser.post(
        "/staff/admin/clients", {"csrf_token": csrf_of(page.text), "name": name, "source": source}
    )
    assert made.status_code in (302, 303), made.text
    location: str = made.headers["location"]
    return location


async def test_a_key_is_shown_once_works_and_stops_when_revoked(
    web: Any, sessions: Any, admin: Any
) -> None:
    from triage.settings import get_settings

    admin_user, browser = admin
    actor = f"staff:{admin_user.user_id}"
    name = f"Admin test police {uuid.uuid4().hex[:6]}"
    path = await _new_client(browser, name)
    client_id = path.rsplit("/", 1)[1]
    page = await browser.get(path)
    assert page.status_code == 200 and name in page.text and "Client created" in page.text
    assert "No keys yet" in page.text
    sent = {
        "csrf_token": csrf_of(page.text),
        "once": once_of(page.text),
        "scopes": ["referrals:write", "referrals:read"],
    }
    shown = await browser.post(f"{path}/keys", sent)
    assert shown.status_code == 200, shown.text
    key = soup(shown.text).find(id="api-key").get_text()
    prefix = key.split("_")[1]
    assert re.fullmatch(r"trg_[A-Za-z0-9]{8}_[A-Za-z0-9]{32}", key)
    again = await browser.post(f"{path}/keys", sent)
    assert again.status_code == 409 and key not in again.text
    assert (
        await scalar(sessions, "SELECT count(*) FROM api_keys WHERE client_id = :c", c=client_id)
        == 1
    )
    listing = await browser.get("/staff/admin/clients")
    assert prefix in listing.text and key not in listing.text
    page = await browser.get(path)
    assert prefix in page.text and key not in page.text
    assert "referrals:write, referrals:read" in page.text

    created = await web.post("/api/v1/referrals", json=referral(), headers=bearer(key))
    assert created.status_code == 201, created.text

    # Rotate: a new key with the same scopes; both work until the old one is revoked.
    rotated = await browser.post(
        f"{path}/rotate", {"csrf_token": csrf_of(page.text), "once": once_of(page.text)}
    )
    assert rotated.status_code == 200
    new_key = soup(rotated.text).find(id="api-key").get_text()
    assert new_key != key
    assert await scalar(
        sessions,
        "SELECT scopes FROM api_keys WHERE prefix = :p",
        p=new_key.split("_")[1],
    ) == ["referrals:write", "referrals:read"]

    page = await browser.get(path)
    revoked = await browser.post(f"{path}/keys/{prefix}/revoke", {"csrf_token": csrf_of(page.text)})
    assert revoked.headers["location"] == path
    page = await browser.get(path)
    assert f"Key {prefix} revoked" in page.text
    await asyncio.sleep(get_settings().key_cache_seconds + 0.1)
    refused = await web.post("/api/v1/referrals", json=referral(), headers=bearer(key))
    assert refused.status_code == 401
    still = await web.post("/api/v1/referrals", json=referral(), headers=bearer(new_key))
    assert still.status_code == 201

    # Revoking again says so; another client's key, or a made-up prefix, is not found.
    twice = await browser.post(f"{path}/keys/{prefix}/revoke", {"csrf_token": csrf_of(page.text)})
    assert twice.status_code in (302, 303)
    assert "revoked already" in (await browser.get(path)).text
    other = await _new_client(browser, f"Admin test other {uuid.uuid4().hex[:6]}")
    for wrong in (f"{other}/keys/{prefix}/revoke", f"{path}/keys/AAAAAAAA/revoke"):
        missing = await browser.post(wrong, {"csrf_token": csrf_of(page.text)})
        assert missing.status_code == 404
    bad = await browser.post(f"{path}/keys/{'x' * 500}/revoke", {"csrf_token": csrf_of(page.text)})
    assert bad.status_code == 404

    assert [a for a, _ in await events(sessions, client_id, "client.created")] == [actor]
    for action in ("key.created", "key.rotated", "key.revoked"):
        found = await rows(
            sessions,
            "SELECT actor FROM audit_events WHERE action = :a AND details->>'prefix' IN (:p, :q)",
            a=action,
            p=prefix,
            q=new_key.split("_")[1],
        )
        assert [a for (a,) in found] == [actor], action


async def test_limits_change_and_their_errors_keep_what_was_typed(
    sessions: Any, admin: Any
) -> None:
    _, browser = admin
    path = await _new_client(browser, f"Admin test limits {uuid.uuid4().hex[:6]}", "professional")
    client_id = path.rsplit("/", 1)[1]
    page = await browser.get(path)
    # A professional client's new key starts with its source's default scopes checked.
    html = soup(page.text)
    checked = [i["value"] for i in html.select("input[name=scopes][checked]")]
    assert checked == ["referrals:write", "referrals:read"]
    for per_minute, batches, href in (
        ("0", "20", "#per_minute"),
        ("abc", "20", "#per_minute"),
        ("600", "9" * 10_000, "#batches_per_minute"),
        ("", "20", "#per_minute"),
        ("6\x0000", "20", "#per_minute"),
    ):
        answer = await browser.post(
            f"{path}/limits",
            {
                "csrf_token": csrf_of(page.text),
                "per_minute": per_minute,
                "batches_per_minute": batches,
            },
        )
        assert answer.status_code == 400, (per_minute, batches[:10])
        assert href in summary_links(answer.text)
        kept = soup(answer.text).find("input", {"name": "per_minute"})["value"]
        assert kept == per_minute.replace("\x00", "")
    changed = await browser.post(
        f"{path}/limits",
        {"csrf_token": csrf_of(page.text), "per_minute": "1,200", "batches_per_minute": "7"},
    )
    assert changed.status_code in (302, 303)
    assert await rows(
        sessions,
        "SELECT per_minute, batches_per_minute FROM api_clients WHERE id = :c",
        c=client_id,
    ) == [(1200, 7)]
    assert "Limits changed" in (await browser.get(path)).text
    [(_, details)] = await events(sessions, client_id, "client.limits_changed")
    assert details == {"per_minute": 1200, "batches_per_minute": 7}


async def test_client_and_key_form_errors(sessions: Any, admin: Any) -> None:
    _, browser = admin
    taken = f"Admin test taken {uuid.uuid4().hex[:6]}"
    path = await _new_client(browser, taken)
    page = await browser.get("/staff/admin/clients/new")
    csrf = csrf_of(page.text)
    for fields, href in (
        ({"name": "", "source": "police"}, "#name"),
        ({"name": "Fine name"}, "#source"),
        ({"name": "Fine name", "source": "<script>"}, "#source"),
        ({"name": taken, "source": "police"}, "#name"),
        ({"name": "tab\tand\nnewline", "source": "police"}, "#name"),
        ({"name": "n\x00ul", "source": "police"}, "#name"),
        ({"name": "x" * 10_000, "source": "police"}, "#name"),
    ):
        answer = await browser.post("/staff/admin/clients", {"csrf_token": csrf, **fields})
        assert answer.status_code == 400, fields
        assert summary_links(answer.text)[0] == href
        if fields.get("name") and "\x00" not in fields["name"]:
            kept = soup(answer.text).find("input", {"name": "name"})["value"]
            assert kept == fields["name"].strip()
        assert "<script>" not in answer.text
    assert await scalar(sessions, "SELECT count(*) FROM api_clients WHERE name = :n", n=taken) == 1
    page = await browser.get(path)
    for scopes in ([], ["referrals:write", "everything"]):
        answer = await browser.post(
            f"{path}/keys",
            {"csrf_token": csrf_of(page.text), "once": once_of(page.text), "scopes": scopes},
        )
        assert answer.status_code == 400
        assert summary_links(answer.text) == ["#scopes"]
    assert (
        await scalar(
            sessions, "SELECT count(*) FROM api_keys WHERE client_id = :c", c=path.rsplit("/", 1)[1]
        )
        == 0
    )
    for missing in (f"/staff/admin/clients/{uuid.uuid4()}", "/staff/admin/clients/1 OR 1=1"):
        assert (await browser.get(missing)).status_code == 404
        answer = await browser.post(
            f"{missing}/keys",
            {"csrf_token": csrf_of(page.text), "once": once_of(page.text), "scopes": ["aa:write"]},
        )
        assert answer.status_code == 404


# The audit trail ------------------------------------------------------------------------------


def shown(html: str) -> list[tuple[int, str, str, str]]:
    """The events a page shows: (id, actor, action, record id)."""
    found = []
    for tr in soup(html).select("#events tbody tr"):
        cells = tr.select("td")
        found.append(
            (
                int(tr["id"].removeprefix("event-")),
                cells[1].select("span")[-1].get_text(strip=True),
                cells[2].get_text(strip=True),
                cells[3].select("a, span")[-1].get_text(strip=True),
            )
        )
    return found


async def trail_rows(sessions: Any, where: str, **params: Any) -> list[tuple[int, str, str, str]]:
    """What the page should show for a filter: the same events, newest first, from the table."""
    found = await rows(
        sessions,
        f"SELECT id, actor, action, record_id FROM audit_events WHERE {where} "
        "ORDER BY id DESC LIMIT 50",
        **params,
    )
    return [tuple(row) for row in found]  # type: ignore[misc]


async def test_audit_trail_filters_show_only_matching_events_and_no_personal_data(
    web: Any, sessions: Any, admin: Any, make_key: Any
) -> None:
    from datetime import timedelta

    from triage.services.audit import record_event

    admin_user, browser = admin
    _, key = await make_key("police")
    body = referral(**{"victim.first_name": "Zebedee", "victim.last_name": "Quartermaine"})
    made = (await web.post("/api/v1/referrals", json=body, headers=bearer(key))).json()
    hub = await make_staff(sessions, ("hub",))
    hub_browser = await sign_in(web, hub)
    assert (await hub_browser.get(f"/staff/referrals/{made['id']}")).status_code == 200
    async with sessions() as db:
        await record_event(
            db, f"staff:{hub.user_id}", "test.detailed", made["id"], details={"x": "SEEKRIT"}
        )
        await db.commit()

    by_record = "record_id = :r"
    expected = await trail_rows(sessions, by_record, r=made["id"])
    page = await browser.get(f"/staff/admin/audit?record={made['id']}")
    assert page.status_code == 200, page.text
    assert shown(page.text) == expected
    actions = [action for _, _, action, _ in expected]
    assert actions[0] == "test.detailed" and actions[-1] == "referral.created"
    assert "referral.viewed" in actions
    viewed_row = soup(page.text).select("#events tbody tr")[actions.index("referral.viewed")]
    assert hub.email in viewed_row.get_text()  # who acted, as a person reads them
    for personal in ("Zebedee", "Quartermaine", "SEEKRIT", body["victim"]["phone"]):
        assert personal not in page.text

    hub_actor = f"staff:{hub.user_id}"
    expected = await trail_rows(sessions, "actor = :a", a=hub_actor)
    by_actor = await browser.get(f"/staff/admin/audit?actor={hub_actor}")
    assert shown(by_actor.text) == expected
    assert {action for _, _, action, _ in expected} >= {"user.signed_in", "referral.viewed"}
    theirs = await trail_rows(sessions, "actor = :a AND record_id = :r", a=hub_actor, r=made["id"])
    both = await browser.get(f"/staff/admin/audit?actor={hub_actor}&record={made['id']}")
    assert shown(both.text) == theirs
    assert "referral.created" not in [a for _, _, a, _ in theirs]

    def day(prefix: str, d: Any) -> str:
        return f"&{prefix}-day={d.day}&{prefix}-month={d.month}&{prefix}-year={d.year}"

    # The events' own London day, as the database recorded it.
    at = await scalar(
        sessions,
        "SELECT (max(at) AT TIME ZONE 'Europe/London')::date FROM audit_events "
        "WHERE record_id = :r AND action = 'referral.created'",
        r=made["id"],
    )
    record = f"/staff/admin/audit?record={made['id']}"
    expected = await trail_rows(sessions, by_record, r=made["id"])
    within = await browser.get(record + day("from", at) + day("to", at))
    assert shown(within.text) == expected  # (this view's own events included)
    later = await browser.get(record + day("from", at + timedelta(days=1)))
    assert later.status_code == 200 and shown(later.text) == []
    assert "No events match" in later.text
    earlier = await browser.get(record + day("to", at - timedelta(days=1)))
    assert shown(earlier.text) == []
    # Dates are kept in the form.
    assert soup(earlier.text).find("input", {"name": "to-day"})["value"] == str(
        (at - timedelta(days=1)).day
    )

    # Each view was recorded: who looked, with the filters (ids and instants), never a page.
    viewed = await rows(
        sessions,
        "SELECT details FROM audit_events WHERE action = 'audit.viewed' AND actor = :a "
        "AND record_id = :r ORDER BY id",
        a=f"staff:{admin_user.user_id}",
        r=made["id"],
    )
    assert len(viewed) == 5
    assert viewed[0][0] == {"record_id": made["id"], "shown": len(actions)}
    assert viewed[1][0] == {"record_id": made["id"], "actor": hub_actor, "shown": len(theirs)}
    assert set(viewed[-1][0]) == {"record_id", "before", "shown"}


async def test_audit_trail_keyset_pages_never_repeat_or_skip(sessions: Any, admin: Any) -> None:
    from triage.services.audit import record_event

    _, browser = admin
    record = uuid.uuid4()
    async with sessions() as db:
        for _ in range(53):
            await record_event(db, "system:test", "test.paged", record, "test")
        await db.commit()
    expected = [
        event_id
        for (event_id,) in await rows(
            sessions,
            "SELECT id FROM audit_events WHERE record_id = :r ORDER BY id DESC",
            r=str(record),
        )
    ]
    first = await browser.get(f"/staff/admin/audit?record={record}")
    assert [event_id for event_id, *_ in shown(first.text)] == expected[:50]
    nxt = soup(first.text).select_one("a[rel=next]")["href"]
    assert f"record={record}" in nxt and nxt.endswith(f"cursor={expected[49]}")
    second = await browser.get(nxt)
    assert second.status_code == 200
    assert [event_id for event_id, *_ in shown(second.text)] == expected[50:]
    assert soup(second.text).select_one("a[rel=next]") is None
    # A cursor that is not a number is the first page.
    assert len(shown((await browser.get(f"{nxt}x")).text)) == 50


BAD_FILTERS = {
    "record not an id": ("record=KVR-123", "#record"),
    "record with a NUL byte": ("record=%00" + str(uuid.uuid4()), "#record"),
    "record of 10k characters": ("record=" + "a" * 10_000, "#record"),
    "unknown actor": ("actor=staff:" + str(uuid.uuid4()), "#actor"),
    "actor as markup": ("actor=%3Cscript%3E", "#actor"),
    "not a date": ("from-day=31&from-month=2&from-year=2026", "#from-day"),
    "half a date": ("to-day=3&to-year=2026", "#to-day"),
    "to before from": (
        "from-day=3&from-month=3&from-year=2026&to-day=2&to-month=3&to-year=2026",
        "#to-day",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILTERS))
async def test_bad_audit_filters_are_an_error_summary(sessions: Any, admin: Any, case: str) -> None:
    query, href = BAD_FILTERS[case]
    admin_user, browser = admin
    before = await scalar(
        sessions,
        "SELECT count(*) FROM audit_events WHERE action = 'audit.viewed' AND actor = :a",
        a=f"staff:{admin_user.user_id}",
    )
    page = await browser.get(f"/staff/admin/audit?{query}")
    assert page.status_code == 400
    assert summary_links(page.text) == [href]
    assert "<script>" not in page.text
    assert soup(page.text).select("#events") == []
    # Nothing shown, nothing read: no view recorded.
    assert (
        await scalar(
            sessions,
            "SELECT count(*) FROM audit_events WHERE action = 'audit.viewed' AND actor = :a",
            a=f"staff:{admin_user.user_id}",
        )
        == before
    )


async def test_verifying_the_chain_shows_its_answer(sessions: Any, admin: Any) -> None:
    from triage.services.audit import audit_key, head_digest, seal
    from triage.settings import get_settings

    admin_user, browser = admin
    key = audit_key(get_settings().audit_key)
    for _ in range(100):
        async with sessions() as db:
            report = await seal(db, key)
        if report.unsealed == 0:
            break
        await asyncio.sleep(0.05)
    async with sessions() as db:
        head = await head_digest(db)
    assert head is not None
    page = await browser.get("/staff/admin/audit")
    csrf = csrf_of(page.text)
    checked = await browser.post("/staff/admin/audit/verify", {"csrf_token": csrf})
    assert checked.status_code == 200, checked.text
    result = soup(checked.text).find(id="chain-result").get_text(" ", strip=True)
    assert "The chain is intact" in result
    assert re.search(r"ok: \d+ digests?, \d+ events?", result)
    with_head = await browser.post(
        "/staff/admin/audit/verify", {"csrf_token": csrf, "head": head.digest.upper()}
    )
    assert "The chain is intact" in with_head.text
    # A head the chain does not reach: the break it found, in words.
    missing = await browser.post(
        "/staff/admin/audit/verify", {"csrf_token": csrf, "head": "ab" * 32}
    )
    assert missing.status_code == 200
    assert "The chain is broken" in missing.text
    assert "the chain ends before the digest the logs show" in missing.text
    bad = await browser.post("/staff/admin/audit/verify", {"csrf_token": csrf, "head": "zz"})
    assert bad.status_code == 400 and summary_links(bad.text) == ["#head"]
    verified = await rows(
        sessions,
        "SELECT details FROM audit_events WHERE action = 'audit.verified' AND actor = :a "
        "ORDER BY id",
        a=f"staff:{admin_user.user_id}",
    )
    assert [d["ok"] for (d,) in verified] == [True, True, False]
    # No form token: refused, nothing checked.
    refused = await browser.post("/staff/admin/audit/verify", {"head": ""})
    assert refused.status_code == 403


# Who may: every other role is refused every admin page and action ----------------------------


def _admin_routes(user_id: Any, client_id: str) -> list[tuple[str, str]]:
    users, clients = "/staff/admin/users", f"/staff/admin/clients/{client_id}"
    return [
        ("GET", users),
        ("GET", f"{users}/new"),
        ("POST", users),
        ("GET", f"{users}/{user_id}"),
        ("POST", f"{users}/{user_id}/actions"),
        ("GET", "/staff/admin/clients"),
        ("GET", "/staff/admin/clients/new"),
        ("POST", "/staff/admin/clients"),
        ("GET", clients),
        ("POST", f"{clients}/keys"),
        ("POST", f"{clients}/rotate"),
        ("POST", f"{clients}/keys/AAAAAAAA/revoke"),
        ("POST", f"{clients}/limits"),
        ("GET", "/staff/admin/catalogue"),
        ("GET", "/staff/admin/audit"),
        ("POST", "/staff/admin/audit/verify"),
    ]


@pytest.mark.parametrize("role", ["hub", "caseworker", "duty_lead", "commissioner"])
async def test_other_roles_are_refused_every_admin_page_and_action(
    web: Any, sessions: Any, make_key: Any, role: str
) -> None:
    name, _ = await make_key("police")
    client_id = str(await scalar(sessions, "SELECT id FROM api_clients WHERE name = :n", n=name))
    victim = await make_staff(sessions, ("hub",))
    services = ("isva",) if role == "caseworker" else ()
    browser = await sign_in(web, await make_staff(sessions, (role,), services))
    csrf = None
    for path in ("/staff/queue", "/staff/caseload", "/staff/nowhere"):
        page = await browser.get(path)
        if 'name="csrf_token"' in page.text:
            csrf = csrf_of(page.text)
            break
    assert csrf
    keys_before = await scalar(sessions, "SELECT count(*) FROM api_keys")
    for method, path in _admin_routes(victim.user_id, client_id):
        if method == "GET":
            answer = await browser.get(path)
        else:
            answer = await browser.post(
                path,
                {
                    "csrf_token": csrf,
                    "action": "disable",
                    "email": new_email(),
                    "roles": ["admin"],
                    "name": "x",
                    "source": "police",
                    "scopes": ["reports:read"],
                    "once": "A" * 32,
                    "per_minute": "1",
                    "batches_per_minute": "1",
                },
            )
        assert answer.status_code == 403, (role, method, path, answer.status_code)
        assert "text/html" in answer.headers["content-type"]
        assert "You do not have permission" in answer.text
    assert await scalar(
        sessions, "SELECT disabled_at IS NULL FROM staff_users WHERE id = :i", i=victim.user_id
    )
    assert await scalar(sessions, "SELECT count(*) FROM api_keys") == keys_before


async def test_signed_out_visitors_go_to_sign_in(web: Any) -> None:
    for path in ("/staff/admin/users", "/staff/admin/audit"):
        answer = await Browser(web).get(path)
        assert answer.status_code in (302, 303)
        assert answer.headers["location"].startswith("/staff/sign-in?next=/staff/admin/")


async def test_every_admin_form_needs_its_csrf_token(sessions: Any, admin: Any) -> None:
    _, browser = admin
    target = await make_staff(sessions, ("hub",))
    path = await _new_client(browser, f"Admin test csrf {uuid.uuid4().hex[:6]}")
    keys_before = await scalar(sessions, "SELECT count(*) FROM api_keys")
    users_before = await scalar(sessions, "SELECT count(*) FROM staff_users")
    posts = [p for m, p in _admin_routes(target.user_id, path.rsplit("/", 1)[1]) if m == "POST"]
    page = await browser.get("/staff/admin/users/new")
    for post_path in posts:
        for token in ("", "forged"):
            data = {
                "action": "disable",
                "email": new_email(),
                "roles": ["hub"],
                "name": f"csrf {uuid.uuid4().hex[:6]}",
                "source": "police",
                "scopes": ["aa:write"],
                "once": once_of(page.text),
                "per_minute": "1",
                "batches_per_minute": "1",
            }
            if token:
                data["csrf_token"] = token
            answer = await browser.post(post_path, data)
            assert answer.status_code == 403, (post_path, token)
    assert await scalar(sessions, "SELECT count(*) FROM api_keys") == keys_before
    assert await scalar(sessions, "SELECT count(*) FROM staff_users") == users_before
    assert await scalar(
        sessions, "SELECT disabled_at IS NULL FROM staff_users WHERE id = :i", i=target.user_id
    )


def test_every_admin_handler_names_a_permission_an_admin_has() -> None:
    from triage.domain.policy import PERMISSIONS
    from triage.web.staff.admin import AdminController

    handlers = [
        getattr(AdminController, name)
        for name in dir(AdminController)
        if hasattr(getattr(AdminController, name), "opt")
        and hasattr(getattr(AdminController, name), "http_methods")
    ]
    assert len(handlers) == 16
    for handler in handlers:
        assert handler.opt.get("permission") in PERMISSIONS["admin"], handler
