#!/usr/bin/env bash
# Make sure a Docker engine responds, installing Debian's docker.io and
# debootstrap and starting dockerd in the background when needed.
set -euo pipefail

log() { printf 'ensure-docker: %s\n' "$*" >&2; }

if docker info >/dev/null 2>&1; then
  exit 0
fi

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "missing ${missing[*]}: run as root or install them with apt-get"
    exit 1
  fi
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  if systemctl is-system-running >/dev/null 2>&1; then
    log "starting docker.service"
    systemctl start docker
  else
    log "starting dockerd in the background (log: /var/log/botfleet-dockerd.log)"
    nohup dockerd >/var/log/botfleet-dockerd.log 2>&1 &
  fi
fi

for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    log "the Docker engine responds"
    exit 0
  fi
  sleep 1
done
log "the Docker engine did not answer within 60 s; see /var/log/botfleet-dockerd.log"
exit 1
