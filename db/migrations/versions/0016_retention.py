"""Retention and erasure (issue 13, retention.md).

- `referrals.final_at`: when the referral reached its final state (closed or withdrawn), kept
  by a trigger on every change of status (cleared when a re-opened case brings it back into
  contact), at the service clock; erasure falls due from it (the catalogue's years).
- `referrals.erased_at`: when its personal data was erased (the row and the columns reports
  read stay).
- `referrals.legal_hold_reason`, `legal_hold_at`, `legal_hold_by`: an admin's legal hold (a
  court case, a complaint) stops erasure until it is lifted.
- `aa_requests.erased_at`: the same for an Appropriate Adult request.
- `ix_referrals_erasure_due`: the daily job's claim, over what may still be erased.

Existing final referrals get `final_at` from their last case's closure (closed) or their last
change (withdrawn).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

SERVICE_NOW = (
    "clock_timestamp() + make_interval(secs => CAST(COALESCE("
    "(SELECT offset_seconds FROM clock_offset WHERE id = 1), 0) AS double precision))"
)


def upgrade() -> None:
    for column in (
        sa.Column("final_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("legal_hold_reason", sa.Text(), nullable=True),
        sa.Column("legal_hold_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("legal_hold_by", sa.String(60), nullable=True),
    ):
        op.add_column("referrals", column)
    op.add_column("aa_requests", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("""
        UPDATE referrals r SET final_at = COALESCE(
            (SELECT max(c.closed_at) FROM cases c WHERE c.referral_id = r.id), r.updated_at)
        WHERE r.status = 'closed'
    """)
    op.execute("UPDATE referrals SET final_at = updated_at WHERE status = 'withdrawn'")
    # The service clock (the offset is 0 and cannot move in production), so a test that moves
    # the clock sees erasure fall due as a person would years later.
    op.execute(f"""
        CREATE FUNCTION triage_referral_final_at() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.status IN ('closed', 'withdrawn') THEN
                NEW.final_at := {SERVICE_NOW};
            ELSE
                NEW.final_at := NULL;
            END IF;
            RETURN NEW;
        END;
        $$
    """)
    op.execute("""
        CREATE TRIGGER referrals_final_at
        BEFORE UPDATE OF status ON referrals
        FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
        EXECUTE FUNCTION triage_referral_final_at()
    """)
    op.create_index(
        "ix_referrals_erasure_due",
        "referrals",
        ["status", "final_at"],
        postgresql_where=sa.text(
            "erased_at IS NULL AND legal_hold_reason IS NULL AND status IN ('closed', 'withdrawn')"
        ),
    )


def downgrade() -> None:
    op.drop_index("ix_referrals_erasure_due", table_name="referrals")
    op.execute("DROP TRIGGER referrals_final_at ON referrals")
    op.execute("DROP FUNCTION triage_referral_final_at()")
    op.drop_column("aa_requests", "erased_at")
    for column in ("legal_hold_by", "legal_hold_at", "legal_hold_reason", "erased_at", "final_at"):
        op.drop_column("referrals", column)
