"""Indexes for the staff pages at a million referrals (bench/staff.py).

- `ix_referrals_queue` becomes (status, priority, COALESCE(contact_due_by, 'infinity'), id):
  the queue's ORDER BY and its keyset cursor, which compare the same expression, so the first
  page and any later page are one index range read in order (51 rows), with no sort of the
  whole queue. The old (status, priority, contact_due_by) index served only `status =` and
  left a sort of every referral awaiting contact (20,000 at a million: 58 ms; the deep page
  181 ms). It stays complete (not partial): the status is a bound parameter, so a generic
  plan can still use it.
- `ix_cases_open`: open cases by service, oldest first, with what the caseload and the
  queue's service filter read (id, referral_id, assigned_to, status) in the index, so both
  are index-only scans of the open cases of a caseworker's services instead of heap reads
  of every case the services ever had (49,000 for isva and cisva at a million: 289 ms).
  Partial: open cases are a few percent of all cases.

- `ix_audit_events_record` and `ix_audit_events_actor`: the admin's audit trail filtered by
  record or by who acted, newest first (otherwise a scan back through every event).

Building them reads the tables once each (about 15 s at a million referrals).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

QUEUE_ORDER = sa.text("COALESCE(contact_due_by, 'infinity'::timestamp with time zone)")


def upgrade() -> None:
    op.drop_index("ix_referrals_queue", table_name="referrals")
    op.create_index(
        "ix_referrals_queue", "referrals", ["status", "priority", QUEUE_ORDER, "id"], unique=False
    )
    op.create_index(
        "ix_cases_open",
        "cases",
        ["service", "opened_at"],
        unique=False,
        postgresql_include=["id", "referral_id", "assigned_to", "status"],
        postgresql_where=sa.text("status <> 'closed'"),
    )
    op.create_index("ix_audit_events_record", "audit_events", ["record_id", "id"])
    op.create_index("ix_audit_events_actor", "audit_events", ["actor", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_actor", table_name="audit_events")
    op.drop_index("ix_audit_events_record", table_name="audit_events")
    op.drop_index("ix_cases_open", table_name="cases")
    op.drop_index("ix_referrals_queue", table_name="referrals")
    op.create_index(
        "ix_referrals_queue", "referrals", ["status", "priority", "contact_due_by"], unique=False
    )
