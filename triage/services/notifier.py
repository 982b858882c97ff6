"""The notifier: one interface, backends chosen by settings (TRIAGE_NOTIFIER).

- `outbox`: records each rendered message in the `outbox` table (its own transaction, so a
  send made twice shows twice), for `triage dev` and the tests.
- `notify`: GOV.UK Notify through notifications-python-client; `reference` is the message
  row's id, never personal data; base URL from settings so tests can point at a local stub.

A send either returns the provider's status, or raises: PermanentFailure (try the next
channel), TemporaryFailure (retry later), ProviderUnsure (the provider may have it: ask by
reference before any new attempt).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import models
from triage.domain.catalogue import Catalogue
from triage.domain.catalogue_words import words_found
from triage.settings import Settings

T = TypeVar("T")
R = TypeVar("R")

# The staff set-up email's template name (services/setup_emails.TEMPLATE): a NOTIFY_TEMPLATE_IDS
# key `staff_setup.email`, else the `email` channel's template.
SETUP_TEMPLATE = "staff_setup"


@dataclass(frozen=True)
class Outgoing:
    reference: uuid.UUID
    channel: str  # sms | email | letter
    template: str
    recipient: str
    subject: str | None
    body: str


class PermanentFailure(Exception):
    pass


class TemporaryFailure(Exception):
    pass


class ProviderUnsure(Exception):
    """Timed out or cut off: the provider may or may not have taken it."""


class ProviderMisconfigured(Exception):
    """The provider refused us, not the recipient: a bad or revoked API key, a template id
    that is not ours, a trial-mode or team-only key. Nothing about the message is wrong, so it
    is an outage: the message stays queued and the duty lead is alerted. `whole_service`: our
    credentials were refused (every channel is out), not only this channel's settings."""

    def __init__(self, message: str, *, whole_service: bool):
        super().__init__(message)
        self.whole_service = whole_service


# Words in a provider's 400 answer that mean our settings are wrong, not the recipient.
_CONFIGURATION_WORDS = (
    "template",
    "personalisation",
    "api key",
    "team-only",
    "trial mode",
    "not allowed to send",
    "service is",
)


def _configuration_error(error: Any) -> bool:
    """Whether a provider's 400 answer is about our settings (see _CONFIGURATION_WORDS)."""
    try:
        found = error.message
    except Exception:  # the answer could not be read: treat it as the recipient's
        return False
    text = json.dumps(found).lower() if not isinstance(found, str) else found.lower()
    return any(word in text for word in _CONFIGURATION_WORDS)


class Notifier(Protocol):
    # A backend may also say how long one call can wait (`timeout`, seconds, for connecting
    # and again for the answer): a claimed row is held at least twice that before a send.

    async def wait_for_turn(self) -> None:
        """Until the provider's rate limit lets one more send go (called before the lease
        is checked, so the wait never eats into the time a send may take)."""
        ...

    async def send(self, message: Outgoing) -> str: ...

    async def lookup(self, reference: uuid.UUID) -> str | None: ...


class OutboxNotifier:
    timeout = 10.0

    def __init__(self, sessions: async_sessionmaker[AsyncSession]):
        self.sessions = sessions

    async def wait_for_turn(self) -> None:
        return None  # no provider, no limit

    async def send(self, message: Outgoing) -> str:
        text = f"{message.subject}\n\n{message.body}" if message.subject else message.body
        async with self.sessions() as db:
            await db.execute(
                insert(models.OutboxEntry).values(
                    reference=message.reference,
                    channel=message.channel,
                    template=message.template,
                    recipient=message.recipient,
                    body=text,
                )
            )
            await db.commit()
        return "created"

    async def lookup(self, reference: uuid.UUID) -> str | None:
        async with self.sessions() as db:
            found = (
                await db.execute(
                    select(models.OutboxEntry.id)
                    .where(models.OutboxEntry.reference == reference)
                    .limit(1)
                )
            ).first()
        return "created" if found else None


