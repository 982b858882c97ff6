"""The service catalogue as a typed, validated model.

`parse_catalogue` takes the parsed YAML (plain data) and returns a `Catalogue`, or raises
`CatalogueError` listing every problem, each naming the file, the entry and what is wrong.
Reading the file is triage/catalogue/loader.py's job: this module does no I/O.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from triage.domain import vocabulary as v
from triage.domain.calendar import WorkingCalendar, parse_clock
from triage.domain.catalogue_words import DISCREETPLACEHOLDERS, template_problems
from triage.domain.facts import (
    APPROPRIATE_ADULT_FACTS,
    APPROPRIATE_ADULT_VALUES,
    FACT_VALUES,
    VICTIM_FACTS,
)
from triage.domain.retention_catalogue import RetentionPolicy, parse_retention
from triage.domain.rules import Condition, Named, RuleContext, RuleError, compile_condition
from triage.domain.safe_times import DAY_INDEX, SafeTimes, SafeWindow
from triage.domain.statuses import CLOSURE_REASONS
from triage.domain.survey_catalogue import SurveyPolicy, parse_surveys


class CatalogueError(ValueError):
    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: invalid catalogue:\n" + "\n".join(f"  {p}" for p in problems))


@dataclass(frozen=True)
class Service:
    code: str
    name: str
    provider: str
    mode: str  # allocate | signpost
    group: str  # core | specialist | national
    who_for: str
    waiting_list: bool = False
    kind: str = "victim"  # victim | appropriate_adult


@dataclass(frozen=True)
class Rule:
    target: str
    reason: str
    when: Condition | None
    path: str


@dataclass(frozen=True)
class PriorityLevel:
    priority: str
    reason: str
    when: Condition | None
    elapsed_hours: int | None
    working_days: int | None


@dataclass(frozen=True)
class District:
    code: str
    local_authority: str
    area: str
    also: tuple[str, ...]

    @property
    def straddles(self) -> bool:
        return bool(self.also)


@dataclass(frozen=True)
class PlanStep:
    number: int
    kind: str  # call | close
    at_triage: bool
    after: str | None  # previous | first
    working_days: int
    other_half: bool
    message_template: str | None
    message_channels: tuple[str, ...]
    closure_reason: str | None


@dataclass(frozen=True)
class ContactPolicy:
    sender_name: str
    hub_phone: str
    default_safe_times: SafeTimes
    half_day_split: time
    plan: tuple[PlanStep, ...]
    placeholders: tuple[str, ...]
    sensitive_words: tuple[str, ...]
    templates: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class AppropriateAdultRule:
    reason: str
    when: Condition
    signpost_to: str | None  # None: allocate


@dataclass(frozen=True)
class AppropriateAdultPolicy:
    service: str
    juvenile_from: int
    juvenile_to: int
    attend_within: timedelta
    office_days: frozenset[int]
    office_from: time
    office_to: time
    office_on_bank_holidays: bool
    custody_suites: Mapping[str, str]  # suite name -> council
    rules: tuple[AppropriateAdultRule, ...]


@dataclass(frozen=True)
class Catalogue:
    id: str
    name: str
    version: str
    zone: ZoneInfo
    calendar: WorkingCalendar
    end_of_working_day: time
    reference_prefixes: Mapping[str, str]
    reference_min_digits: int
    services: Mapping[str, Service]
    signpost_targets: Mapping[str, str]
    area_names: Mapping[str, str]
    districts: Mapping[str, District]
    explicit_consent: tuple[Rule, ...]
    allocation_rules: tuple[Rule, ...]
    primary_order: tuple[str, ...]
    fallback: Rule
    signpost_rules: tuple[Rule, ...]
    enhanced_rights: tuple[Rule, ...]
    priorities: tuple[PriorityLevel, ...]
    flag_rules: tuple[Rule, ...]
    contact: ContactPolicy
    surveys: SurveyPolicy
    retention: RetentionPolicy
    appropriate_adult: AppropriateAdultPolicy
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)


def catalogue_version(data: Any) -> str:
    """`sha256:` of the canonical JSON of the parsed content: comments and layout don't count."""
    canonical = json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


