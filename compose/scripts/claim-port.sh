#!/usr/bin/env bash
# The sandbox publishes one HTTPS port. If the sandbox of another checkout holds it (another
# clone, or a stack the Docker daemon restarted on boot), stop that one — its data is kept —
# so this checkout can start. Anything else on the port is reported, not touched.
source "$(dirname "$0")/lib.sh"
set -a; source "${ROOT}/compose/.env"; set +a

for project in $(docker ps --filter "publish=${HTTPS_PORT}" --format '{{.Label "com.docker.compose.project"}}' | sort -u); do
  [ "$project" = "$COMPOSE_PROJECT_NAME" ] && continue
  case "$project" in
    mcp-sandbox*)
      step "Stopping ${project} (the sandbox of another checkout) to free port ${HTTPS_PORT}; its data is kept"
      docker compose -p "$project" down >/dev/null 2>&1 ;;
  esac
done

if ! docker ps --filter "label=com.docker.compose.project=${COMPOSE_PROJECT_NAME}" --filter "publish=${HTTPS_PORT}" -q | grep -q . \
   && (exec 3<>"/dev/tcp/127.0.0.1/${HTTPS_PORT}") 2>/dev/null; then
  die "port ${HTTPS_PORT} is already in use on this machine. Stop what uses it, or pick another port: HTTPS_PORT=8443 make up"
fi
exit 0
