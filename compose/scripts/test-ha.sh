#!/usr/bin/env bash
# The second half of `make test`: the stack tests again, against the highly available topology
# (TOPOLOGY=ha: PostgreSQL, two Keycloak nodes, two MCP server replicas), in a compose project of
# its own (<project>-ha) that the tests start and remove. Your sandbox is left alone — it only
# steps off the HTTPS port meanwhile and comes back afterwards if it was running. Skipped when
# the sandbox already runs TOPOLOGY=ha (the first half tested it).
source "$(dirname "$0")/lib.sh"
scripts="$(dirname "$0")"
original="$(sed -n 's/^TOPOLOGY=//p' "${ROOT}/compose/.env" 2>/dev/null)"
if [ "$original" = ha ]; then
  note "the sandbox runs TOPOLOGY=ha: the first half of make test tested it"
  exit 0
fi
project="$(sed -n 's/^COMPOSE_PROJECT_NAME=//p' "${ROOT}/compose/.env")"
was_running="$(docker ps -q --filter "label=com.docker.compose.project=${project}" | head -1)"
restore() {
  TOPOLOGY="${original:-single}" COMPOSE_PROJECT_SUFFIX="" "$scripts/env.sh"
  if [ -n "$was_running" ]; then
    step "Bringing your sandbox back up"
    "$scripts/with-env.sh" "$scripts/claim-port.sh" && "$scripts/up.sh" >/dev/null
  fi
}
trap restore EXIT
TOPOLOGY=ha COMPOSE_PROJECT_SUFFIX=-ha "$scripts/env.sh"
"$scripts/with-env.sh" "$scripts/claim-port.sh"
step "The stack tests against TOPOLOGY=ha (PostgreSQL, 2 Keycloak nodes, 2 MCP server replicas; project ${project}-ha)"
"${UV:?}" run --frozen pytest -m integration "$@"
