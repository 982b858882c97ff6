"""The catalogue's `surveys` section: when invitations go, their templates, the questions (with
a version stored beside every answer) and the safeguarding words that flag free text.

Parsed with the rest of the catalogue (catalogue.parse_catalogue); the invitation templates are
checked like every contact template, with one more placeholder, `{survey_link}`, which must
appear exactly once and is filled only after the discreet-wording check (messages.py)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from triage.domain.catalogue_words import PLACEHOLDER, template_problems

LINK_PLACEHOLDER = "survey_link"
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
SURVEY_CHANNELS = ("sms", "email")  # a survey never goes by a call or a letter
TEMPLATES = ("survey_invitation", "survey_reminder")


@dataclass(frozen=True)
class Option:
    value: int | str
    label: str


@dataclass(frozen=True)
class Question:
    key: str
    text: str
    options: tuple[Option, ...]  # empty for free text
    outcome: bool = False  # an outcome measure: also recorded at the needs assessment
    assessment_text: str = ""  # its short name on the caseworker's page
    positive: tuple[int | str, ...] = ()  # the answers reports count as a yes
    free_text: bool = False
    max_length: int = 0

    def value_of(self, raw: str) -> int | str | None:
        """The option whose value is `raw` as a form sends it; None when no option is."""
        for option in self.options:
            if str(option.value) == raw:
                return option.value
        return None

    def label_of(self, value: Any) -> str:
        return next((o.label for o in self.options if o.value == value), "")


@dataclass(frozen=True)
class SurveyPolicy:
    version: str
    invite_after_working_days: int
    remind_after_days: int
    expire_after_days: int
    once_per_days: int
    channels: tuple[str, ...]
    templates: Mapping[str, Mapping[str, Any]]
    questions: tuple[Question, ...]
    safeguarding_words: tuple[str, ...]

    @property
    def outcome_measures(self) -> tuple[Question, ...]:
        return tuple(q for q in self.questions if q.outcome)

    def question(self, key: str) -> Question | None:
        return next((q for q in self.questions if q.key == key), None)


class _Failing(Protocol):
    def fail(self, path: str, message: str) -> None: ...

    def integer(
        self, value: Any, path: str, default: int | None = None, minimum: int = 0
    ) -> int: ...

    def mapping(self, value: Any, path: str, *, required: bool = False) -> Mapping[Any, Any]: ...

    def items(self, value: Any, path: str, *, required: bool = False) -> list[Any]: ...


def parse_surveys(
    p: _Failing, raw: Any, placeholders: tuple[str, ...], sensitive: tuple[str, ...]
) -> SurveyPolicy:
    if not isinstance(raw, Mapping):
        p.fail("surveys", "missing or not a mapping")
        raw = {}
    version = raw.get("version")
    if not isinstance(version, str) or not version.strip() or len(version) > 40:
        version = ""
        p.fail(
            "surveys.version",
            "the questions need a version of at most 40 characters (stored with each answer)",
        )
    channels = tuple(str(c) for c in p.items(raw.get("channels"), "surveys.channels"))
    for channel in channels:
        if channel not in SURVEY_CHANNELS:
            p.fail("surveys.channels", f"'{channel}' is not allowed (only sms and email)")
    if not channels:
        p.fail("surveys.channels", "at least one of sms and email")
    templates = _templates(p, raw.get("templates"), channels, placeholders, sensitive)
    scales = _scales(p, raw.get("scales"))
    questions = _questions(p, raw.get("questions"), scales)
    words = tuple(
        str(w).lower().strip()
        for w in p.items(raw.get("safeguarding_words"), "surveys.safeguarding_words")
    )
    if any(q.free_text for q in questions) and not words:
        p.fail("surveys.safeguarding_words", "free text needs a safeguarding word list")
    return SurveyPolicy(
        version=version,
        invite_after_working_days=p.integer(
            raw.get("invite_after_working_days"), "surveys.invite_after_working_days", 2
        ),
        remind_after_days=p.integer(
            raw.get("remind_after_days"), "surveys.remind_after_days", 7, 1
        ),
        expire_after_days=p.integer(
            raw.get("expire_after_days"), "surveys.expire_after_days", 28, 1
        ),
        once_per_days=p.integer(raw.get("once_per_days"), "surveys.once_per_days", 90),
        channels=channels,
        templates=templates,
        questions=questions,
        safeguarding_words=words,
    )


def _templates(
    p: _Failing,
    raw: Any,
    channels: tuple[str, ...],
    placeholders: tuple[str, ...],
    sensitive: tuple[str, ...],
) -> dict[str, Mapping[str, Any]]:
    found = p.mapping(raw, "surveys.templates", required=True)
    allowed = (*placeholders, LINK_PLACEHOLDER)
    templates: dict[str, Mapping[str, Any]] = {}
    for name in TEMPLATES:
        texts = p.mapping(found.get(name), f"surveys.templates.{name}", required=True)
        for channel in channels:
            where = f"surveys.templates.{name}.{channel}"
            entry = texts.get(channel)
            if not isinstance(entry, str | Mapping):
                p.fail(where, "missing: every survey channel needs a text")
                continue
            parts = [entry] if isinstance(entry, str) else [str(v) for v in entry.values()]
            for part in parts:
                for problem in template_problems(part, allowed, sensitive):
                    p.fail(where, problem)
            body = entry if isinstance(entry, str) else str(entry.get("body", ""))
            links = [n for n in PLACEHOLDER.findall(body) if n == LINK_PLACEHOLDER]
            if len(links) != 1:
                p.fail(where, "the body needs {survey_link} exactly once")
            if not isinstance(entry, str) and LINK_PLACEHOLDER in str(entry.get("subject", "")):
                p.fail(where, "the link goes in the body, never the subject")
        for channel in texts:
            if channel not in channels:
                p.fail(f"surveys.templates.{name}.{channel}", "not one of surveys.channels")
        templates[name] = {c: texts[c] for c in channels if c in texts}
    for name in found:
        if name not in TEMPLATES:
            p.fail(f"surveys.templates.{name}", f"unknown (only {', '.join(TEMPLATES)})")
    return templates


def _scales(p: _Failing, raw: Any) -> dict[str, tuple[Option, ...]]:
    scales: dict[str, tuple[Option, ...]] = {}
    for name, options in p.mapping(raw, "surveys.scales", required=True).items():
        parsed: list[Option] = []
        for index, item in enumerate(p.items(options, f"surveys.scales.{name}")):
            where = f"surveys.scales.{name}[{index}]"
            if not isinstance(item, Mapping):
                p.fail(where, "needs a value (a number or a word) and a label")
                continue
            value = item.get("value") if isinstance(item, Mapping) else None
            label = item.get("label") if isinstance(item, Mapping) else None
            if (
                not isinstance(value, int | str)
                or isinstance(value, bool)
                or not isinstance(label, str)
            ):
                p.fail(where, "needs a value (a number or a word) and a label")
                continue
            parsed.append(Option(value, str(label)))
        if len({o.value for o in parsed}) != len(parsed):
            p.fail(f"surveys.scales.{name}", "values must be different")
        scales[str(name)] = tuple(parsed)
    return scales


def _questions(
    p: _Failing, raw: Any, scales: Mapping[str, tuple[Option, ...]]
) -> tuple[Question, ...]:
    questions: list[Question] = []
    for index, item in enumerate(p.items(raw, "surveys.questions", required=True)):
        where = f"surveys.questions[{index}]"
        if not isinstance(item, Mapping) or not item.get("key") or not item.get("text"):
            p.fail(where, "needs a key and a text")
            continue
        key = str(item["key"])
        if not isinstance(item["key"], str) or not isinstance(item["text"], str):
            p.fail(where, "the key and the text are text")
            continue
        if not _KEY.match(key):
            # Stored as a measure's name (40 characters) and used as a form field's name.
            p.fail(f"{where}.key", "lower-case letters, digits and _ only, at most 40")
            continue
        if any(q.key == key for q in questions):
            p.fail(where, f"the key '{key}' is used twice")
        if item.get("free_text"):
            questions.append(
                Question(
                    key,
                    str(item["text"]),
                    (),
                    free_text=True,
                    max_length=p.integer(item.get("max_length"), f"{where}.max_length", 2000, 1),
                )
            )
            continue
        options = scales.get(str(item.get("scale")))
        if not options:
            p.fail(f"{where}.scale", "must name one of surveys.scales")
            continue
        positive = tuple(
            v
            for v in p.items(item.get("positive"), f"{where}.positive")
            if isinstance(v, int | str)
        )
        if any(value not in {o.value for o in options} for value in positive):
            p.fail(f"{where}.positive", "each must be a value of the question's scale")
        outcome = bool(item.get("outcome"))
        if outcome and not all(isinstance(o.value, int) and 1 <= o.value <= 5 for o in options):
            # case_outcomes holds scores 1 to 5 (its CHECK): a measure's change is measured.
            p.fail(where, "an outcome measure needs a scale numbered 1 to 5")
        questions.append(
            Question(
                key,
                str(item["text"]),
                options,
                outcome=outcome,
                assessment_text=str(item.get("assessment_text") or item["text"]),
                positive=positive,
            )
        )
    if not any(q.outcome for q in questions):
        p.fail("surveys.questions", "at least one outcome measure (outcome: true)")
    return tuple(questions)
