"""Contact workers: the outbox notifier's table, resend chains, the retention index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "messages", sa.Column("tries", sa.Integer(), server_default=sa.text("1"), nullable=False)
    )
    op.create_index(
        "ix_messages_retention",
        "messages",
        ["final_at"],
        postgresql_where=sa.text("body IS NOT NULL"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("reference", sa.UUID(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("template", sa.String(length=40), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "sent_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index(op.f("ix_outbox_reference"), "outbox", ["reference"])
    # The calls-due list: due calls by priority and due time.
    op.create_index(
        "ix_contact_steps_calls_due",
        "contact_steps",
        ["due_at"],
        postgresql_where=sa.text("status = 'due' AND kind = 'call'"),
    )


def downgrade() -> None:
    op.drop_index("ix_contact_steps_calls_due", table_name="contact_steps")
    op.drop_index(op.f("ix_outbox_reference"), table_name="outbox")
    op.drop_table("outbox")
    op.drop_index("ix_messages_retention", table_name="messages")
    op.drop_column("messages", "tries")
