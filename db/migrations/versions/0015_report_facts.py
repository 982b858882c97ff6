"""Reports (issue 13): the columns reports read, written when the referral is written (and
when its facts or its first contact change), so that a report gives the same figures before and
after the personal data is erased (retention.md).

- `referrals.offence_category`: the offence's category (api.md's list).
- `referrals.age_band`: the victim's age on receipt: `under_18`, `18_24`, `25_64`, `65_plus`
  or `unknown`.
- `referrals.enhanced_rights` and `referrals.signposts`: the decision's Enhanced Rights groups
  and signposts (the latest decision's, as the referral's flags are).
- `referrals.first_contact_working_minutes`: the wait from receipt to first contact in the
  hub's working hours (09:00 to the end of the working day, working days), computed with the
  catalogue's calendar when contact is recorded.
- Indexes for the period queries: BRIN on referrals' receipt and cases' opening (rows arrive
  in time order, so a range of months is a few block ranges; and a BRIN index offers no order,
  so the staff pages' newest-first searches never trade their own indexes for a backward scan
  of it), and cases by closure.

Existing rows are filled from the facts and the latest decision (the working minutes from
first contact, when there was one).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

from __future__ import annotations

from datetime import time

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

AGE_BANDS = ("under_18", "18_24", "25_64", "65_plus", "unknown")


def upgrade() -> None:
    op.add_column(
        "referrals",
        sa.Column("offence_category", sa.String(40), server_default="other", nullable=False),
    )
    op.add_column(
        "referrals",
        sa.Column("age_band", sa.String(12), server_default="unknown", nullable=False),
    )
    op.add_column(
        "referrals",
        sa.Column(
            "enhanced_rights", pg.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False
        ),
    )
    op.add_column(
        "referrals",
        sa.Column("signposts", pg.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
    )
    op.add_column(
        "referrals", sa.Column("first_contact_working_minutes", sa.Integer(), nullable=True)
    )
    op.create_check_constraint(
        op.f("ck_referrals_age_band"),
        "referrals",
        "age_band IN ({})".format(", ".join(f"'{b}'" for b in AGE_BANDS)),
    )
    op.execute("""
        UPDATE referrals r SET
            offence_category = COALESCE(NULLIF(r.facts -> 'offence' ->> 'category', ''), 'other'),
            age_band = CASE
                WHEN r.victim_dob IS NULL AND (r.facts -> 'victim' ->> 'age') ~ '^[0-9]{1,3}$'
                    THEN CASE
                        WHEN (r.facts -> 'victim' ->> 'age')::int < 18 THEN 'under_18'
                        WHEN (r.facts -> 'victim' ->> 'age')::int < 25 THEN '18_24'
                        WHEN (r.facts -> 'victim' ->> 'age')::int < 65 THEN '25_64'
                        ELSE '65_plus' END
                WHEN r.victim_dob IS NULL THEN 'unknown'
                WHEN r.victim_dob > (r.received_at AT TIME ZONE 'Europe/London')::date
                    - interval '18 years' THEN 'under_18'
                WHEN r.victim_dob > (r.received_at AT TIME ZONE 'Europe/London')::date
                    - interval '25 years' THEN '18_24'
                WHEN r.victim_dob > (r.received_at AT TIME ZONE 'Europe/London')::date
                    - interval '65 years' THEN '25_64'
                ELSE '65_plus' END,
            enhanced_rights = COALESCE(ARRAY(
                SELECT jsonb_array_elements_text(d.decision -> 'enhanced_rights')), '{}'),
            signposts = COALESCE(ARRAY(
                SELECT s ->> 'code' FROM jsonb_array_elements(d.decision -> 'signposts') s), '{}')
        FROM (
            SELECT DISTINCT ON (referral_id) referral_id, decision
            FROM triage_decisions ORDER BY referral_id, id DESC
        ) d
        WHERE d.referral_id = r.id
    """)
    _fill_working_minutes()
    op.create_index(
        "ix_referrals_received_brin", "referrals", ["received_at"], postgresql_using="brin"
    )
    op.create_index("ix_cases_opened_brin", "cases", ["opened_at"], postgresql_using="brin")
    op.create_index(
        "ix_cases_closed_at",
        "cases",
        ["closed_at"],
        postgresql_where=sa.text("closed_at IS NOT NULL"),
    )


def _fill_working_minutes() -> None:
    """First contacts made before this migration: their working wait, by the calendar."""
    from triage.domain.calendar import WorkingCalendar

    calendar = WorkingCalendar()
    connection = op.get_bind()
    rows = connection.execute(
        sa.text(
            "SELECT id, received_at, first_contact_at FROM referrals "
            "WHERE first_contact_at IS NOT NULL"
        )
    ).all()
    for row in rows:
        minutes = calendar.working_minutes(row.received_at, row.first_contact_at, time(9), time(17))
        connection.execute(
            sa.text("UPDATE referrals SET first_contact_working_minutes = :m WHERE id = :i"),
            {"m": minutes, "i": row.id},
        )


def downgrade() -> None:
    op.drop_index("ix_cases_closed_at", table_name="cases")
    op.drop_index("ix_cases_opened_brin", table_name="cases")
    op.drop_index("ix_referrals_received_brin", table_name="referrals")
    op.drop_constraint(op.f("ck_referrals_age_band"), "referrals", type_="check")
    for column in (
        "first_contact_working_minutes",
        "signposts",
        "enhanced_rights",
        "age_band",
        "offence_category",
    ):
        op.drop_column("referrals", column)
