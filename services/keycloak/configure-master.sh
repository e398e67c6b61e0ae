#!/bin/bash
# The master realm cannot be imported like the served realms (Keycloak creates it at first
# start), so its hardening is applied here, through the admin API, on every start (idempotent):
# brute-force detection, and a realm-wide client policy that rejects the password grant.
# Authenticates as the bootstrap service-account client: no password grant needed, none allowed.
set -euo pipefail
secret="$(tr -d '\n' < /run/secrets/keycloak_admin_client_secret)"
export KC_CLI_CONFIG="$(mktemp -d)/kcadm.config"
kcadm() { /opt/keycloak/bin/kcadm.sh "$@" --config "$KC_CLI_CONFIG"; }
if ! kcadm config credentials --server http://127.0.0.1:8080 --realm master \
     --client sandbox-admin --secret "$secret" >/dev/null 2>&1; then
  echo "sandbox: the admin client 'sandbox-admin' cannot log in. This Keycloak data predates it;" \
       "run 'make clean && make up' once to recreate the sandbox." >&2
  exit 1
fi
dir=/opt/keycloak/sandbox/master
kcadm update realms/master -f "$dir/realm.json"
kcadm update client-policies/profiles -r master -f "$dir/client-profiles.json"
kcadm update client-policies/policies -r master -f "$dir/client-policies.json"
rm -rf "$(dirname "$KC_CLI_CONFIG")"
echo "sandbox: master realm hardened (brute-force detection on, password grant rejected)"
