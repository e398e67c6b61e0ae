#!/usr/bin/env bash
# make test-remote: the black-box part of the suite (tests marked `blackbox`) against a deployment
# this checkout did not start — e.g. the AWS template's — known only through MCP_TEST_* variables
# (tests/support/stack.py, REMOTE_VARIABLES). Nothing here reads compose/.env or .local; tests
# that would need more than the variables give (admin API, containers, other realms, the demo
# agent's CIMD key) skip, saying what they need.
source "$(dirname "$0")/lib.sh"
missing=()
for name in MCP_TEST_ISSUER MCP_TEST_RESOURCE_URL MCP_TEST_CIMD_ORIGIN MCP_TEST_PASSWORD_FILE MCP_TEST_MACHINE_KEY_DIR; do
  [ -n "${!name:-}" ] || missing+=("$name")
done
[ "${#missing[@]}" -eq 0 ] || die "make test-remote needs ${missing[*]} (see docs/topology.md, \"make test-remote\")"
step "Black-box tests against ${MCP_TEST_ISSUER} and ${MCP_TEST_RESOURCE_URL}"
cd "$ROOT"
MCP_TEST_REMOTE=1 "${UV:?}" run --frozen pytest -m blackbox -p no:cacheprovider "$@"
