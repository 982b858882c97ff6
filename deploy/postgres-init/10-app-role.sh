#!/bin/sh
# The application's database role (deploy/OPERATIONS.md), made when the compose file's
# PostgreSQL creates its data volume. Migration 0004 grants it what the app needs.
set -eu
psql -v ON_ERROR_STOP=1 -v password="$TRIAGE_APP_PASSWORD" \
     --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE triage_app LOGIN PASSWORD :'password';
ALTER ROLE triage_app SET idle_in_transaction_session_timeout = '5min';
SQL
