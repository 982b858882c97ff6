"""The two database roles: the owner, which runs the migrations and owns every table
(MIGRATION_DATABASE_URL), and the application's role, which the web app and the workers use
(DATABASE_URL). The application's role may not change or remove audit events or digests; the
migrations grant it what it needs (0004) and nothing more. deploy/OPERATIONS.md lists the grants.
"""

from __future__ import annotations

import os
import re

DEFAULT_APP_ROLE = "triage_app"
_PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def app_role() -> str:
    """The application's role: TRIAGE_APP_ROLE, or `triage_app`. A plain lower-case name, so
    it needs no quoting anywhere it is written into SQL."""
    role = os.environ.get("TRIAGE_APP_ROLE") or DEFAULT_APP_ROLE
    if not _PLAIN_NAME.fullmatch(role):
        raise ValueError(
            "TRIAGE_APP_ROLE must be a plain role name: lower-case letters, digits and _"
        )
    return role
