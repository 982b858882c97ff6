"""Public referral forms (issue 11): a draft per journey in progress.

`public_drafts`: the answers of one person's form so far, page by page (answers are what the
person typed: kept only in PostgreSQL, never in Redis, the browser or a URL; the Redis session
holds the draft's id alone). A draft expires 60 minutes after its last save (`expires_at`,
the purge sweep's due time) and is deleted when it is submitted. Its id becomes the
referral's idempotency key (`external_ref` `form-<id>` under the form's intake client, the
unique index uq_referrals_client_external_ref), so a double submit makes one referral.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "public_drafts",
        sa.Column("id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("journey", sa.String(20), nullable=False),
        sa.Column("answers", pg.JSONB(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_public_drafts")),
        sa.CheckConstraint(
            "journey IN ('self', 'professional')", name=op.f("ck_public_drafts_journey")
        ),
    )
    op.create_index("ix_public_drafts_expires_at", "public_drafts", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_public_drafts_expires_at", table_name="public_drafts")
    op.drop_table("public_drafts")
