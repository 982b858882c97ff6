"""Who is acting: one shape for an API client, a staff user, a public form submission and
the system's own work (a worker, the CLI). Services take a Principal; audit events record its
`actor`, the same way everywhere; the policy (policy.py) says what it may do.

No personal data: an actor is a kind and an id, never a name or an email address.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["client", "staff", "public", "system", "operator"]


@dataclass(frozen=True)
class Principal:
    kind: Kind
    # The client's or the user's id, the public form's name, the system task's name.
    id: str
    # Staff: their roles. Client: its key's scopes. Public and system: what they are.
    roles: frozenset[str] = field(default_factory=frozenset)
    # The service codes a caseworker works on (row scoping); empty for everyone else.
    services: frozenset[str] = field(default_factory=frozenset)
    # A client's source (police, partner, ...), which intake records on the referral.
    source: str | None = None

    @property
    def actor(self) -> str:
        """As audit events record it: `staff:<uuid>`, `client:<uuid>`, `public:self-referral`,
        `system:contact-plan`, `operator:cli`."""
        return f"{self.kind}:{self.id}"

    @property
    def uuid(self) -> uuid.UUID:
        """The client's or the user's id (ValueError for a public or system principal)."""
        return uuid.UUID(self.id)


def staff(user_id: uuid.UUID, roles: frozenset[str], services: frozenset[str]) -> Principal:
    return Principal("staff", str(user_id), roles, services)


def client(client_id: uuid.UUID, scopes: frozenset[str], source: str) -> Principal:
    return Principal("client", str(client_id), scopes, source=source)


def public(form: str) -> Principal:
    return Principal("public", form, frozenset({"public"}))


def system(task: str) -> Principal:
    return Principal("system", task, frozenset({"system"}))


# Whoever runs the operator commands on the host (`triage clients ...`, `triage users ...`).
OPERATOR = Principal("operator", "cli", frozenset({"admin"}))
