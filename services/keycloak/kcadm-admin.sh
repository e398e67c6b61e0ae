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
#
# The login is kept for the container's life in a private config file (a 0700 directory of the
# keycloak user's), so a command costs one kcadm start instead of two (login, then the command):
# the test suite makes hundreds of admin calls. kcadm renews the access token itself when it is
# about to expire (a client-credentials login again, with the saved secret). That file holds
# nothing the container's own secret file does not already give the same user. A command refused
# because the kept login no longer works (the secret was changed, the session dropped) logs in
# afresh and runs once more: a 401 means the command itself never ran.
set -euo pipefail
secret_file=/run/secrets/keycloak_admin_client_secret
server=http://127.0.0.1:8080
kcadm=/opt/keycloak/bin/kcadm.sh
session="${TMPDIR:-/tmp}/kcadm-admin-$(id -u)"
config="$session/kcadm.config"
[ "$#" -gt 0 ] || { echo "usage: kcadm-admin.sh <kcadm command> [options]" >&2; exit 2; }

login() {
  local secret login_output
  if [ -r "$secret_file" ]; then
    secret="$(tr -d '\n' < "$secret_file")"
  elif [ -n "${KC_BOOTSTRAP_ADMIN_CLIENT_SECRET:-}" ]; then
    secret="$KC_BOOTSTRAP_ADMIN_CLIENT_SECRET"
  else
    echo "kcadm-admin: $secret_file is not readable and KC_BOOTSTRAP_ADMIN_CLIENT_SECRET is not set" >&2
    exit 1
  fi
  rm -rf "$session"
  (umask 077 && mkdir -p "$session")
  if ! login_output="$(KC_CLI_CLIENT_SECRET="$secret" "$kcadm" config credentials --config "$config" \
                       --server "$server" --realm master --client sandbox-admin 2>&1)"; then
    rm -rf "$session"
    printf '%s\n' "$login_output" >&2
    echo "kcadm-admin: the admin client 'sandbox-admin' could not log in at $server" >&2
    exit 1
  fi
}

[ -s "$config" ] || login
err="$(mktemp "$session/stderr.XXXXXX")"
trap 'rm -f "$err"' EXIT
status=0
"$kcadm" "$@" --config "$config" 2>"$err" || status=$?
if [ "$status" -ne 0 ] && grep -qE 'HTTP error - 401|Session has expired|Failed to refresh access token' "$err"; then
  login
  status=0
  "$kcadm" "$@" --config "$config" 2>"$err" || status=$?
fi
cat "$err" >&2
exit "$status"
