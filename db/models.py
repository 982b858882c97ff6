"""SQLAlchemy models: the tables PostgreSQL keeps (the source of truth).

Future work (a contact step, a message, an alert) is a row with `due_at`, written in the same
transaction as its cause; workers claim due rows with FOR UPDATE SKIP LOCKED.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR, UUID
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import UserDefinedType

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads it as a class attribute
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSONB,
        list[str]: ARRAY(Text),
        uuid.UUID: UUID(as_uuid=True),
    }


def _now() -> Any:
    return func.now()


class Xid8(UserDefinedType[int]):
    """PostgreSQL's 64-bit transaction id (`pg_current_xact_id()`); asyncpg reads it as int."""

    cache_ok = True

    def get_col_spec(self, **_: Any) -> str:
        return "xid8"


# So that reflection (Alembic's model check) knows the type too.
ischema_names["xid8"] = Xid8


class CatalogueVersion(Base):
    """Every catalogue content a decision was made with, kept so it can be reproduced."""

    __tablename__ = "catalogue_versions"
    version: Mapped[str] = mapped_column(String(80), primary_key=True)
    catalogue_id: Mapped[str] = mapped_column(String(40))
    content: Mapped[dict[str, Any]]
    loaded_at: Mapped[datetime] = mapped_column(server_default=_now())


class ApiClient(Base):
    __tablename__ = "api_clients"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    source: Mapped[str] = mapped_column(String(20))  # police | professional
    per_minute: Mapped[int] = mapped_column(Integer, default=600)
    batches_per_minute: Mapped[int] = mapped_column(Integer, default=20)
    created_at: Mapped[datetime] = mapped_column(server_default=_now())


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_clients.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(8), unique=True)
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32))  # HMAC-SHA-256 under the secret
    scopes: Mapped[list[str]]
    created_at: Mapped[datetime] = mapped_column(server_default=_now())
    revoked_at: Mapped[datetime | None]


# The victim's names in `facts`, as the generated columns of `referrals` read them.
_LAST = "(facts -> 'victim' ->> 'last_name')"
_BOTH = (
    "(COALESCE((facts -> 'victim' ->> 'first_name'), '') || ' ' || "
    "COALESCE((facts -> 'victim' ->> 'last_name'), ''))"
)


