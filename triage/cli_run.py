"""`triage serve` (production web server) and `triage dev` (everything on one machine)."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

DATA_DIR = Path(".triage-data")


@click.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Web processes (the rate limit and sessions are in Redis, so any number).",
)
def serve(host: str, port: int, workers: int) -> None:
    """Run the web app against DATABASE_URL and REDIS_URL (production settings)."""
    import uvicorn

    from triage.settings import get_settings

    uvicorn.run(
        "triage.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_config=None,
        # The client's address (the public forms' limit is per address) from X-Forwarded-For
        # only when the request came through one of these proxies.
        proxy_headers=True,
        forwarded_allow_ips=get_settings().trusted_proxies,
        server_header=False,
    )


def _dev_secret(name: str = "secret") -> str:
    """A random secret kept under the data folder, the same on every `triage dev` there."""
    path = DATA_DIR / name
    if not path.exists():
        DATA_DIR.mkdir(exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


@click.command()
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--demo-referrals",
    default=200,
    show_default=True,
    type=click.IntRange(0),
    help="Demo referrals to load into an empty database.",
)
def dev(port: int, demo_referrals: int) -> None:
    """Start PostgreSQL and Redis (embedded unless DATABASE_URL/REDIS_URL are set), migrate,
    load the Kent catalogue and demo data, and run the web app. Ctrl-C stops everything.

    The migrations run as the owner (the embedded server's superuser, or
    MIGRATION_DATABASE_URL), everything else as the application's role (DATABASE_URL)."""
    from triage.devstack import EmbeddedStack, serve_command

    stack = None
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        click.echo(f"starting embedded PostgreSQL and Redis under {DATA_DIR}/ ...")
        stack = EmbeddedStack(DATA_DIR.resolve()).start()
        os.environ["DATABASE_URL"] = stack.database_url
        os.environ["MIGRATION_DATABASE_URL"] = stack.owner_url
        os.environ["REDIS_URL"] = stack.redis_url
    os.environ.setdefault("TRIAGE_ENV", "dev")
    os.environ.setdefault("TRIAGE_SECRET_KEY", _dev_secret())
    os.environ.setdefault("TRIAGE_AUDIT_KEY", _dev_secret("audit-key"))
    os.environ.setdefault("TRIAGE_LOG_FORMAT", "console")
    os.environ.setdefault("TRIAGE_BASE_URL", f"http://127.0.0.1:{port}")
    _write_env_file()
    from triage.settings import get_settings

    get_settings.cache_clear()
    children: list[subprocess.Popen[bytes]] = []

    def stop(*_: Any) -> None:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        ENV_FILE.unlink(missing_ok=True)
        if stack is not None:
            stack.stop()

    def on_term(*_: Any) -> None:
        stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    # Ctrl-C stops everything, even when started from a shell that ignores SIGINT for
    # background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        key = _prepare(demo_referrals)
        children.append(subprocess.Popen(serve_command(port)))
        _wait_ready(port, children[0])
        # The workers and beat: contact steps, messages, alerts, the audit seal.
        children.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "triage.cli",
                    "worker",
                    "--concurrency",
                    "2",
                    "--loglevel",
                    "WARNING",
                ]
            )
        )
        children.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "triage.cli",
                    "beat",
                    "--schedule",
                    str(DATA_DIR / "beat-schedule"),
                    "--loglevel",
                    "WARNING",
                ]
            )
        )
        _banner(port, key)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        click.echo("a process stopped; shutting down", err=True)
    except KeyboardInterrupt:
        click.echo("\nstopping ...")
    finally:
        stop()


ENV_FILE = DATA_DIR / "env"
ENV_KEYS = (
    "DATABASE_URL",
    "MIGRATION_DATABASE_URL",
    "REDIS_URL",
    "TRIAGE_ENV",
    "TRIAGE_SECRET_KEY",
    "TRIAGE_AUDIT_KEY",
)


def _write_env_file() -> None:
    """So that `triage outbox list`, `triage clock advance` and friends, run in another
    terminal, reach the servers `triage dev` started. Removed when `triage dev` stops."""
    lines = [f"{key}={os.environ[key]}" for key in ENV_KEYS if os.environ.get(key)]
    ENV_FILE.write_text("\n".join(lines) + "\n")
    ENV_FILE.chmod(0o600)


def load_dev_env() -> None:
    """Fill unset settings from a running `triage dev` in this folder (dev only)."""
    if os.environ.get("DATABASE_URL") or not ENV_FILE.exists():
        return
    for line in ENV_FILE.read_text().splitlines():
        key, _, value = line.partition("=")
        if key in ENV_KEYS:
            os.environ.setdefault(key, value)


def _prepare(demo_count: int) -> str:
    from sqlalchemy import func, select

    from db.migrate import upgrade
    from db.models import ApiClient, Referral
    from triage.cli_admin import load_demo, run_with_session
    from triage.services.api_keys import create_client, create_key
    from triage.settings import get_settings

    settings = get_settings()
    upgrade(settings.migration_url)

    async def demo_client(db: Any) -> tuple[str, int]:
        exists = (
            await db.execute(select(ApiClient).where(ApiClient.name == "Demo Police"))
        ).scalar()
        if exists is None:
            await create_client(db, "Demo Police", "police")
        key = await create_key(db, settings.secret_key, "Demo Police")
        referrals = (await db.execute(select(func.count()).select_from(Referral))).scalar_one()
        return key, referrals

    key, existing = run_with_session(demo_client)
    if existing == 0 and demo_count:
        click.echo(load_demo(demo_count, "Demo Police"))
    from triage.demo_staff import ensure_demo_staff
    from triage.services.catalogues import current_catalogue

    known = frozenset(current_catalogue().services)
    global _DEMO_LOGINS
    _DEMO_LOGINS = run_with_session(lambda db: ensure_demo_staff(db, settings.secret_key, known))
    return key


_DEMO_LOGINS: list[Any] = []


def _wait_ready(port: int, server: subprocess.Popen[bytes]) -> None:
    from triage.devstack import wait_ready

    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", server)
    except RuntimeError as error:
        raise click.ClickException(str(error)) from None


def _demo_password() -> str:
    from triage.demo_staff import DEMO_PASSWORD

    return DEMO_PASSWORD


def _demo_logins() -> str:
    return "\n".join(
        f"  {login.role:<13} {login.email:<36} TOTP secret {login.totp_secret}"
        for login in _DEMO_LOGINS
    )


def _banner(port: int, key: str) -> None:
    base = f"http://127.0.0.1:{port}"
    click.echo(f"""
triage is running (dev mode; the clock can be moved with `triage clock advance 2d`).

  API:        {base}/api/v1/referrals
  API docs:   {base}/schema
  Outbox:     {base}/dev/outbox   (messages "sent" by the outbox notifier; also
              `triage outbox list`)
  Calls due:  `triage contacts calls-due`, then `triage contacts outcome STEP_ID no_answer`
  Ready:      {base}/readyz

Demo API key for client "Demo Police" (police). Copy it now; it is not shown again:
{key}

Public referral forms: {base}/refer  (a victim's own referral; a professional's at
{base}/refer/professional)

Staff pages: {base}/staff/  (demo logins, for this demo only; password for each:
"{_demo_password()}"; add the TOTP secret to an authenticator app, or get the code with
`python -c "import pyotp; print(pyotp.TOTP('SECRET').now())"`)
{_demo_logins()}

Try:
  curl -s -X POST {base}/api/v1/referrals -H "Authorization: Bearer <key>" \\
       -H "Content-Type: application/json" -d @example-referral.json

Ctrl-C stops everything this command started.
""")
