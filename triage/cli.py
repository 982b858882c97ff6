"""The `triage` command."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from triage.catalogue.loader import load_catalogue
from triage.domain.catalogue import Catalogue, CatalogueError
from triage.domain.problems import InvalidInput, problem_body


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Victim referral triage and case tracking."""
    from triage.cli_run import load_dev_env
    from triage.settings import SettingsError, get_settings

    load_dev_env()
    get_settings.cache_clear()
    try:
        get_settings()
    except SettingsError as error:
        click.echo(str(error), err=True)
        sys.exit(2)


def _parse_time(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as error:
        raise click.BadParameter("must be ISO 8601, such as 2026-12-24T10:00:00Z") from error
    if parsed.tzinfo is None:
        raise click.BadParameter("must carry an offset (Z or +01:00)")
    return parsed.astimezone(UTC)


def _load(path: str | None) -> Catalogue:
    try:
        return load_catalogue(path)
    except CatalogueError as error:
        click.echo(str(error), err=True)
        sys.exit(2)


def _read_json(file: str) -> Any:
    text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        body = {
            "type": "https://triage.example/problems/malformed",
            "title": "Malformed JSON",
            "status": 400,
            "detail": f"line {error.lineno} column {error.colno}: {error.msg}",
            "errors": [],
        }
        click.echo(json.dumps(body, indent=2))
        sys.exit(1)


@main.command()
@click.argument("file")
@click.option("--received-at", help="Time of receipt, ISO 8601 with offset (default: now).")
@click.option(
    "--source",
    type=click.Choice(["police", "professional", "self"]),
    default="police",
    show_default=True,
    help="Who referred: the API client's type, or self.",
)
@click.option("--catalogue", "catalogue_path", help="Catalogue YAML (default: Kent).")
@click.option(
    "--appropriate-adult",
    is_flag=True,
    help="FILE is an Appropriate Adult request, not a victim referral.",
)
def explain(
    file: str,
    received_at: str | None,
    source: str,
    catalogue_path: str | None,
    appropriate_adult: bool,
) -> None:
    """Triage a referral body (JSON as in api.md; - for stdin) and print the decision.

    Exit 0 with the decision; exit 1 with the problem+json body the API would answer.
    """
    from triage.domain.appropriate_adult import decide_aa, validate_aa_request
    from triage.domain.engine import triage
    from triage.domain.validation import validate_referral

    catalogue = _load(catalogue_path)
    when = _parse_time(received_at)
    body = _read_json(file)
    try:
        if appropriate_adult:
            request = validate_aa_request(body, when, catalogue)
            out = decide_aa(request, when, catalogue).to_api()
        else:
            referral = validate_referral(body, source, when, catalogue)
            out = triage(referral, source, when, catalogue).to_api()
    except InvalidInput as invalid:
        click.echo(json.dumps(problem_body(invalid.problems, invalid.title), indent=2))
        sys.exit(1)
    click.echo(json.dumps(out, indent=2))


@main.group()
def catalogue() -> None:
    """Check or show a service catalogue."""


@catalogue.command("check")
@click.argument("path", required=False)
def catalogue_check(path: str | None) -> None:
    """Validate a catalogue file; exit 2 listing every problem."""
    loaded = _load(path)
    click.echo(
        f"ok: {loaded.name} ({loaded.id}), {len(loaded.services)} services, "
        f"{len(loaded.allocation_rules)} allocation and {len(loaded.signpost_rules)} "
        f"signpost rules, {len(loaded.districts)} districts, {loaded.version}"
    )


@catalogue.command("show")
@click.argument("path", required=False)
def catalogue_show(path: str | None) -> None:
    """Print the services, rules and areas as readable tables."""
    from triage.catalogue.show import render_catalogue

    click.echo(render_catalogue(_load(path)))


def _register() -> None:
    from triage.cli_admin import register
    from triage.cli_run import dev, serve
    from triage.cli_workers import register as register_workers

    register(main)
    register_workers(main)
    main.add_command(serve)
    main.add_command(dev)


_register()


if __name__ == "__main__":
    main()
