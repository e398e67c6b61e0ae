#!/usr/bin/env bash
# Remove everything `make up` created for this checkout: containers, volumes, the images it
# built (service images and local base-image equivalents), the local CA, keys and secrets.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  if [ -f compose/.env ]; then
    step "Removing containers, volumes and service images"
    docker compose --project-directory compose -f compose/compose.yaml --profile agent down --volumes --rmi local --remove-orphans || true
  fi
  ids="$(docker images -q --filter label=io.mcp-sandbox.local-equivalent=true)"
  if [ -n "$ids" ]; then
    step "Removing locally built base images"
    docker rmi -f $ids >/dev/null || true
  fi
  docker rmi -f "mcp-sandbox/debian:trixie" >/dev/null 2>&1 || true
fi
step "Removing .local (CA, keys, secrets) and compose/.env"
rm -rf .local compose/.env
