"""The self-referral journey's question pages: one thing per page, in order, each field named
by the API path its answer goes to (so intake's errors find their field). Plain English, for a
reading age of about 9. What each page checks itself is only what the person must answer; the
rules of a referral are intake's, applied at the end."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from triage.domain.contact_details import normalise_email, normalise_phone, normalise_postcode
from triage.web.forms import Form

YES_NO = (("yes", "Yes"), ("no", "No"))

# The API's offence categories in the words a person would use.
WHAT_HAPPENED = (
    ("domestic_abuse", "Domestic abuse", "By a partner, ex-partner or family member"),
    ("sexual", "Rape or sexual assault", None),
    (
        "stalking_harassment",
        "Stalking or harassment",
        "Being followed, watched or contacted again and again",
    ),
    ("violence", "Violence or assault", None),
    ("robbery", "Robbery", "Something taken from you by force or threat"),
    ("burglary", "Burglary", "Someone broke into your home"),
    ("theft", "Theft", None),
    ("criminal_damage", "Damage to your home or things", None),
    ("fraud", "Fraud or a scam", None),
    ("exploitation", "Being made to work or do things against your will", None),
    ("antisocial_behaviour", "Antisocial behaviour", None),
    ("homicide", "Someone close to me was killed", None),
    ("other", "Something else", None),
)

NEEDS = (
    ("emotional", "Someone to talk to"),
    ("safety", "Help to feel safe"),
    ("practical", "Practical help, like changing locks"),
    ("counselling", "Counselling"),
    ("court_support", "Help with going to court"),
    ("legal_advice", "Advice about the law"),
    ("financial_hardship", "Help with money problems caused by the crime"),
    ("restorative_justice", "Talking with the person who harmed you (restorative justice)"),
    ("online_support", "Support online"),
)

CHANNELS = (("phone", "Phone call"), ("sms", "Text message"), ("email", "Email"))

# referral_body.SAFE_WINDOWS in words.
SAFE_TIMES = (
    ("weekday_mornings", "Weekday mornings, 9am to 12 noon"),
    ("weekday_afternoons", "Weekday afternoons, 12 noon to 5pm"),
    ("weekday_evenings", "Weekday evenings, 5pm to 8pm"),
    ("weekends", "Weekends, 10am to 4pm"),
)


@dataclass(frozen=True)
class Field:
    name: str  # the API path (a date's three inputs are name-day, name-month, name-year)
    kind: str  # text | date | radios | checkboxes | textarea
    label: str
    hint: str | None = None
    required: str | None = None  # the message when it is missing; None: optional
    options: tuple[tuple[Any, ...], ...] = ()
    autocomplete: str | None = None
    input_type: str = "text"


@dataclass(frozen=True)
class Page:
    slug: str
    title: str
    fields: tuple[Field, ...] = field(default_factory=tuple)
    hint: str | None = None

    def answers_of(self, form: Form) -> dict[str, Any]:
        """What this page keeps of a submitted form: its own fields only."""
        kept: dict[str, Any] = {}
        for f in self.fields:
            if f.kind == "checkboxes":
                kept[f.name] = [v for v in form.many(f.name) if v in {o[0] for o in f.options}]
            elif f.kind == "date":
                for part in ("day", "month", "year"):
                    kept[f"{f.name}-{part}"] = form.get(f"{f.name}-{part}")[:4]
            else:
                # The API's own limits: a note 2,000 characters (a safe word at its end kept),
                # anything else 100 (intake says so, plainly, if it is longer).
                kept[f.name] = form.get(f.name)[: 2000 if f.kind == "textarea" else 200]
        return kept

    def check(self, answers: dict[str, Any], today: date) -> list[tuple[str, str]]:
        """(field id, message) for each answer this page must have and does not, or that
        intake would refuse (checked here with intake's own normalisers, so the person hears
        it on this page, in plain words, not at the end)."""
        problems = []
        for f in self.fields:
            if f.kind == "date":
                parts = [answers.get(f"{f.name}-{p}", "") for p in ("day", "month", "year")]
                if f.required and not all(parts):
                    problems.append((f"{f.name}-day", f.required))
                elif any(parts) and _date_problem(parts, today):
                    problems.append((f"{f.name}-day", _date_problem(parts, today) or ""))
                continue
            value = answers.get(f.name)
            if f.kind == "text" and value:
                problem = _text_problem(f, value)
                if problem:
                    problems.append((f.name, problem))
                    continue
            elif f.kind in ("radios",) and answers.get(f.name) not in (
                None,
                "",
                *(o[0] for o in f.options),
            ):
                problems.append((f.name, f.required or "Choose one of the answers"))
            elif f.required and not answers.get(f.name):
                problems.append((f.name, f.required))
        return problems + self._extra(answers)

    def _extra(self, answers: dict[str, Any]) -> list[tuple[str, str]]:
        if self.slug == "consent" and answers.get("consent.to_referral") == "no":
            return [
                (
                    "consent.to_referral",
                    "We can only take a referral the victim has agreed to. They can also "
                    "refer themselves",
                )
            ]
        if self.slug != "contact":
            return []
        problems = []
        channels = answers.get("contact.channels") or []
        if ("phone" in channels or "sms" in channels) and not answers.get("victim.phone"):
            problems.append(("victim.phone", "Enter a phone number we can call or text"))
        if "email" in channels and not answers.get("victim.email"):
            problems.append(("victim.email", "Enter an email address we can use"))
        return problems


SELF_PAGES = (
    Page(
        "about-you",
        "About you",
        (
            Field(
                "victim.first_name",
                "text",
                "First name",
                required="Enter your first name",
                autocomplete="off",
            ),
            Field(
                "victim.last_name",
                "text",
                "Last name",
                required="Enter your last name",
                autocomplete="off",
            ),
            Field(
                "victim.date_of_birth",
                "date",
                "Date of birth",
                hint="For example, 27 3 1990",
                required="Enter your date of birth",
            ),
            Field(
                "victim.address.postcode",
                "text",
                "Postcode (optional)",
                hint="This helps us find support near you",
                autocomplete="off",
            ),
        ),
    ),
    Page(
        "what-happened",
        "What happened?",
        (
            Field(
                "offence.category",
                "radios",
                "What happened?",
                hint="Choose the one that fits best. You do not need to give details.",
                required="Choose what happened",
                options=WHAT_HAPPENED,
            ),
        ),
    ),
    Page(
        "support",
        "What help would you like?",
        (
            Field(
                "needs",
                "checkboxes",
                "What help would you like?",
                hint="Choose all that apply. You can leave this blank.",
                options=NEEDS,
            ),
        ),
    ),
    Page(
        "contact",
        "How can we contact you safely?",
        (
            Field(
                "contact.channels",
                "checkboxes",
                "Safe ways to contact you",
                hint="Choose all the ways that are safe for you",
                required="Choose at least one safe way to contact you",
                options=CHANNELS,
            ),
            Field(
                "victim.phone",
                "text",
                "Phone number",
                hint="Only if we can call or text you",
                autocomplete="off",
                input_type="tel",
            ),
            Field(
                "victim.email",
                "text",
                "Email address",
                hint="Only if we can email you",
                autocomplete="off",
                input_type="email",
            ),
            Field(
                "contact.safe_windows",
                "checkboxes",
                "When is it safe to contact you?",
                hint="Choose all the times that are safe. Leave this blank if any time is safe.",
                options=SAFE_TIMES,
            ),
            Field(
                "contact.voicemail_ok",
                "radios",
                "Is it safe to leave a voicemail?",
                required="Choose yes if it is safe to leave a voicemail",
                options=YES_NO,
            ),
            Field(
                "contact.letter_ok",
                "radios",
                "Is it safe to send you a letter?",
                required="Choose yes if it is safe to send you a letter",
                options=YES_NO,
            ),
            Field(
                "contact.notes",
                "textarea",
                "Anything else that keeps you safe (optional)",
                hint="For example, times not to call, or a safe word we should use",
            ),
        ),
    ),
    Page(
        "follow-up",
        "Can we ask you later how the support went?",
        (
            Field(
                "consent.to_survey",
                "radios",
                "Can we ask you later how the support went?",
                hint="We would send a short survey. Saying no will not change any support.",
                required="Choose yes or no",
                options=YES_NO,
            ),
        ),
    ),
)


# What intake accepts, said plainly, for the fields whose kind of text is checked here.
_TEXT_LIMIT = 100


def _text_problem(f: Field, value: str) -> str | None:
    if f.name.endswith("phone") and normalise_phone(value) is None:
        return "Enter a UK phone number, like 07700 900123"
    if f.name.endswith("email") and normalise_email(value) is None:
        return "Enter an email address, like name@example.com"
    if f.name.endswith("postcode") and normalise_postcode(value) is None:
        return "Enter a real postcode, like ME14 1XX, or leave it blank"
    if len(value) > _TEXT_LIMIT:
        return f"{f.label} must be {_TEXT_LIMIT} characters or fewer"
    return None


def _date_problem(parts: list[str], today: date) -> str | None:
    """Why three date fields are not a date of birth, or None."""
    try:
        day, month, year = (int(p) for p in parts)
        born = date(year, month, day)
    except ValueError:
        return "Enter a real date, like 27 3 1990"
    if born > today:
        return "The date of birth must be in the past"
    if year < 1900:
        return "Enter the year as 4 numbers, like 1990"
    return None


def flat_answers(answers: dict[str, dict[str, Any]]) -> Form:
    """Every page's answers as one form, for the referral body (values and lists)."""
    form = Form()
    for page in answers.values():
        for name, value in page.items():
            if isinstance(value, list):
                form.lists[name] = list(value)
            elif value:
                form.values[name] = str(value)
                form.lists[name] = [str(value)]
    return form


