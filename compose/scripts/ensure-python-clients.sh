#!/usr/bin/env bash
# Python MCP clients other than our agent, each in its own virtualenv under .local/interop, from a
# hash-pinned requirements file (tests/interop/python/<client>.txt, `make lock` compiles it).
# The agent-framework examples (examples/<framework>/requirements.txt) get one each too, as
# .local/interop/example-<framework>, with the demo agent's auth library (services/agent/src) on
# their path as the agent's image has it: its dependencies are in the hash-pinned file, the
# library itself is this checkout's source, never a download.
# Skipped when the virtualenv matches its requirements.
source "$(dirname "$0")/lib.sh"
UV="$("$(dirname "$0")/ensure-uv.sh")"
for requirements in "${ROOT}"/tests/interop/python/*.txt "${ROOT}"/examples/*/requirements.txt; do
  case "$requirements" in
    "${ROOT}"/examples/*) name="example-$(basename "$(dirname "$requirements")")" ;;
    *) name="$(basename "$requirements" .txt)" ;;
  esac
  venv="${STATE}/interop/${name}"
  want="$(sha256sum "$requirements" | cut -d' ' -f1)"
  [ -x "${venv}/bin/python" ] && [ "$(cat "${venv}/.requirements-sha256" 2>/dev/null)" = "$want" ] && continue
  step "Installing the interop client '${name}' into .local/interop/${name}"
  rm -rf "$venv"
  "$UV" venv -q --python python3 "$venv" || die "could not create ${venv}"
  VIRTUAL_ENV="$venv" "$UV" pip install -q --require-hashes -r "$requirements" \
    || die "could not install ${requirements} (check network / pip configuration)"
  if [[ "$name" == example-* ]]; then
    site="$("${venv}/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
    echo "${ROOT}/services/agent/src" > "${site}/mcp_agent.pth"
  fi
  echo "$want" > "${venv}/.requirements-sha256"
done
