"""The self-referral journey under /refer and the professional one under
/refer/professional: one question a page, answers kept in the draft (the
session holds only its id), pages in order (a later page asked for before the earlier ones
are answered sends the person to the first one missing), check your answers with Change links,
then intake; the confirmation shows the reference once and ends the session."""

from __future__ import annotations

import hmac
import ipaddress
import time
import uuid
from typing import Any

from litestar import Controller, Request, get, post
from litestar.exceptions import NotFoundException, TooManyRequestsException
from litestar.response import Redirect

from triage.api.rate_limits import FailedKeyChecks
from triage.domain.problems import InvalidInput
from triage.services import public_referrals
from triage.services.clock import service_now
from triage.web.dependencies import Db
from triage.web.forms import Form, read_form
from triage.web.pages import render
from triage.web.public.journey import (
    PROFESSIONAL_PAGES,
    SELF_PAGES,
    Page,
    flat_answers,
    page_of_field,
)
from triage.web.public.session import FormSession, FormSessions
from triage.web.referral_body import body_of, field_of


def _limit(request: Request[Any, Any, Any], day: str) -> FailedKeyChecks:
    """The counter of answers per address, under a key of the day: the HMAC key is derived
    from the server secret and the date, so it changes at midnight (UTC) and no mark of one
    day can be matched with the next day's. A test may set `form_posts` itself."""
    state = request.app.state
    fixed = getattr(state, "form_posts", None)
    if fixed is not None:
        return fixed  # type: ignore[no-any-return]
    cached = getattr(state, "form_posts_of_day", None)
    if cached is None or cached[0] != day:
        settings = state.settings
        key = hmac.new(settings.secret_key.encode(), f"refer:{day}".encode(), "sha256")
        cached = (
            day,
            FailedKeyChecks(
                state.redis, key.hexdigest(), settings.public_posts_per_minute, prefix="refer"
            ),
        )
        state.form_posts_of_day = cached
    return cached[1]


def _network_of(host: str) -> str:
    """What one sender is: an IPv4 address, or an IPv6 /64 (one home or phone is given a whole
    /64, and could otherwise step round the limit address by address)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return (
        str(address.ipv4_mapped or address) if isinstance(address, ipaddress.IPv6Address) else host
    )


async def count_public_post(request: Request[Any, Any, Any]) -> None:
    """One more answer sent from this address; 429 (the public page giving 999 and the hub's
    number) past the limit. The address is kept only as an HMAC under the day's key."""
    now = time.time()
    address = _network_of(request.client.host if request.client else "")
    day = time.strftime("%Y-%m-%d", time.gmtime(now))
    if await _limit(request, day).over_limit(address, now):
        raise TooManyRequestsException(headers={"Retry-After": str(60 - int(now) % 60)})


def _sessions(request: Request[Any, Any, Any]) -> FormSessions:
    # Made with the staff's session store at start-up (app.py), one per process.
    return request.app.state.form_sessions  # type: ignore[no-any-return]


# Every question page's own path (fixed paths: they win over the public 404's catch-all);
# a journey answers 404 for another journey's page.
QUESTION_PATHS = sorted({f"/{page.slug}" for page in (*SELF_PAGES, *PROFESSIONAL_PAGES)})


def _slug(request: Request[Any, Any, Any]) -> str:
    return request.url.path.rstrip("/").rsplit("/", 1)[-1]