_CODE = re.compile(r"^[a-z][a-z0-9-]*$")


class _Parser:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def section(self, parent: Any, key: str, path: str, kind: type = dict) -> Any:
        value = parent.get(key) if isinstance(parent, Mapping) else None
        if not isinstance(value, kind):
            self.fail(f"{path}{key}", f"missing or not a {'mapping' if kind is dict else 'list'}")
            return kind()
        return value

    def text(
        self, parent: Mapping[str, Any], key: str, path: str, default: str | None = None
    ) -> str:
        value = parent.get(key, default)
        if not isinstance(value, str) or not value.strip():
            self.fail(f"{path}.{key}", "missing or not text")
            return ""
        return value

    def mapping(self, value: Any, path: str, *, required: bool = False) -> Mapping[Any, Any]:
        """`value` when it is a mapping, else {} (a problem unless absent and optional)."""
        if isinstance(value, Mapping):
            return value
        if value is not None or required:
            self.fail(path, "missing or not a mapping" if value is None else "must be a mapping")
        return {}

    def items(self, value: Any, path: str, *, required: bool = False) -> list[Any]:
        """`value` when it is a list, else [] (a problem unless absent and optional)."""
        if isinstance(value, list):
            return value
        if value is not None or required:
            self.fail(path, "missing or not a list" if value is None else "must be a list")
        return []

    def integer(self, value: Any, path: str, default: int | None = None, minimum: int = 0) -> int:
        if value is None:
            if default is None:
                self.fail(path, "is required")
                return 0
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(path, f"must be a whole number, {minimum} or more")
            return default or 0
        return value

    def number(
        self, value: Any, path: str, default: float | None = None, minimum: float = 0
    ) -> float:
        if value is None:
            if default is None:
                self.fail(path, "is required")
                return 0.0
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            self.fail(path, f"must be a number, {minimum:g} or more")
            return default or 0.0
        return float(value)

    def name(self, value: Any, path: str, default: str) -> str:
        """A scalar setting that must be text (a time zone, a country code)."""
        if value is None:
            return default
        if not isinstance(value, str):
            self.fail(path, "must be text")
            return default
        return value

    def clock(self, value: Any, path: str) -> time:
        if value is None:
            self.fail(path, "is required, as HH:MM")
            return time(0, 0)
        try:
            return parse_clock(str(value))
        except ValueError as error:
            self.fail(path, f"bad time '{value}': {error}")
            return time(0, 0)

    def condition(self, raw: Any, path: str, context: RuleContext) -> Condition | None:
        try:
            return compile_condition(raw, path, context)
        except RuleError as error:
            self.fail(error.path, error.message)
            return None


