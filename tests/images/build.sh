#!/usr/bin/env bash
# Build the systemd test host images botfleet-test:debian12 and
# botfleet-test:debian13, unless an image built from the same recipe and
# CA bundle already exists.
#
# Where a container registry responds, the base is debian:<suite>; where
# none does, the base is a debootstrap minbase tree imported with
# `docker import`.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
ca_bundle="${BOTFLEET_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
mirror="${BOTFLEET_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suites=("$@")
if [ "${#suites[@]}" -eq 0 ]; then
  suites=(bookworm trixie)
fi

log() { printf 'build-images: %s\n' "$*" >&2; }

tag_for() {
  case "$1" in
    bookworm) echo debian12 ;;
    trixie) echo debian13 ;;
    *) log "unknown suite '$1': use bookworm or trixie"; exit 2 ;;
  esac
}

recipe_hash() {
  cat "$here/Dockerfile" "$here/build.sh" "$ca_bundle" | sha256sum | cut -c1-16
}

registry_responds() {
  timeout 30 docker pull -q "debian:$1" >/dev/null 2>&1
}

import_debootstrap_base() {
  local suite="$1" base="$2" rootfs
  if docker image inspect "$base" >/dev/null 2>&1; then
    return
  fi
  if ! command -v debootstrap >/dev/null; then
    log "debootstrap is missing: install it with 'apt-get install debootstrap'"
    exit 1
  fi
  rootfs="$(mktemp -d /tmp/botfleet-rootfs.XXXXXX)"
  log "debootstrap $suite into $rootfs"
  debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >/dev/null
  tar -C "$rootfs" -c . | docker import - "$base" >/dev/null
  rm -rf "$rootfs"
}

build_suite() {
  local suite="$1" tag hash image base context
  tag="$(tag_for "$suite")"
  hash="$(recipe_hash)"
  image="botfleet-test:$tag"

  if [ "$(docker image inspect -f '{{ index .Config.Labels "botfleet.recipe" }}' "$image" 2>/dev/null)" = "$hash" ]; then
    log "$image is up to date (recipe $hash)"
    return
  fi

  if registry_responds "$suite"; then
    base="debian:$suite"
  else
    base="botfleet-base:$suite"
    import_debootstrap_base "$suite" "$base"
  fi

  log "building $image from $base"
  context="$(mktemp -d /tmp/botfleet-image.XXXXXX)"
  cp "$here/Dockerfile" "$context/"
  cp "$ca_bundle" "$context/controller-ca.crt"
  docker build -q --build-arg "BASE_IMAGE=$base" --label "botfleet.recipe=$hash" \
    -t "$image" "$context" >/dev/null
  rm -rf "$context"
  log "built $image"
}

for suite in "${suites[@]}"; do
  build_suite "$suite"
done
