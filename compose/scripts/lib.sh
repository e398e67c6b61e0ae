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

# run_logged LOG LABEL COMMAND...: COMMAND's output (stdout and stderr) goes to LOG only. On a
# terminal one line shows LABEL, the seconds so far and the log's latest line, rewritten in
# place; then one line says how it went (elsewhere: a line before, a line after). On failure the
# end of the log is shown too.
run_logged() {
  local log="$1" label="$2"; shift 2
  local start=$SECONDS status errexit=0
  mkdir -p "$(dirname "$log")"
  case $- in *e*) errexit=1 ;; esac
  set +e
  if [ -t 2 ]; then
    "$@" 2>&1 | _progress_line "$label" "$log" "$start"
    status=${PIPESTATUS[0]}
  else
    note "${label} …"
    "$@" >"$log" 2>&1
    status=$?
  fi
  [ "$errexit" = 0 ] || set -e
  local took=$((SECONDS - start)) shown="${log#"$ROOT"/}"
  if [ "$status" -ne 0 ]; then
    printf '    %s: \033[1;31mfailed\033[0m after %d s; the end of %s:\n' "$label" "$took" "$shown" >&2
    tail -n 40 "$log" | sed 's/^/      /' >&2
    return "$status"
  fi
  note "${label}: done in ${took} s (log: ${shown})"
}

# The terminal line of run_logged; stdin is the command's output, copied to LOG.
_progress_line() {
  local label="$1" log="$2" start="$3" line="" partial="" latest="" fd width
  width=$(( $(tput cols 2>/dev/null || echo 80) - ${#label} - 16 ))
  [ "$width" -ge 10 ] || width=10
  exec {fd}>"$log"
  while :; do
    if IFS= read -r -t 1 line; then
      line="${partial}${line}"; partial=""
      printf '%s\n' "$line" >&"$fd"
      line="${line//$'\r'/}"
      # BuildKit's plain lines start with their step number (#12): the rest says what runs.
      [[ $line =~ ^#[0-9]+\ (.*)$ ]] && line="${BASH_REMATCH[1]}"
      [ -z "${line// /}" ] || latest="$line"
    elif [ $? -gt 128 ]; then
      partial="${partial}${line}"  # a timeout: keep the unfinished line, refresh the clock
    else
      [ -z "${partial}${line}" ] || printf '%s\n' "${partial}${line}" >&"$fd"
      break
    fi
    printf '\r\033[K    %s … %d s  %s' "$label" $((SECONDS - start)) "${latest:0:$width}" >&2
  done
  exec {fd}>&-
  printf '\r\033[K' >&2
}
