#!/bin/bash
# Read file-based secrets into the variables Keycloak expects, then hand over to kc.sh.
# Secrets stay files on the host (.local/secrets), never in compose environment or images.
set -euo pipefail
read_secret() { [ -r "/run/secrets/$1" ] && tr -d '\n' < "/run/secrets/$1"; }
if pw="$(read_secret keycloak_admin_password)"; then export KC_BOOTSTRAP_ADMIN_PASSWORD="$pw"; fi
if pw="$(read_secret demo_user_password)"; then export DEMO_USER_PASSWORD="$pw"; fi
exec /opt/keycloak/bin/kc.sh "$@"
