"""Wake the workers after a commit. Redis only carries the wake-up: the rows are the work,
so a lost wake-up only delays until beat's next sweep."""

from __future__ import annotations

from collections.abc import Callable

_waker: Callable[[], None] | None = None


def set_waker(waker: Callable[[], None] | None) -> None:
    global _waker
    _waker = waker


def wake_workers() -> None:
    if _waker is None:
        return
    try:
        _waker()
    except Exception:
        pass
