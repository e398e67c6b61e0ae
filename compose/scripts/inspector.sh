#!/usr/bin/env bash
# make inspector: the MCP Inspector 2.x pinned in tests/interop/node, run by the Node 22 installed
# there (make node-clients), as the interop tests run it: its Node backend makes every OAuth
# request, so it gets the sandbox CA (NODE_EXTRA_CA_CERTS) and the preload that sends *.localhost
# to 127.0.0.1 (localhost.cjs). Its own output goes to .local/logs/inspector.log; the terminal
# gets the URL to open, with its API token, and what to type. Ctrl-C stops it.
source "$(dirname "$0")/lib.sh"
[ -n "${SANDBOX_ENV_LOADED:-}" ] || exec "$(dirname "$0")/with-env.sh" "$0" "$@"
cd "$ROOT"

NODE_DIR="${ROOT}/tests/interop/node"
NODE="${NODE_DIR}/node_modules/.bin/node"
PACKAGE="${NODE_DIR}/node_modules/@modelcontextprotocol/inspector"
LAUNCHER="${PACKAGE}/clients/launcher/build/index.js"
CA="${STATE}/ca/ca.pem"
LOG="${STATE}/logs/inspector.log"
# The Inspector's web port; its redirect URI, http://localhost:<port>/oauth/callback, names it,
# and the CIMD document published for it (cimd-host/clients/mcp-inspector.json) names 6274.
PORT="${CLIENT_PORT:-6274}"

{ [ -x "$NODE" ] && [ -f "$LAUNCHER" ]; } || die "the Inspector is not installed in tests/interop/node; run 'make node-clients'"
[ -s "$CA" ] || die "no sandbox CA at .local/ca/ca.pem; run 'make up' first"
if (exec 3<>"/dev/tcp/127.0.0.1/${PORT}") 2>/dev/null; then
  die "port ${PORT} is taken (another Inspector?); stop it, or CLIENT_PORT=<port> make inspector (DCR only then)"
fi
version="$("$NODE" -p 'require(process.argv[1]).version' "${PACKAGE}/package.json")"
prm="${MCP_RESOURCE_URL%/mcp}/.well-known/oauth-protected-resource/mcp"
if command -v curl >/dev/null && ! curl -fsS -o /dev/null --max-time 5 --noproxy "*" --cacert "$CA" "$prm" 2>/dev/null; then
  note "the sandbox does not answer at ${MCP_RESOURCE_URL} (start it with 'make up'); starting the Inspector anyway"
fi

token="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
mkdir -p "$(dirname "$LOG")"
# No browser opened by the Inspector itself: it would open 127.0.0.1, and the sign-in must start
# on the origin it comes back to (localhost). Secrets in memory: the sandbox's tokens are not
# worth a place in your keychain, and a restart simply signs in again.
MCP_INSPECTOR_API_TOKEN="$token" MCP_AUTO_OPEN_ENABLED=false \
  MCP_INSPECTOR_SECRET_STORE="${MCP_INSPECTOR_SECRET_STORE:-memory}" CLIENT_PORT="$PORT" \
  NODE_EXTRA_CA_CERTS="$CA" NODE_OPTIONS="--require \"${NODE_DIR}/localhost.cjs\"${NODE_OPTIONS:+ ${NODE_OPTIONS}}" \
  PATH="${NODE_DIR}/node_modules/.bin:${PATH}" \
  "$NODE" "$LAUNCHER" --web >"$LOG" 2>&1 &
pid=$!
# A background job ignores Ctrl-C: stop it on the way out.
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM

for _ in $(seq 1 120); do
  grep -q "is up and running" "$LOG" 2>/dev/null && break
  if ! kill -0 "$pid" 2>/dev/null; then
    tail -n 20 "$LOG" | sed 's/^/      /' >&2
    die "the Inspector stopped; its output is above (all of it: .local/logs/inspector.log)"
  fi
  sleep 0.5
done
grep -q "is up and running" "$LOG" || die "the Inspector did not come up within a minute; see .local/logs/inspector.log"

url="http://localhost:${PORT}/?MCP_INSPECTOR_API_TOKEN=${token}"
password="$(cat "${STATE}/secrets/demo-user-password" 2>/dev/null || echo '?')"
cimd_note=""
[ "$PORT" = 6274 ] || cimd_note="  (not on port ${PORT}: the document names 6274)"
cat <<MSG

  MCP Inspector ${version} is running on Node $("$NODE" --version) (tests/interop/node), trusting
  .local/ca/ca.pem. Its output: .local/logs/inspector.log. Ctrl-C stops it.

  In its page:
    1. Add Servers → Add manually: Server ID  sandbox
                                   Transport  streamable-http
                                   URL        ${MCP_RESOURCE_URL}
       then Add.
    2. Connect (the switch next to "sandbox"). The Inspector registers itself (DCR); sign in
       at Keycloak as alice / ${password} and consent.
       CIMD instead of DCR: before connecting, Client settings → OAuth Client ID Metadata
       Document → Use Client ID Metadata Document, with the URL${cimd_note}
         ${CIMD_ORIGIN}/clients/mcp-inspector/metadata.json
    3. Tools → get_time → Execute Tool. As ada, server_stats asks for more permission (step-up).

  Open this URL (localhost, not 127.0.0.1: the sign-in comes back to http://localhost:${PORT}/oauth/callback):

    ${url}

MSG
status=0
wait "$pid" || status=$?
if [ "$status" -ne 0 ]; then
  tail -n 20 "$LOG" | sed 's/^/      /' >&2
  die "the Inspector stopped (exit ${status}); the end of its output is above"
fi