def page_of_field(pages: tuple[Page, ...], field_id: str) -> Page:
    """The page that asks `field_id` (the first page when no page does)."""
    for page in pages:
        for f in page.fields:
            if field_id == f.name or field_id.startswith(f.name + "-"):
                return page
    return pages[0]


def _victim_page(pronoun_you: bool) -> Page:
    """The victim's details: their own words on the self-referral, a professional's on theirs."""
    whose = "your" if pronoun_you else "their"
    return Page(
        "about-you" if pronoun_you else "victim",
        "About you" if pronoun_you else "About the victim",
        (
            Field(
                "victim.first_name",
                "text",
                "First name",
                required=f"Enter {whose} first name",
                autocomplete="off",
            ),
            Field(
                "victim.last_name",
                "text",
                "Last name",
                required=f"Enter {whose} last name",
                autocomplete="off",
            ),
            Field(
                "victim.date_of_birth",
                "date",
                "Date of birth",
                hint="For example, 27 3 1990",
                required=f"Enter {whose} date of birth",
            ),
            Field(
                "victim.address.postcode",
                "text",
                "Postcode (optional)",
                hint="This helps us find support near them"
                if not pronoun_you
                else "This helps us find support near you",
                autocomplete="off",
            ),
        ),
    )


def _their(text: str) -> str:
    """A self-referral's words as a professional reads them: the victim, not "you"."""
    text = re.sub(r"\byour\b", "their", text)
    text = re.sub(r"\bYour\b", "Their", text)
    text = re.sub(r"\byou\b", "the victim", text)
    return re.sub(r"\bme\b", "them", text)