def parse_catalogue(data: Any, source: str = "catalogue") -> Catalogue:
    p = _Parser()
    if not isinstance(data, Mapping):
        raise CatalogueError(source, ["the file must hold a mapping at the top level"])

    meta = p.section(data, "catalogue", "")
    zone_name = p.name(meta.get("timezone"), "catalogue.timezone", "Europe/London")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        p.fail("catalogue.timezone", f"unknown time zone '{zone_name}'")
        zone = ZoneInfo("Europe/London")
    cal = p.mapping(meta.get("calendar"), "catalogue.calendar")
    calendar = WorkingCalendar(
        p.name(cal.get("country"), "catalogue.calendar.country", "GB"),
        p.name(cal.get("subdivision"), "catalogue.calendar.subdivision", "ENG"),
        zone,
    )
    try:
        calendar.is_working_day(date(2026, 1, 2))
    except (NotImplementedError, KeyError, ValueError, AttributeError) as error:
        p.fail("catalogue.calendar", f"unknown country or subdivision: {error}")
    end_of_day = p.clock(meta.get("end_of_working_day"), "catalogue.end_of_working_day")

    refs = p.section(data, "references", "")
    prefixes = {
        "victim": str(refs.get("victim", "")),
        "appropriate_adult": str(refs.get("appropriate_adult", "")),
    }
    for kind, prefix in prefixes.items():
        if not re.match(r"^[A-Z]{2,5}$", prefix):
            p.fail(f"references.{kind}", "must be 2 to 5 capital letters")
    min_digits = p.integer(refs.get("min_digits"), "references.min_digits", 6, 1)

    # Services
    services: dict[str, Service] = {}
    for index, raw in enumerate(p.section(data, "services", "", list)):
        path = f"services[{index}]"
        if not isinstance(raw, Mapping):
            p.fail(path, "must be a mapping")
            continue
        code = str(raw.get("code", ""))
        path = f"services[{index}] ({code or 'no code'})"
        if not _CODE.match(code):
            p.fail(path, "code must be lower-case letters, digits and hyphens")
            continue
        if code in services:
            p.fail(path, f"duplicate service code '{code}'")
            continue
        mode = raw.get("mode")
        if mode not in ("allocate", "signpost"):
            p.fail(path, "mode must be allocate or signpost")
        services[code] = Service(
            code=code,
            name=p.text(raw, "name", path),
            provider=p.text(raw, "provider", path),
            mode=str(mode),
            group=p.text(raw, "group", path),
            who_for=p.text(raw, "for", path),
            waiting_list=bool(raw.get("waiting_list", False)),
            kind=str(raw.get("kind", "victim")),
        )
    targets: dict[str, str] = {}
    for index, raw in enumerate(p.items(data.get("signpost_targets"), "signpost_targets")):
        code = str(raw.get("code", "")) if isinstance(raw, Mapping) else ""
        if not _CODE.match(code) or code in targets or code in services:
            p.fail(f"signpost_targets[{index}]", f"bad or duplicate code '{code}'")
            continue
        targets[code] = p.text(raw, "name", f"signpost_targets[{index}] ({code})")

    # Areas
    areas_section = data.get("areas")
    area_names: dict[str, str] = {}
    la_area: dict[str, str] = {}
    districts: dict[str, District] = {}
    if not isinstance(areas_section, Mapping) or not areas_section.get("districts"):
        p.fail("areas", "missing area table (areas.areas and areas.districts)")
    else:
        area_table = p.mapping(areas_section.get("areas"), "areas.areas", required=True)
        for code, raw in area_table.items():
            path = f"areas.areas.{code}"
            if not _CODE.match(str(code)) or code in ("outside", "unknown"):
                p.fail(path, "bad area code (outside and unknown are reserved)")
                continue
            raw = p.mapping(raw, path, required=True)
            area_names[code] = str(raw.get("name", code))
            local_authorities = p.items(
                raw.get("local_authorities"), f"{path}.local_authorities", required=True
            )
            for la in local_authorities:
                if not isinstance(la, str):
                    p.fail(f"{path}.local_authorities", "local authorities are names (text)")
                    continue
                if la in la_area:
                    p.fail(path, f"local authority '{la}' is in two areas")
                la_area[la] = code
        district_table = p.mapping(areas_section.get("districts"), "areas.districts")
        for district, raw in district_table.items():
            path = f"areas.districts.{district}"
            if not re.match(r"^[A-Z]{1,2}[0-9][0-9A-Z]?$", str(district)):
                p.fail(path, "not a postcode district")
                continue
            la = raw.get("la") if isinstance(raw, Mapping) else None
            if not isinstance(la, str) or la not in la_area:
                p.fail(path, f"local authority '{la}' is in no area")
                continue
            also = p.items(raw.get("also"), f"{path}.also")
            districts[district] = District(district, la, la_area[la], tuple(map(str, also)))

    # Rule context: fact names and the values they can take.
    values: dict[str, tuple[Any, ...]] = dict(FACT_VALUES)
    values["area"] = (*area_names, "outside", "unknown")
    values["local_authority"] = tuple(la_area)
    values["services"] = tuple(code for code, s in services.items() if s.mode == "allocate")
    context = RuleContext(facts=VICTIM_FACTS, values=values)
    _compile_named_conditions(p, data.get("conditions"), context)

    def rules(
        raw_rules: Any,
        path: str,
        key: str,
        allowed: Mapping[str, Any] | tuple[str, ...],
        required_when: bool = True,
    ) -> list[Rule]:
        out: list[Rule] = []
        if not isinstance(raw_rules, list):
            p.fail(path, "missing or not a list")
            return out
        for index, raw in enumerate(raw_rules):
            target = str(raw.get(key, "")) if isinstance(raw, Mapping) else ""
            where = f"{path}[{index}] ({key} {target or '?'})"
            if not isinstance(raw, Mapping):
                p.fail(where, "must be a mapping")
                continue
            if target not in allowed:
                p.fail(where, f"unknown {key} '{target}'")
                continue
            when = None
            if "when" in raw:
                when = p.condition(raw["when"], f"{where}.when", context)
            elif required_when:
                p.fail(where, "missing 'when'")
            out.append(Rule(target, p.text(raw, "reason", where), when, where))
        return out

    consent = p.section(data, "consent", "")
    explicit = []
    explicit_rules = p.items(
        consent.get("police_explicit_required"), "consent.police_explicit_required"
    )
    for index, raw in enumerate(explicit_rules):
        where = f"consent.police_explicit_required[{index}]"
        if not isinstance(raw, Mapping):
            p.fail(where, "must be a mapping")
            continue
        when = p.condition(raw.get("when"), f"{where}.when", context)
        if when is not None:
            explicit.append(Rule("consent.to_referral", p.text(raw, "reason", where), when, where))

    allocation = p.section(data, "allocation", "")
    allocate_codes = {
        c: s for c, s in services.items() if s.mode == "allocate" and s.kind == "victim"
    }
    allocation_rules = rules(allocation.get("rules"), "allocation.rules", "service", allocate_codes)
    primary_order = tuple(
        str(code)
        for code in p.items(
            allocation.get("primary_order"), "allocation.primary_order", required=True
        )
    )
    for code in primary_order:
        if code not in allocate_codes:
            p.fail("allocation.primary_order", f"unknown or non-allocating service '{code}'")
    fallback_raw = p.mapping(allocation.get("fallback"), "allocation.fallback", required=True)
    fallback_code = str(fallback_raw.get("service", ""))
    if fallback_code not in allocate_codes:
        p.fail("allocation.fallback", f"unknown service '{fallback_code}'")
    fallback = Rule(fallback_code, str(fallback_raw.get("reason", "")), None, "allocation.fallback")
    for rule in allocation_rules:
        if rule.target not in primary_order:
            p.fail(rule.path, "service is missing from allocation.primary_order")
    if fallback_code and fallback_code not in primary_order:
        p.fail("allocation.primary_order", f"fallback '{fallback_code}' is missing")

    signpost_codes = {c: s for c, s in services.items() if s.mode == "signpost"}
    signpost_rules = rules(
        p.mapping(data.get("signposting"), "signposting").get("rules"),
        "signposting.rules",
        "service",
        signpost_codes,
    )
    enhanced = rules(
        data.get("enhanced_rights"), "enhanced_rights", "group", v.ENHANCED_RIGHTS_GROUPS
    )
    flag_rules = rules(data.get("flags"), "flags", "flag", v.DECISION_FLAGS)

    priorities: list[PriorityLevel] = []
    for index, raw in enumerate(p.section(data, "priority", "", list)):
        where = (
            f"priority[{index}] ({raw.get('priority', '?') if isinstance(raw, Mapping) else '?'})"
        )
        if not isinstance(raw, Mapping) or raw.get("priority") not in v.PRIORITIES:
            p.fail(where, f"priority must be one of {', '.join(v.PRIORITIES)}")
            continue
        deadline = p.mapping(raw.get("deadline"), f"{where}.deadline", required=True)
        hours, days = deadline.get("elapsed_hours"), deadline.get("working_days")
        if (hours is None) == (days is None):
            p.fail(f"{where}.deadline", "give exactly one of elapsed_hours or working_days")
        if hours is not None:
            hours = p.integer(hours, f"{where}.deadline.elapsed_hours", 24, 1)
        if days is not None:
            days = p.integer(days, f"{where}.deadline.working_days", 1, 0)
        when = p.condition(raw["when"], f"{where}.when", context) if "when" in raw else None
        priorities.append(
            PriorityLevel(raw["priority"], p.text(raw, "reason", where), when, hours, days)
        )
    if priorities and priorities[-1].when is not None:
        p.fail("priority", "the last level must have no 'when' (it is the default)")

    contact = _parse_contact(p, data.get("contact"), zone)
    surveys = parse_surveys(p, data.get("surveys"), contact.placeholders, contact.sensitive_words)
    retention = parse_retention(p, data.get("retention"))
    # Survey templates are sent by the same messaging as contact templates (the link filled
    # in last, messages.render_message); a contact plan cannot name them (checked above).
    contact = replace(contact, templates={**contact.templates, **surveys.templates})
    aa = _parse_aa(p, data.get("appropriate_adult"), services, targets)

    if p.problems:
        raise CatalogueError(source, p.problems)
    return Catalogue(
        id=str(meta.get("id", "")),
        name=str(meta.get("name", "")),
        version=catalogue_version(data),
        zone=zone,
        calendar=calendar,
        end_of_working_day=end_of_day,
        reference_prefixes=prefixes,
        reference_min_digits=min_digits,
        services=services,
        signpost_targets=targets,
        area_names=area_names,
        districts=districts,
        explicit_consent=tuple(explicit),
        allocation_rules=tuple(allocation_rules),
        primary_order=primary_order,
        fallback=fallback,
        signpost_rules=tuple(signpost_rules),
        enhanced_rights=tuple(enhanced),
        priorities=tuple(priorities),
        flag_rules=tuple(flag_rules),
        contact=contact,
        surveys=surveys,
        retention=retention,
        appropriate_adult=aa,
        raw=data,
    )


