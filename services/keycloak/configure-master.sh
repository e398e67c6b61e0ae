#!/bin/bash
# The master realm cannot be imported like the served realms (Keycloak creates it at first
# start), so its hardening is applied here, through the admin API, on every start (idempotent):
# brute-force detection, and a realm-wide client policy that rejects the password grant.
# Authenticates as the bootstrap service-account client: no password grant needed, none allowed.
# Its secret is the one Keycloak bootstraps that client with, KC_BOOTSTRAP_ADMIN_CLIENT_SECRET
# (entrypoint.sh exports it from the compose secret; on AWS, ECS sets it from Secrets Manager). It
# reaches kcadm in the environment (KC_CLI_CLIENT_SECRET), never as an argument: a command line is
# readable by every process in the container. The login is kept in a private temporary config
# file for the three updates, removed on exit (kcadm-admin.sh keeps its own for later commands).
set -euo pipefail
: "${KC_BOOTSTRAP_ADMIN_CLIENT_SECRET:?is not set (entrypoint.sh sets it from the keycloak_admin_client_secret secret)}"
export KC_CLI_CONFIG="$(mktemp -d)/kcadm.config"
trap 'rm -rf "$(dirname "$KC_CLI_CONFIG")"' EXIT
kcadm() { /opt/keycloak/bin/kcadm.sh "$@" --config "$KC_CLI_CONFIG"; }
if ! KC_CLI_CLIENT_SECRET="$KC_BOOTSTRAP_ADMIN_CLIENT_SECRET" \
     kcadm config credentials --server http://127.0.0.1:8080 --realm master --client sandbox-admin >/dev/null 2>&1; then
  echo "sandbox: the admin client 'sandbox-admin' cannot log in. This Keycloak data predates it;" \
       "run 'make clean && make up' once to recreate the sandbox." >&2
  exit 1
fi
dir=/opt/keycloak/sandbox/master
kcadm update realms/master -f "$dir/realm.json"
kcadm update client-policies/profiles -r master -f "$dir/client-profiles.json"
kcadm update client-policies/policies -r master -f "$dir/client-policies.json"
echo "sandbox: master realm hardened (brute-force detection on, password grant rejected)"
