"""Search by the victim's details, and possible duplicates linked at intake.

- Stored generated columns on `referrals`, computed by PostgreSQL from `facts` (so no writer,
  intake's raw statement included, can forget them or get them wrong), each with the index its
  search uses. The embedded PostgreSQL has no pg_trgm: normalised keys, B-tree indexes and the
  built-in full-text search only.
    victim_surname_key   last name, lower case, no spaces or punctuation   prefix (text_pattern_ops)
    victim_name_key      first and last name, the same way                (duplicates, via dob)
    victim_dob           date of birth as a date                          exact (+ name key)
    victim_phone_digits  the E.164 phone's digits                         exact (+ surname key)
    victim_postcode_key  postcode without spaces (`ME141XX`)              exact, district prefix
    victim_names         tsvector ('simple') of first and last name      full text (GIN)
  and `ix_referrals_external_ref` (the unique index leads with client_id, so it cannot serve a
  search across clients). The reference has its unique index already.
- `triage_name_key(text)` and `triage_iso_date(text)`: IMMUTABLE, as generated columns need;
  plain SQL and PL/pgSQL, no extension. `triage_iso_date` answers NULL for anything that is
  not a real ISO date instead of failing: a generated column that raised would refuse the
  whole intake statement.
- `referral_duplicates`: the newer referral, the older one it may duplicate, what matched
  (`name_and_dob` or `phone_and_surname`), and staff's decision (`open` -> `merged` |
  `dismissed`, triage/domain/statuses.py DUPLICATE), with the status CHECK, transitions rows
  and transition trigger that 0006 gives the other tables.
- `link_possible_duplicates()`: a statement-level AFTER INSERT trigger on `referrals` with a
  transition table, so intake's Python is unchanged and each intake statement (one referral or
  a batch's slice) costs one set-based statement, an index descent per new referral, in the
  intake's transaction. It links each new referral to the newest older referral of the same
  person received up to 90 days before it, and sees the rows of its own statement and
  transaction, so two referrals of one person in one batch are linked too. Each link is
  audited (`duplicate.linked`, by `system:duplicate-check`, with the two referrals' ids).
  Referrals received before this migration are not linked to each other.

Adding stored columns rewrites `referrals` once (one ALTER TABLE) under an exclusive lock.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

DUPLICATE_STATUSES = ("open", "merged", "dismissed")
DUPLICATE_TRANSITIONS = [("open", "dismissed"), ("open", "merged")]
MATCHED_ON = ("name_and_dob", "phone_and_surname")
LOOK_BACK = "90 days"
# Typographic apostrophes and dashes, which a locale's [:punct:] may not count.
# Who the audit trail says linked them: the service's own check, not the referrer.
LINK_ACTOR = "system:duplicate-check"
NAME_SEPARATORS = "\u2018\u2019\u02bc\u2010\u2011\u2013\u2014"

# The victim's fields in facts (api.md shape), as the generated columns read them.
_FIRST = "(facts -> 'victim' ->> 'first_name')"
_LAST = "(facts -> 'victim' ->> 'last_name')"
_BOTH = f"(COALESCE({_FIRST}, '') || ' ' || COALESCE({_LAST}, ''))"
GENERATED = {
    "victim_surname_key": ("text", f"triage_name_key({_LAST})"),
    "victim_name_key": ("text", f"triage_name_key({_BOTH})"),
    "victim_dob": ("date", "triage_iso_date(facts -> 'victim' ->> 'date_of_birth')"),
    "victim_phone_digits": (
        "text",
        "NULLIF(regexp_replace(facts -> 'victim' ->> 'phone', '[^0-9]', '', 'g'), '')",
    ),
    "victim_postcode_key": (
        "text",
        "NULLIF(upper(replace(facts -> 'victim' -> 'address' ->> 'postcode', ' ', '')), '')",
    ),
    "victim_names": ("tsvector", f"to_tsvector('simple'::regconfig, {_BOTH})"),
}
# name -> (columns, USING, operator class of the first): each is the index one kind of search
# uses. The dob and phone indexes go on to the second key of their duplicate rule and the
# order of receipt, so the trigger's look-up of the newest older match is one index descent.
INDEXES = {
    "ix_referrals_victim_surname_key": (["victim_surname_key"], "btree", "text_pattern_ops"),
    "ix_referrals_victim_dob": (
        ["victim_dob", "victim_name_key", "received_at", "reference"],
        "btree",
        None,
    ),
    "ix_referrals_victim_phone_digits": (
        ["victim_phone_digits", "victim_surname_key", "received_at", "reference"],
        "btree",
        None,
    ),
    "ix_referrals_victim_postcode_key": (["victim_postcode_key"], "btree", "text_pattern_ops"),
    "ix_referrals_victim_names": (["victim_names"], "gin", None),
    "ix_referrals_external_ref": (["external_ref"], "btree", None),
}


def upgrade() -> None:
    # Lower case, without spaces and punctuation (typographic apostrophes and dashes too), so
    # "O'Brien", "o brien" and "O’BRIEN" are one key. Names are qualified with pg_catalog so
    # the search_path cannot change what an IMMUTABLE function computes.
    op.execute(f"""
        CREATE FUNCTION triage_name_key(value text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT AS $$
            SELECT NULLIF(pg_catalog.regexp_replace(pg_catalog.lower(value),
                   '[[:space:][:punct:]{NAME_SEPARATORS}]+', '', 'g'), '')
        $$
    """)
    op.execute("""
        CREATE FUNCTION triage_iso_date(value text) RETURNS date
        LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT AS $$
        DECLARE
            y int;
            m int;
            d int;
            first_day date;
        BEGIN
            IF value !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN
                RETURN NULL;
            END IF;
            y := substr(value, 1, 4)::int;
            m := substr(value, 6, 2)::int;
            d := substr(value, 9, 2)::int;
            IF y < 1 OR m < 1 OR m > 12 OR d < 1 THEN
                RETURN NULL;
            END IF;
            first_day := make_date(y, m, 1);
            IF d > (first_day + interval '1 month')::date - first_day THEN
                RETURN NULL;
            END IF;
            RETURN first_day + (d - 1);
        END;
        $$
    """)
    columns = ",\n".join(
        f"ADD COLUMN {name} {kind} GENERATED ALWAYS AS ({expression}) STORED"
        for name, (kind, expression) in GENERATED.items()
    )
    op.execute(f"ALTER TABLE referrals\n{columns}")
    for name, (columns, using, opclass) in INDEXES.items():
        op.create_index(
            name,
            "referrals",
            columns,
            postgresql_using=using,
            postgresql_ops={columns[0]: opclass} if opclass else {},
        )

    op.create_table(
        "referral_duplicates",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("referral_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("duplicate_of", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("matched_on", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), server_default=sa.text("'open'"), nullable=False),
        sa.Column("decided_by", sa.String(100), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_duplicates")),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referrals.id"],
            name=op.f("fk_referral_duplicates_referral_id_referrals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["duplicate_of"],
            ["referrals.id"],
            name=op.f("fk_referral_duplicates_duplicate_of_referrals"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "referral_id", "duplicate_of", name="uq_referral_duplicates_referral_id"
        ),
        sa.CheckConstraint("referral_id <> duplicate_of", name=op.f("ck_referral_duplicates_pair")),
        sa.CheckConstraint(
            "matched_on IN ({})".format(", ".join(f"'{m}'" for m in MATCHED_ON)),
            name=op.f("ck_referral_duplicates_matched_on"),
        ),
        sa.CheckConstraint(
            "status IN ({})".format(", ".join(f"'{s}'" for s in DUPLICATE_STATUSES)),
            name=op.f("ck_referral_duplicates_status"),
        ),
    )
    # Both directions are listed on a referral's page: the newer side is the unique index.
    op.create_index("ix_referral_duplicates_duplicate_of", "referral_duplicates", ["duplicate_of"])
    for from_status, to_status in DUPLICATE_TRANSITIONS:
        op.execute(
            "INSERT INTO status_transitions (record, from_status, to_status) "
            f"VALUES ('referral_duplicates', '{from_status}', '{to_status}')"
        )
    op.execute("""
        CREATE TRIGGER referral_duplicates_status_transition
        BEFORE UPDATE OF status ON referral_duplicates
        FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
        EXECUTE FUNCTION check_status_transition()
    """)

    # One statement per intake statement, whatever its size. Each new referral is linked to
    # the most recent older referral of the same person within the look-back (by each rule;
    # one link when both rules find the same one), never to every one of them: ten thousand
    # referrals of one person in a batch make ten thousand links, not fifty million. Each
    # look-up is one descent of a composite index ending in (received_at, reference), the
    # order of receipt (the reference breaks ties within one statement). An older referral
    # already merged into another is passed over: the one it was merged into is found.
    lookups = []
    for rule, strength, keys in (
        ("name_and_dob", 1, ("victim_dob", "victim_name_key")),
        ("phone_and_surname", 2, ("victim_phone_digits", "victim_surname_key")),
    ):
        same = " AND ".join(f"o.{key} = n.{key}" for key in keys)
        known = " AND ".join(f"n.{key} IS NOT NULL" for key in keys)
        lookups.append(f"""
                SELECT n.id AS newer, newest.id AS older, '{rule}' AS matched_on,
                       {strength} AS strength, n.received_at AS created_at
                FROM new_referrals n
                CROSS JOIN LATERAL (
                    SELECT o.id FROM referrals o
                    WHERE {same}
                      AND (o.received_at, o.reference) < (n.received_at, n.reference)
                      AND o.received_at >= n.received_at - interval '{LOOK_BACK}'
                      AND NOT EXISTS (
                          SELECT 1 FROM referral_duplicates merged
                          WHERE merged.referral_id = o.id AND merged.status = 'merged')
                    ORDER BY o.received_at DESC, o.reference DESC
                    LIMIT 1
                ) AS newest
                WHERE {known}""")
    op.execute(f"""
        CREATE FUNCTION link_possible_duplicates() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            WITH linked AS (
                INSERT INTO referral_duplicates
                    (referral_id, duplicate_of, matched_on, status, created_at)
                SELECT DISTINCT ON (found.newer, found.older)
                       found.newer, found.older, found.matched_on, 'open', found.created_at
                FROM ({" UNION ALL ".join(lookups)}
                ) AS found
                ORDER BY found.newer, found.older, found.strength
                ON CONFLICT ON CONSTRAINT uq_referral_duplicates_referral_id DO NOTHING
                RETURNING id, referral_id, duplicate_of, matched_on
            )
            INSERT INTO audit_events (actor, action, record_type, record_id, details)
            SELECT '{LINK_ACTOR}', 'duplicate.linked', 'duplicate', linked.id::text,
                   jsonb_build_object('referral', linked.referral_id,
                                      'duplicate_of', linked.duplicate_of,
                                      'matched_on', linked.matched_on)
            FROM linked;
            RETURN NULL;
        END;
        $$
    """)
    op.execute("""
        CREATE TRIGGER referrals_link_possible_duplicates
        AFTER INSERT ON referrals
        REFERENCING NEW TABLE AS new_referrals
        FOR EACH STATEMENT EXECUTE FUNCTION link_possible_duplicates()
    """)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS referrals_link_possible_duplicates ON referrals")
    op.execute("DROP FUNCTION IF EXISTS link_possible_duplicates()")
    op.execute("DELETE FROM status_transitions WHERE record = 'referral_duplicates'")
    op.drop_table("referral_duplicates")
    for name in INDEXES:
        op.drop_index(name, table_name="referrals")
    op.execute("ALTER TABLE referrals " + ", ".join(f"DROP COLUMN {name}" for name in GENERATED))
    op.execute("DROP FUNCTION IF EXISTS triage_iso_date(text)")
    op.execute("DROP FUNCTION IF EXISTS triage_name_key(text)")
