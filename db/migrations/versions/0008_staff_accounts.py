"""Staff accounts and the work staff do on referrals.

- `staff_users`: an account (email, roles, the service codes a caseworker works on), its
  argon2 password hash, its TOTP secret and recovery codes (hashes), failed sign-ins counted
  for throttling (never a lockout: an admin unlocks), and `sessions_valid_after` (signing out
  everywhere invalidates every older session).
- `staff_tokens`: one-time links (set a password and two-factor), kept as hashes.
- `notes`: append-only notes on a referral or one of its cases (author and time).
- `overrides`: a person's change to the engine's decision (a service added or removed, a
  priority or deadline changed) with its mandatory reason, kept beside the decision.
- `cases.assigned_to`: the caseworker a case is assigned to; `cases.needs`: the needs
  assessment recorded when support starts.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "staff_users",
        sa.Column("id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("roles", pg.ARRAY(sa.Text()), nullable=False),
        sa.Column("services", pg.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("totp_secret", sa.String(64), nullable=True),
        sa.Column(
            "recovery_codes", pg.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column("failed_sign_ins", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("throttled_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sessions_valid_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_users")),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_staff_users_email_lower")),
    )
    op.create_index("uq_staff_users_email", "staff_users", ["email"], unique=True)
    op.create_table(
        "staff_tokens",
        sa.Column("id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["staff_users.id"], name=op.f("fk_staff_tokens_user_id_staff_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_tokens")),
    )
    op.create_index("uq_staff_tokens_token_hash", "staff_tokens", ["token_hash"], unique=True)
    op.create_table(
        "notes",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("referral_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("case_id", pg.UUID(as_uuid=True), nullable=True),
        sa.Column("author", sa.String(60), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["referrals.id"], name=op.f("fk_notes_referral_id_referrals")
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_notes_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notes")),
    )
    op.create_index("ix_notes_referral_id", "notes", ["referral_id", "id"])
    # Notes are append-only: nobody edits what a colleague wrote (retention removes whole
    # referrals as the owner).
    op.execute("""
        CREATE FUNCTION refuse_note_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'notes are append-only' USING ERRCODE = 'insufficient_privilege';
        END;
        $$
    """)
    op.execute("""
        CREATE TRIGGER notes_append_only BEFORE UPDATE ON notes
        FOR EACH ROW EXECUTE FUNCTION refuse_note_change()
    """)
    op.create_table(
        "overrides",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("referral_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("service", sa.String(40), nullable=True),
        sa.Column("priority", sa.String(2), nullable=True),
        sa.Column("contact_due_by", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("consent", pg.JSONB(), nullable=True),
        sa.Column("actor", sa.String(60), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["referrals.id"], name=op.f("fk_overrides_referral_id_referrals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_overrides")),
        sa.CheckConstraint(
            "kind IN ('add_service', 'remove_service', 'priority', 'deadline')",
            name=op.f("ck_overrides_kind"),
        ),
    )
    op.create_index("ix_overrides_referral_id", "overrides", ["referral_id", "id"])
    op.add_column("cases", sa.Column("assigned_to", pg.UUID(as_uuid=True), nullable=True))
    op.add_column("cases", sa.Column("needs", pg.JSONB(), nullable=True))
    op.create_foreign_key(
        op.f("fk_cases_assigned_to_staff_users"), "cases", "staff_users", ["assigned_to"], ["id"]
    )
    op.create_index(
        "ix_cases_assigned_to",
        "cases",
        ["assigned_to", "status"],
        postgresql_where=sa.text("assigned_to IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_cases_assigned_to", table_name="cases")
    op.drop_constraint(op.f("fk_cases_assigned_to_staff_users"), "cases", type_="foreignkey")
    op.drop_column("cases", "needs")
    op.drop_column("cases", "assigned_to")
    op.drop_table("overrides")
    op.execute("DROP TRIGGER IF EXISTS notes_append_only ON notes")
    op.drop_table("notes")
    op.execute("DROP FUNCTION IF EXISTS refuse_note_change()")
    op.drop_table("staff_tokens")
    op.drop_table("staff_users")