class Referral(Base):
    __tablename__ = "referrals"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    client_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_clients.id"))
    external_ref: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    received_at: Mapped[datetime]
    referred_at: Mapped[datetime | None]
    content_hash: Mapped[str] = mapped_column(String(64))
    # The normalised referral as received (api.md shape): the facts and the people in them.
    facts: Mapped[dict[str, Any]]
    # Consent to the referral: `given` (explicitly, or confirmed by a professional, or by the
    # victim referring themselves) or `defaulted` (a police referral that policy lets through
    # without it). A change that makes explicit consent necessary needs it to be `given`.
    referral_consent: Mapped[str] = mapped_column(String(10))
    priority: Mapped[str] = mapped_column(String(2))
    contact_due_by: Mapped[datetime | None]
    # The area the engine placed the victim in (the decision's area.code: a catalogue area,
    # `outside` or `unknown`), kept beside the decision for the queue's filter and reports.
    area: Mapped[str] = mapped_column(String(40), server_default=text("'unknown'"))
    flags: Mapped[list[str]] = mapped_column(server_default=text("'{}'"))
    contact_paused: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    first_contact_at: Mapped[datetime | None]
    withdrawn_reason: Mapped[str | None] = mapped_column(Text)
    # What reports read (migration 0015): written with the referral, kept after erasure.
    offence_category: Mapped[str] = mapped_column(String(40), server_default=text("'other'"))
    age_band: Mapped[str] = mapped_column(String(12), server_default=text("'unknown'"))
    enhanced_rights: Mapped[list[str]] = mapped_column(server_default=text("'{}'"))
    signposts: Mapped[list[str]] = mapped_column(server_default=text("'{}'"))
    first_contact_working_minutes: Mapped[int | None] = mapped_column(Integer)
    # Retention (migration 0016): the final state's time (a trigger keeps it), the erasure,
    # and an admin's legal hold that stops it.
    final_at: Mapped[datetime | None]
    erased_at: Mapped[datetime | None]
    legal_hold_reason: Mapped[str | None] = mapped_column(Text)
    legal_hold_at: Mapped[datetime | None]
    legal_hold_by: Mapped[str | None] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(server_default=_now())
    # The victim's details as search and duplicate detection compare them, computed by
    # PostgreSQL from `facts` (migration 0009), so no writer can forget or differ on them;
    # SQLAlchemy never writes them. Names: lower case, no spaces or punctuation.
    victim_surname_key: Mapped[str | None] = mapped_column(
        Text, Computed(f"triage_name_key({_LAST})", persisted=True)
    )
    victim_name_key: Mapped[str | None] = mapped_column(
        Text, Computed(f"triage_name_key({_BOTH})", persisted=True)
    )
    victim_dob: Mapped[date | None] = mapped_column(
        Date, Computed("triage_iso_date(facts -> 'victim' ->> 'date_of_birth')", persisted=True)
    )
    victim_phone_digits: Mapped[str | None] = mapped_column(
        Text,
        Computed(
            "NULLIF(regexp_replace(facts -> 'victim' ->> 'phone', '[^0-9]', '', 'g'), '')",
            persisted=True,
        ),
    )
    victim_postcode_key: Mapped[str | None] = mapped_column(
        Text,
        Computed(
            "NULLIF(upper(replace(facts -> 'victim' -> 'address' ->> 'postcode', ' ', '')), '')",
            persisted=True,
        ),
    )
    # Deferred: only a name search reads it.
    victim_names: Mapped[str | None] = mapped_column(
        TSVECTOR,
        Computed(f"to_tsvector('simple'::regconfig, {_BOTH})", persisted=True),
        deferred=True,
    )
    __table_args__ = (
        # Idempotency is the index's job, not a read-then-write race.
        UniqueConstraint("client_id", "external_ref", name="uq_referrals_client_external_ref"),
        # BRIN: ranges of months for reports, and no order a search could scan backwards.
        Index("ix_referrals_received_brin", "received_at", postgresql_using="brin"),
        Index(
            "ix_referrals_erasure_due",
            "status",
            "final_at",
            postgresql_where=text(
                "erased_at IS NULL AND legal_hold_reason IS NULL "
                "AND status IN ('closed', 'withdrawn')"
            ),
        ),
        # The status feed: a client's referrals changed since a time, keyset by (updated_at, id).
        Index("ix_referrals_client_updated", "client_id", "updated_at", "id"),
        # The staff queue: by priority, then deadline (none last), then id, as its ORDER BY
        # and keyset cursor compare them (staff_views.queue): any page is one range read.
        Index(
            "ix_referrals_queue",
            "status",
            "priority",
            text("COALESCE(contact_due_by, 'infinity'::timestamp with time zone)"),
            "id",
        ),
        # Search (services/search.py): surname and postcode district by prefix, the rest
        # exact, names by full text; dob and phone also serve the duplicate trigger. A
        # surname's referrals newest first, in byte order (text_pattern_ops) so that a prefix
        # is a range and its different surnames can be stepped through (migration 0011).
        Index(
            "ix_referrals_surname_received",
            "victim_surname_key",
            "received_at",
            "id",
            postgresql_ops={"victim_surname_key": "text_pattern_ops"},
        ),
        # Led by the searched column, then the rest of a duplicate rule and the order of
        # receipt: the intake trigger's look-up of the newest older match is one descent.
        Index(
            "ix_referrals_victim_dob", "victim_dob", "victim_name_key", "received_at", "reference"
        ),
        Index(
            "ix_referrals_victim_phone_digits",
            "victim_phone_digits",
            "victim_surname_key",
            "received_at",
            "reference",
        ),
        # A postcode's referrals newest first (a refuge's postcode has hundreds); a district
        # is a prefix of it, one range (migration 0011).
        Index(
            "ix_referrals_postcode_received",
            "victim_postcode_key",
            "received_at",
            "id",
            postgresql_ops={"victim_postcode_key": "text_pattern_ops"},
        ),
        Index("ix_referrals_victim_names", "victim_names", postgresql_using="gin"),
        Index("ix_referrals_external_ref", "external_ref"),
    )


