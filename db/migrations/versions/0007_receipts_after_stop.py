"""A delivery receipt can say the provider had a message after all: a `failed` message (its
answer was lost) or a `cancelled` one (stopped while its call was already under way) becomes
`delivered`, so the record says what the victim's phone received.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ADDED = [("messages", "failed", "delivered"), ("messages", "cancelled", "delivered")]


def upgrade() -> None:
    for record, from_status, to_status in ADDED:
        op.execute(
            "INSERT INTO status_transitions (record, from_status, to_status) "
            f"VALUES ('{record}', '{from_status}', '{to_status}')"
        )


def downgrade() -> None:
    for record, from_status, to_status in ADDED:
        op.execute(
            "DELETE FROM status_transitions "
            f"WHERE record = '{record}' AND from_status = '{from_status}' "
            f"AND to_status = '{to_status}'"
        )
