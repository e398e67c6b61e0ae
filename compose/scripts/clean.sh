#!/usr/bin/env bash
# Remove everything `make up` created for this checkout: containers, volumes, the images it
# built (service images and local base-image equivalents), the local CA, keys and secrets.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  if [ -f compose/.env ]; then
    step "Removing containers, volumes and service images"
    # Both topologies' files, so the HA database volume goes too.
    docker compose --project-directory compose -f compose/compose.yaml -f compose/compose.ha.yaml --profile agent --profile realm-sync down --volumes --rmi local --remove-orphans || true
  fi
  # The local equivalents of the base images (never a pulled upstream image). Images built
  # FROM them inherit the label, so select by name, not by label alone.
  load_versions
  for ref in "$KEYCLOAK_IMAGE" "$CADDY_IMAGE" "$PYTHON_IMAGE" "mcp-sandbox/debian:${DEBIAN_SUITE}"; do
    label="$(docker image inspect -f '{{index .Config.Labels "io.mcp-sandbox.local-equivalent"}}' "$ref" 2>/dev/null || true)"
    if [ "$label" = true ] || [ "$ref" = "mcp-sandbox/debian:${DEBIAN_SUITE}" ]; then
      docker image inspect "$ref" >/dev/null 2>&1 || continue
      step "Removing the locally built base image $ref"
      docker rmi "$ref" >/dev/null 2>&1 || note "$ref is still used by other images; left in place"
    fi
  done
fi
step "Removing .local (CA, keys, secrets) and compose/.env"
rm -rf .local compose/.env
