# Shared shell helpers for the sandbox scripts: one-line progress and errors.
# Sourced, not executed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${ROOT}/.local"
CACHE="${MCP_SANDBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-sandbox}"

step() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }
die()  { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }
is_debian_like() { [ -r /etc/os-release ] && grep -qiE '^(ID|ID_LIKE)=.*(debian|ubuntu)' /etc/os-release; }

# apt_install WHY PACKAGE...: install OS packages as root on Debian/Ubuntu, or say what is missing.
apt_install() {
  local why="$1"; shift
  is_root && is_debian_like || die "${why} needs $* (Debian/Ubuntu packages); install them and retry."
  step "Installing $* from the OS packages (${why})"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
    || die "could not install $*"
}

# Load compose/versions.env; a variable already set in the environment wins.
load_versions() {
  local line key
  while IFS= read -r line; do
    case "$line" in ''|'#'*) continue ;; esac
    key="${line%%=*}"
    [ -n "${!key:-}" ] || eval "export $line"
  done < "${ROOT}/compose/versions.env"
}
