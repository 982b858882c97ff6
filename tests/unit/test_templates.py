"""Discreet messages (contacts.md): every template of the Kent catalogue renders for every
channel it is sent on, and says nothing of the offence, the service or the victim beyond the
first name; a catalogue or a rendered text that would say more is refused. No I/O besides
reading the catalogue file."""

from __future__ import annotations

import copy
import dataclasses
import re
from typing import Any

import pytest
import yaml

from triage.catalogue.loader import DEFAULT_CATALOGUE
from triage.domain.catalogue import Catalogue, CatalogueError, parse_catalogue
from triage.domain.messages import UnsafeMessage, render_message
from triage.domain.vocabulary import OFFENCE_CATEGORIES

KENT: dict[str, Any] = yaml.safe_load(DEFAULT_CATALOGUE.read_text(encoding="utf-8"))
CATALOGUE: Catalogue = parse_catalogue(copy.deepcopy(KENT), source="kent.yaml")
POLICY = CATALOGUE.contact
ALLOWED_PLACEHOLDERS = {"first_name", "sender_name", "hub_phone"}
# The words contacts.md names, whatever the catalogue lists.
NAMED_IN_THE_SPEC = ("rape", "abuse", "stalking", "victim")
OFFENCE_WORDS = sorted(
    {part for category in OFFENCE_CATEGORIES if category != "other" for part in category.split("_")}
)


def kent() -> dict[str, Any]:
    return copy.deepcopy(KENT)


SURVEY_LINK = "https://triage.example/survey/Tok3n-_x"


def texts(template: str, channel: str, first_name: str | None = "Sam") -> list[str]:
    link = SURVEY_LINK if template.startswith("survey_") else None
    rendered = render_message(POLICY, template, channel, first_name, link)
    return [t for t in (rendered.subject, rendered.body) if t is not None]


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


TEMPLATE_CHANNELS = [
    (name, channel) for name, channels in POLICY.templates.items() for channel in channels
]


def test_the_catalogue_has_the_plans_templates() -> None:
    used = {step.message_template for step in POLICY.plan if step.message_template}
    assert used == {"introduction", "please_contact_us", "closing_letter"}
    assert len(TEMPLATE_CHANNELS) >= 6


def test_every_channel_a_step_may_use_has_a_text() -> None:
    """A step's message goes by the first of its channels the victim allows: any of them."""
    for step in POLICY.plan:
        if step.message_template:
            for channel in step.message_channels:
                assert channel in POLICY.templates[step.message_template], (step.number, channel)


@pytest.mark.parametrize(("template", "channel"), TEMPLATE_CHANNELS)
def test_every_template_renders_discreetly(template: str, channel: str) -> None:
    for text in texts(template, channel):
        assert "{" not in text and "}" not in text
        text = text.replace(SURVEY_LINK, " ")  # the link's letters are not the template's words
        found = words(text)
        for word in (*POLICY.sensitive_words, *NAMED_IN_THE_SPEC):
            assert not [w for w in found if w.startswith(word)], (template, channel, word)
        for word in OFFENCE_WORDS:
            assert word not in found, (template, channel, word)
        lowered = text.lower()
        for service in CATALOGUE.services.values():
            for name in (service.name, service.provider):
                assert name.lower() not in lowered, (template, channel, name)
            assert service.code not in re.findall(r"[a-z0-9-]+", lowered), service.code
        for name in CATALOGUE.signpost_targets.values():
            assert name.lower() not in lowered, (template, channel, name)
    assert any("Sam" in text for text in texts(template, channel))


@pytest.mark.parametrize(("template", "channel"), TEMPLATE_CHANNELS)
def test_only_the_first_name(template: str, channel: str) -> None:
    entry = POLICY.templates[template][channel]
    raw = [entry] if isinstance(entry, str) else list(entry.values())
    allowed = ALLOWED_PLACEHOLDERS | ({"survey_link"} if template.startswith("survey_") else set())
    for text in raw:
        assert set(re.findall(r"\{([^{}]*)\}", text)) <= allowed
    rendered = " ".join(texts(template, channel, "Samantha Jane"))
    assert "Samantha" in rendered and "Jane" not in rendered
    assert "there" in " ".join(texts(template, channel, None))  # no name: "Hello there"


def test_the_sender_is_neutral() -> None:
    sender = POLICY.sender_name.lower()
    for word in (*POLICY.sensitive_words, *NAMED_IN_THE_SPEC):
        assert not [w for w in words(sender) if w.startswith(word)], word
    for service in CATALOGUE.services.values():
        assert service.name.lower() != sender


# A catalogue that would say more fails to load -----------------------------------------------


def load_error(data: dict[str, Any]) -> str:
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue(data, source="kent.yaml")
    return str(caught.value)


@pytest.mark.parametrize("word", ["abuse", "rape", "stalking", "victim", "police", "Domestic"])
def test_a_sensitive_word_in_a_template_fails_to_load(word: str) -> None:
    data = kent()
    data["contact"]["templates"]["introduction"]["sms"] = (
        "Hello {first_name}, this is {sender_name} about the " + word + ". Call {hub_phone}."
    )
    error = load_error(data)
    assert "contact.templates.introduction.sms" in error and word.lower() in error


