#!/usr/bin/env bash
# After a key rotation: make Keycloak forget the agents' public keys it cached, so it fetches the
# JWKS again at the next assertion. Keycloak refetches by itself only for an unknown `kid`; a
# client that signs without one (the TypeScript SDK) would meet the stale set, and a revoked key
# would stay usable (docs/security.md, "Compromised agent key"). Each node keeps its own cache,
# so every running Keycloak node is told (two in TOPOLOGY=ha). No-op when the sandbox is down.
source "$(dirname "$0")/lib.sh"
compose=(docker compose --project-directory "${ROOT}/compose")
mapfile -t nodes < <("${compose[@]}" ps --status running --services 2>/dev/null | grep -E '^keycloak(-[0-9]+)?$')
[ "${#nodes[@]}" -gt 0 ] || exit 0
# As the admin client, through kcadm-admin.sh in the container: it reads the client secret from
# the node's own compose secret, so the secret is on no command line, here or in the container.
for node in "${nodes[@]}"; do
  for realm in mcp other; do
    "${compose[@]}" exec -T "$node" /opt/keycloak/bin/kcadm-admin.sh create clear-keys-cache -r "$realm" >/dev/null \
      || die "could not clear the key cache of $node (realm $realm); if its image predates kcadm-admin.sh, run make up"
  done
done
note "Keycloak (${nodes[*]}) will fetch the new JWKS at the next client assertion"