class _Journey(Controller):
    """One journey's pages under `path`; the subclasses name the journey and its pages."""

    journey: str
    pages: tuple[Page, ...]
    # What the journey's answers mean for consent (a victim's own referral is their consent).
    implied: tuple[tuple[str, str], ...] = ()

    def _first_missing(self, answers: dict[str, Any]) -> Page | None:
        for page in self.pages:
            if page.slug not in answers:
                return page
        return None

    def _index(self, slug: str) -> int:
        return [p.slug for p in self.pages].index(slug)

    def _back(self, slug: str) -> str:
        index = self._index(slug)
        return f"{self.path}/{self.pages[index - 1].slug}" if index else self.path

    def _page(self, slug: str) -> Page | None:
        return next((p for p in self.pages if p.slug == slug), None)

    def _question(
        self, page: Page, session: FormSession, form: Form, status: int = 200, cookies: Any = None
    ) -> Any:
        return render(
            "public/question.html",
            status=status,
            cookies=cookies,
            title=page.title,
            page=page,
            form=form,
            csrf=session.csrf,
            action=f"{self.path}/{page.slug}",
            back_href=self._back(page.slug),
            error_summary=form.summary if form.errors else None,
        )

    async def _session(
        self, request: Request[Any, Any, Any], db: Db
    ) -> tuple[str, FormSession, dict[str, Any]] | None:
        loaded = await _sessions(request).load(request, self.journey)
        if loaded is None or loaded[1].draft is None:
            return None
        session_id, session = loaded
        answers = await public_referrals.answers_of(db, uuid.UUID(session.draft), self.journey)
        if answers is None:
            return None
        return session_id, session, answers

    @get("/expired")
    async def expired(self) -> Any:
        return render(
            "public/expired.html",
            title="Your answers were deleted",
            back_href=self.path,
            start=f"{self.path}/{self.pages[0].slug}",
        )

    @get("/check")
    async def check_page(self, request: Request[Any, Any, Any], db: Db) -> Any:
        found = await self._session(request, db)
        if found is None:
            return Redirect(f"{self.path}/expired")
        _, session, answers = found
        missing = self._first_missing(answers)
        if missing is not None:
            return Redirect(f"{self.path}/{missing.slug}")
        return self._check(session, answers, [])

    def _check(
        self, session: FormSession, answers: dict[str, Any], errors: list[dict[str, str]]
    ) -> Any:
        return render(
            "public/check.html",
            status=400 if errors else 200,
            title="Check your answers",
            base=self.path,
            journey=self.journey,
            pages=self.pages,
            answers=answers,
            csrf=session.csrf,
            back_href=f"{self.path}/{self.pages[-1].slug}",
            error_summary=errors or None,
        )

    @post("/check")
    async def submit(self, request: Request[Any, Any, Any], db: Db) -> Any:
        await count_public_post(request)
        loaded = await _sessions(request).load(request, self.journey)
        if loaded is not None and loaded[1].reference is not None:
            # Sent already (a second click): the confirmation, never "your answers were deleted".
            return Redirect(f"{self.path}/done")
        found = await self._session(request, db)
        if found is None:
            return Redirect(f"{self.path}/expired")
        session_id, session, answers = found
        await read_form(request, session.csrf)
        if self._first_missing(answers) is not None:
            return Redirect(f"{self.path}/check")
        form = flat_answers(answers)
        form.values.update(dict(self.implied))
        body = body_of(form, "")
        body.pop("external_ref")
        assert session.draft is not None
        try:
            taken = await public_referrals.submit(
                db,
                request.app.state.pg,
                uuid.UUID(session.draft),
                self.journey,
                body,
                request.app.state.catalogue,
                possibly_automated=session.automated,
            )
        except InvalidInput as invalid:
            errors = []
            for problem in invalid.problems:
                field = field_of(problem.path)
                page = page_of_field(self.pages, field)
                href = f"{self.path}/{page.slug}#{field}"
                errors.append({"text": _plain(problem.path), "href": href})
            return self._check(session, answers, errors)
        session.draft, session.reference = None, taken.reference
        await _sessions(request).save(session_id, session)
        return Redirect(f"{self.path}/done")

    @get("/done")
    async def done(self, request: Request[Any, Any, Any]) -> Any:
        loaded = await _sessions(request).load(request, self.journey)
        if loaded is None or loaded[1].reference is None:
            return Redirect(self.path)
        session_id, session = loaded
        # Shown once: the session ends now, so the back button and a refresh find nothing.
        cookie = await _sessions(request).end(session_id)
        return render(
            "public/done.html",
            title="Referral sent",
            journey=self.journey,
            reference=session.reference,
            cookies=[cookie],
        )

    @get(QUESTION_PATHS)
    async def question(self, request: Request[Any, Any, Any], db: Db) -> Any:
        slug = _slug(request)
        page = self._page(slug)
        if page is None:
            raise NotFoundException()
        found = await self._session(request, db)
        if found is None:
            if page is not self.pages[0]:
                return Redirect(f"{self.path}/expired")
            loaded = await _sessions(request).load(request, self.journey)
            if loaded is not None and loaded[1].draft is None and loaded[1].reference is None:
                # Started, nothing answered yet: the same session (no new one per reload).
                return self._question(page, loaded[1], Form())
            # Starting: a session of its own, counted against the address like an answer; the
            # draft is made with the first answer. Any earlier form of this browser (this
            # journey's, or the other's) ends here, its answers deleted: one form at a time,
            # and Exit this page then reaches everything there is.
            await count_public_post(request)
            earlier = await _sessions(request).read(request)
            if earlier is not None and earlier[1].draft:
                await public_referrals.delete_draft(db, uuid.UUID(earlier[1].draft))
            session = FormSession(journey=self.journey)
            cookie = await _sessions(request).start(session, earlier[0] if earlier else None)
            return self._question(page, session, Form(), cookies=[cookie])
        _, session, answers = found
        missing = self._first_missing(answers)
        if missing is not None and [p.slug for p in self.pages].index(missing.slug) < [
            p.slug for p in self.pages
        ].index(slug):
            return Redirect(f"{self.path}/{missing.slug}")
        saved = answers.get(slug, {})
        form = Form(
            values={k: v for k, v in saved.items() if isinstance(v, str)},
            lists={k: v for k, v in saved.items() if isinstance(v, list)},
        )
        return self._question(page, session, form)

    @post(QUESTION_PATHS)
    async def answer(self, request: Request[Any, Any, Any], db: Db) -> Any:
        slug = _slug(request)
        page = self._page(slug)
        if page is None:
            raise NotFoundException()
        await count_public_post(request)
        found = await self._session(request, db)
        if found is None:
            loaded = await _sessions(request).load(request, self.journey)
            if page is not self.pages[0] or loaded is None or loaded[1].draft is not None:
                return Redirect(f"{self.path}/expired")
            # The first answer of a new form: its draft is made once the answer is good.
            found = loaded[0], loaded[1], {}
        session_id, session, answers = found
        form = await read_form(request, session.csrf)
        kept = page.answers_of(form)
        problems = page.check(kept, (await service_now(db)).date())
        if form.get("website") and not session.automated:
            # The hidden field was filled: a mark on the session (not an answer), so the
            # referral is flagged for the hub when it is sent; never refused for it.
            session.automated = True
            await _sessions(request).save(session_id, session)
        if form.errors or problems:
            shown = Form(
                values={k: v for k, v in kept.items() if isinstance(v, str)},
                lists={k: v for k, v in kept.items() if isinstance(v, list)},
                errors=[*form.errors, *problems],
            )
            return self._question(page, session, shown, status=400)
        if session.draft is None:
            session.draft = str(await public_referrals.start_draft(db, self.journey))
            await _sessions(request).save(session_id, session)
        draft = uuid.UUID(session.draft)
        if not await public_referrals.save_page(db, draft, self.journey, slug, kept):
            return Redirect(f"{self.path}/expired")
        answers[slug] = kept
        missing = self._first_missing(answers)
        return Redirect(f"{self.path}/{missing.slug}" if missing else f"{self.path}/check")


