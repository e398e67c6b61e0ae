#!/bin/bash
# First start: create the cluster, the `keycloak` role (password from the compose secret) and
# its database. Every start: make sure the notes API's own role and database exist (`notes`,
# password from its own secret; added after the first clusters were made, so not only at init),
# then PostgreSQL in the foreground, listening on the compose networks, password (SCRAM)
# authentication for everyone but the local superuser socket.
set -euo pipefail
secret=/run/secrets/postgres_password
notes_secret=/run/secrets/notes_db_password
for file in "$secret" "$notes_secret"; do
  [ -r "$file" ] || { echo "postgres: $file is missing (a compose secret)" >&2; exit 1; }
done
local_start() { pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null; }
local_stop() { pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null; }
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  echo "postgres: initializing $PGDATA"
  initdb --auth-local=peer --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 -D "$PGDATA" >/dev/null
  {
    echo "listen_addresses = '*'"
    echo "password_encryption = 'scram-sha-256'"
    echo "max_connections = 200"
  } >> "$PGDATA/postgresql.conf"
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  echo "host all all ::/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  local_start
  # The password reaches psql in its environment, read with \getenv: never as an argument
  # (`-v pw=…` would put it on psql's command line, which every process can read).
  KEYCLOAK_DB_PASSWORD="$(tr -d '\n' < "$secret")" psql -v ON_ERROR_STOP=1 -q -d postgres <<'SQL'
\getenv pw KEYCLOAK_DB_PASSWORD
CREATE ROLE keycloak LOGIN PASSWORD :'pw';
CREATE DATABASE keycloak OWNER keycloak;
SQL
  local_stop
fi
# The notes API (services/api, TOPOLOGY=ha): a role and database of its own, so it can touch
# nothing of Keycloak's (and Keycloak nothing of its). Idempotent: created if missing, and the
# password set from the secret on every start (a regenerated secret takes effect). Nobody but the
# owner may connect to it.
local_start
NOTES_DB_PASSWORD="$(tr -d '\n' < "$notes_secret")" psql -v ON_ERROR_STOP=1 -q -d postgres <<'SQL'
\getenv pw NOTES_DB_PASSWORD
SELECT 'CREATE ROLE notes LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'notes') \gexec
ALTER ROLE notes PASSWORD :'pw';
SELECT 'CREATE DATABASE notes OWNER notes' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'notes') \gexec
REVOKE ALL ON DATABASE notes FROM PUBLIC;
REVOKE ALL ON DATABASE keycloak FROM PUBLIC;
SQL
local_stop
exec postgres -D "$PGDATA"
