#!/usr/bin/env bash
# Python MCP clients other than our agent, each in its own virtualenv under .local/interop, from a
# hash-pinned requirements file (tests/interop/python/<client>.txt, `make lock` compiles it).
# Skipped when the virtualenv matches its requirements.
source "$(dirname "$0")/lib.sh"
UV="$("$(dirname "$0")/ensure-uv.sh")"
for requirements in "${ROOT}"/tests/interop/python/*.txt; do
  name="$(basename "$requirements" .txt)"
  venv="${STATE}/interop/${name}"
  want="$(sha256sum "$requirements" | cut -d' ' -f1)"
  [ -x "${venv}/bin/python" ] && [ "$(cat "${venv}/.requirements-sha256" 2>/dev/null)" = "$want" ] && continue
  step "Installing the interop client '${name}' into .local/interop/${name}"
  rm -rf "$venv"
  "$UV" venv -q --python python3 "$venv" || die "could not create ${venv}"
  VIRTUAL_ENV="$venv" "$UV" pip install -q --require-hashes -r "$requirements" \
    || die "could not install ${requirements} (check network / pip configuration)"
  echo "$want" > "${venv}/.requirements-sha256"
done
