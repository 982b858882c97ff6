"""Set-up emails: "email user X their set-up link", a row written in the transaction that
created the account or reset its two-factor (when the notifier is a real provider).

- `staff_setup_emails`: the user, a status (`queued` -> `sending` -> `sent` | `failed`;
  `cancelled` when a newer link replaced it or the account was disabled; back to `queued`
  after a temporary failure), `due_at`, the claim's lease (`claimed_until`) and `attempts`
  (as `messages`), the provider's status and a failure reason (never the address, the link
  or its token). The row's id is the provider's reference. No token is stored here: the
  worker issues the link when it sends (its hash in `staff_tokens`, as every link's).
- The status CHECK, transitions rows and transition trigger that 0006 gives every record
  (triage/domain/statuses.py SETUP_EMAIL).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

NOW = sa.text("now()")
STATUSES = ("queued", "sending", "sent", "failed", "cancelled")
TRANSITIONS = [
    ("queued", "cancelled"),
    ("queued", "sending"),
    ("sending", "cancelled"),
    ("sending", "failed"),
    ("sending", "queued"),
    ("sending", "sent"),
]


def upgrade() -> None:
    op.create_table(
        "staff_setup_emails",
        sa.Column("id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("provider_status", sa.String(40), nullable=True),
        sa.Column("failure_reason", sa.String(80), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("final_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["staff_users.id"], name=op.f("fk_staff_setup_emails_user_id_staff_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_setup_emails")),
        sa.CheckConstraint(
            "status IN ({})".format(", ".join(f"'{s}'" for s in STATUSES)),
            name=op.f("ck_staff_setup_emails_status"),
        ),
    )
    # What the sweep claims: queued and due, or sending with a lease that ran out.
    op.create_index(
        "ix_staff_setup_emails_open",
        "staff_setup_emails",
        ["due_at"],
        postgresql_where=sa.text("status IN ('queued', 'sending')"),
    )
    # An account's newest set-up email (the admin's user page).
    op.create_index(
        "ix_staff_setup_emails_user_id", "staff_setup_emails", ["user_id", "created_at"]
    )
    for from_status, to_status in TRANSITIONS:
        op.execute(
            "INSERT INTO status_transitions (record, from_status, to_status) "
            f"VALUES ('staff_setup_emails', '{from_status}', '{to_status}')"
        )
    op.execute("""
        CREATE TRIGGER staff_setup_emails_status_transition
        BEFORE UPDATE OF status ON staff_setup_emails
        FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
        EXECUTE FUNCTION check_status_transition()
    """)


def downgrade() -> None:
    op.execute("DELETE FROM status_transitions WHERE record = 'staff_setup_emails'")
    op.drop_table("staff_setup_emails")