class ReferralDuplicate(Base):
    """A possible duplicate, linked at intake by a trigger (migration 0009): the newer referral
    (`referral_id`) may be the same person as the older one (`duplicate_of`), by normalised
    name and date of birth or by phone and surname, within 90 days. Staff merge or dismiss it
    (services/duplicates.py); never shown to a referrer or a victim."""

    __tablename__ = "referral_duplicates"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"))
    duplicate_of: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("referrals.id", ondelete="CASCADE"), index=True
    )
    matched_on: Mapped[str] = mapped_column(String(20))  # name_and_dob | phone_and_surname
    status: Mapped[str] = mapped_column(String(20), server_default=text("'open'"))
    decided_by: Mapped[str | None] = mapped_column(String(100))  # the principal's actor
    decided_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=_now())
    __table_args__ = (
        UniqueConstraint("referral_id", "duplicate_of", name="uq_referral_duplicates_referral_id"),
        CheckConstraint("referral_id <> duplicate_of", name="pair"),
        CheckConstraint("matched_on IN ('name_and_dob', 'phone_and_surname')", name="matched_on"),
    )


class TriageDecision(Base):
    """Every decision, kept as given: a re-triage or an override sits beside the old one."""

    __tablename__ = "triage_decisions"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"), index=True)
    decided_at: Mapped[datetime]
    cause: Mapped[str] = mapped_column(String(20))  # intake | update | override
    catalogue_version: Mapped[str] = mapped_column(ForeignKey("catalogue_versions.version"))
    decision: Mapped[dict[str, Any]]
    explanation: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'"))


class Case(Base):
    """One per allocated service."""

    __tablename__ = "cases"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"))
    service: Mapped[str] = mapped_column(String(40))
    role: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(20))
    opened_at: Mapped[datetime]
    first_contact_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    closure_reason: Mapped[str | None] = mapped_column(String(20))
    flags: Mapped[list[str]] = mapped_column(server_default=text("'{}'"))
    updated_at: Mapped[datetime] = mapped_column(server_default=_now())
    # The caseworker working it, and the needs assessment recorded when support starts.
    assigned_to: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    needs: Mapped[dict[str, Any] | None]
    __table_args__ = (
        UniqueConstraint("referral_id", "service", name="uq_cases_referral_service"),
        Index("ix_cases_opened_brin", "opened_at", postgresql_using="brin"),
        Index("ix_cases_closed_at", "closed_at", postgresql_where=text("closed_at IS NOT NULL")),
        Index("ix_cases_service_status", "service", "status"),
        # Open cases by service, oldest first, covering the caseload and the queue's service
        # filter (index-only): a few percent of all cases.
        Index(
            "ix_cases_open",
            "service",
            "opened_at",
            postgresql_include=["id", "referral_id", "assigned_to", "status"],
            postgresql_where=text("status <> 'closed'"),
        ),
        Index(
            "ix_cases_assigned_to",
            "assigned_to",
            "status",
            postgresql_where=text("assigned_to IS NOT NULL"),
        ),
    )


