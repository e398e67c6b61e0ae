#!/usr/bin/env bash
# docker compose up --wait, then tell the user what is running and what to try.
source "$(dirname "$0")/lib.sh"
[ -n "${SANDBOX_ENV_LOADED:-}" ] || exec "$(dirname "$0")/with-env.sh" "$0" "$@"
cd "$ROOT"

compose=(docker compose --project-directory compose --progress plain)
step "Building images and starting the stack (first run: a few minutes; later: seconds)"
# Build and start as two steps, each one line here and its whole output in .local/logs/: `up`
# then finds every image built and builds nothing.
run_logged "${STATE}/logs/build.log" "building images" "${compose[@]}" build \
  || die "an image did not build; the end of its log is above (all of it: .local/logs/build.log)"
if ! run_logged "${STATE}/logs/up.log" "starting the stack, waiting until healthy" \
    "${compose[@]}" up --wait --wait-timeout 300 --quiet-pull --remove-orphans; then
  docker compose --project-directory compose ps >&2 || true
  die "the stack did not become healthy; see 'make logs' (or 'make ps' for which service)"
fi

# Keycloak imports a realm file only into an empty database; every later change to
# services/keycloak/realm/*.json reaches the running realm here, users and clients kept.
step "Applying the realm files to the running Keycloak (realm-sync)"
# The same command as `make realm-sync`.
if ! "${ROOT}/compose/scripts/realm-sync.sh"; then
  die "the realm files could not be applied (the reason is above); the stack is up with the previous realm settings"
fi

cat <<MSG

  MCP auth sandbox is up (TOPOLOGY=${TOPOLOGY}$([ "$TOPOLOGY" = ha ] && echo ": PostgreSQL, 2 Keycloak nodes, 2 MCP server replicas")).

  Keycloak (authorization server)  ${AUTH_ORIGIN}/realms/mcp
  MCP server (resource server)     ${MCP_RESOURCE_URL}
  Protected resource metadata      ${MCP_RESOURCE_URL%/mcp}/.well-known/oauth-protected-resource/mcp
  CIMD document of the demo agent  ${CIMD_ORIGIN}/agents/demo/metadata.json
  Notes API (called by the MCP server as its user, by token exchange)  ${API_URL}/notes

  Demo users      alice / $(cat .local/secrets/demo-user-password)  (roles mcp-user, notes-user: the ordinary tools and her notes)
                  ada   / $(cat .local/secrets/admin-user-password)  (role mcp-admin: every MCP tool, no notes)
                  nora  / $(cat .local/secrets/norole-user-password)  (no MCP role: signs in, is refused)
  Keycloak admin  admin / $(cat .local/secrets/keycloak-admin-password)  (console: KEYCLOAK_ADMIN_CONSOLE=on make up)
  Local CA        .local/ca/ca.pem  (trust it in your browser: see README, "Trusting the local CA")
  Anonymous DCR   public clients only; ${REGISTRATION_RATE_LIMIT:-30/60} per source address (REGISTRATION_RATE_LIMIT);
                  registrations never used for a login are deleted after an hour (registration-reaper)

  Next:  make agent      log in (as alice, ada or nora: docs/authorization.md) and call the MCP tools
         make test       prove the whole flow against this stack
         make logs / make ps / make down
MSG
