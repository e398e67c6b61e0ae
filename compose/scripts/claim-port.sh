#!/usr/bin/env bash
# One sandbox per machine: it publishes one HTTPS port and uses one fixed subnet. If the sandbox
# of another checkout holds either (another clone, or a stack the Docker daemon restarted on
# boot), take it down — its volumes, i.e. its data, are kept — so this checkout can start.
# Anything else on the port is reported, not touched.
source "$(dirname "$0")/lib.sh"
[ -n "${SANDBOX_ENV_LOADED:-}" ] || exec "$(dirname "$0")/with-env.sh" "$0" "$@"

others="$( {
  docker ps --filter "publish=${HTTPS_PORT}" --format '{{.Label "com.docker.compose.project"}}'
  docker network ls --filter label=com.docker.compose.network=edge --format '{{.Label "com.docker.compose.project"}}'
} | sort -u)"
for project in $others; do
  [ "$project" = "$COMPOSE_PROJECT_NAME" ] && continue
  case "$project" in
    mcp-sandbox-*)
      step "Taking down ${project} (another checkout’s sandbox, or this checkout’s other topology; its data is kept)"
      docker compose -p "$project" down >/dev/null 2>&1 || true
      # A project whose containers are gone may still own the network.
      docker network rm "${project}_edge" "${project}_keycloak" >/dev/null 2>&1 || true ;;
  esac
done

if ! docker ps --filter "label=com.docker.compose.project=${COMPOSE_PROJECT_NAME}" --filter "publish=${HTTPS_PORT}" -q | grep -q . \
   && (exec 3<>"/dev/tcp/127.0.0.1/${HTTPS_PORT}") 2>/dev/null; then
  die "port ${HTTPS_PORT} is already in use on this machine. Stop what uses it, or pick another port: HTTPS_PORT=8443 make up"
fi
exit 0