class ContactStep(Base):
    """The next step of a referral's contact plan: only one is open at a time."""

    __tablename__ = "contact_steps"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"))
    # The referral's priority, copied for the calls-due list's index: written with the step,
    # and kept equal by a trigger when the referral's changes (migration 0011).
    priority: Mapped[str] = mapped_column(String(2))
    number: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))  # call | message | close
    channel: Mapped[str | None] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(12))
    due_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    message_template: Mapped[str | None] = mapped_column(String(40))
    message_channel: Mapped[str | None] = mapped_column(String(10))
    closure_reason: Mapped[str | None] = mapped_column(String(20))
    outcome: Mapped[str | None] = mapped_column(String(20))
    attempted_at: Mapped[datetime | None]
    skip_reason: Mapped[str | None] = mapped_column(String(30))
    created_at: Mapped[datetime] = mapped_column(server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(server_default=_now())
    __table_args__ = (
        # Only the next step exists: at most one open step per referral.
        Index(
            "uq_contact_steps_open",
            "referral_id",
            unique=True,
            postgresql_where=text("status IN ('scheduled', 'due', 'paused')"),
        ),
        Index("ix_contact_steps_due", "due_at", postgresql_where=text("status = 'scheduled'")),
        Index("ix_contact_steps_referral", "referral_id", "number"),
        # Calls due, most urgent first: any page of the list is one range read (migration
        # 0011; the step's priority is its referral's, kept by a trigger).
        Index(
            "ix_contact_steps_calls_due",
            "priority",
            "due_at",
            "id",
            postgresql_include=["referral_id"],
            postgresql_where=text("status = 'due' AND kind = 'call'"),
        ),
    )


class Message(Base):
    """SMS, email or letter: the row is the outbox; its id is the provider reference."""

    __tablename__ = "messages"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    referral_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("referrals.id"), index=True)
    contact_step_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("contact_steps.id"))
    purpose: Mapped[str] = mapped_column(String(20))  # contact | survey
    channel: Mapped[str] = mapped_column(String(10))
    template: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(12))
    due_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # Position in a chain of resends after a failure receipt (each resend is a new row, so
    # a new reference): the chain stops at the notifier's retry limit.
    tries: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    provider_status: Mapped[str | None] = mapped_column(String(40))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    # Rendered content and recipient: deleted 7 days after the final status.
    recipient: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    final_at: Mapped[datetime | None]
    # When the provider call of the current claim began (written by the re-check immediately
    # before the call): a stop cancels a `sending` message only while this is null.
    call_started_at: Mapped[datetime | None]
    # A stop (pause, withdrawal, ...) that arrived while the call was under way: the message
    # is recorded as sent and shown to staff as sent after the stop.
    stopped_at: Mapped[datetime | None]
    # A survey message's invitation (its re-check reads the invitation's status).
    survey_invitation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("survey_invitations.id")
    )
    created_at: Mapped[datetime] = mapped_column(server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(server_default=_now())
    __table_args__ = (
        Index(
            "ix_messages_survey_invitation_id",
            "survey_invitation_id",
            postgresql_where=text("survey_invitation_id IS NOT NULL"),
        ),
        Index("ix_messages_queued", "due_at", postgresql_where=text("status = 'queued'")),
        Index("ix_messages_sending", "claimed_until", postgresql_where=text("status = 'sending'")),
        Index("ix_messages_retention", "final_at", postgresql_where=text("body IS NOT NULL")),
    )


class OutboxEntry(Base):
    """What the `outbox` notifier "sent" (dev and tests): one row per send, so a message sent
    twice shows twice. Shown at /dev/outbox and by `triage outbox list`."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    reference: Mapped[uuid.UUID] = mapped_column(index=True)
    channel: Mapped[str] = mapped_column(String(10))
    template: Mapped[str] = mapped_column(String(40))
    recipient: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[datetime] = mapped_column(server_default=_now())


class Alert(Base):
    """Something the duty lead must see: raised at `due_at` unless resolved before."""

    __tablename__ = "alerts"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # None for an alert about the service itself (the provider refusing our settings).
    referral_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("referrals.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(12))  # pending | raised | resolved | cancelled
    due_at: Mapped[datetime]
    raised_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(server_default=_now())
    __table_args__ = (
        Index("ix_alerts_pending", "due_at", postgresql_where=text("status = 'pending'")),
        # One open alert of a kind about the service itself (not a referral) at a time.
        Index(
            "uq_alerts_service_open",
            "kind",
            unique=True,
            postgresql_where=text("referral_id IS NULL AND status IN ('pending', 'raised')"),
        ),
    )


class AppropriateAdultRequest(Base):
    """Detainees are not victims: kept apart, in their own table."""

    __tablename__ = "aa_requests"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_clients.id"))
    external_ref: Mapped[str] = mapped_column(String(100))
    custody_suite: Mapped[str] = mapped_column(String(100))
    person: Mapped[dict[str, Any]]
    request: Mapped[dict[str, Any]]
    content_hash: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime]
    needed_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20))
    attend_by: Mapped[datetime | None]
    signpost_to: Mapped[str | None] = mapped_column(String(40))
    reasons: Mapped[list[str]]
    flags: Mapped[list[str]]
    catalogue_version: Mapped[str] = mapped_column(ForeignKey("catalogue_versions.version"))
    updated_at: Mapped[datetime] = mapped_column(server_default=_now())
    erased_at: Mapped[datetime | None]
    __table_args__ = (
        UniqueConstraint("client_id", "external_ref", name="uq_aa_requests_client_external_ref"),
    )


class StatusTransition(Base):
    """The status changes the database allows, per table (triage/domain/statuses.py, written
    by the migrations): a trigger on each table refuses any other."""

    __tablename__ = "status_transitions"
    record: Mapped[str] = mapped_column(String(40), primary_key=True)
    from_status: Mapped[str] = mapped_column(String(20), primary_key=True)
    to_status: Mapped[str] = mapped_column(String(20), primary_key=True)


class ClockOffset(Base):
    """The service clock's offset (dev and tests only): one row, shared by web and workers."""

    __tablename__ = "clock_offset"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offset_seconds: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


class AuditEvent(Base):
    """Append-only: a trigger refuses UPDATE and DELETE, and the application's role has no
    right to either (it may insert only the columns below that have no default). No personal
    data."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(server_default=_now(), index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    record_type: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(String(64))
    # Ids and such that the event is about beyond record_id (a page's rows, say); no
    # personal data. Part of the sealed line when present.
    details: Mapped[dict[str, Any] | None]
    # The inserting transaction's id: the seal covers a range of these that no open
    # transaction can still add to (services/audit.py).
    xact: Mapped[int] = mapped_column(
        Xid8(), server_default=text("pg_current_xact_id()"), index=True
    )
    __table_args__ = (
        # The admin's audit trail, by record or by who acted, newest first (migration 0010).
        Index("ix_audit_events_record", "record_id", "id"),
        Index("ix_audit_events_actor", "actor", "id"),
    )


class AuditDigest(Base):
    """One seal: HMAC-SHA-256 under TRIAGE_AUDIT_KEY over the previous digest and the events
    whose `xact` lies in [xact_from, xact_to), in id order. Append-only, like the events."""

    __tablename__ = "audit_digests"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    sealed_at: Mapped[datetime] = mapped_column(server_default=_now())
    xact_from: Mapped[int] = mapped_column(Xid8())
    xact_to: Mapped[int] = mapped_column(Xid8())
    events: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    # One successor per digest: two sealers can never fork the chain.
    previous: Mapped[str] = mapped_column(String(64), unique=True)
    __table_args__ = (CheckConstraint("xact_to > xact_from", name="range"),)


class StaffUser(Base):
    """A person who signs in to the staff pages. Never a shared account: audit events name
    the user (by id), and every role's scope is the user's own."""

    __tablename__ = "staff_users"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    roles: Mapped[list[str]]
    # The service codes a caseworker works on (row scoping), never provider names.
    services: Mapped[list[str]] = mapped_column(server_default=text("'{}'"))
    password_hash: Mapped[str | None] = mapped_column(Text)  # argon2id
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    recovery_codes: Mapped[list[str]] = mapped_column(server_default=text("'{}'"))  # hashes
    failed_sign_ins: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    throttled_until: Mapped[datetime | None]
    # Sessions that began before this are signed out (sign out everywhere, a disabled user).
    sessions_valid_after: Mapped[datetime | None]
    last_sign_in_at: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(server_default=_now())
    __table_args__ = (
        Index("uq_staff_users_email", "email", unique=True),
        CheckConstraint("email = lower(email)", name="email_lower"),
    )


class StaffToken(Base):
    """A one-time link (set a password and two-factor): only its hash is kept."""

    __tablename__ = "staff_tokens"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_users.id"))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    purpose: Mapped[str] = mapped_column(String(20))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=_now())
    __table_args__ = (Index("uq_staff_tokens_token_hash", "token_hash", unique=True),)


class StaffSetupEmail(Base):
    """Email user X their set-up link: written in the transaction that created the account or
    reset its two-factor, when the notifier is a real provider. No token is kept here: the
    worker issues the link as it sends (its hash in staff_tokens). The id is the provider's
    reference; claimed like a message (`claimed_until`, `attempts`)."""

    __tablename__ = "staff_setup_emails"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_users.id"))
    status: Mapped[str] = mapped_column(String(12))  # queued | sending | sent | failed | ...
    due_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    provider_status: Mapped[str | None] = mapped_column(String(40))
    # Why it was not sent, in our words: never the address, the link or the provider's text.
    failure_reason: Mapped[str | None] = mapped_column(String(80))
    sent_at: Mapped[datetime | None]
    final_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(server_default=_now())
    __table_args__ = (
        Index(
            "ix_staff_setup_emails_open",
            "due_at",
            postgresql_where=text("status IN ('queued', 'sending')"),
        ),
        Index("ix_staff_setup_emails_user_id", "user_id", "created_at"),
    )


class Note(Base):
    """Append-only (a trigger refuses UPDATE): on the referral, or on one of its cases."""

    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"))
    case_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("cases.id"))
    author: Mapped[str] = mapped_column(String(60))  # the principal's actor
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=_now())
    __table_args__ = (Index("ix_notes_referral_id", "referral_id", "id"),)


class Override(Base):
    """A person's change to the engine's decision, with its reason, kept beside it."""

    __tablename__ = "overrides"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"))
    kind: Mapped[str] = mapped_column(String(20))
    service: Mapped[str | None] = mapped_column(String(40))
    priority: Mapped[str | None] = mapped_column(String(2))
    contact_due_by: Mapped[datetime | None]
    reason: Mapped[str] = mapped_column(Text)
    # Who gave explicit consent for an added service that needs it, when and how.
    consent: Mapped[dict[str, Any] | None]
    actor: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(server_default=_now())
    __table_args__ = (
        Index("ix_overrides_referral_id", "referral_id", "id"),
        CheckConstraint(
            "kind IN ('add_service', 'remove_service', 'priority', 'deadline')", name="kind"
        ),
    )


class PublicDraft(Base):
    """One public form in progress (migration 0013): the answers so far, page by page. Only
    its id is in the person's session; it expires 60 minutes after the last save and is
    deleted on submit. Its id is the referral's idempotency key (`form-<id>`)."""

    __tablename__ = "public_drafts"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    journey: Mapped[str] = mapped_column(String(20))  # self | professional
    answers: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'"))
    created_at: Mapped[datetime] = mapped_column(server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(server_default=_now())
    expires_at: Mapped[datetime] = mapped_column(index=True)
    __table_args__ = (CheckConstraint("journey IN ('self', 'professional')", name="journey"),)


_SURVEY_OPEN = "status IN ('scheduled', 'invited', 'reminded')"


class SurveyInvitation(Base):
    """A survey invitation, written with the closure of a case as supported (migration 0014):
    `due_at` is the next thing due (the invitation, the reminder, the expiry). The phone and
    email keys are keyed hashes of the victim's normalised contact details, for the 90-day
    rule; never the number or the address."""

    __tablename__ = "survey_invitations"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    referral_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("referrals.id"))
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"))
    service: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(12))
    due_at: Mapped[datetime | None]
    channel: Mapped[str | None] = mapped_column(String(10))
    phone_key: Mapped[str | None] = mapped_column(String(64))
    email_key: Mapped[str | None] = mapped_column(String(64))
    invited_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    final_at: Mapped[datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(server_default=_now())
    __table_args__ = (
        Index("ix_survey_invitations_due", "due_at", postgresql_where=text(_SURVEY_OPEN)),
        Index(
            "ix_survey_invitations_phone_key",
            "phone_key",
            "created_at",
            postgresql_where=text("phone_key IS NOT NULL"),
        ),
        Index(
            "ix_survey_invitations_email_key",
            "email_key",
            "created_at",
            postgresql_where=text("email_key IS NOT NULL"),
        ),
        Index("ix_survey_invitations_referral_id", "referral_id"),
        Index("ix_survey_invitations_case_id", "case_id"),
        Index("ix_survey_invitations_service_created", "service", "created_at"),
    )


class SurveyToken(Base):
    """The SHA-256 of one survey link's token (the token is never stored)."""

    __tablename__ = "survey_tokens"
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    invitation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("survey_invitations.id"))
    message_id: Mapped[uuid.UUID | None]
    issued_at: Mapped[datetime] = mapped_column(server_default=_now())
    __table_args__ = (Index("ix_survey_tokens_invitation_id", "invitation_id"),)