def _compile_named_conditions(p: _Parser, raw: Any, context: RuleContext) -> None:
    """Named conditions may refer to each other in any order (the file's order is layout, and
    layout does not change the catalogue version), but not in a cycle."""
    if raw is None:
        return
    if not isinstance(raw, Mapping):
        p.fail("conditions", "must be a mapping of names to conditions")
        return
    pending: dict[str, Any] = {str(name): value for name, value in raw.items()}
    while pending:
        ready = [name for name, value in pending.items() if not _refs(value) & set(pending)]
        if not ready:
            cycle = ", ".join(sorted(pending))
            for name in pending:
                p.fail(
                    f"conditions.{name}",
                    f"named conditions refer to each other in a cycle ({cycle})",
                )
            return
        for name in ready:
            compiled = p.condition(pending.pop(name), f"conditions.{name}", context)
            if compiled is not None:
                context.named[name] = Named(name, compiled)


def _refs(raw: Any) -> set[str]:
    """The names a raw condition refers to with {ref: NAME}, at any depth."""
    found: set[str] = set()
    if isinstance(raw, Mapping):
        if isinstance(raw.get("ref"), str):
            found.add(raw["ref"])
        for value in raw.values():
            found |= _refs(value)
    elif isinstance(raw, list):
        for item in raw:
            found |= _refs(item)
    return found


