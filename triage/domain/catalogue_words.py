"""Words the catalogue lists, found in text: the sensitive words a message must never carry
(checked on every template at load and on every rendered message) and the safeguarding words
that flag a survey's free text to the duty lead. One way of matching for both: a listed word
matches any word that starts with it ("abused", "victims" and "crimes" are as telling as
"abuse"), a listed phrase ("end it") matches those words in that order."""

from __future__ import annotations

import re

DISCREETPLACEHOLDERS = ("first_name", "sender_name", "hub_phone")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_WORD = re.compile(r"[a-z]+")


def words_found(text: str, listed: tuple[str, ...]) -> list[str]:
    """The listed words and phrases that `text` contains, in the list's order."""
    words = _WORD.findall(text.lower())
    found = []
    for entry in listed:
        parts = _WORD.findall(entry.lower())
        if not parts:
            continue
        width = len(parts)
        for start in range(len(words) - width + 1):
            window = words[start : start + width]
            # Whole words before the last; the last (or only) one may run on.
            if window[:-1] == parts[:-1] and window[-1].startswith(parts[-1]):
                found.append(entry)
                break
    return found


def template_problems(
    text: str, placeholders: tuple[str, ...], sensitive: tuple[str, ...]
) -> list[str]:
    """Why a message template is not discreet enough to send (empty when it is)."""
    problems = []
    for name in PLACEHOLDER.findall(text):
        if name not in placeholders:
            problems.append(
                f"placeholder {{{name}}} is not allowed (only {', '.join(placeholders)})"
            )
    for word in words_found(PLACEHOLDER.sub(" ", text), sensitive):
        problems.append(f"contains the sensitive word '{word}'")
    return problems
