"""Rendering discreet messages from the catalogue's templates.

Only the placeholders the catalogue allows are filled (first name, sender name, hub phone), so a
message can never carry the offence, the service's name or more than the first name; the
catalogue refuses templates with sensitive words at load (catalogue.template_problems).

A survey message carries one more: its link, put in after the discreet-wording check (the
check is of the template's own words; a token's random letters are not words).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from triage.domain.catalogue import ContactPolicy
from triage.domain.catalogue_words import PLACEHOLDER, template_problems
from triage.domain.survey_catalogue import LINK_PLACEHOLDER

# Stands in for the link while the rendered text is checked: braces and no letters, so it is
# neither a placeholder nor a word.
_LINK_MARK = "\x00\x01"


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    body: str


class UnsafeMessage(ValueError):
    pass


def render_message(
    policy: ContactPolicy,
    template: str,
    channel: str,
    first_name: str | None,
    link: str | None = None,
) -> Rendered:
    entry: Any = policy.templates.get(template, {}).get(channel)
    if entry is None:
        raise KeyError(f"no {channel} text for template {template}")
    values = {
        "first_name": (first_name or "there").split()[0],
        "sender_name": policy.sender_name,
        "hub_phone": policy.hub_phone,
    }
    if link is not None:
        values[LINK_PLACEHOLDER] = _LINK_MARK
    if isinstance(entry, str):
        subject, body = None, entry
    else:
        subject, body = entry.get("subject"), entry.get("body", "")
    for text in filter(None, (subject, body)):
        # Only these three are ever filled, whatever the catalogue lists: a placeholder for any
        # other field (a last name, an address) is refused, not left to a KeyError.
        extra = [name for name in PLACEHOLDER.findall(text) if name not in values]
        if extra:
            raise UnsafeMessage(f"placeholders not allowed in a message: {', '.join(extra)}")
    rendered = Rendered(subject.format(**values) if subject else None, body.format(**values))
    # Belt and braces: the rendered text is checked again, in case a first name or the sender
    # name itself is a sensitive word.
    for text in filter(None, (rendered.subject, rendered.body)):
        problems = template_problems(text, policy.placeholders, policy.sensitive_words)
        if problems:
            raise UnsafeMessage("; ".join(problems))
    if link is not None:
        if _LINK_MARK not in rendered.body:
            raise UnsafeMessage("a survey message needs its link in the body")
        rendered = Rendered(rendered.subject, rendered.body.replace(_LINK_MARK, link))
    return rendered
