#!/usr/bin/env bash
# Provision and deploy the example bots onto a local systemd test host that
# is reached over SSH on 127.0.0.1, like a VPS. `demo.sh up` builds it (and
# works again on an existing demo host), `demo.sh down` removes it.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
state="$root/.cache/demo"
container=botfleet-demo
port="${BOTFLEET_DEMO_PORT:-2222}"
image=botfleet-test:debian12

log() { printf '\n== %s\n' "$*"; }

start_host() {
  if docker container inspect "$container" >/dev/null 2>&1; then
    docker start "$container" >/dev/null
    return
  fi
  docker run -d --name "$container" --hostname botfleet-demo \
    --cap-add SYS_ADMIN --security-opt seccomp=unconfined --cgroupns host \
    -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock \
    -p "127.0.0.1:$port:22" "$image" /lib/systemd/systemd >/dev/null
}

authorize_key() {
  mkdir -p "$state"
  if [ ! -f "$state/id_ed25519" ]; then
    ssh-keygen -q -t ed25519 -N '' -C botfleet-demo -f "$state/id_ed25519"
  fi
  docker exec "$container" install -d -m 0700 /root/.ssh
  docker cp "$state/id_ed25519.pub" "$container:/root/.ssh/authorized_keys"
  docker exec "$container" chown root:root /root/.ssh/authorized_keys
  docker exec "$container" chmod 0600 /root/.ssh/authorized_keys
}

wait_for_ssh() {
  for _ in $(seq 1 60); do
    if ssh -q -p "$port" -i "$state/id_ed25519" -o BatchMode=yes \
      -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
      root@127.0.0.1 true 2>/dev/null; then
      return
    fi
    sleep 1
  done
  echo "demo: SSH to the demo host at 127.0.0.1:$port timed out after 60 s; see docker logs $container" >&2
  exit 1
}

write_inventory() {
  mkdir -p "$state/inventory/group_vars/bot_hosts"
  cat >"$state/inventory/hosts.yml" <<YAML
---
bot_hosts:
  hosts:
    demo:
      ansible_host: 127.0.0.1
      ansible_port: $port
      ansible_user: root
      ansible_ssh_private_key_file: $state/id_ed25519
      # A throwaway container on loopback: its host key changes on rebuild.
      ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
YAML
  cp "$root/examples/demo/bots.yml" "$state/inventory/group_vars/bot_hosts/bots.yml"
}

up() {
  if ! command -v ssh >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-client >/dev/null
  fi
  "$root/tests/scripts/ensure-docker.sh"
  "$root/tests/images/build.sh" bookworm
  log "Starting the demo host $container (SSH on 127.0.0.1:$port)"
  start_host
  authorize_key
  wait_for_ssh
  write_inventory

  export ANSIBLE_CONFIG="$root/ansible.cfg"
  export ANSIBLE_COLLECTIONS_PATH="$root/collections"
  inventory=(-i "$state/inventory/hosts.yml")
  log "Provisioning: ansible-playbook playbooks/provision.yml"
  ansible-playbook "${inventory[@]}" "$root/playbooks/provision.yml"
  log "Publishing examples/bots-repo as the git repository /srv/git/bots.git on the host"
  ansible-playbook "${inventory[@]}" "$root/examples/demo/publish-repo.yml"
  log "Deploying: ansible-playbook playbooks/deploy.yml"
  ansible-playbook "${inventory[@]}" "$root/playbooks/deploy.yml"

  log "PM2 on the demo host"
  docker exec "$container" sudo -iu bots pm2 list
  cat <<TEXT

Look around:
  ssh -p $port -i $state/id_ed25519 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@127.0.0.1
  then: sudo -iu bots pm2 logs        (heartbeats of the three bots)
        cat /srv/botfleet/ecosystem.config.js as the bots user
Deploy again (nothing changes), or with --check --diff to preview a change:
  cd $root && .venv/bin/ansible-playbook -i .cache/demo/inventory/hosts.yml playbooks/deploy.yml
Show every bot's state (non-zero exit when one is unhealthy):
  cd $root && .venv/bin/ansible-playbook -i .cache/demo/inventory/hosts.yml playbooks/status.yml
Change a bot: on the demo host, as the bots user, edit and commit in /srv/git/bots-work, then
  git push /srv/git/bots.git main, and deploy again.
Add, retire or purge a bot: edit the bot list in
  $root/.cache/demo/inventory/group_vars/bot_hosts/bots.yml and deploy again.
  make demo copies examples/demo/bots.yml over that file, so it undoes such edits.
Remove the demo host:
  make demo-clean
TEXT
}

down() {
  docker rm -f "$container" >/dev/null 2>&1 || true
  rm -rf "$state"
  echo "demo: removed the container $container and $state"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
