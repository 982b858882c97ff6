"""The Jinja environment for every page: our templates, and GOV.UK Frontend's macros (the
govuk-frontend-jinja port) under `govuk_frontend_jinja/`. Autoescaping is on for everything:
nothing a person typed can become markup."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, PrefixLoader
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from triage.web.assets import asset_version
from triage.web.staff.navigation import staff_nav

TEMPLATES = Path(__file__).parent / "templates"
LONDON = ZoneInfo("Europe/London")


def london_time(value: datetime | None, form: str = "%-d %b %Y %H:%M") -> str:
    """Times as staff read them: Europe/London, day first."""
    if value is None:
        return ""
    return value.astimezone(LONDON).strftime(form)


def time_left(due: datetime | None, now: datetime) -> str:
    """ "3 hours 5 minutes left", or "overdue by 2 hours": words, never colour alone."""
    if due is None:
        return "no deadline"
    seconds = int((due - now).total_seconds())
    span = abs(seconds)
    days, rest = divmod(span, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = []
    if days:
        parts.append(f"{days} day{'s' if days != 1 else ''}")
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if not days and (minutes or not parts):
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    words = " ".join(parts[:2])
    return f"{words} left" if seconds >= 0 else f"overdue by {words}"


def make_environment() -> Environment:
    env = Environment(
        loader=ChoiceLoader(
            [
                FileSystemLoader(TEMPLATES),
                PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")}),
            ]
        ),
        autoescape=True,
        extensions=["jinja2.ext.do"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["london"] = london_time
    env.globals["staff_nav"] = staff_nav
    env.globals["time_left"] = time_left
    env.globals["asset_version"] = asset_version
    return env


def template_config() -> TemplateConfig[Any]:
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(make_environment()))