def _parse_safe_windows(p: _Parser, raw: Any, path: str, zone: ZoneInfo) -> SafeTimes:
    windows = []
    for index, item in enumerate(p.items(raw, path)):
        if not isinstance(item, Mapping):
            p.fail(f"{path}[{index}]", "must be a mapping with days, from and to")
            continue
        days = item.get("days") or []
        days = days if isinstance(days, list) else [days]
        bad = [d for d in days if not isinstance(d, str) or d not in DAY_INDEX]
        if bad or not days:
            p.fail(f"{path}[{index}].days", f"days must be from {', '.join(DAY_INDEX)}")
            continue
        start = p.clock(item.get("from"), f"{path}[{index}].from")
        end = p.clock(item.get("to"), f"{path}[{index}].to")
        windows.append(SafeWindow(frozenset(DAY_INDEX[d] for d in days), start, end))
    return SafeTimes(tuple(windows), zone)


def _parse_contact(p: _Parser, raw: Any, zone: ZoneInfo) -> ContactPolicy:
    if not isinstance(raw, Mapping):
        p.fail("contact", "missing or not a mapping")
        raw = {}
    safe = _parse_safe_windows(p, raw.get("default_safe_times"), "contact.default_safe_times", zone)
    if not safe.windows:
        p.fail("contact.default_safe_times", "at least one window is needed")
    templates = p.mapping(raw.get("templates"), "contact.templates")
    placeholders: tuple[str, ...] = ()
    for item in p.items(raw.get("placeholders"), "contact.placeholders"):
        if isinstance(item, str) and item not in DISCREETPLACEHOLDERS:
            # The first name at most: no catalogue can widen what a message may carry.
            p.fail(
                "contact.placeholders",
                f"'{item}' is not allowed (only {', '.join(DISCREETPLACEHOLDERS)})",
            )
            continue
        if not isinstance(item, str):
            p.fail("contact.placeholders", "placeholders are names (text)")
            continue
        placeholders += (item,)
    sensitive = tuple(
        str(w).lower() for w in p.items(raw.get("sensitive_words"), "contact.sensitive_words")
    )
    for name, channels in templates.items():
        for channel, body in p.mapping(channels, f"contact.templates.{name}").items():
            where = f"contact.templates.{name}.{channel}"
            if channel not in v.MESSAGE_CHANNELS:
                p.fail(where, f"unknown channel (one of {', '.join(v.MESSAGE_CHANNELS)})")
                continue
            if not isinstance(body, str | Mapping):
                p.fail(where, "must be a text, or a mapping of texts (subject, body)")
                continue
            texts = [body] if isinstance(body, str) else list(body.values())
            for text in texts:
                for problem in template_problems(str(text), placeholders, sensitive):
                    p.fail(where, problem)
    plan: list[PlanStep] = []
    for index, step in enumerate(p.items(raw.get("plan"), "contact.plan", required=True)):
        where = f"contact.plan[{index}]"
        if not isinstance(step, Mapping):
            p.fail(where, "must be a mapping")
            continue
        when = p.mapping(step.get("when"), f"{where}.when")
        kind = step.get("kind")
        if kind not in ("call", "close"):
            p.fail(where, "kind must be call or close")
        at_triage = when.get("at") == "triage"
        after = when.get("working_days_after")
        if not at_triage and after not in ("previous", "first"):
            p.fail(f"{where}.when", "give at: triage or working_days_after: previous|first")
        message = p.mapping(step.get("message"), f"{where}.message")
        template = message.get("template")
        if template is not None and (not isinstance(template, str) or template not in templates):
            p.fail(f"{where}.message", f"unknown template '{template}'")
            template = None
        channels = tuple(p.items(message.get("channels"), f"{where}.message.channels"))
        for channel in channels:
            if channel not in v.MESSAGE_CHANNELS:
                p.fail(f"{where}.message", f"unknown channel '{channel}'")
        closure_reason = step.get("closure_reason")
        if closure_reason is not None and closure_reason not in CLOSURE_REASONS:
            p.fail(f"{where}.closure_reason", f"must be one of {', '.join(CLOSURE_REASONS)}")
        plan.append(
            PlanStep(
                number=p.integer(step.get("step"), f"{where}.step", index + 1, 1),
                kind=str(kind),
                at_triage=at_triage,
                after=after,
                working_days=p.integer(when.get("days"), f"{where}.when.days", 0, 0),
                other_half=bool(when.get("other_half", False)),
                message_template=template,
                message_channels=channels,
                closure_reason=closure_reason,
            )
        )
    if not plan or not plan[0].at_triage:
        p.fail("contact.plan", "the first step must be at: triage")
    if plan and plan[-1].kind != "close":
        p.fail("contact.plan", "the last step must close the plan (kind: close)")
    for field_name in ("sender_name", "hub_phone"):
        # Shown in every message: they must be as discreet as the templates.
        for problem in template_problems(str(raw.get(field_name, "")), (), sensitive):
            p.fail(f"contact.{field_name}", problem)
    return ContactPolicy(
        sender_name=str(raw.get("sender_name", "")),
        hub_phone=str(raw.get("hub_phone", "")),
        default_safe_times=safe,
        half_day_split=p.clock(raw.get("half_day_split", "13:00"), "contact.half_day_split"),
        plan=tuple(plan),
        placeholders=placeholders,
        sensitive_words=sensitive,
        templates=templates,
    )


