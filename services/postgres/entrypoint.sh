#!/bin/bash
# First start: create the cluster, the `keycloak` role (password from the compose secret) and
# its database. Every start: PostgreSQL in the foreground, listening on the compose network,
# password (SCRAM) authentication for everyone but the local superuser socket.
set -euo pipefail
secret=/run/secrets/postgres_password
[ -r "$secret" ] || { echo "postgres: $secret is missing (a compose secret)" >&2; exit 1; }
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
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  # The password reaches psql in its environment, read with \getenv: never as an argument
  # (`-v pw=…` would put it on psql's command line, which every process can read).
  KEYCLOAK_DB_PASSWORD="$(tr -d '\n' < "$secret")" psql -v ON_ERROR_STOP=1 -q -d postgres <<'SQL'
\getenv pw KEYCLOAK_DB_PASSWORD
CREATE ROLE keycloak LOGIN PASSWORD :'pw';
CREATE DATABASE keycloak OWNER keycloak;
SQL
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec postgres -D "$PGDATA"
