"""Reading request bodies without letting a hostile one cost more than its size.

A body within the size limit can still be expensive: a JSON array of sixteen million `1`s is
32 MiB on the wire and gigabytes as objects, and deep nesting exhausts the decoder's stack.
So a batch's items are counted before they are decoded (413 past the item limit), and nesting
deeper than any referral needs answers 400. Every check runs on JSON that msgspec has already
found well formed, so the scans below are linear.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import msgspec
from litestar import Request

from triage.api.problems import ApiProblem
from triage.domain.checker import field_path
from triage.domain.json_input import MAX_DEPTH, nesting_depth_over
from triage.domain.problems import InvalidInput, Problem

BATCH_MAX_ITEMS = 10_000
# Below this many commas a batch cannot hold more items than this: decoding its items as raw
# slices costs about 55 bytes each (55 MB at most), so it is decoded at once and counted after.
# Above it (long notes full of commas, or a hostile array of tiny items) the items are counted
# by a scan that stops past the limit, before anything is allocated per item.
CHEAP_COUNT_BOUND = 1_000_000
SCAN_YIELD_EVERY = 100_000  # tokens scanned between two turns of the event loop

_ITEM_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},]')
_QUOTE, _OPEN_ARRAY, _OPEN_OBJECT, _COMMA = 0x22, 0x5B, 0x7B, 0x2C


def media_type(request: Request[Any, Any, Any]) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def malformed_json() -> ApiProblem:
    # A fixed sentence: the decoder's own message is not for an answer that might quote it.
    return ApiProblem(
        400, "malformed-json", "Malformed JSON", "the body is not valid JSON in UTF-8"
    )


def too_deep_problem() -> ApiProblem:
    return ApiProblem(
        400,
        "too-deep",
        "JSON nested too deeply",
        f"the body nests arrays and objects more than {MAX_DEPTH} levels deep",
    )


def decode_json(raw: bytes, shape: Any = Any) -> Any:
    """Decode a JSON body: 400 when malformed or nested too deeply."""
    try:
        decoded = msgspec.json.decode(raw, type=shape)
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise malformed_json() from None
    except RecursionError:
        raise too_deep_problem() from None
    if nesting_depth_over(raw):
        raise too_deep_problem()
    return decoded


def require_json(request: Request[Any, Any, Any]) -> None:
    if media_type(request) != "application/json":
        raise ApiProblem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "send the body as application/json",
        )


async def read_json(request: Request[Any, Any, Any]) -> Any:
    """A single JSON body (a referral, a change, an AA request): 415, 400 or the value."""
    require_json(request)
    return decode_json(await request.body())


def too_many_items() -> ApiProblem:
    return ApiProblem(
        413,
        "too-many-items",
        "Request body too large",
        f"a batch holds at most {BATCH_MAX_ITEMS} referrals",
    )


async def count_items_over(array: bytes, limit: int) -> bool:
    """Whether a well-formed JSON array has more than `limit` items; the scan stops as soon as
    it knows, and lets the event loop turn while it goes."""
    inner = array.strip()
    if inner[1:-1].strip() == b"":
        return limit < 0
    depth = items = tokens = 0
    for match in _ITEM_TOKENS.finditer(inner):
        tokens += 1
        if tokens % SCAN_YIELD_EVERY == 0:
            await asyncio.sleep(0)
        first = inner[match.start()]
        if first == _QUOTE:
            continue
        if first == _COMMA:
            if depth == 1:
                items += 1
                if items + 1 > limit:
                    return True
        elif first in (_OPEN_ARRAY, _OPEN_OBJECT):
            depth += 1
        else:
            depth -= 1
    return False


async def read_json_batch(raw: bytes) -> list[msgspec.Raw]:
    """The items of `{"referrals": [...]}`, each left undecoded (decoded with its chunk);
    413 past BATCH_MAX_ITEMS, found before the items are split out."""
    not_a_list = Problem("referrals", "must be a list of referrals")
    try:
        # The fields' values are left as raw bytes: the array is counted before it is split.
        fields = msgspec.json.decode(raw, type=dict[str, msgspec.Raw])
    except msgspec.ValidationError:
        raise InvalidInput([not_a_list], "Invalid batch") from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise malformed_json() from None
    except RecursionError:
        raise too_deep_problem() from None
    array = bytes(fields.get("referrals", b"")).lstrip()
    problems = [] if array.startswith(b"[") else [not_a_list]
    # Unknown fields are refused, as in every other body (and as the OpenAPI document says).
    problems += [
        Problem(field_path("", name), "is not a known field")
        for name in sorted(fields)
        if name != "referrals"
    ]
    if problems:
        raise InvalidInput(problems, "Invalid batch")
    if array.count(b",") + 1 > CHEAP_COUNT_BOUND and await count_items_over(array, BATCH_MAX_ITEMS):
        raise too_many_items()
    items = msgspec.json.decode(array, type=list[msgspec.Raw])
    if len(items) > BATCH_MAX_ITEMS:
        raise too_many_items()
    return items