def _parse_aa(
    p: _Parser, raw: Any, services: Mapping[str, Service], targets: Mapping[str, str]
) -> AppropriateAdultPolicy:
    if not isinstance(raw, Mapping):
        p.fail("appropriate_adult", "missing or not a mapping")
        raw = {}
    service = str(raw.get("service", ""))
    if service not in services:
        p.fail("appropriate_adult.service", f"unknown service '{service}'")
    ages = p.mapping(raw.get("juvenile_ages"), "appropriate_adult.juvenile_ages")
    office = p.mapping(raw.get("office_hours"), "appropriate_adult.office_hours")
    suites: dict[str, str] = {}
    suite_list = p.items(raw.get("custody_suites"), "appropriate_adult.custody_suites")
    for index, suite in enumerate(suite_list):
        suite = suite if isinstance(suite, Mapping) else {}
        name, council = suite.get("name"), suite.get("council")
        if not name or not council:
            p.fail(f"appropriate_adult.custody_suites[{index}]", "needs name and council")
            continue
        suites[str(name)] = str(council)
    if not suites:
        p.fail("appropriate_adult.custody_suites", "at least one custody suite is needed")
    values: dict[str, tuple[Any, ...]] = dict(APPROPRIATE_ADULT_VALUES)
    values["aa.council"] = tuple(sorted(set(suites.values())))
    context = RuleContext(facts=APPROPRIATE_ADULT_FACTS, values=values)
    rules: list[AppropriateAdultRule] = []
    for index, rule in enumerate(p.items(raw.get("rules"), "appropriate_adult.rules")):
        where = f"appropriate_adult.rules[{index}]"
        if not isinstance(rule, Mapping):
            p.fail(where, "must be a mapping")
            continue
        when = p.condition(rule.get("when"), f"{where}.when", context)
        target = rule.get("signpost_to")
        if target is not None and (not isinstance(target, str) or target not in targets):
            p.fail(where, f"unknown signpost target '{target}'")
        if (target is None) == (rule.get("allocate") is not True):
            p.fail(where, "give exactly one of signpost_to or allocate: true")
        if when is not None:
            rules.append(AppropriateAdultRule(p.text(rule, "reason", where), when, target))
    days = p.items(office.get("days"), "appropriate_adult.office_hours.days")
    if any(not isinstance(d, str) or d not in DAY_INDEX for d in days):
        # A typo must not silently drop a day from office hours.
        p.fail("appropriate_adult.office_hours.days", f"days must be from {', '.join(DAY_INDEX)}")
    section = "appropriate_adult"
    return AppropriateAdultPolicy(
        service=service,
        # Ages and hours are the catalogue's to state: no default stands in for them here.
        juvenile_from=p.integer(ages.get("from"), f"{section}.juvenile_ages.from"),
        juvenile_to=p.integer(ages.get("to"), f"{section}.juvenile_ages.to"),
        attend_within=timedelta(
            hours=p.number(raw.get("attend_within_hours"), f"{section}.attend_within_hours")
        ),
        office_days=frozenset(DAY_INDEX[d] for d in days if isinstance(d, str) and d in DAY_INDEX),
        office_from=p.clock(office.get("from"), "appropriate_adult.office_hours.from"),
        office_to=p.clock(office.get("to"), "appropriate_adult.office_hours.to"),
        office_on_bank_holidays=bool(office.get("bank_holidays", False)),
        custody_suites=suites,
        rules=tuple(rules),
    )