class NotifyNotifier:
    """GOV.UK Notify. The client is synchronous (requests): calls run in this notifier's own
    threads, as many as a sweep sends at once, with a connection each kept open."""

    THREADS = 16  # the sweep's parallel sends

    def __init__(self, settings: Settings, templates: dict[str, str], timeout: float = 10):
        from notifications_python_client.notifications import NotificationsAPIClient
        from requests.adapters import HTTPAdapter

        self.timeout = float(timeout)
        self.limiter: ProviderRateLimit | None = None
        self.client: Any = NotificationsAPIClient(  # type: ignore[no-untyped-call]
            settings.notify_api_key, base_url=settings.notify_base_url, timeout=timeout
        )
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.THREADS)
        for scheme in ("https://", "http://"):
            self.client.request_session.mount(scheme, adapter)
        self.templates = templates
        self._threads = ThreadPoolExecutor(self.THREADS, thread_name_prefix="notify")

    async def _in_thread(self, call: Callable[[T], R], argument: T) -> R:
        return await asyncio.get_running_loop().run_in_executor(self._threads, call, argument)

    def _template_id(self, message: Outgoing) -> str:
        key = f"{message.template}.{message.channel}"
        return self.templates.get(key) or self.templates.get(message.channel) or ""

    async def wait_for_turn(self) -> None:
        if self.limiter is not None:
            await self.limiter.acquire()

    async def send(self, message: Outgoing) -> str:
        return await self._in_thread(self._send, message)

    def _send(self, message: Outgoing) -> str:
        from notifications_python_client.errors import APIError, HTTPError

        personalisation: dict[str, Any] = {"body": message.body, "subject": message.subject or ""}
        reference = str(message.reference)
        try:
            if message.channel == "sms":
                answer = self.client.send_sms_notification(
                    phone_number=message.recipient,
                    template_id=self._template_id(message),
                    personalisation=personalisation,
                    reference=reference,
                )
            elif message.channel == "email":
                answer = self.client.send_email_notification(
                    email_address=message.recipient,
                    template_id=self._template_id(message),
                    personalisation=personalisation,
                    reference=reference,
                )
            else:
                lines = message.recipient.split("\n")
                address = {f"address_line_{i + 1}": line for i, line in enumerate(lines[:7])}
                answer = self.client.send_letter_notification(
                    template_id=self._template_id(message),
                    personalisation={**address, **personalisation},
                    reference=reference,
                )
        except HTTPError as error:
            if getattr(error, "response", None) is None:
                # No answer at all (a timeout, a dropped connection; the client reports these
                # as 503): the provider may have it.
                raise ProviderUnsure("no answer from the provider") from None
            status = getattr(error, "status_code", 0) or 0
            if status in (401, 403):
                raise ProviderMisconfigured(
                    f"provider refused our credentials ({status})", whole_service=True
                ) from None
            if status == 400 and _configuration_error(error):
                raise ProviderMisconfigured(
                    "provider refused our settings (400)", whole_service=False
                ) from None
            if status == 400:
                raise PermanentFailure(f"provider refused ({status})") from None
            raise TemporaryFailure(f"provider error ({status})") from None
        except APIError:
            raise ProviderUnsure("no answer from the provider") from None
        except Exception as error:  # requests' timeouts and connection errors
            raise ProviderUnsure(type(error).__name__) from None
        return str((answer or {}).get("status") or "created")

    async def lookup(self, reference: uuid.UUID) -> str | None:
        return await self._in_thread(self._lookup, reference)

    def _lookup(self, reference: uuid.UUID) -> str | None:
        from notifications_python_client.errors import HTTPError

        try:
            found = self.client.get_all_notifications(reference=str(reference))
        except HTTPError as error:
            status = getattr(error, "status_code", 0) or 0
            if getattr(error, "response", None) is not None and status in (401, 403):
                # Our key refused: an outage, not "no answer" (which would count against
                # the message until it failed).
                raise ProviderMisconfigured(
                    f"provider refused our credentials ({status})", whole_service=True
                ) from None
            raise ProviderUnsure(type(error).__name__) from None
        except Exception as error:
            raise ProviderUnsure(type(error).__name__) from None
        items = (found or {}).get("notifications") or []
        return str(items[0].get("status") or "created") if items else None


