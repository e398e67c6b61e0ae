#!/usr/bin/env bash
# make agent: the demo agent in its container, the browser on the host. The image is built
# first, the build's output in .local/logs/agent-build.log, so the terminal shows one line for
# it and then the agent alone: its sign-in URL comes last. Arguments go to the agent.
source "$(dirname "$0")/lib.sh"
[ -n "${SANDBOX_ENV_LOADED:-}" ] || exec "$(dirname "$0")/with-env.sh" "$0" "$@"
cd "$ROOT"
[ "$#" -gt 0 ] || set -- login
compose=(docker compose --project-directory compose --profile agent)
run_logged "${STATE}/logs/agent-build.log" "building the agent" "${compose[@]}" --progress plain build agent \
  || die "the agent's image did not build; the end of its log is above"

# Before a user sign-in: who to sign in as, or that tokens of an earlier one are kept (on the
# host: the container mounts .local/agent-state as /state).
signs_in=1
for arg in "$@"; do
  case "$arg" in logout|--machine) signs_in=0 ;; esac
done
if [ "$signs_in" = 1 ]; then
  if compgen -G "${STATE}/agent-state/*.json" >/dev/null; then
    note "tokens of an earlier sign-in are kept in .local/agent-state and used while valid"
    note "(make agent ARGS=logout forgets them: the next run signs in again)"
  else
    note "sign in as alice / $(cat "${STATE}/secrets/demo-user-password" 2>/dev/null || echo '?')" \
      "(or ada, nora: make up printed their passwords; docs/authorization.md says who may do what)"
  fi
fi
# chat's model (services/agent/README.md, "chat"): the endpoint's settings from this environment,
# the API key as a file mounted read-only — never a value on a command line or in the environment.
llm=()
for name in AGENT_LLM_BASE_URL AGENT_LLM_MODEL AGENT_LLM_TIMEOUT_SECONDS AGENT_CHAT_MAX_STEPS; do
  if [ -n "${!name:-}" ]; then llm+=(-e "$name"); fi
done
if [ -n "${AGENT_LLM_API_KEY_FILE:-}" ]; then
  [ -r "$AGENT_LLM_API_KEY_FILE" ] || die "AGENT_LLM_API_KEY_FILE: cannot read $AGENT_LLM_API_KEY_FILE"
  llm+=(-v "$(realpath "$AGENT_LLM_API_KEY_FILE"):/run/secrets/llm_api_key:ro"
        -e AGENT_LLM_API_KEY_FILE=/run/secrets/llm_api_key)
fi
exec "${compose[@]}" run --rm --service-ports ${llm[@]+"${llm[@]}"} agent "$@"
