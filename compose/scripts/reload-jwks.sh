#!/usr/bin/env bash
# After withdrawing a realm signing key: make every running MCP replica fetch Keycloak's JWKS now
# instead of within MCP_JWKS_MAX_AGE_SECONDS. SIGHUP is the server's reload signal
# (docs/resource-server.md, "A withdrawn signing key"): only whoever controls the containers can
# send it. Each replica logs the outcome. No-op when the sandbox is down.
source "$(dirname "$0")/lib.sh"
compose=(docker compose --project-directory "${ROOT}/compose")
mapfile -t replicas < <("${compose[@]}" ps --status running --services 2>/dev/null | grep -E '^mcp-server(-[0-9]+)?$')
[ "${#replicas[@]}" -gt 0 ] || exit 0
"${compose[@]}" kill -s SIGHUP "${replicas[@]}" >/dev/null || die "could not signal ${replicas[*]}"
note "MCP server (${replicas[*]}) reloading the signing keys; see: docker compose logs ${replicas[*]} | grep SIGHUP"
