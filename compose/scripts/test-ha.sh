#!/usr/bin/env bash
# The second half of `make test`, on the highly available topology (TOPOLOGY=ha: PostgreSQL, two
# Keycloak nodes, two MCP server replicas) in a compose project of its own (<project>-ha):
#   1. every stack test again (-m integration), the short fault-injection test included, but not
#      the third-party client matrix (tests/interop: the clients' behaviour does not depend on
#      the topology behind the URLs; the demo agent's flows do run here);
#   2. `make test-remote` against the same running deployment, told about it only through the
#      MCP_TEST_* variables — the proof that the black-box suite runs against a deployment it
#      did not start;
# then the HA project is removed (volumes included). Your sandbox is left alone: it steps off
# the HTTPS port meanwhile and comes back afterwards if it was running. Skipped when the
# sandbox already runs TOPOLOGY=ha (the first half tested it).
# With --chaos (make chaos): only the fault-injection test, at full length, report printed.
source "$(dirname "$0")/lib.sh"
chaos=0
if [ "${1:-}" = --chaos ]; then chaos=1; shift; fi
scripts="$(cd "$(dirname "$0")" && pwd)"
original="$(sed -n 's/^TOPOLOGY=//p' "${ROOT}/compose/.env" 2>/dev/null)"
if [ "$original" = ha ] && [ "$chaos" = 0 ]; then
  note "the sandbox runs TOPOLOGY=ha: the first half of make test tested it"
  exit 0
fi
project="$(sed -n 's/^COMPOSE_PROJECT_NAME=//p' "${ROOT}/compose/.env")"
was_running="$(docker ps -q --filter "label=com.docker.compose.project=${project}" | head -1)"
finish() {
  status=$?
  docker compose --project-directory "${ROOT}/compose" --profile agent --profile realm-sync down --volumes --remove-orphans >/dev/null 2>&1 || true
  TOPOLOGY="${original:-single}" COMPOSE_PROJECT_SUFFIX="" "$scripts/env.sh"
  if [ -n "$was_running" ]; then
    step "Bringing your sandbox back up"
    "$scripts/with-env.sh" "$scripts/claim-port.sh" && "$scripts/up.sh" >/dev/null
  fi
  exit "$status"
}
trap finish EXIT
TOPOLOGY=ha COMPOSE_PROJECT_SUFFIX=-ha "$scripts/env.sh"
"$scripts/with-env.sh" "$scripts/claim-port.sh"
step "Starting TOPOLOGY=ha (PostgreSQL, 2 Keycloak nodes, 2 MCP server replicas; project ${project}-ha)"
"$scripts/up.sh" >/dev/null
if [ "$chaos" = 1 ]; then
  step "Faults under load: ${CHAOS_AGENTS} agents, ${CHAOS_PHASE_SECONDS} s phases"
  "${UV:?}" run --frozen pytest -m chaos -s -p no:cacheprovider "$@"
  exit
fi
step "The stack tests against TOPOLOGY=ha"
"${UV:?}" run --frozen pytest -m "integration and not interop" --durations=15 "$@"
origin() { sed -n "s/^$1=//p" "${ROOT}/compose/.env"; }
MCP_TEST_ISSUER="$(origin AUTH_ORIGIN)/realms/mcp" \
MCP_TEST_RESOURCE_URL="$(origin MCP_RESOURCE_URL)" \
MCP_TEST_CIMD_ORIGIN="$(origin CIMD_ORIGIN)" \
MCP_TEST_API_URL="$(origin API_URL)" \
MCP_TEST_CALLBACK_PORT="$(origin AGENT_CALLBACK_PORT)" \
MCP_TEST_MCP_REPLICAS=2 \
MCP_TEST_PASSWORD_FILE="${STATE}/secrets/demo-user-password" \
MCP_TEST_MACHINE_KEY_DIR="${STATE}/keys/machine" \
MCP_TEST_CA_BUNDLE="${STATE}/ca/ca.pem" \
  "$scripts/test-remote.sh" "$@"
