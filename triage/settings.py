"""Configuration from the environment, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

ENVIRONMENTS = ("production", "dev", "test")
MIN_SECRET_BYTES = 32  # in production: the HMAC key of every API key


class SettingsError(ValueError):
    """Settings the service refuses to start with."""


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


@dataclass(frozen=True)
class Settings:
    env: str = "production"  # production | dev | test
    # The application's role: the web app, the workers and the operator commands.
    database_url: str = ""
    # The owner role that runs the migrations (`triage db upgrade`); DATABASE_URL when unset,
    # for a single-role setup, which leaves the audit trail open to the application's role.
    migration_database_url: str = ""
    # HMAC-SHA-256 key of the audit digests: held by the workers that seal and by whoever
    # verifies, never by the database (deploy/OPERATIONS.md).
    audit_key: str = ""
    redis_url: str = ""
    secret_key: str = ""
    catalogue_path: str | None = None
    notifier: str = "outbox"
    notify_api_key: str = ""
    notify_base_url: str = "https://api.notifications.service.gov.uk"
    # Where people reach the pages: set-up links are made with it.
    base_url: str = "http://localhost:8000"
    notify_callback_token: str = ""
    # JSON: {"introduction.sms": "<template id>", ...} or {"sms": "<id>", "email": ..., ...}
    notify_template_ids: str = ""
    # GOV.UK Notify's limit is 3,000 messages a minute per service; 0 turns our limit off
    # (a stub provider in benchmarks).
    notify_per_minute: int = 3000
    # How long a claimed step or message is held before another sweep may take it again.
    claim_lease_seconds: int = 120
    # Retries of a task after a database or network error (with backoff up to two minutes),
    # before it is given up; the next sweep takes its rows again.
    task_max_retries: int = 8
    single_body_limit: int = 1024 * 1024
    # Per web process: the plain asyncpg pool for keys and intake; half as many (and a
    # quarter more at peaks) for the other endpoints; so 28 at most for 16. Connections open
    # only when needed (two web processes a container stay well under PostgreSQL's 100).
    db_pool_size: int = 16
    # How long a web process trusts a key it has checked: a revoked key, or a changed limit,
    # takes effect within this many seconds. 0 checks the database on every request.
    key_cache_seconds: int = 1
    # Failed key checks a minute from one client address before it is answered 429.
    failed_key_checks_per_minute: int = 60
    # Failed staff sign-ins (password or code) from one address in a minute, every account.
    sign_in_failures_per_minute: int = 10
    log_json: bool = True
    # The public pages' "Exit this page" button (and three presses of Shift) goes here: a
    # neutral site that gives nothing away in the browser's history.
    exit_url: str = "https://www.bbc.co.uk/weather"
    # The hub's phone number, shown on the public pages (errors, the accessibility statement,
    # the privacy notice). The default is an Ofcom drama number that reaches nobody: set
    # TRIAGE_HUB_PHONE in production.
    hub_phone: str = "0306 999 0123"
    # Answers sent to the public forms from one address in a minute (each page, each send),
    # counted in Redis under a daily-changing HMAC of the address: a refuge or a library
    # shares one address, so the limit is high; there is no limit across addresses.
    public_posts_per_minute: int = 30
    # The proxies whose X-Forwarded-For gives the client's address (uvicorn's
    # forwarded_allow_ips: addresses, comma separated); from anyone else it is ignored.
    trusted_proxies: str = "127.0.0.1"

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    def web_problems(self) -> list[str]:
        """Why the web app must not start with these settings (none when it may)."""
        problems = []
        if self.env not in ENVIRONMENTS:
            problems.append(f"TRIAGE_ENV must be one of {', '.join(ENVIRONMENTS)}")
        if not self.database_url or not self.redis_url:
            problems.append("DATABASE_URL and REDIS_URL must be set (or use `triage dev`)")
        if not self.secret_key:
            problems.append("TRIAGE_SECRET_KEY must be set: API keys are hashed under it")
        elif self.is_production and len(self.secret_key.encode()) < MIN_SECRET_BYTES:
            problems.append(
                f"TRIAGE_SECRET_KEY must be at least {MIN_SECRET_BYTES} bytes in production"
            )
        if self.is_production and self.hub_phone == Settings.hub_phone:
            # The public pages give this number to people in danger: never the made-up one.
            problems.append("TRIAGE_HUB_PHONE must be set in production: the hub's real number")
        return problems

    @property
    def migration_url(self) -> str:
        return self.migration_database_url or self.database_url


def load_settings() -> Settings:
    env = os.environ.get("TRIAGE_ENV", "production")
    if env not in ENVIRONMENTS:
        # Anything else is refused, never read as "not production": `prod` once let the clock
        # move and the outbox notifier stand in for the real one.
        raise SettingsError(f"TRIAGE_ENV must be one of {', '.join(ENVIRONMENTS)} (not {env!r})")
    return Settings(
        env=env,
        database_url=os.environ.get("DATABASE_URL", ""),
        migration_database_url=os.environ.get("MIGRATION_DATABASE_URL", ""),
        audit_key=os.environ.get("TRIAGE_AUDIT_KEY", ""),
        redis_url=os.environ.get("REDIS_URL", ""),
        secret_key=os.environ.get("TRIAGE_SECRET_KEY", ""),
        catalogue_path=os.environ.get("TRIAGE_CATALOGUE") or None,
        notifier=os.environ.get("TRIAGE_NOTIFIER", "outbox"),
        notify_api_key=os.environ.get("NOTIFY_API_KEY", ""),
        notify_base_url=os.environ.get("NOTIFY_BASE_URL", Settings.notify_base_url),
        base_url=os.environ.get("TRIAGE_BASE_URL", Settings.base_url).rstrip("/"),
        notify_callback_token=os.environ.get("NOTIFY_CALLBACK_TOKEN", ""),
        notify_template_ids=os.environ.get("NOTIFY_TEMPLATE_IDS", ""),
        notify_per_minute=_int("NOTIFY_PER_MINUTE", 3000),
        claim_lease_seconds=_int("TRIAGE_CLAIM_LEASE_SECONDS", 120),
        task_max_retries=_int("TRIAGE_TASK_MAX_RETRIES", 8),
        db_pool_size=_int("TRIAGE_DB_POOL_SIZE", 16),
        key_cache_seconds=_int("TRIAGE_KEY_CACHE_SECONDS", 1),
        failed_key_checks_per_minute=_int("TRIAGE_FAILED_KEY_CHECKS_PER_MINUTE", 60),
        sign_in_failures_per_minute=_int("TRIAGE_SIGN_IN_FAILURES_PER_MINUTE", 10),
        log_json=os.environ.get("TRIAGE_LOG_FORMAT", "json" if env == "production" else "console")
        == "json",
        exit_url=os.environ.get("TRIAGE_EXIT_URL", Settings.exit_url),
        hub_phone=os.environ.get("TRIAGE_HUB_PHONE", Settings.hub_phone),
        public_posts_per_minute=_int("TRIAGE_PUBLIC_POSTS_PER_MINUTE", 30),
        trusted_proxies=os.environ.get("TRIAGE_TRUSTED_PROXIES", Settings.trusted_proxies),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
