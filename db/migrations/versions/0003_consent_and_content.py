"""Consent to the referral kept as given or defaulted; content hashes without clock-derived
values.

- `referrals.referral_consent`: `given` or `defaulted`. Existing rows: consent counts as given
  where the referral needed explicit consent at intake (the catalogue's police rules: sexual
  offences, domestic abuse, bereaved relatives) or did not come from the police (professionals
  confirm it, victims give it by referring themselves), else as defaulted.
- `referrals.content_hash` recomputed from the stored facts by the current rule (a victim's
  age derived from a date of birth is left out), so that a resend of a referral accepted
  before this change still answers 200 after the victim's birthday.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import os
from typing import Any

import msgspec
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PAGE = 1000


def upgrade() -> None:
    from triage.catalogue.loader import load_catalogue
    from triage.domain.facts import referral_facts
    from triage.domain.referral import Referral, content_hash_of

    op.add_column("referrals", sa.Column("referral_consent", sa.String(length=10), nullable=True))
    catalogue = load_catalogue(os.environ.get("TRIAGE_CATALOGUE") or None)
    bind = op.get_bind()
    after = None
    while True:
        rows = bind.execute(
            sa.text(
                "SELECT id, source, received_at, facts FROM referrals "
                "WHERE CAST(:after AS uuid) IS NULL OR id > CAST(:after AS uuid) "
                "ORDER BY id LIMIT :page"
            ),
            {"after": after, "page": PAGE},
        ).all()
        if not rows:
            break
        changes: list[dict[str, Any]] = []
        for row in rows:
            facts = row.facts
            given = True
            if row.source == "police":
                referral = msgspec.convert(facts, Referral)
                seen = referral_facts(referral, row.source, row.received_at)
                given = any(
                    rule.when is not None and rule.when.test(seen)
                    for rule in catalogue.explicit_consent
                )
            changes.append(
                {
                    "id": row.id,
                    "consent": "given" if given else "defaulted",
                    "hash": content_hash_of(facts),
                }
            )
        bind.execute(
            sa.text(
                "UPDATE referrals SET referral_consent = :consent, content_hash = :hash "
                "WHERE id = :id"
            ),
            changes,
        )
        after = str(rows[-1].id)
    op.alter_column("referrals", "referral_consent", nullable=False)


def downgrade() -> None:
    # The old hashes included the derived age; they are not restored (a resend after a
    # birthday would answer 409 again, as it did before this revision).
    op.drop_column("referrals", "referral_consent")
