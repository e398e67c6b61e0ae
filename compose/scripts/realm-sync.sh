#!/usr/bin/env bash
# Apply services/keycloak/realm/*.json to the running Keycloak, keeping users and clients
# (make realm-sync; make up runs it too). Its image is built first, the build's output in
# .local/logs/realm-sync-build.log; then realm-sync says what it changed. Arguments go to
# realm-sync (make realm-sync CHECK=1: --check /realm, list only).
source "$(dirname "$0")/lib.sh"
[ -n "${SANDBOX_ENV_LOADED:-}" ] || exec "$(dirname "$0")/with-env.sh" "$0" "$@"
cd "$ROOT"
compose=(docker compose --project-directory compose --profile realm-sync)
run_logged "${STATE}/logs/realm-sync-build.log" "building realm-sync" "${compose[@]}" --progress plain build realm-sync \
  || die "the realm-sync image did not build; the end of its log is above"
exec "${compose[@]}" run --rm --no-deps realm-sync "$@"
