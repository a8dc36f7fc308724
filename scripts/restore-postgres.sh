#!/usr/bin/env bash
# Restores a nightly backup (a pg_dump custom-format archive) into the Titanium database, replacing the
# schema `public` whole, in one transaction. `pg_restore --clean` would drop only what the dump holds: a
# table a newer migration made would survive an older dump, and re-running the migrations (which the dump's
# schema_migrations says are pending) would then fail on it. Here the schema is dropped and re-created
# first; if anything fails, nothing changed. Run the migrations Job afterwards (roles, grants, newer
# migrations): docs/runbooks/database.md, "Restore".
#
#   PGHOST=127.0.0.1 PGPORT=15432 PGUSER=titanium PGPASSWORD=... PGDATABASE=titanium scripts/restore-postgres.sh DUMP
#
# The connection comes from libpq's PG* variables only (no password on the command line); the user must
# own the database (the image's POSTGRES_USER does).
set -euo pipefail

usage="usage: PGHOST=... PGPORT=... PGUSER=... PGPASSWORD=... PGDATABASE=... $0 DUMP"
if (($# != 1)); then
  echo "$usage" >&2
  exit 2
fi
dump=$1
for var in PGHOST PGUSER PGDATABASE; do
  if [[ -z ${!var:-} ]]; then
    echo "restore-postgres: $var is not set ($usage)" >&2
    exit 2
  fi
done
if [[ ! -r $dump ]]; then
  echo "restore-postgres: cannot read $dump" >&2
  exit 2
fi

# The whole script is written first: psql must never run a transaction that a failing pg_restore cut
# short (a pipe would commit the part it got). It holds the data, so it stays in a private directory.
# A script from pg_restore is written for pg_restore's own version, not adapted to the server as a
# direct restore is: use the clients of the database's major version.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! pg_restore --no-owner --no-privileges --file="$work/restore.sql" "$dump"; then
  echo "restore-postgres: $dump is not a readable pg_dump archive; the database was not touched" >&2
  exit 1
fi

# No owners or grants from the dump (they name roles this cluster may not have): the migrations Job
# grants, as on a fresh cluster. The schema is re-created as PostgreSQL 15+ creates it (owned by the
# database's owner, usable by every role), so only the grants differ from a fresh database's.
if ! psql --no-psqlrc --quiet --single-transaction --set=ON_ERROR_STOP=1 --output=/dev/null \
  --command="DROP SCHEMA IF EXISTS public CASCADE" \
  --command="CREATE SCHEMA public AUTHORIZATION pg_database_owner" \
  --command="GRANT USAGE ON SCHEMA public TO PUBLIC" \
  --command="COMMENT ON SCHEMA public IS 'standard public schema'" \
  --file="$work/restore.sql"; then
  echo "restore-postgres: the restore failed and was rolled back; the database is as it was" >&2
  exit 1
fi
echo "restore-postgres: restored $dump into $PGDATABASE; now re-run the migrations Job (roles, grants, newer migrations)"
