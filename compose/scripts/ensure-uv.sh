#!/usr/bin/env bash
# Print the path of a uv binary pinned for this project, installing it into .local/tools
# (with pip from PyPI, checked against the hashes in uv-requirements.txt) when it is not there
# yet. Python for the host-side tools comes from the machine (3.11+); uv is told never to
# download interpreters.
source "$(dirname "$0")/lib.sh"
UV_VERSION=0.13.9
TOOLS="${STATE}/tools"
if [ ! -x "$TOOLS/bin/uv" ] || [ "$("$TOOLS/bin/uv" --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  command -v python3 >/dev/null || die "python3 (3.11 or newer) is needed on the host; install it and retry."
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "python3 on PATH is $(python3 -V 2>&1); the host-side tools need 3.11 or newer."
  step "Installing uv ${UV_VERSION} into .local/tools"
  if ! python3 -m venv "$TOOLS" >/dev/null 2>&1; then
    apt_install "python3 -m venv" python3-venv
    python3 -m venv "$TOOLS"
  fi
  # By hash (uv-requirements.txt lists this version's wheels): what runs is what was checked.
  "$TOOLS/bin/pip" install -q --require-hashes --no-deps -r "$(dirname "$0")/uv-requirements.txt" \
    || die "could not install uv ${UV_VERSION} from PyPI with the hashes in compose/scripts/uv-requirements.txt"
fi
echo "$TOOLS/bin/uv"
