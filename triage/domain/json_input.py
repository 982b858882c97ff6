"""How deep a JSON input may nest: deeper than any referral needs is refused, before the
decoder's stack or the validator's time is spent on it."""

from __future__ import annotations

import re

# A referral is at most five levels deep (contact.safe_times[i].days); a batch adds two.
MAX_DEPTH = 16
_NESTING_AND_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_QUOTE, _OPEN_ARRAY, _OPEN_OBJECT = 0x22, 0x5B, 0x7B


def nesting_depth_over(raw: bytes | memoryview, limit: int = MAX_DEPTH) -> bool:
    """Whether well-formed JSON nests arrays and objects deeper than `limit`. Only for JSON a
    decoder has accepted: on well-formed input every string match ends at its own closing
    quote, so the scan is linear."""
    data = bytes(raw)
    if data.count(b"[") + data.count(b"{") <= limit:
        return False  # not enough brackets to go that deep: no scan
    depth = 0
    for match in _NESTING_AND_STRINGS.finditer(data):
        first = data[match.start()]
        if first == _QUOTE:
            continue
        if first in (_OPEN_ARRAY, _OPEN_OBJECT):
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False