class SurveyResponse(Base):
    """One invitation's answers (its primary key: never two), with the questions' version.
    The free text is personal data: erased by retention, never counted in reports."""

    __tablename__ = "survey_responses"
    invitation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("survey_invitations.id"), primary_key=True
    )
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"))
    service: Mapped[str] = mapped_column(String(40))
    questions_version: Mapped[str] = mapped_column(String(40))
    answers: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'"))
    free_text: Mapped[str | None] = mapped_column(Text)
    safeguarding: Mapped[bool] = mapped_column(Boolean, server_default=false())
    completed_at: Mapped[datetime]
    __table_args__ = (
        Index("ix_survey_responses_case_id", "case_id"),
        Index("ix_survey_responses_service_completed", "service", "completed_at"),
    )


class CaseOutcome(Base):
    """An outcome measure's score for a case: at the needs assessment (the caseworker) and at
    closure (the caseworker or the survey). Distance travelled is the difference."""

    __tablename__ = "case_outcomes"
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    stage: Mapped[str] = mapped_column(String(12), primary_key=True)  # assessment | closure
    source: Mapped[str] = mapped_column(String(12), primary_key=True)  # caseworker | survey
    measure: Mapped[str] = mapped_column(String(40), primary_key=True)
    score: Mapped[int] = mapped_column(SmallInteger)
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(String(80))
