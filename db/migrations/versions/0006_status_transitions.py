"""Every record's status checked by the database: the allowed transitions as a table and a
trigger on each table that refuses any other change of status, whoever makes it; each status
column held to its record's statuses by a CHECK constraint.

The rows are the tables of triage/domain/statuses.py as they stood at this revision (a test
keeps the database and the code the same: a change there needs a migration here).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.roles import app_role

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

STATUSES = {
    "referrals": ("triaged", "in_contact", "closed", "withdrawn"),
    "cases": ("awaiting_contact", "waiting_list", "in_support", "closed"),
    "contact_steps": ("scheduled", "due", "paused", "done", "skipped"),
    "messages": ("queued", "sending", "accepted", "delivered", "failed", "cancelled"),
    "alerts": ("pending", "raised", "resolved", "cancelled"),
}
TRANSITIONS = {
    "referrals": [
        ("triaged", "closed"),
        ("triaged", "in_contact"),
        ("triaged", "withdrawn"),
        ("in_contact", "closed"),
        ("in_contact", "withdrawn"),
        ("closed", "in_contact"),
    ],
    "cases": [
        ("awaiting_contact", "closed"),
        ("awaiting_contact", "in_support"),
        ("awaiting_contact", "waiting_list"),
        ("waiting_list", "closed"),
        ("waiting_list", "in_support"),
        ("in_support", "closed"),
        ("closed", "in_support"),
    ],
    "contact_steps": [
        ("scheduled", "done"),
        ("scheduled", "due"),
        ("scheduled", "paused"),
        ("scheduled", "skipped"),
        ("due", "done"),
        ("due", "paused"),
        ("due", "skipped"),
        ("paused", "scheduled"),
        ("paused", "skipped"),
    ],
    "messages": [
        ("queued", "accepted"),
        ("queued", "cancelled"),
        ("queued", "delivered"),
        ("queued", "failed"),
        ("queued", "sending"),
        ("sending", "accepted"),
        ("sending", "cancelled"),
        ("sending", "delivered"),
        ("sending", "failed"),
        ("sending", "queued"),
        ("accepted", "delivered"),
        ("accepted", "failed"),
    ],
    "alerts": [
        ("pending", "cancelled"),
        ("pending", "raised"),
        ("pending", "resolved"),
        ("raised", "resolved"),
    ],
}


def upgrade() -> None:
    op.create_table(
        "status_transitions",
        sa.Column("record", sa.String(40), nullable=False),
        sa.Column("from_status", sa.String(20), nullable=False),
        sa.Column("to_status", sa.String(20), nullable=False),
        sa.PrimaryKeyConstraint(
            "record", "from_status", "to_status", name=op.f("pk_status_transitions")
        ),
    )
    op.bulk_insert(
        sa.table(
            "status_transitions",
            sa.column("record", sa.String),
            sa.column("from_status", sa.String),
            sa.column("to_status", sa.String),
        ),
        [
            {"record": table, "from_status": a, "to_status": b}
            for table, pairs in TRANSITIONS.items()
            for a, b in pairs
        ],
    )
    # SECURITY DEFINER: it reads the transitions with its owner's rights, so the
    # application's role needs (and is given) no right on the table at all.
    op.execute("""
        CREATE FUNCTION check_status_transition() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
        BEGIN
            IF NOT EXISTS (
                SELECT 1 FROM status_transitions
                WHERE record = TG_TABLE_NAME AND from_status = OLD.status
                  AND to_status = NEW.status
            ) THEN
                RAISE EXCEPTION 'status transition refused: % % -> %',
                    TG_TABLE_NAME, OLD.status, NEW.status
                    USING ERRCODE = 'check_violation';
            END IF;
            RETURN NEW;
        END;
        $$
    """)
    for table, statuses in STATUSES.items():
        listed = ", ".join(f"'{s}'" for s in statuses)
        op.create_check_constraint("status", table, f"status IN ({listed})")
        op.execute(f"""
            CREATE TRIGGER {table}_status_transition
            BEFORE UPDATE OF status ON {table}
            FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
            EXECUTE FUNCTION check_status_transition()
        """)
    # The default privileges of 0004 would let the application's role change the table that
    # holds it to its transitions: it gets nothing on it (the trigger reads it as the owner).
    op.execute("REVOKE ALL ON status_transitions FROM PUBLIC")
    op.execute(f"REVOKE ALL ON status_transitions FROM {app_role()}")


def downgrade() -> None:
    for table in STATUSES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_status_transition ON {table}")
        op.drop_constraint("status", table, type_="check")
    op.execute("DROP FUNCTION IF EXISTS check_status_transition()")
    op.drop_table("status_transitions")
