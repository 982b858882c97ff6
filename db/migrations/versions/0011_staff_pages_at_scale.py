"""The staff pages at a million referrals, second pass (bench/staff.py), and the queue's area.

- `referrals.area`: the area the engine placed the victim in (the decision's `area.code`: a
  catalogue area, `outside` or `unknown`), written by intake and by a re-triage beside the
  priority and deadline, so the queue filters by area without reading decisions. Filled here
  from each referral's latest decision that names one.
- `ix_referrals_surname_received` replaces `ix_referrals_victim_surname_key`: the surname
  (text_pattern_ops: byte order, so a prefix is a range), then received_at and id. A surname
  search (a prefix, newest first) steps through the different surnames of the prefix, one
  index descent each, and reads each one's newest referrals backwards, instead of sorting
  every match (a common surname is a tenth of the referrals: 785 ms at a million before).
- `ix_referrals_postcode_received` replaces `ix_referrals_victim_postcode_key` the same way:
  one postcode's referrals are read newest first, not sorted (a refuge's or a hostel's
  postcode has hundreds; 80 ms for one of 9,500 in the benchmark's data); a district is
  still a prefix, one range of it.
- `contact_steps.priority`: the referral's priority, written with each step (intake and the
  contact plan pass it; a step written without it takes its referral's, by a trigger) and
  kept equal by `referrals_priority_to_steps`, a trigger on a change of the referral's
  priority (an override, a re-triage). `ix_contact_steps_calls_due`
  becomes (priority, due_at, id) over due calls, the list's order, with the referral's id
  in it: a page of calls due is one range read instead of joining and sorting every due call
  (2,600 at a million: 22 ms), and a caseworker's scope is checked from the index before a
  referral is read.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("referrals", sa.Column("area", sa.String(40), nullable=True))
    op.execute(
        """
        UPDATE referrals r SET area = latest.code
        FROM (
            SELECT DISTINCT ON (referral_id) referral_id, decision -> 'area' ->> 'code' AS code
            FROM triage_decisions
            WHERE decision -> 'area' ->> 'code' IS NOT NULL
            ORDER BY referral_id, id DESC
        ) latest
        WHERE latest.referral_id = r.id
        """
    )
    op.execute("UPDATE referrals SET area = 'unknown' WHERE area IS NULL")
    # The default is for the app of before this migration, still running while a release
    # rolls out: its intake does not name the area, and must not fail a police referral for
    # it. Such a referral is shown under "Not known" until a re-triage places it.
    op.alter_column("referrals", "area", nullable=False, server_default=sa.text("'unknown'"))
    op.create_index(
        "ix_referrals_surname_received",
        "referrals",
        ["victim_surname_key", "received_at", "id"],
        postgresql_ops={"victim_surname_key": "text_pattern_ops"},
    )
    op.drop_index("ix_referrals_victim_surname_key", table_name="referrals")
    op.create_index(
        "ix_referrals_postcode_received",
        "referrals",
        ["victim_postcode_key", "received_at", "id"],
        postgresql_ops={"victim_postcode_key": "text_pattern_ops"},
    )
    op.drop_index("ix_referrals_victim_postcode_key", table_name="referrals")

    op.add_column("contact_steps", sa.Column("priority", sa.String(2), nullable=True))
    op.execute(
        "UPDATE contact_steps s SET priority = r.priority FROM referrals r "
        "WHERE r.id = s.referral_id"
    )
    op.alter_column("contact_steps", "priority", nullable=False)
    # A step written without its priority (the app of before this migration, still running
    # while a release rolls out, or a future writer that forgets it) takes its referral's.
    # The referral is visible even when intake writes both in one statement.
    op.execute(
        """
        CREATE FUNCTION contact_steps_priority_of_referral() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.priority IS NULL THEN
                NEW.priority := (SELECT priority FROM referrals WHERE id = NEW.referral_id);
            END IF;
            RETURN NEW;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER contact_steps_priority_of_referral
        BEFORE INSERT ON contact_steps
        FOR EACH ROW EXECUTE FUNCTION contact_steps_priority_of_referral()
        """
    )
    op.execute(
        """
        CREATE FUNCTION referrals_priority_to_steps() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE contact_steps SET priority = NEW.priority
            WHERE referral_id = NEW.id AND priority IS DISTINCT FROM NEW.priority;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER referrals_priority_to_steps
        AFTER UPDATE OF priority ON referrals
        FOR EACH ROW WHEN (OLD.priority IS DISTINCT FROM NEW.priority)
        EXECUTE FUNCTION referrals_priority_to_steps()
        """
    )
    op.drop_index("ix_contact_steps_calls_due", table_name="contact_steps")
    op.create_index(
        "ix_contact_steps_calls_due",
        "contact_steps",
        ["priority", "due_at", "id"],
        postgresql_include=["referral_id"],
        postgresql_where=sa.text("status = 'due' AND kind = 'call'"),
    )


def downgrade() -> None:
    op.drop_index("ix_contact_steps_calls_due", table_name="contact_steps")
    op.create_index(
        "ix_contact_steps_calls_due",
        "contact_steps",
        ["due_at"],
        postgresql_where=sa.text("status = 'due' AND kind = 'call'"),
    )
    op.execute("DROP TRIGGER referrals_priority_to_steps ON referrals")
    op.execute("DROP FUNCTION referrals_priority_to_steps()")
    op.execute("DROP TRIGGER contact_steps_priority_of_referral ON contact_steps")
    op.execute("DROP FUNCTION contact_steps_priority_of_referral()")
    op.drop_column("contact_steps", "priority")
    op.create_index(
        "ix_referrals_victim_postcode_key",
        "referrals",
        ["victim_postcode_key"],
        postgresql_ops={"victim_postcode_key": "text_pattern_ops"},
    )
    op.drop_index("ix_referrals_postcode_received", table_name="referrals")
    op.create_index(
        "ix_referrals_victim_surname_key",
        "referrals",
        ["victim_surname_key"],
        postgresql_ops={"victim_surname_key": "text_pattern_ops"},
    )
    op.drop_index("ix_referrals_surname_received", table_name="referrals")
    op.drop_column("referrals", "area")
