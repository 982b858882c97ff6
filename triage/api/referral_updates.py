"""Updates from the referring system: PATCH a referral, withdraw it, list its decisions."""

from __future__ import annotations

from typing import Any

from litestar import Controller


class ReferralUpdateController(Controller):
    path = "/api/v1/referrals"
    tags = ["referrals"]  # noqa: RUF012 - Litestar reads it from the class

    _unused: Any = None
