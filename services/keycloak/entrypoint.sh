#!/bin/bash
# Start Keycloak, then harden the master realm (configure-master.sh), then report configured:
# the compose health check waits for both. Secrets stay files (compose secrets), never in the
# compose environment or the image.
set -euo pipefail
read_secret() { [ -r "/run/secrets/$1" ] && tr -d '\n' < "/run/secrets/$1"; }
if pw="$(read_secret keycloak_admin_password)"; then export KC_BOOTSTRAP_ADMIN_PASSWORD="$pw"; fi
if pw="$(read_secret keycloak_admin_client_secret)"; then export KC_BOOTSTRAP_ADMIN_CLIENT_SECRET="$pw"; fi
if pw="$(read_secret demo_user_password)"; then export DEMO_USER_PASSWORD="$pw"; fi
if pw="$(read_secret admin_user_password)"; then export ADMIN_USER_PASSWORD="$pw"; fi
if pw="$(read_secret norole_user_password)"; then export NOROLE_USER_PASSWORD="$pw"; fi
if pw="$(read_secret agent_confidential_client_secret)"; then export AGENT_CONFIDENTIAL_CLIENT_SECRET="$pw"; fi
if pw="$(read_secret machine_client_secret)"; then export MACHINE_CLIENT_SECRET="$pw"; fi
if pw="$(read_secret postgres_password)"; then export KC_DB_PASSWORD="$pw"; fi  # TOPOLOGY=ha
rm -f /tmp/sandbox-configured

args=("$@")
if [ "${KEYCLOAK_ADMIN_CONSOLE:-off}" = on ] && [ "${args[0]:-}" = start ]; then
  # The image is built without the admin console; without KC_FEATURES_DISABLED and without
  # --optimized, the start re-augments the server with it (about half a minute longer).
  unset KC_FEATURES_DISABLED
  rebuilt=(start)
  for arg in "${args[@]:1}"; do [ "$arg" = --optimized ] || rebuilt+=("$arg"); done
  args=("${rebuilt[@]}")
fi

/opt/keycloak/bin/kc.sh "${args[@]}" &
kc=$!
trap 'kill -TERM "$kc" 2>/dev/null' TERM INT

if [ "${args[0]:-}" = start ]; then
  until (exec 3<>/dev/tcp/127.0.0.1/9000 && printf 'GET /health/ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3 && head -n1 <&3 | grep -q ' 200') 2>/dev/null; do
    kill -0 "$kc" 2>/dev/null || { wait "$kc"; exit $?; }
    sleep 1
  done
  if /opt/keycloak/bin/configure-master.sh; then
    touch /tmp/sandbox-configured
  else
    echo "sandbox: hardening the master realm failed; Keycloak stays unhealthy (see above)" >&2
  fi
fi
# A trapped SIGTERM interrupts `wait` at once. Keep waiting for Keycloak's graceful shutdown: it
# finishes its requests and leaves the cluster. If this script exited first, the container would
# stop and kill Keycloak mid-shutdown, and in TOPOLOGY=ha the other node would keep the dead one
# in its cluster view until failure detection (tens of seconds of failed logins).
status=0
wait "$kc" || status=$?
while kill -0 "$kc" 2>/dev/null; do wait "$kc" || status=$?; done
exit "$status"
