#!/usr/bin/env bash
# The peer server of `make bench` (FastMCP) in its own virtualenv under .local/bench/fastmcp, from a
# hash-pinned requirements file (tests/bench/peer/fastmcp.txt, `make lock` compiles it): kept out
# of the project's lock, whose `mcp` it must not move. Skipped when the virtualenv matches it.
# Prints the virtualenv's python.
source "$(dirname "$0")/lib.sh"
UV="$("$(dirname "$0")/ensure-uv.sh")"
requirements="${ROOT}/tests/bench/peer/fastmcp.txt"
venv="${STATE}/bench/fastmcp"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if ! { [ -x "${venv}/bin/python" ] && [ "$(cat "${venv}/.requirements-sha256" 2>/dev/null)" = "$want" ]; }; then
  step "Installing the benchmark's peer (FastMCP) into .local/bench/fastmcp"
  rm -rf "$venv"
  "$UV" venv -q --python python3 "$venv" || die "could not create ${venv}"
  VIRTUAL_ENV="$venv" "$UV" pip install -q --require-hashes -r "$requirements" \
    || die "could not install ${requirements} (check network / pip configuration)"
  echo "$want" > "${venv}/.requirements-sha256"
fi
echo "${venv}/bin/python"
