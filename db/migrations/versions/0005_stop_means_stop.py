"""Stop means stop: when a message's provider call began, and a stop that came during it;
alerts about the service itself (a provider refusing our settings) belong to no referral.

- `messages.call_started_at`: written by the re-check immediately before the provider call;
  a stop cancels a `sending` message only while it is null. Messages already `sending` when
  this revision runs may have been called already: they get their last update time, so a stop
  leaves them to the worker's lookup at the provider rather than cancelling one that was sent.
- `messages.stopped_at`: a stop that arrived while the call was under way (shown to staff as
  sent after the stop).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("call_started_at", sa.DateTime(timezone=True)))
    op.add_column("messages", sa.Column("stopped_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE messages SET call_started_at = updated_at WHERE status = 'sending'")
    op.alter_column("alerts", "referral_id", nullable=True)
    op.create_index(
        "uq_alerts_service_open",
        "alerts",
        ["kind"],
        unique=True,
        postgresql_where=sa.text("referral_id IS NULL AND status IN ('pending', 'raised')"),
    )


def downgrade() -> None:
    op.drop_index("uq_alerts_service_open", table_name="alerts")
    op.execute("DELETE FROM alerts WHERE referral_id IS NULL")
    op.alter_column("alerts", "referral_id", nullable=False)
    op.drop_column("messages", "stopped_at")
    op.drop_column("messages", "call_started_at")