def _their_option(option: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(
        _their(part) if isinstance(part, str) and i else part for i, part in enumerate(option)
    )


def _about_the_victim(page: Page) -> Page:
    fields = tuple(
        dataclasses.replace(
            f,
            label=_their(f.label),
            hint=_their(f.hint) if f.hint else None,
            required=_their(f.required) if f.required else None,
            options=tuple(_their_option(o) for o in f.options),
        )
        for f in page.fields
    )
    return Page(page.slug, _their(page.title), fields, page.hint)


PROFESSIONAL_PAGES = (
    Page(
        "about-you",
        "About you",
        (
            Field(
                "referrer.name",
                "text",
                "Your name",
                required="Enter your name",
                autocomplete="name",
            ),
            Field(
                "referrer.organisation",
                "text",
                "Organisation",
                hint="For example, a GP surgery, school, council or charity",
                required="Enter your organisation",
                autocomplete="organization",
            ),
            Field("referrer.role", "text", "Your role", required="Enter your role"),
            Field(
                "referrer.phone",
                "text",
                "Phone number",
                required="Enter a phone number",
                autocomplete="tel",
                input_type="tel",
            ),
            Field(
                "referrer.email",
                "text",
                "Email address",
                required="Enter an email address",
                autocomplete="email",
                input_type="email",
            ),
        ),
    ),
    _victim_page(False),
    Page(
        "consent",
        "Has the victim agreed to this referral?",
        (
            Field(
                "consent.to_referral",
                "radios",
                "Has the victim agreed to this referral?",
                hint="We can only take a referral the victim has agreed to. If they have not, "
                "tell them how to refer themselves.",
                required="Choose yes if the victim has agreed to this referral",
                options=(("yes", "Yes, they have agreed"), ("no", "No")),
            ),
        ),
    ),
    *(_about_the_victim(page) for page in SELF_PAGES[1:]),
)
