#!/bin/bash
# kcadm.sh as the sandbox's service-account admin client (`sandbox-admin`, master realm), inside
# the Keycloak container:
#
#   kcadm-admin.sh <kcadm command and its options>       e.g.  kcadm-admin.sh get realms/mcp
#
# The client secret is never an argument: a command line is readable by every process (ps,
# /proc/<pid>/cmdline), an environment only by its own user. It is read from the compose secret
# file (else from KC_BOOTSTRAP_ADMIN_CLIENT_SECRET, if this process has it) and handed to kcadm as
# KC_CLI_CLIENT_SECRET, which `kcadm.sh config credentials` reads when --secret is absent. (The
# one-shot `--no-config` mode cannot do that: it logs in only with --secret on the command line.)
# The login is saved in a private temporary config file (mktemp -d: mode 0700), removed on exit,
# and the command runs with it. Used by compose/scripts/forget-keys.sh and the tests.
set -euo pipefail
secret_file=/run/secrets/keycloak_admin_client_secret
server=http://127.0.0.1:8080
kcadm=/opt/keycloak/bin/kcadm.sh
[ "$#" -gt 0 ] || { echo "usage: kcadm-admin.sh <kcadm command> [options]" >&2; exit 2; }
if [ -r "$secret_file" ]; then
  KC_CLI_CLIENT_SECRET="$(tr -d '\n' < "$secret_file")"
elif [ -n "${KC_BOOTSTRAP_ADMIN_CLIENT_SECRET:-}" ]; then
  KC_CLI_CLIENT_SECRET="$KC_BOOTSTRAP_ADMIN_CLIENT_SECRET"
else
  echo "kcadm-admin: $secret_file is not readable and KC_BOOTSTRAP_ADMIN_CLIENT_SECRET is not set" >&2
  exit 1
fi
export KC_CLI_CLIENT_SECRET

dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
config="$dir/kcadm.config"
if ! login="$("$kcadm" config credentials --config "$config" --server "$server" --realm master --client sandbox-admin 2>&1)"; then
  printf '%s\n' "$login" >&2
  echo "kcadm-admin: the admin client 'sandbox-admin' could not log in at $server" >&2
  exit 1
fi
unset KC_CLI_CLIENT_SECRET  # the command itself needs only the saved login
"$kcadm" "$@" --config "$config"