def test_a_sensitive_word_in_an_email_subject_fails_to_load() -> None:
    data = kent()
    data["contact"]["templates"]["please_contact_us"]["email"]["subject"] = "Your abuse report"
    assert "contact.templates.please_contact_us.email" in load_error(data)


@pytest.mark.parametrize("field", ["last_name", "postcode", "phone", "date_of_birth", "offence"])
def test_a_personal_placeholder_fails_to_load(field: str) -> None:
    data = kent()
    data["contact"]["templates"]["closing_letter"]["letter"] = (
        "Dear {first_name} {" + field + "},\n\nPlease call {hub_phone}.\n\n{sender_name}"
    )
    error = load_error(data)
    assert "contact.templates.closing_letter.letter" in error and "{" + field + "}" in error


def test_a_catalogue_cannot_allow_a_personal_placeholder() -> None:
    data = kent()
    data["contact"]["placeholders"].append("last_name")
    data["contact"]["templates"]["introduction"]["sms"] = "Hello {first_name} {last_name}"
    load_error(data)


def test_a_plural_of_a_sensitive_word_fails_to_load() -> None:
    data = kent()
    data["contact"]["templates"]["introduction"]["sms"] = "Support for victims. {hub_phone}"
    load_error(data)


def test_a_sensitive_sender_name_fails_to_load() -> None:
    data = kent()
    data["contact"]["sender_name"] = "Rape Crisis Line"
    error = load_error(data)
    assert "contact.sender_name" in error and "'rape'" in error


# The rendered text is checked again ----------------------------------------------------------


@pytest.mark.parametrize("first_name", ["Victim", "abuse", "Police", "Victims", "Stalker"])
def test_render_refuses_a_sensitive_first_name(first_name: str) -> None:
    with pytest.raises(UnsafeMessage):
        render_message(POLICY, "introduction", "sms", first_name)


def test_render_refuses_a_sensitive_sender_name() -> None:
    policy = dataclasses.replace(POLICY, sender_name="Kent Rape Crisis Line")
    for template, channel in TEMPLATE_CHANNELS:
        with pytest.raises(UnsafeMessage):
            render_message(policy, template, channel, "Sam")


def test_render_refuses_a_template_that_slipped_past_the_catalogue() -> None:
    templates = {
        **POLICY.templates,
        "leaky": {"sms": "Hello {first_name} {last_name}", "email": "Victims' service"},
    }
    policy = dataclasses.replace(
        POLICY, templates=templates, placeholders=(*POLICY.placeholders, "last_name")
    )
    with pytest.raises(UnsafeMessage, match="last_name"):
        render_message(policy, "leaky", "sms", "Sam")
    with pytest.raises(UnsafeMessage, match="victim"):
        render_message(policy, "leaky", "email", "Sam")


def test_a_channel_without_a_text_is_not_rendered() -> None:
    with pytest.raises(KeyError):
        render_message(POLICY, "closing_letter", "sms", "Sam")


def test_a_survey_message_carries_its_link_once_in_the_body() -> None:
    for template in ("survey_invitation", "survey_reminder"):
        for channel in ("sms", "email"):
            rendered = render_message(POLICY, template, channel, "Sam", SURVEY_LINK)
            assert rendered.body.count(SURVEY_LINK) == 1
            assert SURVEY_LINK not in (rendered.subject or "")


def test_a_survey_template_without_its_link_is_refused() -> None:
    with pytest.raises(UnsafeMessage):
        render_message(POLICY, "survey_invitation", "sms", "Sam")


def test_the_wording_check_is_of_the_template_not_the_link() -> None:
    """A token is random letters: one that happens to spell a sensitive word still goes, and
    the template's own words are what is checked."""
    link = "https://triage.example/survey/rapeXvictimYabuse"
    rendered = render_message(POLICY, "survey_invitation", "sms", "Sam", link)
    assert link in rendered.body


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("Tell us about the police: {survey_link}", "sensitive word 'police'"),
        ("Hello {first_name}, how did we do?", "{survey_link} exactly once"),
        ("{survey_link} and again {survey_link}", "{survey_link} exactly once"),
        ("Hello {last_name}: {survey_link}", "placeholder {last_name} is not allowed"),
    ],
)
def test_a_survey_template_is_checked_at_load(change: str, problem: str) -> None:
    data = kent()
    data["surveys"]["templates"]["survey_invitation"]["sms"] = change
    with pytest.raises(CatalogueError) as refused:
        parse_catalogue(data, source="kent.yaml")
    assert any(problem in p for p in refused.value.problems), refused.value.problems


def test_a_contact_template_cannot_take_a_link() -> None:
    data = kent()
    data["contact"]["templates"]["introduction"]["sms"] = "Hello {first_name}: {survey_link}"
    with pytest.raises(CatalogueError) as refused:
        parse_catalogue(data, source="kent.yaml")
    assert any("survey_link" in p for p in refused.value.problems)