class ProviderRateLimit:
    """Notify's 3,000 messages a minute, shared by every worker through a Redis counter."""

    def __init__(self, redis: Any, per_minute: int = 3000):
        self.redis = redis
        self.per_minute = per_minute

    async def acquire(self) -> None:
        while True:
            now = time.time()
            key = f"notify:sent:{int(now // 60)}"
            count = await self.redis.incr(key)
            if count == 1:
                await self.redis.expire(key, 120)
            if count <= self.per_minute:
                return
            await asyncio.sleep(60 - now % 60 + 0.01)


def missing_templates(catalogue: Catalogue, templates: dict[str, str]) -> list[str]:
    """The catalogue's messages (`template.channel`) with no provider template id, either
    their own or their channel's."""
    missing = []
    for name, texts in sorted(catalogue.contact.templates.items()):
        for channel in sorted(texts or {}):
            if not (templates.get(f"{name}.{channel}") or templates.get(channel)):
                missing.append(f"{name}.{channel}")
    return missing


def _template_ids(settings: Settings) -> dict[str, str]:
    try:
        templates = json.loads(settings.notify_template_ids or "{}")
    except ValueError:
        raise RuntimeError("NOTIFY_TEMPLATE_IDS is not valid JSON") from None
    if not isinstance(templates, dict):
        raise RuntimeError("NOTIFY_TEMPLATE_IDS must be a JSON object")
    return {str(k): str(v) for k, v in templates.items() if v}


def check_notifier_settings(settings: Settings, catalogue: Catalogue) -> str | None:
    """Why these settings cannot make a notifier that sends every message the catalogue
    uses, or None."""
    if settings.notifier not in ("notify", "outbox"):
        return "TRIAGE_NOTIFIER must be notify or outbox"
    # Every survey link carries the service's address: it must be as discreet as the
    # templates (the token after it is random letters and is not checked).
    telling = words_found(settings.base_url, catalogue.contact.sensitive_words)
    if telling:
        return (
            "TRIAGE_BASE_URL must not contain the sensitive word "
            f"'{telling[0]}': every survey link sent to a victim carries it"
        )
    if settings.notifier == "outbox":
        if settings.is_production:
            return "the outbox notifier is refused in production: set TRIAGE_NOTIFIER=notify"
        return None
    if not settings.notify_api_key:
        return "NOTIFY_API_KEY must be set for the notify notifier"
    if not settings.secret_key:
        # The workers issue staff set-up links (services/setup_emails): hashed under it.
        return "TRIAGE_SECRET_KEY must be set: the workers email staff set-up links"
    if settings.is_production and not settings.base_url.startswith("https://"):
        # A set-up email carries a live link: never to localhost (the default) or over http.
        return "TRIAGE_BASE_URL must be the service's https:// address: set-up emails link to it"
    try:
        templates = _template_ids(settings)
    except RuntimeError as error:
        return str(error)
    missing = missing_templates(catalogue, templates)
    # The staff set-up email (services/setup_emails), its own template or the email channel's.
    if not (templates.get(f"{SETUP_TEMPLATE}.email") or templates.get("email")):
        missing.append(f"{SETUP_TEMPLATE}.email")
    if missing:
        return "NOTIFY_TEMPLATE_IDS has no template id for: " + ", ".join(missing)
    return None


def make_notifier(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], catalogue: Catalogue
) -> Notifier:
    problem = check_notifier_settings(settings, catalogue)
    if problem:
        raise RuntimeError(problem)
    if settings.notifier == "notify":
        notifier = NotifyNotifier(settings, _template_ids(settings))
        if settings.redis_url and settings.notify_per_minute:
            from redis.asyncio import Redis

            # Shared by every worker: Notify's limit is per service, not per process.
            notifier.limiter = ProviderRateLimit(
                Redis.from_url(settings.redis_url), settings.notify_per_minute
            )
        return notifier
    return OutboxNotifier(sessions)
