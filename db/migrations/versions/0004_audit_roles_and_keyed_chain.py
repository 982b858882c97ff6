"""An audit chain the application cannot rewrite: two roles, keyed digests by transaction.

- **Two roles.** These migrations run as the owner role (MIGRATION_DATABASE_URL), which owns
  every table; the web app and the workers run as the application's role (DATABASE_URL,
  named by TRIAGE_APP_ROLE, default `triage_app`). This revision creates that role NOLOGIN
  when it is missing and the owner may create roles; otherwise the operator creates it first
  (deploy/OPERATIONS.md) and the upgrade stops saying so. It refuses an application role that
  is the owner, a superuser or a member of the owner: that role could rewrite the trail.
- **Grants.** The application's role gets SELECT, INSERT, UPDATE, DELETE on every table but
  the audit tables and `alembic_version` (SELECT only); on `audit_events` SELECT and INSERT of
  the columns it writes (never `id`, `at` or `xact`, which the database sets), on
  `audit_digests` SELECT and INSERT; USAGE and SELECT on every sequence. Never TRUNCATE,
  TRIGGER or REFERENCES, and it owns nothing, so it cannot disable a trigger either. Default
  privileges give tables and sequences that later migrations create the same grants.
- **No DDL from the application.** The yearly reference sequences are created by
  `triage_ensure_reference_sequence(text)`, a SECURITY DEFINER function owned by the owner,
  which the application's role may execute.
- **Keyed digests by transaction.** `audit_events` gains `xact` (the inserting transaction's
  id, `pg_current_xact_id()`) and `details` (jsonb, nullable). `audit_digests` is rebuilt: one
  row per seal, HMAC-SHA-256 under TRIAGE_AUDIT_KEY over the events whose `xact` lies in
  [xact_from, xact_to) (services/audit.py). The existing SHA-256 digests are dropped: they
  cannot be re-keyed (the key is not in the database) and, unkeyed, they prove nothing
  against whoever can write the tables. Existing events get `xact` 1, so the first seal after
  this upgrade covers every one of them.

Downgrade puts the minute-digest table back empty (the keyed digests cannot become SHA-256
ones), drops the two columns and the function, and revokes the grants; the role is kept
(roles belong to the server, not to one database).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

from db.roles import app_role

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

APPEND_ONLY = ("audit_events", "audit_digests")
# What the application writes into an audit event; id, at and xact come from their defaults.
EVENT_COLUMNS = "actor, action, record_type, record_id, details"


def _check_role(role: str) -> None:
    op.execute(f"""
        DO $do$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = current_user
                               AND (rolsuper OR rolcreaterole)) THEN
                    RAISE EXCEPTION 'the application role "{role}" (TRIAGE_APP_ROLE) does not '
                        'exist and % may not create it: create it first '
                        '(deploy/OPERATIONS.md)', current_user;
                END IF;
                BEGIN
                    CREATE ROLE {role} NOLOGIN;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN
                    NULL;  -- made at the same moment by a migration of another database
                END;
            END IF;
            IF '{role}' = current_user THEN
                RAISE EXCEPTION 'TRIAGE_APP_ROLE "{role}" is the role running the migrations: '
                    'the application needs its own role (deploy/OPERATIONS.md)';
            END IF;
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}' AND rolsuper) THEN
                RAISE EXCEPTION 'the application role "{role}" is a superuser: '
                    'nothing could keep it from rewriting the audit trail';
            END IF;
            IF pg_has_role('{role}', current_user, 'MEMBER') THEN
                RAISE EXCEPTION 'the application role "{role}" is a member of %, which owns '
                    'the tables: it could rewrite the audit trail', current_user;
            END IF;
        END
        $do$
    """)


def _reference_sequence_function(role: str) -> None:
    # SECURITY DEFINER: runs as the owner. The name is checked strictly and quoted with %I,
    # and search_path is pinned, so the caller can make it create nothing else.
    op.execute(f"""
        CREATE FUNCTION triage_ensure_reference_sequence(sequence_name text) RETURNS void
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS $fn$
        BEGIN
            IF sequence_name !~ '^reference_[a-z]{{1,20}}_[0-9]{{4}}$' THEN
                RAISE EXCEPTION 'not a reference sequence name: %', sequence_name
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            -- Two first referrals of the year wait for each other here.
            PERFORM pg_advisory_xact_lock(hashtext(sequence_name));
            EXECUTE format('CREATE SEQUENCE IF NOT EXISTS public.%I', sequence_name);
            EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE public.%I TO {role}', sequence_name);
        END
        $fn$
    """)
    op.execute("REVOKE ALL ON FUNCTION triage_ensure_reference_sequence(text) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION triage_ensure_reference_sequence(text) TO {role}")


def _grants(role: str) -> None:
    # Every table first, then the audit tables and alembic_version narrowed by name. Default
    # privileges give every table a later migration creates the full set too, so a later
    # migration that adds an audit (append-only) table must narrow it the same way, in the
    # same migration: tests/integration/test_audit_roles.py checks every table's grants and
    # fails on an `audit_` table the application could update or delete.
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
    # Revoking the table's privileges revokes its column privileges too.
    op.execute(f"REVOKE ALL ON {', '.join(APPEND_ONLY)}, alembic_version FROM {role}")
    op.execute(f"GRANT SELECT ON alembic_version TO {role}")
    op.execute(f"GRANT SELECT, INSERT ({EVENT_COLUMNS}) ON audit_events TO {role}")
    op.execute(f"GRANT SELECT, INSERT ON audit_digests TO {role}")
    # The bigserial ids (audit_events' too: nextval needs USAGE) and the reference sequences.
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}")
    op.execute(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}"
    )
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {role}"
    )
    # Before PostgreSQL 15 every role could create objects in `public` (a function there could
    # shadow one the owner's migrations call). Only the schema's owner may change that.
    op.execute("""
        DO $do$
        BEGIN
            IF pg_has_role(current_user,
                           (SELECT nspowner FROM pg_namespace WHERE nspname = 'public'),
                           'USAGE') THEN
                REVOKE CREATE ON SCHEMA public FROM PUBLIC;
            END IF;
        END
        $do$
    """)


def upgrade() -> None:
    role = app_role()
    _check_role(role)

    # Existing rows take the constant (no rewrite, no UPDATE for the trigger to refuse); new
    # rows the inserting transaction's id.
    op.execute("ALTER TABLE audit_events ADD COLUMN xact xid8 NOT NULL DEFAULT '1'::xid8")
    op.execute("ALTER TABLE audit_events ALTER COLUMN xact SET DEFAULT pg_current_xact_id()")
    op.execute("ALTER TABLE audit_events ADD COLUMN details jsonb")
    op.execute("CREATE INDEX ix_audit_events_xact ON audit_events (xact)")

    op.execute("DROP TABLE audit_digests")
    op.execute("""
        CREATE TABLE audit_digests (
            id bigserial NOT NULL,
            sealed_at timestamptz NOT NULL DEFAULT now(),
            xact_from xid8 NOT NULL,
            xact_to xid8 NOT NULL,
            events integer NOT NULL,
            digest varchar(64) NOT NULL,
            previous varchar(64) NOT NULL,
            CONSTRAINT pk_audit_digests PRIMARY KEY (id),
            CONSTRAINT uq_audit_digests_digest UNIQUE (digest),
            CONSTRAINT uq_audit_digests_previous UNIQUE (previous),
            CONSTRAINT ck_audit_digests_range CHECK (xact_to > xact_from)
        )
    """)
    op.execute("""
        CREATE FUNCTION audit_append_only() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
        END;
        $$ LANGUAGE plpgsql
    """)
    op.execute("""
        CREATE TRIGGER audit_digests_append_only BEFORE UPDATE OR DELETE ON audit_digests
        FOR EACH ROW EXECUTE FUNCTION audit_append_only()
    """)
    op.execute("""
        CREATE TRIGGER audit_digests_no_truncate BEFORE TRUNCATE ON audit_digests
        FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()
    """)

    _reference_sequence_function(role)
    _grants(role)


def downgrade() -> None:
    role = app_role()
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE USAGE, SELECT ON SEQUENCES FROM {role}"
    )
    op.execute(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {role}"
    )
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}")
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
    op.execute("DROP FUNCTION triage_ensure_reference_sequence(text)")

    op.execute("DROP TABLE audit_digests")
    op.execute("DROP FUNCTION audit_append_only()")
    op.execute("""
        CREATE TABLE audit_digests (
            minute timestamptz NOT NULL,
            events integer NOT NULL,
            digest varchar(64) NOT NULL,
            previous varchar(64),
            CONSTRAINT pk_audit_digests PRIMARY KEY (minute)
        )
    """)
    op.execute("DROP INDEX ix_audit_events_xact")
    op.execute("ALTER TABLE audit_events DROP COLUMN details")
    op.execute("ALTER TABLE audit_events DROP COLUMN xact")
