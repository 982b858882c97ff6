"""Satisfaction and outcome surveys (issue 12, surveys.md).

- `survey_invitations`: one per case closed as supported when surveys.md allows it, written in
  the closure's transaction. `status`: `scheduled` (due 2 working days after closure) ->
  `invited` (the invitation message written; due again at the reminder) -> `reminded` (due
  again at expiry) -> `completed` | `expired`; `cancelled` from any open status (a pause, a
  withdrawal, a consent change, a wrong number, the case re-opened). `due_at` is the next
  thing due (the beat's sweep claims it with SKIP LOCKED); null once final. `phone_key` and
  `email_key` are keyed hashes (HMAC under the service's secret) of the normalised phone number
  and email address, so "one invitation per victim per 90 days, whatever the referral" is an
  index look-up that never stores the number or the address again.
- `survey_tokens`: the SHA-256 of each link's token (at least 128 random bits), one per
  rendering of an invitation or reminder message; the token itself is never stored. Every
  token of an invitation opens it until it is completed or expires.
- `survey_responses`: the answers, one row per invitation (its primary key: a second submit
  finds it taken), with the questions' version; the free text in a column of its own (personal
  data: erased by retention, never in reports).
- `case_outcomes`: the outcome measures per case at the needs assessment and at closure, by
  the caseworker or the survey (distance travelled is the difference).
- `messages.survey_invitation_id`: the invitation a survey message belongs to (its re-check
  before the provider call reads the invitation's status).
- The status CHECK, transitions rows and transition trigger that 0006 gives every record
  (triage/domain/statuses.py SURVEY).
- A closed referral may now be withdrawn (`referrals` closed -> withdrawn): a survey may still
  be due to go after the last case closed, and the referrer's or victim's withdrawal must
  stop it.
- `messages`' new foreign key and CHECK are added NOT VALID and validated afterwards, and its
  index is built CONCURRENTLY, so the sweep is not held up by a scan of a large table.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

NOW = sa.text("now()")
STATUSES = ("scheduled", "invited", "reminded", "completed", "expired", "cancelled")
TRANSITIONS = [
    ("scheduled", "cancelled"),
    ("scheduled", "invited"),
    ("invited", "cancelled"),
    ("invited", "completed"),
    ("invited", "expired"),
    ("invited", "reminded"),
    ("reminded", "cancelled"),
    ("reminded", "completed"),
    ("reminded", "expired"),
]
OPEN = "status IN ('scheduled', 'invited', 'reminded')"


def _in(column: str, values: tuple[str, ...]) -> str:
    return "{} IN ({})".format(column, ", ".join(f"'{v}'" for v in values))


def upgrade() -> None:
    op.create_table(
        "survey_invitations",
        sa.Column("id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("referral_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("case_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("service", sa.String(40), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("channel", sa.String(10), nullable=True),
        sa.Column("phone_key", sa.String(64), nullable=True),
        sa.Column("email_key", sa.String(64), nullable=True),
        sa.Column("invited_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("final_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.String(40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referrals.id"],
            name=op.f("fk_survey_invitations_referral_id_referrals"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_survey_invitations_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_invitations")),
        sa.CheckConstraint(_in("status", STATUSES), name=op.f("ck_survey_invitations_status")),
        # An open invitation is always due at some time: the sweep never loses one.
        sa.CheckConstraint(
            f"NOT ({OPEN}) OR due_at IS NOT NULL", name=op.f("ck_survey_invitations_due_when_open")
        ),
    )
    # What the sweep claims: open and due.
    op.create_index(
        "ix_survey_invitations_due",
        "survey_invitations",
        ["due_at"],
        postgresql_where=sa.text(OPEN),
    )
    # The 90-day rule: the newest invitation to this phone number or this email address.
    for key in ("phone_key", "email_key"):
        op.create_index(
            f"ix_survey_invitations_{key}",
            "survey_invitations",
            [key, "created_at"],
            postgresql_where=sa.text(f"{key} IS NOT NULL"),
        )
    op.create_index("ix_survey_invitations_referral_id", "survey_invitations", ["referral_id"])
    op.create_index("ix_survey_invitations_case_id", "survey_invitations", ["case_id"])
    # Reports count invitations per service and period.
    op.create_index(
        "ix_survey_invitations_service_created", "survey_invitations", ["service", "created_at"]
    )

    op.create_table(
        "survey_tokens",
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("invitation_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("message_id", pg.UUID(as_uuid=True), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["invitation_id"],
            ["survey_invitations.id"],
            name=op.f("fk_survey_tokens_invitation_id_survey_invitations"),
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_survey_tokens")),
        sa.CheckConstraint("octet_length(token_hash) = 32", name=op.f("ck_survey_tokens_sha256")),
    )
    op.create_index("ix_survey_tokens_invitation_id", "survey_tokens", ["invitation_id"])

    op.create_table(
        "survey_responses",
        sa.Column("invitation_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("case_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("service", sa.String(40), nullable=False),
        sa.Column("questions_version", sa.String(40), nullable=False),
        sa.Column("answers", pg.JSONB(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("free_text", sa.Text(), nullable=True),
        sa.Column("safeguarding", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["invitation_id"],
            ["survey_invitations.id"],
            name=op.f("fk_survey_responses_invitation_id_survey_invitations"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_survey_responses_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("invitation_id", name=op.f("pk_survey_responses")),
    )
    op.create_index("ix_survey_responses_case_id", "survey_responses", ["case_id"])
    op.create_index(
        "ix_survey_responses_service_completed", "survey_responses", ["service", "completed_at"]
    )

    op.create_table(
        "case_outcomes",
        sa.Column("case_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("stage", sa.String(12), nullable=False),
        sa.Column("source", sa.String(12), nullable=False),
        sa.Column("measure", sa.String(40), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(80), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_outcomes_case_id_cases")
        ),
        sa.PrimaryKeyConstraint(
            "case_id", "stage", "source", "measure", name=op.f("pk_case_outcomes")
        ),
        sa.CheckConstraint(
            _in("stage", ("assessment", "closure")), name=op.f("ck_case_outcomes_stage")
        ),
        sa.CheckConstraint(
            _in("source", ("caseworker", "survey")), name=op.f("ck_case_outcomes_source")
        ),
        sa.CheckConstraint(
            "stage = 'closure' OR source = 'caseworker'",
            name=op.f("ck_case_outcomes_survey_at_closure"),
        ),
        sa.CheckConstraint("score BETWEEN 1 AND 5", name=op.f("ck_case_outcomes_score")),
    )

    op.add_column(
        "messages", sa.Column("survey_invitation_id", pg.UUID(as_uuid=True), nullable=True)
    )
    # NOT VALID, then validated: the check of existing rows takes a lock that lets the sweep
    # go on writing (a plain ADD would hold every write for a scan of the whole table).
    op.execute(
        "ALTER TABLE messages ADD CONSTRAINT fk_messages_survey_invitation_id_survey_invitations "
        "FOREIGN KEY (survey_invitation_id) REFERENCES survey_invitations (id) NOT VALID"
    )
    # A survey message always names its invitation; a contact message never does.
    op.execute(
        "ALTER TABLE messages ADD CONSTRAINT ck_messages_survey_has_invitation "
        "CHECK ((purpose = 'survey') = (survey_invitation_id IS NOT NULL)) NOT VALID"
    )
    op.execute(
        "ALTER TABLE messages VALIDATE CONSTRAINT "
        "fk_messages_survey_invitation_id_survey_invitations"
    )
    op.execute("ALTER TABLE messages VALIDATE CONSTRAINT ck_messages_survey_has_invitation")

    for from_status, to_status in TRANSITIONS:
        op.execute(
            "INSERT INTO status_transitions (record, from_status, to_status) "
            f"VALUES ('survey_invitations', '{from_status}', '{to_status}')"
        )
    op.execute(
        "INSERT INTO status_transitions (record, from_status, to_status) "
        "VALUES ('referrals', 'closed', 'withdrawn')"
    )
    op.execute("""
        CREATE TRIGGER survey_invitations_status_transition
        BEFORE UPDATE OF status ON survey_invitations
        FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
        EXECUTE FUNCTION check_status_transition()
    """)
    # Last, outside the migration's transaction (everything above is committed first):
    # CONCURRENTLY never blocks the sweep's writes while a large table is read.
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_messages_survey_invitation_id",
            "messages",
            ["survey_invitation_id"],
            postgresql_where=sa.text("survey_invitation_id IS NOT NULL"),
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    op.execute("DELETE FROM status_transitions WHERE record = 'survey_invitations'")
    op.execute(
        "DELETE FROM status_transitions "
        "WHERE record = 'referrals' AND from_status = 'closed' AND to_status = 'withdrawn'"
    )
    op.drop_constraint(op.f("ck_messages_survey_has_invitation"), "messages", type_="check")
    op.drop_index("ix_messages_survey_invitation_id", table_name="messages")
    op.drop_constraint(
        op.f("fk_messages_survey_invitation_id_survey_invitations"), "messages", type_="foreignkey"
    )
    op.drop_column("messages", "survey_invitation_id")
    op.drop_table("case_outcomes")
    op.drop_table("survey_responses")
    op.drop_table("survey_tokens")
    op.drop_table("survey_invitations")