def _plain(path: str) -> str:
    """An intake problem in the person's words, by the field it is about."""
    words = {
        "victim.phone": "Enter a UK phone number, like 07700 900123",
        "victim.email": "Enter an email address, like name@example.com",
        "victim.date_of_birth": "Enter a real date of birth in the past",
        "victim.address.postcode": "Enter a real postcode, like ME14 1XX, or leave it blank",
        "contact.channels": "Choose a safe way to contact you that you gave details for",
    }
    base = path.split("[")[0]
    for prefix, text in words.items():
        if base == prefix or base.startswith(prefix + "."):
            return text
    return "Check this answer"


class ExitController(Controller):
    """Exit this page: the form's session ended and its draft deleted, then the neutral site.
    A plain link without JavaScript, three presses of Shift with it; answers nothing that
    could show what the person was doing (a redirect, no page)."""

    path = "/refer/exit"

    @get("/")
    async def leave(self, request: Request[Any, Any, Any], db: Db) -> Any:
        draft, cookie = await _sessions(request).end_any(request)
        if draft:
            try:
                await public_referrals.delete_draft(db, uuid.UUID(draft))
            except ValueError:
                pass
        return Redirect(request.app.state.settings.exit_url, cookies=[cookie])


class SelfReferralController(_Journey):
    path = "/refer"
    journey = "self"
    pages = SELF_PAGES
    # The victim refers themselves: consent to the referral and to contact is theirs.
    implied = (("consent.to_referral", "yes"), ("consent.to_contact", "yes"))


class ProfessionalReferralController(_Journey):
    path = "/refer/professional"
    journey = "professional"
    pages = PROFESSIONAL_PAGES
    # The professional confirms the victim's consent on its own page; contact is the point.
    implied = (("consent.to_contact", "yes"),)
