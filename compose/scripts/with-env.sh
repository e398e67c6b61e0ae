#!/usr/bin/env bash
# Run a command with this checkout's settings (compose/.env, written by env.sh) in its
# environment: the one way shell scripts and the Makefile read them.
source "$(dirname "$0")/lib.sh"
[ -f "${ROOT}/compose/.env" ] || die "compose/.env is missing; run 'make up' (or 'make env') first"
set -a; source "${ROOT}/compose/.env"; set +a
export SANDBOX_ENV_LOADED=1
exec "$@"
